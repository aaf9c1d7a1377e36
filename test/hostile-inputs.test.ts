// Hostile files and data: missing and unreadable paths, corrupt random states in checkpoints, safetensors files
// that are not regular files or whose header lies about the data, architectures that name no layer, data cells
// that are not plain numbers, training configs whose paths leave their folder. Each fails cleanly, with a message
// naming the file (and the row and column, for data), and changes nothing.
import { mkdirSync, mkdtempSync, openSync, closeSync, ftruncateSync, readdirSync, readFileSync, writeFileSync, writeSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { requireCpu, rg, safetensorsBytes } from './helpers.js';
import { getRngState, setRngState } from '../lib/random.js';
import { historyReport, lineChart } from '../lib/report.js';
import { trainFromConfig } from '../lib/train/config.js';

const cpuAvailable = requireCpu();

// Records the order of fsyncs and renames (the real calls run underneath), to check that a save is durable.
const fsCalls = vi.hoisted(() => [] as string[]);
vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs/promises')>();
  const open: typeof fs.open = async (...args) => {
    const handle = await fs.open(...args);
    const sync = handle.sync.bind(handle);
    handle.sync = async () => {
      fsCalls.push(`sync ${String(args[0])}`);
      return sync();
    };
    return handle;
  };
  const rename: typeof fs.rename = async (from, to) => {
    fsCalls.push(`rename ${String(from)}`);
    return fs.rename(from, to);
  };
  return { ...fs, default: { ...fs, open, rename }, open, rename };
});

rg.setBackend(cpuAvailable ? 'cpu' : 'reference');
const dir = mkdtempSync(join(tmpdir(), 'retrograd-hostile-'));
const drain = async (it: AsyncIterable<unknown>) => {
  for await (const _ of it) { /* consume */ }
};
/** randn after manualSeed(seed): equal to a fresh draw when nothing consumed the generator in between. */
const drawAfter = (seed: number, between: () => Promise<unknown>) => async () => {
  rg.manualSeed(seed);
  await between();
  const after = [...rg.randn([4]).toArray()];
  rg.manualSeed(seed);
  return { after, fresh: [...rg.randn([4]).toArray()] };
};

describe('missing and unreadable data files', () => {
  const missing = join(dir, 'no-such-file.csv');

  it('readCSV and Dataset.fromCSV reject with an error naming the path', { timeout: 10_000 }, async () => {
    await expect(drain(rg.readCSV(missing, { label: 0 }))).rejects.toThrow(/^readCSV: ENOENT: no such file or directory, open '.*no-such-file\.csv'$/);
    await expect(rg.Dataset.fromCSV(missing, { label: 0 })).rejects.toThrow(/readCSV: ENOENT.*no-such-file\.csv/);
    const folder = join(dir, 'a-folder.csv');
    mkdirSync(folder);
    await expect(drain(rg.readCSV(folder, { label: 0 }))).rejects.toThrow(/readCSV: .*a-folder\.csv: EISDIR: illegal operation on a directory/);
    try {
      await drain(rg.readCSV(missing, { label: 0 }));
    } catch (e) {
      expect((e as NodeJS.ErrnoException).code).toBe('ENOENT');
    }
  });

  it('a training config naming a missing CSV rejects with the path, as training data and as validation data', { timeout: 10_000 }, async () => {
    const config = (data: object) => {
      const path = join(dir, `missing-${Object.keys(data).join('-')}.json`);
      writeFileSync(path, JSON.stringify({ model: { type: 'Linear', args: [2, 2] }, data, epochs: 1 }));
      return path;
    };
    writeFileSync(join(dir, 'ok.csv'), 'a,b,y\n1,2,0\n3,4,1\n');
    await expect(trainFromConfig(config({ train: { csv: 'no-such-file.csv', label: 'y' } }))).rejects.toThrow(/ENOENT.*no-such-file\.csv/);
    await expect(trainFromConfig(config({ train: { csv: 'ok.csv', label: 'y' }, validation: { csv: 'no-such-file.csv', label: 'y' } }))).rejects.toThrow(/ENOENT.*no-such-file\.csv/);
  });
});

