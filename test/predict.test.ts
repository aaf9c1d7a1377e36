// Inference under load: output buffers stay bounded whatever the batch sizes, and concurrent predictAsync calls on
// one model queue in order and are coalesced into shared batches (dynamic batching), each caller getting exactly the
// rows a lone call gives; fit, evaluate and predict refuse to overlap with them.
// Rows are independent in eval mode, so a coalesced caller's rows are bitwise those of a lone call wherever the
// kernels sum each output in an order that does not depend on the row count: always on the reference backend; on the
// native CPU backend from 6 rows up for these layer sizes (below that its gemm streams the weights in another
// summation order), which is why most calls below have 6 rows or more.
import { describe, expect, it } from 'vitest';
import { backendByName } from '../lib/backend.js';
import { batchingStats, setBatching } from '../lib/train/predict.js';
import { Workspace } from '../lib/workspace.js';
import { relError, requireCpu, rg, rng, TOL } from './helpers.js';

const cpuAvailable = requireCpu();

const backendNames = cpuAvailable ? (['cpu', 'reference'] as const) : (['reference'] as const);
if (!cpuAvailable) console.warn('predict tests run on the reference backend only: the native CPU backend is unavailable');

function mlp(): rg.Module {
  rg.manualSeed(3);
  return new rg.Sequential([new rg.Linear(8, 16), new rg.ReLU(), new rg.Linear(16, 4)]);
}

/** Random float rows [...shape] from a seed. */
function data(shape: number[], seed: number): rg.Tensor {
  const r = rng(seed);
  return rg.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r() * 2 - 1), shape);
}

/** Outputs of one predictAsync call at a time (the lone-call results the coalesced ones must equal). */
async function lone(model: rg.Module, xs: rg.Tensor[]): Promise<{ shape: readonly number[]; values: number[] }[]> {
  const out = [];
  for (const x of xs) {
    const y = await model.predictAsync(x);
    out.push({ shape: y.shape, values: [...y.toArray()] });
  }
  return out;
}

/** The memory count after everything queued before a read of `probe` (the frees of dropped buffers included) has run. */
function liveTensors(probe: rg.Tensor): number {
  probe.toArray();
  return rg.memory().tensors;
}

describe('Workspace', () => {
  it('keeps a few shapes per output, most recently used first, and disposes the ones it drops', () => {
    const b = backendByName('reference');
    const ws = new Workspace();
    ws.reuse = 1;
    // fit's full batch and the epoch's smaller last batch both stay cached
    const full = ws.get('y', b, [32, 4]);
    const last = ws.get('y', b, [8, 4]);
    for (let epoch = 0; epoch < 3; epoch++) {
      expect(ws.get('y', b, [32, 4])).toBe(full);
      expect(ws.get('y', b, [8, 4])).toBe(last);
    }
    const other = ws.get('dx', b, [32, 4]);
    const made = [1, 2, 3, 5, 6, 7].map((n) => ws.get('y', b, [n, 4]));
    expect(full.disposed).toBe(true);
    expect(last.disposed).toBe(true);
    expect([full, last, ...made].filter((t) => !t.disposed)).toHaveLength(Workspace.shapesPerKey);
    expect(ws.get('y', b, [7, 4])).toBe(made[5]);
    expect(ws.get('y', b, [3, 4])).toBe(made[2]);
    // another output's buffers are not evicted by this one's shapes
    expect(ws.get('dx', b, [32, 4])).toBe(other);
    ws.clear();
    expect(made.every((t) => t.disposed) && other.disposed).toBe(true);
  });
});

