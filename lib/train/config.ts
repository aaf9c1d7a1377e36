// `retrograd train <config.json>`: a model, its data (CSV streamed, JSON, or raw binary arrays), an optimizer
// and a loss described in JSON; trains with a progress bar and writes the model and the History.
//
// {
//   "model": { "type": "Sequential", "layers": [{ "type": "Linear", "args": [4, 16] }, { "type": "ReLU" }, …] },
//   "data": { "train": { "csv": "train.csv", "label": "y" },            (or { "json": "train.json" } with {x, y},
//             "validation": { "csv": "val.csv", "label": "y" } },          or { "x": "x.f32", "y": "y.i32", "features": 4 })
//   "optimizer": { "type": "Adam", "lr": 0.01 }, "loss": "CrossEntropyLoss", "metrics": ["accuracy"],
//   "epochs": 10, "batchSize": 32, "save": "model.safetensors", "history": "history.json", "seed": 1
// }
// The config is checked against its schema (lib/train/schema.ts; `retrograd train --schema` prints it) before
// anything is read: unknown keys and values of the wrong kind are errors naming the key and the closest valid name.
// "seed" seeds initialisation and shuffling (unset: the clock). "shuffle" (default true for data loaded whole)
// reshuffles every epoch; a streamed CSV is read in file order unless "shuffle": true with "shuffleBuffer": N
// draws from a bounded buffer of N rows (tf.data's approach).
// Paths are relative to the config file and must stay inside its folder (no `..` out of it, no absolute path
// elsewhere). Targets are int32 class indices for CrossEntropyLoss; for the other losses they are float32, and a
// single target per row is a column [N, 1], the shape of a model's one output.
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { currentBackend } from '../backend.js';
import { describe } from '../errors.js';
import { manualSeed } from '../random.js';
import { DataLoader, Dataset, readCSV, type Transform } from '../data/loader.js';
import { buildModule, save, type ModuleConfig } from '../io/model.js';
import { BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, MSELoss, type Loss } from '../losses.js';
import { Adagrad } from '../optim/adagrad.js';
import { Adam, AdamW } from '../optim/adam.js';
import { Adadelta, Adamax, NAdam, RAdam } from '../optim/adaptive.js';
import type { Optimizer } from '../optim/optimizer.js';
import { RMSprop } from '../optim/rmsprop.js';
import { SGD } from '../optim/sgd.js';
import type { Dashboard } from './dashboard.js';
import { checkSchema, trainConfigSchema } from './schema.js';
import { fromHost, type Tensor } from '../tensor.js';

type DataSpec = { csv?: string; label?: string | number; json?: string; x?: string; y?: string; features?: number };
interface TrainConfig {
  model: ModuleConfig;
  data: { train: DataSpec; validation?: DataSpec };
  optimizer?: { type?: string } & Record<string, unknown>;
  loss?: string;
  metrics?: 'accuracy'[];
  epochs?: number;
  batchSize?: number;
  shuffle?: boolean;
  shuffleBuffer?: number;
  autocast?: 'bfloat16' | false;
  save?: string;
  history?: string;
  seed?: number;
}

export const OPTIMIZERS: Record<string, new (p: never, o: never) => Optimizer<{ lr: number }>> = { SGD, Adam, AdamW, RMSprop, Adagrad, Adamax, Adadelta, NAdam, RAdam } as never;
export const LOSSES: Record<string, () => Loss> = {
  CrossEntropyLoss: () => new CrossEntropyLoss(), MSELoss: () => new MSELoss(), L1Loss: () => new L1Loss(), HuberLoss: () => new HuberLoss(),
  BCELoss: () => new BCELoss(), BCEWithLogitsLoss: () => new BCEWithLogitsLoss(),
};

type TargetDtype = 'int32' | 'float32';

/** A config path resolved against the config's folder, refused when it leads out of that folder. */
function confined(base: string, p: unknown, key: string, where: string): string {
  if (typeof p !== 'string' || p === '') throw new TypeError(`${where}: "${key}" must be a path (a string), got ${describe(p)}`);
  const full = resolve(base, p);
  const rel = relative(base, full);
  if (rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel))
    throw new RangeError(`${where}: "${key}" ('${p}') is outside the config's folder ${base}; paths in a config must stay inside it`);
  return full;
}

/** Every path a data spec names, checked; `key` is where the spec sits in the config ("data.train"). */
function dataPaths(spec: DataSpec, base: string, key: string, where: string): Partial<Record<'csv' | 'json' | 'x' | 'y', string>> {
  if (spec === null || typeof spec !== 'object') throw new TypeError(`${where}: "${key}" must be an object, got ${describe(spec)}`);
  const out: Partial<Record<'csv' | 'json' | 'x' | 'y', string>> = {};
  for (const k of ['csv', 'json', 'x', 'y'] as const) if (spec[k] !== undefined) out[k] = confined(base, spec[k], `${key}.${k}`, where);
  return out;
}