describe('the random state of a checkpoint', () => {
  const path = join(dir, 'rng-checkpoint.safetensors');
  const withRng = async (rng: string) => {
    rg.manualSeed(1);
    await rg.saveCheckpoint(path, { model: new rg.Sequential([new rg.Linear(3, 2)]), epoch: 1 });
    const { tensors, metadata } = rg.decodeSafetensors(readFileSync(path));
    const bad = join(dir, `rng-${Buffer.from(rng).toString('hex')}.safetensors`);
    writeFileSync(bad, rg.encodeSafetensors(tensors, { ...metadata, rng }));
    return bad;
  };

  it('is checked before anything is loaded: a corrupt state rejects, naming it, and the generator and the model stay as they were', async () => {
    const cases: [string, RegExp][] = [
      ['[0,0,0,0]', /all zero/],
      ['"0123"', /must be an array of 4 integers/],
      ['[1,2,3]', /must be an array of 4 integers/],
      ['[1,2,3,4,5]', /must be an array of 4 integers/],
      ['[1.5,2,3,4]', /1\.5/],
      ['[1,2,3,4294967296]', /4294967296/],
      ['[1,2,3,-2147483649]', /-2147483649/],
      ['[1,2,"3",4]', /must be an array of 4 integers/],
      ['{"a":1}', /must be an array of 4 integers/],
    ];
    for (const [rng, message] of cases) {
      const file = await withRng(rng);
      const model = new rg.Sequential([new rg.Linear(3, 2)]);
      const before = [...model.parameters()[0].value.toArray()];
      const { after, fresh } = await drawAfter(5, () => expect(rg.loadCheckpoint(file, { model }), rng).rejects.toThrow(message))();
      expect(after, rng).toEqual(fresh);
      expect([...model.parameters()[0].value.toArray()], rng).toEqual(before);
      await expect(rg.loadCheckpoint(file, { model }), rng).rejects.toThrow(/loadCheckpoint: .*random state/);
    }
    // the signed form of the state words that earlier versions wrote is still read
    const signed = await withRng('[-1,2,-2147483648,4]');
    await rg.loadCheckpoint(signed);
    expect(getRngState()).toEqual([4294967295, 2, 2147483648, 4]);
  });

  it('setRngState refuses a state the generator cannot run from and keeps its own', () => {
    rg.manualSeed(9);
    const state = getRngState();
    expect(() => setRngState([0, 0, 0, 0])).toThrow(/setRngState: the state must not be all zero/);
    expect(() => setRngState([0, 0, 0] as never)).toThrow(TypeError);
    expect(() => setRngState([1, 2, 3, 2 ** 32])).toThrow(RangeError);
    expect(() => setRngState('abcd' as never)).toThrow(TypeError);
    expect(getRngState()).toEqual(state);
    expect(getRngState().every((w) => Number.isInteger(w) && w >= 0 && w < 2 ** 32)).toBe(true);
    rg.randn([3]); // words that went through xor are read back as unsigned too
    expect(getRngState().every((w) => Number.isInteger(w) && w >= 0 && w < 2 ** 32)).toBe(true);
  });
});

