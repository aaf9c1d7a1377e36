// rg.save / rg.load: a model's weights as safetensors under PyTorch's state-dict names, its architecture as
// JSON in the file's __metadata__ (so one file travels, and any safetensors reader sees plain tensors).
// rg.saveCheckpoint / rg.loadCheckpoint add the optimizer's and scheduler's state, the epoch and the random
// generator's state, so that training resumes exactly where it stopped. Writes are atomic: a temporary file
// in the same folder, then a rename.
import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { currentBackend } from '../backend.js';
import { describe, RetrogradError } from '../errors.js';
import { GELU, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh } from '../nn/activation.js';
import { BatchNorm1d, BatchNorm2d, type BatchNormOptions } from '../nn/batchnorm.js';
import { Conv2d, type Conv2dOptions } from '../nn/conv.js';
import { MultiheadAttention, PositionalEmbedding, TransformerBlock } from '../nn/attention.js';
import { Embedding } from '../nn/embedding.js';
import { LayerNorm, type LayerNormOptions } from '../nn/layernorm.js';
import { Linear } from '../nn/linear.js';
import { Module } from '../nn/module.js';
import { AdaptiveAvgPool2d, AvgPool2d, GlobalAvgPool2d, MaxPool2d, type AvgPool2dOptions, type MaxPool2dOptions } from '../nn/pool.js';
import { GRU, LSTM, RNN } from '../nn/rnn.js';
import { Sequential } from '../nn/sequential.js';
import { Dropout, Flatten } from '../nn/shape.js';
import { Optimizer, type OptimizerStateDict } from '../optim/optimizer.js';
import { getRngState, setRngState, type RngState } from '../random.js';
import { fromHost, Tensor } from '../tensor.js';
import { decodeSafetensors, encodeSafetensors, type StTensor } from './safetensors.js';

export type ModuleConfig = { type: string; args?: unknown[]; layers?: ModuleConfig[] };

