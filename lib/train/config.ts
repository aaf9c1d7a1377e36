// `retrograd train <config.json>`: a model, its data (CSV streamed, JSON, or raw binary arrays), an optimizer
// and a loss described in JSON; trains with a progress bar and writes the model and the History.
//
// {
//   "model": { "type": "Sequential", "layers": [{ "type": "Linear", "args": [4, 16] }, { "type": "ReLU" }, …] },
//   "data": { "train": { "csv": "train.csv", "label": "y" },            (or { "json": "train.json" } with {x, y},
//             "validation": { "csv": "val.csv", "label": "y" } },          or { "x": "x.f32", "y": "y.i32", "features": 4 })
//   "optimizer": { "type": "Adam", "lr": 0.01 }, "loss": "CrossEntropyLoss", "metrics": ["accuracy"],
//   "epochs": 10, "batchSize": 32, "save": "model.safetensors", "history": "history.json"
// }
// Paths are relative to the config file.
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { currentBackend } from '../backend.js';
import { describe } from '../errors.js';
import { DataLoader, Dataset, readCSV } from '../data/loader.js';
import { buildModule, save, type ModuleConfig } from '../io/model.js';
import { BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, MSELoss, type Loss } from '../losses.js';
import { Adagrad } from '../optim/adagrad.js';
import { Adam, AdamW } from '../optim/adam.js';
import { Adadelta, Adamax, NAdam, RAdam } from '../optim/adaptive.js';
import type { Optimizer } from '../optim/optimizer.js';
import { RMSprop } from '../optim/rmsprop.js';
import { SGD } from '../optim/sgd.js';
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
  save?: string;
  history?: string;
}

const OPTIMIZERS: Record<string, new (p: never, o: never) => Optimizer<{ lr: number }>> = { SGD, Adam, AdamW, RMSprop, Adagrad, Adamax, Adadelta, NAdam, RAdam } as never;
const LOSSES: Record<string, () => Loss> = {
  CrossEntropyLoss: () => new CrossEntropyLoss(), MSELoss: () => new MSELoss(), L1Loss: () => new L1Loss(), HuberLoss: () => new HuberLoss(),
  BCELoss: () => new BCELoss(), BCEWithLogitsLoss: () => new BCEWithLogitsLoss(),
};

async function loadTensors(spec: DataSpec, base: string, where: string): Promise<[Tensor, Tensor]> {
  const b = currentBackend();
  if (spec.json) {
    const d = JSON.parse(await readFile(resolve(base, spec.json), 'utf8')) as { x: number[][]; y: (number | number[])[] };
    if (!Array.isArray(d.x) || !Array.isArray(d.y) || d.x.length !== d.y.length) throw new RangeError(`${where}: ${spec.json} must hold { x: rows, y: targets } of the same length`);
    const F = d.x[0]?.length ?? 0;
    const y = typeof d.y[0] === 'number' && (d.y as number[]).every(Number.isInteger)
      ? fromHost(b, Int32Array.from(d.y as number[]), [d.y.length])
      : fromHost(b, Float32Array.from((d.y as (number | number[])[]).flat()), typeof d.y[0] === 'number' ? [d.y.length] : [d.y.length, (d.y[0] as number[]).length]);
    return [fromHost(b, Float32Array.from(d.x.flat()), [d.x.length, F]), y];
  }
  if (spec.x && spec.y) {
    const xs = await readFile(resolve(base, spec.x)), ys = await readFile(resolve(base, spec.y));
    const F = spec.features;
    if (!F || !Number.isInteger(F)) throw new TypeError(`${where}: binary data needs "features" (values per row)`);
    const x = new Float32Array(xs.buffer.slice(xs.byteOffset, xs.byteOffset + xs.byteLength));
    const n = x.length / F;
    const yArr = spec.y.endsWith('.i32') ? new Int32Array(ys.buffer.slice(ys.byteOffset, ys.byteOffset + ys.byteLength)) : new Float32Array(ys.buffer.slice(ys.byteOffset, ys.byteOffset + ys.byteLength));
    return [fromHost(b, x, [n, F]), fromHost(b, yArr, yArr.length === n ? [n] : [n, yArr.length / n])];
  }
  if (spec.csv) {
    const ds = await Dataset.fromCSV(resolve(base, spec.csv), { label: spec.label ?? 0 });
    for await (const { x, y } of new DataLoader(ds, { batchSize: Math.max(1, ds.length) })) return [x, y];
  }
  throw new TypeError(`${where}: data must give "csv", "json", or binary "x" and "y" files, got ${describe(spec)}`);
}

export async function trainFromConfig(path: string): Promise<void> {
  const base = dirname(resolve(path));
  const config = JSON.parse(await readFile(path, 'utf8')) as TrainConfig;
  const where = `retrograd train ${path}`;
  if (!config.model || !config.data?.train) throw new TypeError(`${where}: the config needs "model" and "data": { "train": … }`);
  const model = buildModule(config.model, where);
  const { type: optType = 'Adam', ...optOptions } = config.optimizer ?? {};
  const Opt = OPTIMIZERS[optType];
  if (!Opt) throw new RangeError(`${where}: unknown optimizer '${optType}'; known: ${Object.keys(OPTIMIZERS).join(', ')}`);
  const makeLoss = LOSSES[config.loss ?? 'CrossEntropyLoss'];
  if (!makeLoss) throw new RangeError(`${where}: unknown loss '${config.loss}'; known: ${Object.keys(LOSSES).join(', ')}`);
  model.compile({ optimizer: new Opt(model.parameters() as never, optOptions as never), loss: makeLoss(), metrics: config.metrics ?? [] });
  const fitOptions = {
    epochs: config.epochs ?? 10, batchSize: config.batchSize ?? 32,
    validationData: config.data.validation ? await loadTensors(config.data.validation, base, where) : undefined,
  };
  const train = config.data.train;
  const history = train.csv
    // CSV training data streams through a DataLoader: never loaded whole
    ? await model.fit(new DataLoader(readCSV(resolve(base, train.csv), { label: train.label ?? 0 }), { batchSize: fitOptions.batchSize }), fitOptions)
    : await model.fit(...(await loadTensors(train, base, where)), { ...fitOptions, shuffle: config.shuffle ?? true });
  if (config.save) {
    await save(model, resolve(base, config.save));
    console.log(`model saved to ${config.save}`);
  }
  if (config.history) {
    await writeFile(resolve(base, config.history), JSON.stringify(history));
    console.log(`history written to ${config.history} (retrograd report ${config.history} draws it)`);
  }
}
