// Data pipelines: Dataset / IterableDataset / DataLoader batches, the CSV stream, and fit fed by a loader.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { requireCpu, rg } from './helpers.js';

const cpuAvailable = requireCpu();

const dir = mkdtempSync(join(tmpdir(), 'retrograd-data-'));

function blobs(n: number): { x: number[]; y: number }[] {
  return Array.from({ length: n }, (_, i) => {
    const c = i % 3;
    return { x: [c === 0 ? 2 : 0, c === 1 ? 2 : 0, c === 2 ? 2 : 0, Math.sin(i)].map((v, j) => v + 0.3 * Math.cos(i * 7 + j)), y: c };
  });
}

describe('datasets and loaders', () => {
  rg.setBackend(cpuAvailable ? 'cpu' : 'reference');

  it('batches a Dataset: shapes, dtypes, the last batch, dropLast, seeded shuffling and the transform hook', async () => {
    const ds = new rg.Dataset(blobs(10), { transform: (s) => ({ x: Array.from(s.x, (v) => 2 * v), y: s.y }) });
    const loader = new rg.DataLoader(ds, { batchSize: 4 });
    expect(loader.batchCount).toBe(3);
    const shapes: number[][] = [];
    for await (const { x, y } of loader) {
      shapes.push([...x.shape]);
      expect(y.dtype).toBe('int32');
    }
    expect(shapes).toEqual([[4, 4], [4, 4], [2, 4]]);
    const first = await (async () => { for await (const b of loader) return b; })();
    expect(first!.x.toArray()[0]).toBeCloseTo(2 * blobs(1)[0].x[0], 5);
    expect(new rg.DataLoader(ds, { batchSize: 4, dropLast: true }).batchCount).toBe(2);
    const order = async () => {
      rg.manualSeed(8);
      const ys: number[] = [];
      for await (const { y } of new rg.DataLoader(rg.Dataset.fromArrays(new Float32Array(20), Int32Array.from({ length: 10 }, (_, i) => i), 10), { batchSize: 3, shuffle: true })) ys.push(...y.toArray());
      return ys;
    };
    const a = await order();
    expect([...a].sort((p, q) => p - q)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(a).not.toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(await order()).toEqual(a);
    const vec = new rg.DataLoader(new rg.Dataset([{ x: [1, 2], y: [0.5, 1] }, { x: [3, 4], y: [1.5, 2] }]), { batchSize: 2 });
    for await (const { y } of vec) expect(y.shape).toEqual([2, 2]);
    expect(() => new rg.DataLoader([] as never)).toThrow(/expected a Dataset or an IterableDataset/);
    const ragged = new rg.DataLoader(new rg.Dataset([{ x: [1, 2], y: 0 }, { x: [3], y: 1 }]), { batchSize: 2 });
    await expect((async () => { for await (const _ of ragged) { /* consume */ } })()).rejects.toThrow(/sample 1 of the batch has 1 features, the first has 2/);
  });

  it('shuffles a stream through a bounded buffer (tf.data): every sample once, repeatable, mixed within the buffer', async () => {
    const n = 200;
    const stream = new rg.IterableDataset(function* () {
      for (let i = 0; i < n; i++) yield { x: [i], y: i };
    });
    const order = async (size: number, seed = 5) => {
      rg.manualSeed(seed);
      const ys: number[] = [];
      for await (const { y } of new rg.DataLoader(stream, { batchSize: 7, shuffle: true, shuffleBuffer: size })) ys.push(...y.toArray('int32'));
      return ys;
    };
    const a = await order(16);
    expect([...a].sort((p, q) => p - q)).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(a).not.toEqual(Array.from({ length: n }, (_, i) => i));
    expect(await order(16)).toEqual(a);
    expect(await order(16, 6)).not.toEqual(a);
    // a buffer of 16 cannot let out a sample before it has read it: the k-th sample out was at most the (k+16)-th in
    a.forEach((v, k) => expect(v).toBeLessThan(k + 16));
    // a buffer of 1 keeps the order; one as large as the stream draws from all of it
    expect(await order(1)).toEqual(Array.from({ length: n }, (_, i) => i));
    const full = await order(n);
    expect(full.slice(0, 20).some((v) => v >= 100)).toBe(true);
    expect(() => new rg.DataLoader(stream, { shuffle: true })).toThrow(/DataLoader: shuffle on an IterableDataset \(a stream, never held whole\) needs shuffleBuffer/);
    expect(() => new rg.DataLoader(stream, { shuffleBuffer: 8 })).toThrow('DataLoader: shuffleBuffer is for shuffle: true');
    expect(() => new rg.DataLoader(stream, { shuffle: true, shuffleBuffer: 0 })).toThrow(/shuffleBuffer/);
    expect(() => new rg.DataLoader(stream, { shuffle: 'yes' as never })).toThrow("DataLoader: shuffle must be a boolean, got the string 'yes'");
  });

  it('takes each epoch\'s order from a sampler (PyTorch\'s sampler option), epoch after epoch', async () => {
    const ds = rg.Dataset.fromArrays(new Float32Array(20), Int32Array.from({ length: 10 }, (_, i) => i), 10);
    const seen: number[][] = [];
    const sampler = { indices: (epoch: number) => Int32Array.of(epoch, 9 - epoch, 5) };
    const loader = new rg.DataLoader(ds, { batchSize: 2, sampler });
    expect(loader.batchCount).toBe(2);
    for (let e = 0; e < 2; e++) {
      const ys: number[] = [];
      for await (const { y } of loader) ys.push(...y.toArray('int32'));
      seen.push(ys);
    }
    expect(seen).toEqual([[0, 9, 5], [1, 8, 5]]);
    // a DistributedSampler's shard: rank 1 of 3 over 10 samples, in order
    const shard: number[] = [];
    for await (const { y } of new rg.DataLoader(ds, { batchSize: 4, sampler: new rg.DistributedSampler(10, { shuffle: false, rank: 1, worldSize: 3 }) })) shard.push(...y.toArray('int32'));
    expect(shard).toEqual([1, 4, 7, 0]);
    expect(() => new rg.DataLoader(ds, { sampler, shuffle: true })).toThrow('DataLoader: sampler and shuffle are exclusive (the sampler decides the order; shuffle it there)');
    expect(() => new rg.DataLoader(ds, { sampler: {} as never })).toThrow(/DataLoader: sampler must have indices\(epoch\)/);
    const stream = new rg.IterableDataset(function* () { yield { x: [1], y: 0 }; });
    expect(() => new rg.DataLoader(stream, { sampler })).toThrow(/a sampler orders a Dataset/);
  });

  it('streams a CSV file record by record, with clear errors for bad cells', async () => {
    const path = join(dir, 'blobs.csv');
    writeFileSync(path, ['a,b,label,c,d', ...blobs(30).map((s) => [s.x[0], s.x[1], s.y, s.x[2], s.x[3]].join(','))].join('\n'));
    const samples: rg.Sample[] = [];
    for await (const s of rg.readCSV(path, { label: 'label' })) samples.push(s);
    expect(samples.length).toBe(30);
    expect(samples[4].y).toBe(1);
    expect(Array.from(samples[4].x)).toEqual(blobs(5)[4].x.map((v) => Number(String(v))));
    const whole = await rg.Dataset.fromCSV(path, { label: 2 });
    expect(whole.length).toBe(30);
    writeFileSync(join(dir, 'bad.csv'), 'a,label\n1,0\nx,1\n');
    await expect((async () => { for await (const _ of rg.readCSV(join(dir, 'bad.csv'), { label: 'label' })) { /* consume */ } })()).rejects.toThrow(/line 3, column 1: 'x' is not a number/);
    await expect((async () => { for await (const _ of rg.readCSV(path, { label: 'target' })) { /* consume */ } })()).rejects.toThrow(/has no column 'target'/);
  });

  it('trainTestSplit refuses row counts and sizes that do not divide the data into whole rows', () => {
    const x = new Float32Array(10), y = new Int32Array(5);
    expect(() => rg.trainTestSplit(x, y, 4, 2, 1, 1)).toThrow(/trainTestSplit: x holds 10 values, not a whole number of rows for n = 4/);
    expect(() => rg.trainTestSplit(x, new Int32Array(4), 5, 2, 1, 1)).toThrow(/trainTestSplit: y holds 4 values, not a whole number of rows for n = 5/);
    expect(() => rg.trainTestSplit(x, y, 5, -1, 1, 1)).toThrow(/trainTestSplit: invalid trainSize -1; expected an integer >= 0/);
    expect(() => rg.trainTestSplit(x, y, 5, 2.5, 1, 1)).toThrow(/invalid trainSize 2\.5/);
    expect(() => rg.trainTestSplit(x, y, 0, 0, 0, 1)).toThrow(/invalid n 0/);
    const { xTrain, yTest } = rg.trainTestSplit(x, y, 5, 3, 2, 1);
    expect([xTrain.length, yTest.length]).toEqual([6, 2]);
  });

  it('fit trains from a DataLoader over a CSV stream, without keeping the batches', async () => {
    const path = join(dir, 'train.csv');
    writeFileSync(path, ['f1,f2,f3,f4,y', ...blobs(300).map((s) => [...s.x, s.y].join(','))].join('\n'));
    rg.manualSeed(9);
    const model = new rg.Sequential([new rg.Linear(4, 16), new rg.ReLU(), new rg.Linear(16, 3)]);
    model.compile({ optimizer: new rg.Adam(model.parameters(), { lr: 0.02 }), loss: new rg.CrossEntropyLoss(), metrics: ['accuracy'] });
    const loader = new rg.DataLoader(rg.readCSV(path, { label: 'y' }), { batchSize: 32 });
    const counts: number[] = [];
    const h = await model.fit(loader, { epochs: 8, verbose: 0, callbacks: [{ onEpochEnd: () => { counts.push(rg.memory().tensors); } }] });
    expect(h.history.loss.at(-1)!).toBeLessThan(h.history.loss[0]);
    expect(h.history.accuracy.at(-1)!).toBeGreaterThan(0.95);
    // once the optimizer state and the per-shape buffers exist (and early garbage is collected), the batches come and go
    expect(Math.max(...counts.slice(2)), JSON.stringify(counts)).toBeLessThanOrEqual(counts[1]);
    await expect(model.fit(loader, rg.zeros([1]) as never)).rejects.toThrow(/a DataLoader brings its own targets/);
    // evaluate and validationData take loaders too, and agree with tensors
    const valRows = blobs(90);
    const valLoader = new rg.DataLoader(new rg.Dataset(valRows), { batchSize: 25 });
    const byLoader = await model.evaluate(valLoader);
    const xv = rg.tensor(valRows.flatMap((r) => r.x), [90, 4]), yv = rg.tensor(Int32Array.from(valRows.map((r) => r.y)), [90]);
    const byTensors = await model.evaluate(xv, yv, { batchSize: 25 });
    expect(byLoader.loss).toBeCloseTo(byTensors.loss, 5);
    expect(byLoader.accuracy).toBe(byTensors.accuracy);
    const h2 = await model.fit(loader, { epochs: 1, verbose: 0, validationData: valLoader });
    expect(h2.history.val_loss[0]).toBeGreaterThan(0);
  });
});