type Entry = { cls: abstract new (...a: never[]) => Module; args(m: Module): unknown[]; make(args: unknown[]): Module };
const ENTRIES: Record<string, Entry> = {
  Linear: {
    cls: Linear,
    args: (m) => { const l = m as Linear; return [l.inFeatures, l.outFeatures, { bias: l.bias !== null }]; },
    make: (a) => new Linear(a[0] as number, a[1] as number, a[2] as { bias: boolean }),
  },
  ReLU: { cls: ReLU, args: () => [], make: () => new ReLU() },
  LeakyReLU: { cls: LeakyReLU, args: (m) => [(m as LeakyReLU).negativeSlope], make: (a) => new LeakyReLU(a[0] as number) },
  Sigmoid: { cls: Sigmoid, args: () => [], make: () => new Sigmoid() },
  Tanh: { cls: Tanh, args: () => [], make: () => new Tanh() },
  GELU: { cls: GELU, args: () => [], make: () => new GELU() },
  Softmax: { cls: Softmax, args: () => [], make: () => new Softmax() },
  Flatten: { cls: Flatten, args: () => [], make: () => new Flatten() },
  Dropout: { cls: Dropout, args: (m) => [(m as Dropout).p], make: (a) => new Dropout(a[0] as number) },
  Conv2d: {
    cls: Conv2d,
    args: (m) => {
      const c = m as Conv2d;
      return [c.inChannels, c.outChannels, c.kernelSize, { stride: c.stride, padding: c.padding, dilation: c.dilation, bias: c.bias !== null }];
    },
    make: (a) => new Conv2d(a[0] as number, a[1] as number, a[2] as [number, number], a[3] as Conv2dOptions),
  },
  MaxPool2d: {
    cls: MaxPool2d,
    args: (m) => { const p = m as MaxPool2d; return [p.kernelSize, { stride: p.stride, padding: p.padding }]; },
    make: (a) => new MaxPool2d(a[0] as [number, number], a[1] as MaxPool2dOptions),
  },
  AvgPool2d: {
    cls: AvgPool2d,
    args: (m) => { const p = m as AvgPool2d; return [p.kernelSize, { stride: p.stride, padding: p.padding, countIncludePad: p.countIncludePad }]; },
    make: (a) => new AvgPool2d(a[0] as [number, number], a[1] as AvgPool2dOptions),
  },
  GlobalAvgPool2d: { cls: GlobalAvgPool2d, args: () => [], make: () => new GlobalAvgPool2d() },
  AdaptiveAvgPool2d: { cls: AdaptiveAvgPool2d, args: (m) => [(m as AdaptiveAvgPool2d).outputSize], make: (a) => new AdaptiveAvgPool2d(a[0] as [number, number]) },
  BatchNorm1d: { cls: BatchNorm1d, args: (m) => batchNormArgs(m as BatchNorm1d), make: (a) => new BatchNorm1d(a[0] as number, a[1] as BatchNormOptions) },
  BatchNorm2d: { cls: BatchNorm2d, args: (m) => batchNormArgs(m as BatchNorm2d), make: (a) => new BatchNorm2d(a[0] as number, a[1] as BatchNormOptions) },
  Embedding: {
    cls: Embedding,
    args: (m) => [(m as Embedding).numEmbeddings, (m as Embedding).embeddingDim],
    make: (a) => new Embedding(a[0] as number, a[1] as number),
  },
  LayerNorm: {
    cls: LayerNorm,
    args: (m) => { const l = m as LayerNorm; return [l.normalizedShape.length === 1 ? l.normalizedShape[0] : [...l.normalizedShape], { eps: l.eps, elementwiseAffine: l.elementwiseAffine }]; },
    make: (a) => new LayerNorm(a[0] as number | number[], a[1] as LayerNormOptions),
  },
  RNN: {
    cls: RNN,
    args: (m) => { const r = m as RNN; return [r.inputSize, r.hiddenSize, { ...recurrentOptions(r), nonlinearity: r.nonlinearity }]; },
    make: (a) => new RNN(a[0] as number, a[1] as number, a[2] as object),
  },
  LSTM: { cls: LSTM, args: (m) => recurrentArgs(m as LSTM), make: (a) => new LSTM(a[0] as number, a[1] as number, a[2] as object) },
  GRU: { cls: GRU, args: (m) => recurrentArgs(m as GRU), make: (a) => new GRU(a[0] as number, a[1] as number, a[2] as object) },
  MultiheadAttention: {
    cls: MultiheadAttention,
    args: (m) => { const l = m as MultiheadAttention; return [l.embedDim, l.numHeads, { causal: l.causal }]; },
    make: (a) => new MultiheadAttention(a[0] as number, a[1] as number, a[2] as object),
  },
  TransformerBlock: {
    cls: TransformerBlock,
    args: (m) => { const l = m as TransformerBlock; return [l.embedDim, l.numHeads, { mlpRatio: l.mlpRatio, causal: l.causal, eps: l.eps }]; },
    make: (a) => new TransformerBlock(a[0] as number, a[1] as number, a[2] as object),
  },
  PositionalEmbedding: {
    cls: PositionalEmbedding,
    args: (m) => [(m as PositionalEmbedding).maxLen, (m as PositionalEmbedding).embeddingDim],
    make: (a) => new PositionalEmbedding(a[0] as number, a[1] as number),
  },
};

function recurrentOptions(m: RNN | LSTM | GRU): object {
  return { batchFirst: m.batchFirst, numLayers: m.numLayers, bias: m.bias };
}
function recurrentArgs(m: LSTM | GRU): unknown[] {
  return [m.inputSize, m.hiddenSize, recurrentOptions(m)];
}

function batchNormArgs(m: BatchNorm1d | BatchNorm2d): unknown[] {
  return [m.numFeatures, { eps: m.eps, momentum: m.momentum, affine: m.affine, trackRunningStats: m.trackRunningStats }];
}