describe('safetensors files that lie', () => {
  it('a path that is not a regular file is refused before anything is read', async () => {
    await expect(rg.loadSafetensors('/dev/null')).rejects.toThrow(/loadSafetensors: \/dev\/null is not a regular file/);
    await expect(rg.load(dir)).rejects.toThrow(/is not a regular file/);
    // a device with no end: the check comes before the first read
    await expect(rg.loadSafetensors('/dev/zero')).rejects.toThrow(/\/dev\/zero is not a regular file/);
  });

  it('the header length is bounded and the file size must match the data offsets before the data is read', async () => {
    const sparse = (name: string, size: number, head: Buffer) => {
      const path = join(dir, name);
      const fd = openSync(path, 'w');
      writeSync(fd, head);
      ftruncateSync(fd, size); // a hole: no disk used
      closeSync(fd);
      return path;
    };
    const headerLength = Buffer.alloc(8);
    headerLength.writeBigUInt64LE(200n * 1024n * 1024n);
    await expect(rg.loadSafetensors(sparse('big-header.safetensors', 200 * 1024 * 1024 + 64, headerLength))).rejects.toThrow(/header length 209715200 exceeds the limit of 104857600 bytes/);
    const small = rg.encodeSafetensors({ w: { dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) } });
    // 3 GiB after an 8-byte tensor: refused from the size alone (the file is never read whole)
    await expect(rg.loadSafetensors(sparse('huge.safetensors', 3 * 2 ** 30, small))).rejects.toThrow(/3221225\d+ bytes after the last tensor are not indexed/);
    await expect(rg.loadSafetensors(sparse('short.safetensors', small.length - 4, small))).rejects.toThrow(/entry 'w' ends at byte 8 of a 4-byte data section/);
    const good = join(dir, 'good.safetensors');
    writeFileSync(good, small);
    expect([...(await rg.loadSafetensors(good)).w.toArray()]).toEqual([1, 2]);
  });

  it('duplicate names are refused, and every name (__proto__ too) round-trips', async () => {
    const raw = safetensorsBytes;
    const dup = raw('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', Buffer.alloc(8));
    expect(() => rg.decodeSafetensors(dup)).toThrow(/the name 'a' appears twice/);
    const escaped = raw('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"\\u0061":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', Buffer.alloc(8));
    expect(() => rg.decodeSafetensors(escaped)).toThrow(/the name 'a' appears twice/);
    const dupMeta = raw('{"__metadata__":{"k":"1","k":"2"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', Buffer.alloc(4));
    expect(() => rg.decodeSafetensors(dupMeta)).toThrow(/the name 'k' appears twice in __metadata__/);
    const names = ['__proto__', 'constructor', 'toString', 'w'];
    const tensors = Object.fromEntries(names.map((n, i) => [n, { dtype: 'F32' as const, shape: [1], data: Float32Array.of(i) }]));
    const buf = rg.encodeSafetensors(tensors, Object.fromEntries([['__proto__', 'p'], ['note', 'n']]));
    const back = rg.decodeSafetensors(buf);
    expect(Object.keys(back.tensors)).toEqual(names);
    expect(names.map((n) => back.tensors[n].data[0])).toEqual([0, 1, 2, 3]);
    expect(Object.keys(back.metadata)).toEqual(['__proto__', 'note']);
    const path = join(dir, 'proto.safetensors');
    writeFileSync(path, buf);
    expect(Object.keys(await rg.loadSafetensors(path))).toEqual(names);
  });
});