function finite(v: unknown, at: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new RangeError(`${at}: ${describe(v)} is not a finite number`);
  return v;
}

/** { x: rows, y: targets } from a JSON file, every row and target checked: equal lengths, finite numbers. */
function jsonTensors(d: unknown, file: string, dtype: TargetDtype, lossName: string): [Tensor, Tensor] {
  const b = currentBackend();
  const { x, y } = (d ?? {}) as { x?: unknown; y?: unknown };
  if (!Array.isArray(x) || !Array.isArray(y) || x.length !== y.length) throw new RangeError(`${file} must hold { x: rows, y: targets } of the same length`);
  if (x.length === 0) throw new RangeError(`${file}: x holds no rows`);
  const F = Array.isArray(x[0]) ? x[0].length : -1;
  const xs = new Float32Array(x.length * Math.max(F, 0));
  x.forEach((row, r) => {
    if (!Array.isArray(row)) throw new RangeError(`${file}: x row ${r} is ${describe(row)}, not an array of numbers`);
    if (row.length !== F) throw new RangeError(`${file}: x row ${r} has ${row.length} values, row 0 has ${F}`);
    row.forEach((v, c) => { xs[r * F + c] = finite(v, `${file}: x row ${r}, column ${c}`); });
  });
  let yt: Tensor;
  if (!Array.isArray(y[0])) {
    const ys = y.map((v, r) => {
      const n = finite(v, `${file}: y row ${r}`);
      if (dtype === 'int32' && !Number.isInteger(n)) throw new RangeError(`${file}: y row ${r}: ${n} is not a class index (${lossName} takes int32 targets)`);
      return n;
    });
    yt = dtype === 'int32' ? fromHost(b, Int32Array.from(ys), [y.length]) : fromHost(b, Float32Array.from(ys), [y.length, 1]);
  } else {
    if (dtype === 'int32') throw new RangeError(`${file}: y row 0 is an array; ${lossName} takes one class index per row`);
    const K = (y[0] as unknown[]).length;
    const ys = new Float32Array(y.length * K);
    y.forEach((row, r) => {
      if (!Array.isArray(row) || row.length !== K) throw new RangeError(`${file}: y row ${r} is ${describe(row)}, row 0 is an array of length ${K}`);
      row.forEach((v, c) => { ys[r * K + c] = finite(v, `${file}: y row ${r}, column ${c}`); });
    });
    yt = fromHost(b, ys, [y.length, K]);
  }
  return [fromHost(b, xs, [x.length, F]), yt];
}

/** The values of a raw little-endian binary file: a whole number of 4-byte values. */
function binaryValues<T extends Float32Array | Int32Array>(buf: Buffer, file: string, Kind: new (b: ArrayBuffer) => T): T {
  if (buf.byteLength % 4 !== 0) throw new RangeError(`${file} holds ${buf.byteLength} bytes, not a whole number of 4-byte values`);
  return new Kind(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer);
}

/** For float32 targets, a row's single target as a one-value vector: batches of [B, 1]. */
function columnTarget(dtype: TargetDtype): Transform | undefined {
  return dtype === 'float32' ? (s) => ({ x: s.x, y: typeof s.y === 'number' ? [s.y] : s.y }) : undefined;
}

async function loadTensors(spec: DataSpec, paths: ReturnType<typeof dataPaths>, dtype: TargetDtype, lossName: string, where: string): Promise<[Tensor, Tensor]> {
  const b = currentBackend();
  if (paths.json) return jsonTensors(JSON.parse(await readFile(paths.json, 'utf8')), `${where}: ${spec.json}`, dtype, lossName);
  if (paths.x && paths.y) {
    const F = spec.features;
    if (!Number.isSafeInteger(F) || F! < 1) throw new TypeError(`${where}: binary data needs "features" (values per row, a positive integer), got ${describe(F)}`);
    const x = binaryValues(await readFile(paths.x), `${where}: ${spec.x}`, Float32Array);
    if (x.length % F! !== 0) throw new RangeError(`${where}: ${spec.x} holds ${x.length} float32 values, not a whole number of rows of ${F} features`);
    const n = x.length / F!;
    if (n === 0) throw new RangeError(`${where}: ${spec.x} holds no rows`);
    const yArr = spec.y!.endsWith('.i32') ? binaryValues(await readFile(paths.y), `${where}: ${spec.y}`, Int32Array) : binaryValues(await readFile(paths.y), `${where}: ${spec.y}`, Float32Array);
    if (yArr.length === 0 || yArr.length % n !== 0) throw new RangeError(`${where}: ${spec.y} holds ${yArr.length} targets for the ${n} rows of ${spec.x}`);
    return [fromHost(b, x, [n, F!]), fromHost(b, yArr, yArr.length === n && dtype === 'int32' ? [n] : [n, yArr.length / n])];
  }
  if (paths.csv) {
    const ds = await Dataset.fromCSV(paths.csv, { label: spec.label ?? 0, transform: columnTarget(dtype) });
    if (ds.length === 0) throw new RangeError(`${where}: ${spec.csv} holds no rows`);
    for await (const { x, y } of new DataLoader(ds, { batchSize: ds.length, targetDtype: dtype })) return [x, y];
  }
  throw new TypeError(`${where}: data must give "csv", "json", or binary "x" and "y" files, got ${describe(spec)}`);
}