/** The architecture of a model built from retrograd's layers, as JSON-ready data. */
export function moduleConfig(m: Module): ModuleConfig {
  if (m.constructor === Sequential) return { type: 'Sequential', layers: (m as Sequential).layers.map(moduleConfig) };
  const name = m.constructor.name;
  const entry = ENTRIES[name];
  if (!entry || m.constructor !== entry.cls)
    throw new TypeError(`save: cannot describe a ${name}: the architecture of a model saves only retrograd's own layers (${['Sequential', ...Object.keys(ENTRIES)].join(', ')})`);
  return { type: name, args: entry.args(m) };
}

/** Builds a model from moduleConfig's output, on the current backend. */
export function buildModule(c: ModuleConfig, where = 'load'): Module {
  if (c === null || typeof c !== 'object' || typeof c.type !== 'string') throw new RetrogradError(`${where}: invalid architecture entry ${describe(c)}`, 'INVALID_ARGUMENT');
  if (c.type === 'Sequential') {
    if (!Array.isArray(c.layers)) throw new RetrogradError(`${where}: Sequential without layers`, 'INVALID_ARGUMENT');
    return new Sequential(c.layers.map((l) => buildModule(l, where)));
  }
  const entry = ENTRIES[c.type];
  if (!entry) throw new RetrogradError(`${where}: unknown layer type '${c.type}'`, 'INVALID_ARGUMENT');
  return entry.make(Array.isArray(c.args) ? c.args : []);
}

function hostTensor(t: Tensor): StTensor {
  const data = t.toArray();
  return { dtype: data instanceof Int32Array ? 'I32' : 'F32', shape: [...t.shape], data };
}

async function writeAtomic(path: string, data: Buffer): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

async function readSafetensors(path: string, where: string) {
  if (typeof path !== 'string') throw new TypeError(`${where}: path must be a string, got ${describe(path)}`);
  return decodeSafetensors(await readFile(path), path);
}

function stateToTensors(sd: Record<string, StTensor>): Record<string, Tensor> {
  const b = currentBackend();
  return Object.fromEntries(Object.entries(sd).map(([k, t]) => [k, fromHost(b, t.data, t.shape)]));
}

function parseJson<T>(text: string | undefined, what: string, path: string): T {
  if (text === undefined) throw new RetrogradError(`${path}: the file has no ${what} (not written by rg.save / rg.saveCheckpoint?)`, 'INVALID_ARGUMENT');
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new RetrogradError(`${path}: its ${what} is not valid JSON`, 'INVALID_ARGUMENT');
  }
}

/** The tensors of any safetensors file (for instance one written from PyTorch's state_dict), on the current
 * backend, ready for module.loadStateDict. */
export async function loadSafetensors(path: string): Promise<Record<string, Tensor>> {
  return stateToTensors((await readSafetensors(path, 'loadSafetensors')).tensors);
}

/** Writes the model's weights (safetensors, PyTorch names) and architecture to `path`. */
export async function save(model: Module, path: string): Promise<void> {
  if (!(model instanceof Module)) throw new TypeError(`save: expected a Module, got ${describe(model)}`);
  if (typeof path !== 'string') throw new TypeError(`save: path must be a string, got ${describe(path)}`);
  const arch = moduleConfig(model);
  const tensors = Object.fromEntries(Object.entries(model.stateDict()).map(([k, t]) => [k, hostTensor(t)]));
  await writeAtomic(path, encodeSafetensors(tensors, { format: 'retrograd', architecture: JSON.stringify(arch) }));
}

/** Reads a model written by rg.save: rebuilds it on the current backend and loads its weights. */
export async function load(path: string): Promise<Module> {
  const { tensors, metadata } = await readSafetensors(path, 'load');
  const model = buildModule(parseJson<ModuleConfig>(metadata.architecture, 'architecture', path));
  model.loadStateDict(stateToTensors(tensors));
  return model;
}

interface Stateful {
  stateDict(): Record<string, unknown>;
  loadStateDict(sd: Record<string, unknown>): void;
}

export interface CheckpointParts {
  model: Module;
  optimizer?: Optimizer<{ lr: number }>;
  scheduler?: Stateful;
  epoch?: number;
}