describe('architectures that name no layer, nest too deep or do not fit their weights', () => {
  const modelFile = (name: string, architecture: string, tensors: Record<string, rg.StTensor> = {}) => {
    const path = join(dir, name);
    writeFileSync(path, rg.encodeSafetensors(tensors, { format: 'retrograd', architecture }));
    return path;
  };

  it('a type that is not an own, known layer is refused by name', async () => {
    for (const type of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'Module']) {
      const path = modelFile(`type-${type}.safetensors`, JSON.stringify({ type: 'Sequential', layers: [{ type }] }));
      await expect(rg.load(path), type).rejects.toThrow(new RegExp(`load: unknown layer type '${type}'; known: Sequential, Linear, `));
    }
  });

  it('nesting deeper than the limit is refused with a clear error', async () => {
    let arch = '{"type":"ReLU"}';
    for (let i = 0; i < 20_000; i++) arch = `{"type":"Sequential","layers":[${arch}]}`;
    await expect(rg.load(modelFile('deep.safetensors', arch))).rejects.toThrow(/load: the architecture nests deeper than 64 levels/);
    let ok = '{"type":"ReLU"}';
    for (let i = 0; i < 10; i++) ok = `{"type":"Sequential","layers":[${ok}]}`;
    expect(await rg.load(modelFile('nested.safetensors', ok))).toBeInstanceOf(rg.Sequential);
  });

  it('the stored tensors are checked against the architecture before it is built', async () => {
    // 152 bytes that describe a 400-million-weight layer: refused before a weight is drawn
    const huge = modelFile('huge-arch.safetensors', JSON.stringify({ type: 'Sequential', layers: [{ type: 'Linear', args: [20000, 20000] }] }));
    const { after, fresh } = await drawAfter(4, () => expect(rg.load(huge)).rejects.toThrow(/load: .*huge-arch\.safetensors: the architecture needs tensor '0\.weight' \[20000, 20000\] float32, the file does not hold it/))();
    expect(after).toEqual(fresh);
    const w = (shape: number[]) => ({ dtype: 'F32' as const, shape, data: new Float32Array(shape.reduce((a, d) => a * d, 1)) });
    const wrong = modelFile('wrong-shape.safetensors', JSON.stringify({ type: 'Linear', args: [3, 2] }), { weight: w([2, 4]), bias: w([2]) });
    await expect(rg.load(wrong)).rejects.toThrow(/the architecture needs tensor 'weight' \[2, 3\] float32, the file holds \[2, 4\] float32/);
    const extra = modelFile('extra.safetensors', JSON.stringify({ type: 'Linear', args: [3, 2, { bias: false }] }), { weight: w([2, 3]), bias: w([2]) });
    await expect(rg.load(extra)).rejects.toThrow(/the file holds tensor 'bias', which the architecture does not have/);
    const counter = { dtype: 'F32' as const, shape: [], data: Float32Array.of(0) };
    const bn = modelFile('bn-dtype.safetensors', JSON.stringify({ type: 'BatchNorm1d', args: [2] }), { weight: w([2]), bias: w([2]), running_mean: w([2]), running_var: w([2]), num_batches_tracked: counter });
    await expect(rg.load(bn)).rejects.toThrow(/needs tensor 'num_batches_tracked' \[\] int32, the file holds \[\] float32/);
  });

  it('every layer the architecture can name saves and loads through the check, with each of its options', async () => {
    rg.manualSeed(2);
    const models: rg.Module[] = [
      new rg.Sequential([new rg.Linear(3, 4), new rg.ReLU(), new rg.Linear(4, 2, { bias: false }), new rg.LeakyReLU(0.2), new rg.Sigmoid(), new rg.Tanh(), new rg.GELU(), new rg.Softmax(), new rg.Dropout(0.1)]),
      new rg.Sequential([new rg.Conv2d(2, 3, [3, 2], { stride: 2, padding: 1 }), new rg.Conv2d(3, 2, 1, { bias: false }), new rg.MaxPool2d(2), new rg.AvgPool2d(2), new rg.GlobalAvgPool2d(), new rg.Flatten()]),
      new rg.Sequential([new rg.BatchNorm1d(3), new rg.BatchNorm1d(3, { affine: false }), new rg.BatchNorm2d(2, { trackRunningStats: false }), new rg.BatchNorm2d(2, { affine: false, trackRunningStats: false })]),
      new rg.Sequential([new rg.LayerNorm(4), new rg.LayerNorm([2, 3], { elementwiseAffine: false }), new rg.Embedding(7, 3)]),
      new rg.Sequential([new rg.RNN(3, 4, { numLayers: 2, nonlinearity: 'relu' }), new rg.LSTM(3, 5, { bias: false }), new rg.GRU(2, 3, { numLayers: 3, batchFirst: true })]),
      new rg.Sequential([new rg.MultiheadAttention(4, 2, { causal: true }), new rg.TransformerBlock(4, 2, { mlpRatio: 1.5 }), new rg.TransformerBlock(6, 3), new rg.PositionalEmbedding(5, 4)]),
      new rg.Sequential([new rg.Sequential([new rg.Linear(2, 2)]), new rg.Sequential([])]),
      new rg.Linear(2, 3),
      new rg.Sequential([new rg.AdaptiveAvgPool2d(1)]),
      new rg.Sequential([
        new rg.ConvTranspose2d(2, 3, [3, 2], { stride: 2, padding: 1, outputPadding: 1 }), new rg.ConvTranspose2d(3, 2, 4, { bias: false, dilation: 2 }),
        new rg.Upsample({ scaleFactor: 2 }), new rg.Upsample({ size: [5, 7], mode: 'bilinear', alignCorners: true }), new rg.GroupNorm(2, 2),
        new rg.GroupNorm(1, 2, { affine: false, eps: 1e-3 }), new rg.Identity(), new rg.Dropout2d(0.2),
      ]),
      new rg.Sequential([new rg.Conv1d(3, 4, 3, { stride: 2, padding: 1, dilation: 2 }), new rg.Conv1d(4, 2, 1, { bias: false })]),
    ];
    for (const [i, model] of models.entries()) {
      const path = join(dir, `every-layer-${i}.safetensors`);
      await rg.save(model, path);
      const back = await rg.load(path);
      const sd = model.stateDict(), sd2 = back.stateDict();
      expect(Object.keys(sd2), String(i)).toEqual(Object.keys(sd));
      for (const k of Object.keys(sd)) expect([...sd2[k].toArray()], `${i} ${k}`).toEqual([...sd[k].toArray()]);
    }
  });
});