/** The config's JSON Schema, with the optimizers and losses this version knows. */
export function configSchema(): ReturnType<typeof trainConfigSchema> {
  return trainConfigSchema(Object.keys(OPTIMIZERS), Object.keys(LOSSES));
}

/**
 * Trains the model a config describes (see the file's header). `options.dashboard`: a {@link Dashboard} that watches
 * the run (`retrograd train --dashboard`).
 */
export async function trainFromConfig(path: string, options: { dashboard?: Dashboard } = {}): Promise<void> {
  const base = dirname(resolve(path));
  const where = `retrograd train ${path}`;
  let config: TrainConfig;
  try {
    config = JSON.parse(await readFile(path, 'utf8')) as TrainConfig;
  } catch (e) {
    if (e instanceof SyntaxError) throw new SyntaxError(`${where}: not valid JSON (${e.message})`);
    throw e;
  }
  if (config === null || typeof config !== 'object' || Array.isArray(config)) throw new TypeError(`${where}: the config must be a JSON object, got ${describe(config)}`);
  checkSchema(where, config, configSchema());
  const streamed = config.data.train.csv !== undefined;
  if (streamed && config.shuffle === true && config.shuffleBuffer === undefined)
    throw new RangeError(`${where}: "shuffle": true on a streamed CSV needs "shuffleBuffer", the number of rows held to draw from (e.g. 10000; as many as the file's rows for a full shuffle)`);
  if (config.shuffleBuffer !== undefined && !(streamed && config.shuffle === true))
    throw new RangeError(`${where}: "shuffleBuffer" is for "shuffle": true on a streamed CSV ("data.train.csv")`);
  if (config.seed !== undefined) manualSeed(config.seed);
  // every path is checked before anything is built, read or trained
  const trainPaths = dataPaths(config.data.train, base, 'data.train', where);
  const validationPaths = config.data.validation === undefined ? undefined : dataPaths(config.data.validation, base, 'data.validation', where);
  const savePath = config.save === undefined ? undefined : confined(base, config.save, 'save', where);
  const historyPath = config.history === undefined ? undefined : confined(base, config.history, 'history', where);
  const model = buildModule(config.model, where);
  const { type: optType = 'Adam', ...optOptions } = config.optimizer ?? {};
  const Opt = Object.hasOwn(OPTIMIZERS, optType) ? OPTIMIZERS[optType] : undefined;
  if (!Opt) throw new RangeError(`${where}: unknown optimizer '${optType}'; known: ${Object.keys(OPTIMIZERS).join(', ')}`);
  const lossName = config.loss ?? 'CrossEntropyLoss';
  const makeLoss = Object.hasOwn(LOSSES, lossName) ? LOSSES[lossName] : undefined;
  if (!makeLoss) throw new RangeError(`${where}: unknown loss '${config.loss}'; known: ${Object.keys(LOSSES).join(', ')}`);
  // the targets' dtype follows the loss, for every batch alike
  const targetDtype: TargetDtype = lossName === 'CrossEntropyLoss' ? 'int32' : 'float32';
  model.compile({ optimizer: new Opt(model.parameters() as never, optOptions as never), loss: makeLoss(), metrics: config.metrics ?? [] });
  const fitOptions = {
    epochs: config.epochs ?? 10, batchSize: config.batchSize ?? 32, autocast: config.autocast ?? false, callbacks: options.dashboard ? [options.dashboard] : [],
    validationData: config.data.validation && validationPaths ? await loadTensors(config.data.validation, validationPaths, targetDtype, lossName, where) : undefined,
  };
  const train = config.data.train;
  const history = trainPaths.csv
    // CSV training data streams through a DataLoader: never loaded whole
    ? await model.fit(new DataLoader(readCSV(trainPaths.csv, { label: train.label ?? 0, transform: columnTarget(targetDtype) }), { batchSize: fitOptions.batchSize, targetDtype, shuffle: config.shuffle ?? false, shuffleBuffer: config.shuffleBuffer }), fitOptions)
    : await model.fit(...(await loadTensors(train, trainPaths, targetDtype, lossName, where)), { ...fitOptions, shuffle: config.shuffle ?? true });
  if (savePath) {
    await save(model, savePath);
    console.log(`model saved to ${config.save}`);
  }
  if (historyPath) {
    await writeFile(historyPath, JSON.stringify(history));
    console.log(`history written to ${config.history} (retrograd report ${config.history} draws it)`);
  }
}