/** Writes model, optimizer and scheduler state, the epoch and the random generator's state to `path`. */
export async function saveCheckpoint(path: string, parts: CheckpointParts): Promise<void> {
  if (!parts || !(parts.model instanceof Module)) throw new TypeError('saveCheckpoint: expected { model, optimizer?, scheduler?, epoch? }');
  const tensors: Record<string, StTensor> = {};
  for (const [k, t] of Object.entries(parts.model.stateDict())) tensors[`model.${k}`] = hostTensor(t);
  let optimizer: unknown;
  if (parts.optimizer) {
    const sd = parts.optimizer.stateDict();
    const scalars: Record<string, Record<string, number>> = {};
    for (const [i, entry] of Object.entries(sd.state)) {
      for (const [name, v] of Object.entries(entry)) {
        if (typeof v === 'number') (scalars[i] ??= {})[name] = v;
        else tensors[`optimizer.state.${i}.${name}`] = { dtype: 'F32', shape: [v.length], data: v };
      }
    }
    optimizer = { type: parts.optimizer.constructor.name, param_groups: sd.param_groups, scalars };
  }
  const metadata: Record<string, string> = {
    format: 'retrograd-checkpoint',
    architecture: JSON.stringify(moduleConfig(parts.model)),
    epoch: JSON.stringify(parts.epoch ?? null),
    rng: JSON.stringify(getRngState()),
  };
  if (optimizer) metadata.optimizer = JSON.stringify(optimizer);
  if (parts.scheduler) metadata.scheduler = JSON.stringify(parts.scheduler.stateDict());
  await writeAtomic(path, encodeSafetensors(tensors, metadata));
}

export interface LoadedCheckpoint {
  model: Module;
  epoch: number | null;
  optimizer?: OptimizerStateDict;
  scheduler?: Record<string, unknown>;
  rng: RngState;
}

/**
 * Reads a checkpoint. With `into`, loads the state into the given model / optimizer / scheduler (the model
 * is otherwise rebuilt from the architecture); the random generator is restored unless restoreRng is false.
 */
export async function loadCheckpoint(
  path: string,
  into: { model?: Module; optimizer?: Optimizer<{ lr: number }>; scheduler?: Stateful; restoreRng?: boolean } = {},
): Promise<LoadedCheckpoint> {
  const { tensors, metadata } = await readSafetensors(path, 'loadCheckpoint');
  if (metadata.format !== 'retrograd-checkpoint') throw new RetrogradError(`${path}: not a retrograd checkpoint (format ${JSON.stringify(metadata.format)})`, 'INVALID_ARGUMENT');
  const model = into.model ?? buildModule(parseJson<ModuleConfig>(metadata.architecture, 'architecture', path), 'loadCheckpoint');
  const modelState: Record<string, StTensor> = {};
  for (const [k, t] of Object.entries(tensors)) if (k.startsWith('model.')) modelState[k.slice(6)] = t;
  model.loadStateDict(stateToTensors(modelState));
  const out: LoadedCheckpoint = { model, epoch: parseJson<number | null>(metadata.epoch, 'epoch', path), rng: parseJson<RngState>(metadata.rng, 'random state', path) };
  if (metadata.optimizer) {
    const o = parseJson<{ param_groups: Record<string, unknown>[]; scalars: Record<string, Record<string, number>> }>(metadata.optimizer, 'optimizer state', path);
    const state: OptimizerStateDict['state'] = {};
    for (const [i, s] of Object.entries(o.scalars ?? {})) state[Number(i)] = { ...s };
    for (const [k, t] of Object.entries(tensors)) {
      const m = /^optimizer\.state\.(\d+)\.(.+)$/.exec(k);
      if (m) (state[Number(m[1])] ??= {})[m[2]] = t.data as Float32Array;
    }
    out.optimizer = { state, param_groups: o.param_groups };
    into.optimizer?.loadStateDict(out.optimizer);
  }
  if (metadata.scheduler) {
    out.scheduler = parseJson<Record<string, unknown>>(metadata.scheduler, 'scheduler state', path);
    into.scheduler?.loadStateDict(out.scheduler);
  }
  if (into.restoreRng ?? true) setRngState(out.rng);
  return out;
}