for (const backend of backendNames) {
  describe(`predict on ${backend}`, () => {
    it('holds a bounded number of buffers over many batch sizes', async () => {
      rg.setBackend(backend);
      const model = mlp();
      const run = (n: number) => {
        const x = data([n, 8], n);
        const y = model.predict(x);
        expect(y.shape).toEqual([n, 4]);
        y.dispose();
        x.dispose();
      };
      const probe = rg.tensor([0], [1]);
      for (let n = 1; n <= 10; n++) run(n);
      const before = liveTensors(probe);
      for (let n = 11; n <= 150; n++) run(n);
      for (let n = 0; n < 60; n++) {
        const x = data([1 + ((n * 37) % 200), 8], n);
        (await model.predictAsync(x)).dispose();
        x.dispose();
      }
      expect(liveTensors(probe)).toBeLessThanOrEqual(before);
    });
  });

  describe(`dynamic batching of predictAsync on ${backend}`, () => {
    it('coalesces calls that arrive together; each caller gets the rows a lone call gives, bitwise', async () => {
      rg.setBackend(backend);
      const model = mlp();
      const xs = [6, 9, 17, 7, 64, 12].map((n, i) => data([n, 8], 10 + i));
      const expected = await lone(model, xs);
      const stats = batchingStats(model);
      expect(stats).toEqual({ batches: 6, requests: 6, rows: 115 });
      const ys = await Promise.all(xs.map((x) => model.predictAsync(x)));
      for (const [i, y] of ys.entries()) {
        expect(y.shape).toEqual(expected[i].shape);
        expect([...y.toArray()]).toEqual(expected[i].values);
      }
      expect(batchingStats(model)).toEqual({ batches: 7, requests: 12, rows: 230 });
      // the stats are a snapshot, not a live view
      expect(stats.batches).toBe(6);
    });

    it('coalesces calls of a few rows each (bitwise on the reference backend, to rounding on the native ones)', async () => {
      rg.setBackend(backend);
      const model = mlp();
      const xs = [1, 3, 2, 5, 1, 4].map((n, i) => data([n, 8], 15 + i));
      const expected = await lone(model, xs);
      const ys = await Promise.all(xs.map((x) => model.predictAsync(x)));
      for (const [i, y] of ys.entries()) {
        expect(y.shape).toEqual(expected[i].shape);
        if (backend === 'reference') expect([...y.toArray()]).toEqual(expected[i].values);
        else expect(relError(y.toArray(), expected[i].values)).toBeLessThan(TOL.elementwise);
      }
      expect(batchingStats(model)).toEqual({ batches: 7, requests: 12, rows: 32 });
    });

    it('splits at maxBatch rows, and runs a larger call alone', async () => {
      rg.setBackend(backend);
      const model = mlp();
      setBatching(model, { maxBatch: 20 });
      const xs = [6, 9, 17, 7, 64, 12].map((n, i) => data([n, 8], 20 + i));
      const expected = await lone(model, xs);
      const ys = await Promise.all(xs.map((x) => model.predictAsync(x)));
      for (const [i, y] of ys.entries()) expect([...y.toArray()]).toEqual(expected[i].values);
      // [6, 9] [17] [7] [64] [12]
      expect(batchingStats(model)).toEqual({ batches: 6 + 5, requests: 12, rows: 230 });
    });

    it('coalesces calls that arrive within maxDelayMs of the first, and calls that arrive while a batch runs', async () => {
      rg.setBackend(backend);
      const model = mlp();
      const xs = [6, 8, 7].map((n, i) => data([n, 8], 30 + i));
      const expected = await lone(model, xs);
      setBatching(model, { maxDelayMs: 30 });
      const first = model.predictAsync(xs[0]);
      await new Promise((r) => setTimeout(r, 1));
      const rest = [model.predictAsync(xs[1]), model.predictAsync(xs[2])];
      const ys = await Promise.all([first, ...rest]);
      for (const [i, y] of ys.entries()) expect([...y.toArray()]).toEqual(expected[i].values);
      expect(batchingStats(model).batches).toBe(3 + 1);
      // without a delay, a lone call starts at once and the calls made while it runs share the next batch
      setBatching(model, { maxDelayMs: 0 });
      const a = model.predictAsync(xs[0]);
      await Promise.resolve(); // the first batch has started
      const later = [model.predictAsync(xs[1]), model.predictAsync(xs[2])];
      const zs = await Promise.all([a, ...later]);
      for (const [i, z] of zs.entries()) expect([...z.toArray()]).toEqual(expected[i].values);
      expect(batchingStats(model)).toEqual({ batches: 4 + 2, requests: 9, rows: 63 });
    });

    it('runs calls with different row shapes in separate batches, in arrival order', async () => {
      rg.setBackend(backend);
      const model = mlp();
      const xs = [data([6, 8], 40), data([7, 8], 41), data([6, 2, 8], 42), data([8, 8], 43), data([9, 8], 44)];
      const expected = await lone(model, xs);
      const order: number[] = [];
      const ys = await Promise.all(xs.map((x, i) => model.predictAsync(x).then((y) => (order.push(i), y))));
      for (const [i, y] of ys.entries()) {
        expect(y.shape).toEqual(expected[i].shape);
        expect([...y.toArray()]).toEqual(expected[i].values);
      }
      expect(order).toEqual([0, 1, 2, 3, 4]);
      // [6, 7] [6×2] [8, 9]
      expect(batchingStats(model)).toEqual({ batches: 5 + 3, requests: 10, rows: 72 });
    });

    it('coalesces int32 inputs (token ids) too', async () => {
      rg.setBackend(backend);
      rg.manualSeed(5);
      const model = new rg.Sequential([new rg.Embedding(10, 4), new rg.Linear(4, 3)]);
      const r = rng(50);
      const xs = [2, 3, 4].map((n) => rg.tensor(Int32Array.from({ length: n * 5 }, () => Math.floor(r() * 10)), [n, 5]));
      const expected = await lone(model, xs);
      const ys = await Promise.all(xs.map((x) => model.predictAsync(x)));
      for (const [i, y] of ys.entries()) {
        expect(y.shape).toEqual([xs[i].shape[0], 5, 3]);
        expect([...y.toArray()]).toEqual(expected[i].values);
      }
      expect(batchingStats(model).batches).toBe(3 + 1);
    });

    it('rejects only the callers of a failed batch; the next calls work', async () => {
      rg.setBackend(backend);
      const model = mlp();
      const good = [data([6, 8], 60), data([7, 8], 61)];
      const expected = await lone(model, good);
      const calls = [
        model.predictAsync(good[0]),
        model.predictAsync(data([1, 7], 62)),
        model.predictAsync(data([2, 7], 63)),
        model.predictAsync('x' as never),
        model.predictAsync(good[1]),
      ];
      const settled = await Promise.allSettled(calls);
      expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'rejected', 'fulfilled']);
      const reason = (i: number) => (settled[i] as PromiseRejectedResult).reason;
      expect(reason(1).message).toMatch(/^Linear\(8→16\): input has 7 features, expected 8/);
      expect(reason(2)).toBe(reason(1));
      expect(reason(3)).toBeInstanceOf(TypeError);
      expect(reason(3).message).toMatch(/predictAsync: x must be a Tensor/);
      expect([...(settled[0] as PromiseFulfilledResult<rg.Tensor>).value.toArray()]).toEqual(expected[0].values);
      expect([...(settled[4] as PromiseFulfilledResult<rg.Tensor>).value.toArray()]).toEqual(expected[1].values);
      // [good0] [bad, bad] [good1]; the argument error never reached the queue
      expect(batchingStats(model)).toEqual({ batches: 2 + 3, requests: 6, rows: 29 });
      expect([...(await model.predictAsync(good[1])).toArray()]).toEqual(expected[1].values);
      expect([...model.predict(good[1]).toArray()]).toEqual(expected[1].values);
    });

    it('refuses to overlap with fit, evaluate and predict, both ways (BUSY)', async () => {
      rg.setBackend(backend);
      const model = mlp();
      model.compile({ optimizer: new rg.SGD(model.parameters(), { lr: 0.01 }), loss: new rg.MSELoss() });
      const x = data([16, 8], 70), y = data([16, 4], 71);
      const busy = { name: 'RetrogradError', code: 'BUSY' };
      // inference arriving during fit
      const running = model.fit(x, y, { epochs: 2, batchSize: 4, verbose: 0 });
      const refused = model.predictAsync(x);
      await expect(refused).rejects.toMatchObject(busy);
      await expect(refused).rejects.toThrow('predictAsync: the model is busy with another fit, evaluate or predictAsync call; await it first');
      await running;
      // fit, evaluate and predict arriving while inference is queued or in flight
      setBatching(model, { maxDelayMs: 20 });
      const queued = [model.predictAsync(x), model.predictAsync(data([3, 8], 72))];
      await expect(model.fit(x, y, { verbose: 0 })).rejects.toMatchObject(busy);
      await expect(model.evaluate(x, y)).rejects.toMatchObject(busy);
      expect(() => model.predict(x)).toThrow('predict: the model is busy with another fit, evaluate or predictAsync call; await it first');
      const [p] = await Promise.all(queued);
      expect(p.shape).toEqual([16, 4]);
      expect(batchingStats(model)).toEqual({ batches: 1, requests: 2, rows: 19 });
      // once the queue has drained, training and the synchronous predict work again
      await model.fit(x, y, { verbose: 0 });
      expect(model.training).toBe(true);
      expect(model.predict(x).shape).toEqual([16, 4]);
    });

    it('checks its options', () => {
      rg.setBackend(backend);
      const model = mlp();
      expect(() => setBatching(model, { maxBatch: 0 })).toThrow(RangeError);
      expect(() => setBatching(model, { maxBatch: 1.5 })).toThrow('setBatching: invalid maxBatch 1.5; expected an integer >= 1');
      expect(() => setBatching(model, { maxDelayMs: -1 })).toThrow(RangeError);
      expect(() => setBatching(model, { maxDelay: 3 } as never)).toThrow("setBatching: unknown option 'maxDelay' (did you mean 'maxDelayMs'?)");
      expect(() => setBatching(model, { maxBatch: 8, maxDelayMs: Infinity })).toThrow(RangeError);
    });
  });
}