describe('data that is not what it seems', () => {
  const csv = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('CSV cells must be plain finite decimal numbers: empty, Infinity, hexadecimal and overflowing cells are refused by file, line and column', async () => {
    const cases: [string, RegExp][] = [
      ['a,b,y\n1,2,0\n3,,1\n', /readCSV: .*empty\.csv line 3, column 2: the cell is empty/],
      ['a,b,y\n1,Infinity,0\n', /line 2, column 2: 'Infinity' is not a number: cells hold finite decimal numbers/],
      ['a,b,y\n1,2,0x10\n', /line 2, column 3: '0x10' is not a number: cells hold finite decimal numbers/],
      ['a,b,y\n1,1e999,0\n', /line 2, column 2: '1e999' is not a number: cells hold finite decimal numbers/],
      ['a,b,y\n1,0b1,0\n', /line 2, column 2: '0b1' is not a number: cells hold finite decimal numbers/],
      ['a,b,y\n1,2,0\n3,4\n', /readCSV: .*empty\.csv line 3: 2 columns, the first row has 3/],
    ];
    for (const [text, message] of cases) await expect(drain(rg.readCSV(csv('empty.csv', text), { label: 'y' })), text).rejects.toThrow(message);
    const fine: number[][] = [];
    for await (const s of rg.readCSV(csv('fine.csv', 'a,b,y\n-1.5,+2e3,0\n.5,7.,1\n'), { label: 'y' })) fine.push([...Array.from(s.x), s.y as number]);
    expect(fine).toEqual([[-1.5, 2000, 0], [0.5, 7, 1]]);
    expect(() => rg.readCSV('x.csv', { label: -1 })).toThrow(/readCSV: invalid label -1; expected an integer >= 0/);
  });

  it('a DataLoader decides the targets\' dtype once, by option or by its first batch, never batch by batch', async () => {
    const ds = new rg.Dataset([1, 2, 2.5, 3].map((y, i) => ({ x: [i], y })));
    const dtypes = async (options: rg.DataLoaderOptions) => {
      const out: string[] = [];
      for await (const { y } of new rg.DataLoader(ds, { batchSize: 2, ...options })) out.push(y.dtype);
      return out;
    };
    expect(await dtypes({ targetDtype: 'float32' })).toEqual(['float32', 'float32']);
    await expect(dtypes({})).rejects.toThrow(/DataLoader: sample 2's target 2\.5 is not an integer, and the targets are int32 \(decided by the first batch\); pass targetDtype: 'float32'/);
    await expect(dtypes({ targetDtype: 'int32' })).rejects.toThrow(/sample 2's target 2\.5 is not an integer, and the targets are int32 \(targetDtype\)/);
    const vectors = new rg.Dataset([{ x: [1], y: [1, 2] }]);
    await expect(drain(new rg.DataLoader(vectors, { targetDtype: 'int32' }))).rejects.toThrow(/sample 0's target is a vector; targetDtype 'int32' is for class indices/);
    expect(() => new rg.DataLoader(ds, { targetDtype: 'float64' as never })).toThrow(/DataLoader: targetDtype must be 'int32' or 'float32', got the string 'float64'/);
  });

  it('retrograd train takes the targets\' dtype from the loss: MSELoss regresses on integer-valued targets from CSV and JSON', { timeout: 30_000 }, async () => {
    const rows = Array.from({ length: 40 }, (_, i) => [i / 40, (i % 5) / 5, i < 20 ? i % 3 : (i % 3) + 0.5]);
    csv('reg.csv', ['a,b,y', ...rows.map((r) => r.join(','))].join('\n'));
    writeFileSync(join(dir, 'reg.json'), JSON.stringify({ x: rows.map((r) => r.slice(0, 2)), y: rows.map((r) => Math.round(r[2])) }));
    writeFileSync(join(dir, 'reg-config.json'), JSON.stringify({
      model: { type: 'Linear', args: [2, 1] }, loss: 'MSELoss', optimizer: { type: 'SGD', lr: 0.1 },
      data: { train: { csv: 'reg.csv', label: 'y' }, validation: { json: 'reg.json' } }, epochs: 2, batchSize: 8, history: 'reg-history.json',
    }));
    await trainFromConfig(join(dir, 'reg-config.json'));
    expect(JSON.parse(readFileSync(join(dir, 'reg-history.json'), 'utf8')).history.val_loss.length).toBe(2);
  });

  it('retrograd train refuses ragged or non-numeric JSON rows and binary files that are not whole rows, by file, row and column', async () => {
    const run = (name: string, train: object, extra: object = {}) => {
      const path = join(dir, `${name}.json`);
      writeFileSync(path, JSON.stringify({ model: { type: 'Linear', args: [2, 2] }, data: { train }, epochs: 1, ...extra }));
      return trainFromConfig(path);
    };
    const json = (name: string, d: unknown) => {
      writeFileSync(join(dir, name), JSON.stringify(d));
      return { json: name };
    };
    await expect(run('ragged', json('ragged-data.json', { x: [[1, 2], [3]], y: [0, 1] }))).rejects.toThrow(/ragged-data\.json: x row 1 has 1 values, row 0 has 2/);
    await expect(run('string-cell', json('string-data.json', { x: [[1, 2], [3, 'a']], y: [0, 1] }))).rejects.toThrow(/string-data\.json: x row 1, column 1: the string 'a' is not a finite number/);
    await expect(run('null-cell', json('null-data.json', { x: [[1, null], [3, 4]], y: [0, 1] }))).rejects.toThrow(/null-data\.json: x row 0, column 1: null is not a finite number/);
    await expect(run('null-target', json('null-y.json', { x: [[1, 2], [3, 4]], y: [0, null] }))).rejects.toThrow(/null-y\.json: y row 1: null is not a finite number/);
    await expect(run('fraction-class', json('fraction-y.json', { x: [[1, 2], [3, 4]], y: [0, 1.5] }))).rejects.toThrow(/fraction-y\.json: y row 1: 1\.5 is not a class index \(CrossEntropyLoss takes int32 targets\)/);
    await expect(run('empty-rows', json('empty-x.json', { x: [], y: [] }))).rejects.toThrow(/empty-x\.json: x holds no rows/);
    writeFileSync(join(dir, 'x10.f32'), Buffer.alloc(10 * 4));
    writeFileSync(join(dir, 'y4.i32'), Buffer.alloc(4 * 4));
    writeFileSync(join(dir, 'y5.i32'), Buffer.alloc(5 * 4));
    writeFileSync(join(dir, 'odd.f32'), Buffer.alloc(10 * 4 + 2));
    await expect(run('partial-row', { x: 'x10.f32', y: 'y4.i32', features: 4 })).rejects.toThrow(/x10\.f32 holds 10 float32 values, not a whole number of rows of 4 features/);
    await expect(run('partial-value', { x: 'odd.f32', y: 'y5.i32', features: 2 })).rejects.toThrow(/odd\.f32 holds 42 bytes, not a whole number of 4-byte values/);
    await expect(run('targets-mismatch', { x: 'x10.f32', y: 'y4.i32', features: 2 })).rejects.toThrow(/y4\.i32 holds 4 targets for the 5 rows of x10\.f32/);
    await expect(run('no-features', { x: 'x10.f32', y: 'y5.i32', features: 0 })).rejects.toThrow(/"data\.train\.features" must be at least 1, got 0/);
  });
});

describe('training config paths stay in the config\'s folder', () => {
  it('save, history and data paths that leave the folder are refused before training', async () => {
    const sub = join(dir, 'confined');
    mkdirSync(sub);
    writeFileSync(join(sub, 'd.json'), JSON.stringify({ x: [[1, 2], [3, 4]], y: [0, 1] }));
    const run = (extra: object, data: object = { train: { json: 'd.json' } }) => {
      const path = join(sub, 'config.json');
      writeFileSync(path, JSON.stringify({ model: { type: 'Linear', args: [2, 2] }, data, epochs: 1, ...extra }));
      return trainFromConfig(path);
    };
    const outside = /retrograd train .*config\.json: "(save|history|data\.train\.json|data\.validation\.csv)" \('.*'\) is outside the config's folder .*confined; paths in a config must stay inside it/;
    await expect(run({ save: '../escaped.safetensors' })).rejects.toThrow(outside);
    await expect(run({ history: join(tmpdir(), 'escaped-history.json') })).rejects.toThrow(outside);
    await expect(run({}, { train: { json: '../d.json' } })).rejects.toThrow(outside);
    await expect(run({}, { train: { json: 'd.json' }, validation: { csv: '/etc/passwd' } })).rejects.toThrow(outside);
    await expect(run({ save: 42 })).rejects.toThrow(/"save" must be a string, got number 42/);
    expect(existsSync(join(dir, 'escaped.safetensors'))).toBe(false);
    await run({ save: join(sub, 'inside.safetensors'), history: 'out/../history.json' });
    expect(existsSync(join(sub, 'inside.safetensors'))).toBe(true);
    expect(existsSync(join(sub, 'history.json'))).toBe(true);
  });
});

describe('reports and saves of any size', () => {
  it('a report draws a 200,000-epoch History', () => {
    const loss = Array.from({ length: 200_000 }, (_, i) => 1 / (1 + i));
    const html = historyReport({ history: { loss, val_loss: loss.map((v) => v * 2) } } as never);
    expect(html).toMatch(/<polyline class="curve" data-series="loss"/);
    expect(lineChart('L', [['a', [Infinity, 2, NaN, 4]]])).toMatch(/>2\.0<.*>4\.0</s);
  });

  it('a save fsyncs its temporary file before the rename and removes the ones that killed saves left behind', async () => {
    const path = join(dir, 'durable.safetensors');
    const name = 'durable.safetensors';
    const deadPid = 4_194_304 + 12_345; // above Linux's largest pid: never a live process
    const stale = [`${name}.tmp-${deadPid}-0a1b2c3d`, `${name}.tmp-${deadPid}-ffffffff`];
    const kept = [`${name}.tmp-${process.ppid}-0a1b2c3d`, `${name}.tmp-notours`, `other.safetensors.tmp-${deadPid}-0a1b2c3d`, `${name}.tmp-${deadPid}-0a1b2c3d.bak`];
    for (const f of [...stale, ...kept]) writeFileSync(join(dir, f), 'partial');
    fsCalls.length = 0;
    await rg.save(new rg.Linear(2, 2), path);
    const syncAt = fsCalls.findIndex((c) => /^sync .*durable\.safetensors\.tmp-/.test(c));
    const renameAt = fsCalls.findIndex((c) => /^rename .*durable\.safetensors\.tmp-/.test(c));
    expect(syncAt, fsCalls.join('; ')).toBeGreaterThanOrEqual(0);
    expect(renameAt).toBeGreaterThan(syncAt);
    const left = readdirSync(dir);
    for (const f of stale) expect(left, f).not.toContain(f);
    for (const f of kept) expect(left, f).toContain(f);
    expect(left.filter((f) => f.startsWith(`${name}.tmp-${process.pid}-`))).toEqual([]);
    expect(await rg.load(path)).toBeInstanceOf(rg.Linear);
  });
});
