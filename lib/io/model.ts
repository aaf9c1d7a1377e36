// rg.save / rg.load: a model's weights as safetensors under PyTorch's state-dict names, its architecture as
// JSON in the file's __metadata__ (so one file travels, and any safetensors reader sees plain tensors).
// rg.saveCheckpoint / rg.loadCheckpoint add the optimizer's and scheduler's state, the epoch and the random
// generator's state, so that training resumes exactly where it stopped. Writes are atomic: a temporary file
// in the same folder, fsynced, then a rename.
import { randomBytes } from 'node:crypto';
import { open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { currentBackend } from '../backend.js';
import { describe, RetrogradError } from '../errors.js';
import { GELU, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh } from '../nn/activation.js';
import { BatchNorm1d, BatchNorm2d, type BatchNormOptions } from '../nn/batchnorm.js';
import { Conv1d, Conv2d, ConvTranspose2d, type Conv1dOptions, type Conv2dOptions, type ConvTranspose2dOptions } from '../nn/conv.js';
import { GroupNorm, type GroupNormOptions } from '../nn/normalization.js';
import { Upsample, type UpsampleOptions } from '../nn/sampling.js';
import { MultiheadAttention, PositionalEmbedding, TransformerBlock } from '../nn/attention.js';
import { Embedding } from '../nn/embedding.js';
import { LayerNorm, type LayerNormOptions } from '../nn/layernorm.js';
import { Linear } from '../nn/linear.js';
import { Module } from '../nn/module.js';
import { AdaptiveAvgPool2d, AvgPool2d, GlobalAvgPool2d, MaxPool2d, type AvgPool2dOptions, type MaxPool2dOptions } from '../nn/pool.js';
import { GRU, LSTM, RNN } from '../nn/rnn.js';
import { Sequential } from '../nn/sequential.js';
import { Dropout, Dropout2d, Flatten, Identity } from '../nn/shape.js';
import { Optimizer, type OptimizerStateDict } from '../optim/optimizer.js';
import { checkRngState, getRngState, setRngState, type RngState } from '../random.js';
import { fromHost, Tensor } from '../tensor.js';
import { encodeSafetensors, readSafetensorsFile, toBfloat16, type StTensor, type StWritable } from './safetensors.js';

/** A model's architecture as JSON-ready data, as rg.save stores it: the layer's class and constructor arguments. */
export type ModuleConfig = {
  /** The class name: 'Linear', 'Conv2d', 'Sequential', …. */
  type: string;
  /** The constructor's arguments (options objects included). */
  args?: unknown[];
  /** A Sequential's layers. */
  layers?: ModuleConfig[];
};

/** A tensor a layer holds, by state-dict name: what a file must store for it. */
type StateSpec = [name: string, shape: number[], dtype: 'float32' | 'int32'];
type Entry = {
  cls: abstract new (...a: never[]) => Module;
  args(m: Module): unknown[];
  make(args: unknown[]): Module;
  /** The tensors `make(args)` would hold, computed without building it; undefined when the arguments are not
   * valid (the constructor then says why). Checked against every layer by test/hostile-inputs.test.ts. */
  state?(args: unknown[]): StateSpec[] | undefined;
};
const ENTRIES: Record<string, Entry> = {
  Linear: {
    cls: Linear,
    args: (m) => { const l = m as Linear; return [l.inFeatures, l.outFeatures, { bias: l.bias !== null }]; },
    make: (a) => new Linear(a[0] as number, a[1] as number, a[2] as { bias: boolean }),
    state: (a) => {
      const [i, o, bias] = [dim(a[0]), dim(a[1]), flag(option(a[2], 'bias'), true)];
      return i && o && bias !== undefined ? linearState('', i, o, bias) : undefined;
    },
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
    state: (a) => {
      const [i, o, bias] = [dim(a[0]), dim(a[1]), flag(option(a[3], 'bias'), true)];
      const k = typeof a[2] === 'number' ? [dim(a[2]), dim(a[2])] : Array.isArray(a[2]) && a[2].length === 2 ? a[2].map(dim) : [];
      if (!i || !o || bias === undefined || k.length !== 2 || !k[0] || !k[1]) return undefined;
      return [['weight', [o, i, k[0], k[1]], 'float32'], ...(bias ? [['bias', [o], 'float32'] as StateSpec] : [])];
    },
  },
  ConvTranspose2d: {
    cls: ConvTranspose2d,
    args: (m) => {
      const c = m as ConvTranspose2d;
      return [c.inChannels, c.outChannels, c.kernelSize, { stride: c.stride, padding: c.padding, outputPadding: c.outputPadding, dilation: c.dilation, bias: c.bias !== null }];
    },
    make: (a) => new ConvTranspose2d(a[0] as number, a[1] as number, a[2] as [number, number], a[3] as ConvTranspose2dOptions),
    state: (a) => {
      const [i, o, bias] = [dim(a[0]), dim(a[1]), flag(option(a[3], 'bias'), true)];
      const k = typeof a[2] === 'number' ? [dim(a[2]), dim(a[2])] : Array.isArray(a[2]) && a[2].length === 2 ? a[2].map(dim) : [];
      if (!i || !o || bias === undefined || k.length !== 2 || !k[0] || !k[1]) return undefined;
      return [['weight', [i, o, k[0], k[1]], 'float32'], ...(bias ? [['bias', [o], 'float32'] as StateSpec] : [])];
    },
  },
  Conv1d: {
    cls: Conv1d,
    args: (m) => {
      const c = m as Conv1d;
      return [c.inChannels, c.outChannels, c.kernelSize, { stride: c.stride, padding: c.padding, dilation: c.dilation, bias: c.bias !== null }];
    },
    make: (a) => new Conv1d(a[0] as number, a[1] as number, a[2] as number, a[3] as Conv1dOptions),
    state: (a) => {
      const [i, o, k, bias] = [dim(a[0]), dim(a[1]), dim(Array.isArray(a[2]) && a[2].length === 1 ? a[2][0] : a[2]), flag(option(a[3], 'bias'), true)];
      if (!i || !o || !k || bias === undefined) return undefined;
      return [['weight', [o, i, k], 'float32'], ...(bias ? [['bias', [o], 'float32'] as StateSpec] : [])];
    },
  },
  Upsample: {
    cls: Upsample,
    args: (m) => {
      const u = m as Upsample;
      return [{ ...(u.size ? { size: [...u.size] } : { scaleFactor: [...u.scaleFactor!] }), mode: u.mode, ...(u.mode === 'bilinear' ? { alignCorners: u.alignCorners } : {}) }];
    },
    make: (a) => new Upsample(a[0] as UpsampleOptions),
  },
  GroupNorm: {
    cls: GroupNorm,
    args: (m) => { const g = m as GroupNorm; return [g.numGroups, g.numChannels, { eps: g.eps, affine: g.affine }]; },
    make: (a) => new GroupNorm(a[0] as number, a[1] as number, a[2] as GroupNormOptions),
    state: (a) => {
      const [c, affine] = [dim(a[1]), flag(option(a[2], 'affine'), true)];
      if (!dim(a[0]) || !c || affine === undefined) return undefined;
      return affine ? [['weight', [c], 'float32'], ['bias', [c], 'float32']] : [];
    },
  },
  Identity: { cls: Identity, args: () => [], make: () => new Identity() },
  Dropout2d: { cls: Dropout2d, args: (m) => [(m as Dropout2d).p], make: (a) => new Dropout2d(a[0] as number) },
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
  BatchNorm1d: { cls: BatchNorm1d, args: (m) => batchNormArgs(m as BatchNorm1d), make: (a) => new BatchNorm1d(a[0] as number, a[1] as BatchNormOptions), state: batchNormState },
  BatchNorm2d: { cls: BatchNorm2d, args: (m) => batchNormArgs(m as BatchNorm2d), make: (a) => new BatchNorm2d(a[0] as number, a[1] as BatchNormOptions), state: batchNormState },
  Embedding: {
    cls: Embedding,
    args: (m) => [(m as Embedding).numEmbeddings, (m as Embedding).embeddingDim],
    make: (a) => new Embedding(a[0] as number, a[1] as number),
    state: tableState,
  },
  LayerNorm: {
    cls: LayerNorm,
    args: (m) => { const l = m as LayerNorm; return [l.normalizedShape.length === 1 ? l.normalizedShape[0] : [...l.normalizedShape], { eps: l.eps, elementwiseAffine: l.elementwiseAffine }]; },
    make: (a) => new LayerNorm(a[0] as number | number[], a[1] as LayerNormOptions),
    state: (a) => {
      const shape = typeof a[0] === 'number' ? [dim(a[0])] : Array.isArray(a[0]) && a[0].length > 0 ? a[0].map(dim) : [];
      const affine = flag(option(a[1], 'elementwiseAffine'), true);
      if (!shape.length || !shape.every((d) => d) || affine === undefined) return undefined;
      return affine ? [['weight', shape as number[], 'float32'], ['bias', shape as number[], 'float32']] : [];
    },
  },
  RNN: {
    cls: RNN,
    args: (m) => { const r = m as RNN; return [r.inputSize, r.hiddenSize, { ...recurrentOptions(r), nonlinearity: r.nonlinearity }]; },
    make: (a) => new RNN(a[0] as number, a[1] as number, a[2] as object),
    state: (a) => recurrentState(a, 1),
  },
  LSTM: { cls: LSTM, args: (m) => recurrentArgs(m as LSTM), make: (a) => new LSTM(a[0] as number, a[1] as number, a[2] as object), state: (a) => recurrentState(a, 4) },
  GRU: { cls: GRU, args: (m) => recurrentArgs(m as GRU), make: (a) => new GRU(a[0] as number, a[1] as number, a[2] as object), state: (a) => recurrentState(a, 3) },
  MultiheadAttention: {
    cls: MultiheadAttention,
    args: (m) => {
      const l = m as MultiheadAttention;
      return [l.embedDim, l.numHeads, { causal: l.causal, dropout: l.dropout, bias: l.inProjBias !== null, batchFirst: l.batchFirst }];
    },
    make: (a) => new MultiheadAttention(a[0] as number, a[1] as number, a[2] as object),
    state: (a) => {
      const [E, bias] = [dim(a[0]), flag(option(a[2], 'bias'), true)];
      return E && bias !== undefined ? attentionState('', E, bias) : undefined;
    },
  },
  TransformerBlock: {
    cls: TransformerBlock,
    args: (m) => { const l = m as TransformerBlock; return [l.embedDim, l.numHeads, { mlpRatio: l.mlpRatio, causal: l.causal, eps: l.eps }]; },
    make: (a) => new TransformerBlock(a[0] as number, a[1] as number, a[2] as object),
    state: (a) => {
      const E = dim(a[0]), ratio = option(a[2], 'mlpRatio') ?? 4;
      if (!E || typeof ratio !== 'number' || !(ratio > 0) || !Number.isFinite(ratio)) return undefined;
      const hidden = Math.round(E * ratio);
      if (hidden < 1) return undefined;
      const norm = (p: string): StateSpec[] => [[`${p}.weight`, [E], 'float32'], [`${p}.bias`, [E], 'float32']];
      return [...norm('ln1'), ...attentionState('attn.', E), ...norm('ln2'), ...linearState('mlp.0.', E, hidden, true), ...linearState('mlp.2.', hidden, E, true)];
    },
  },
  PositionalEmbedding: {
    cls: PositionalEmbedding,
    args: (m) => [(m as PositionalEmbedding).maxLen, (m as PositionalEmbedding).embeddingDim],
    make: (a) => new PositionalEmbedding(a[0] as number, a[1] as number),
    state: tableState,
  },
};

// The pieces of Entry.state. A layer without parameters or buffers has no `state` (nothing stored).
function dim(v: unknown): number | undefined {
  return Number.isSafeInteger(v) && (v as number) >= 1 ? (v as number) : undefined;
}
function option(options: unknown, key: string): unknown {
  return options !== null && typeof options === 'object' && !Array.isArray(options) ? (options as Record<string, unknown>)[key] : undefined;
}
function flag(v: unknown, byDefault: boolean): boolean | undefined {
  return v === undefined ? byDefault : typeof v === 'boolean' ? v : undefined;
}
function linearState(prefix: string, inF: number, outF: number, bias: boolean): StateSpec[] {
  return [[`${prefix}weight`, [outF, inF], 'float32'], ...(bias ? [[`${prefix}bias`, [outF], 'float32'] as StateSpec] : [])];
}
function attentionState(prefix: string, E: number, bias = true): StateSpec[] {
  return [
    [`${prefix}in_proj_weight`, [3 * E, E], 'float32'], ...(bias ? [[`${prefix}in_proj_bias`, [3 * E], 'float32'] as StateSpec] : []),
    ...linearState(`${prefix}out_proj.`, E, E, bias),
  ];
}
function tableState(a: unknown[]): StateSpec[] | undefined {
  const [n, d] = [dim(a[0]), dim(a[1])];
  return n && d ? [['weight', [n, d], 'float32']] : undefined;
}
function batchNormState(a: unknown[]): StateSpec[] | undefined {
  const [C, affine, track] = [dim(a[0]), flag(option(a[1], 'affine'), true), flag(option(a[1], 'trackRunningStats'), true)];
  if (!C || affine === undefined || track === undefined) return undefined;
  return [
    ...(affine ? [['weight', [C], 'float32'], ['bias', [C], 'float32']] as StateSpec[] : []),
    ...(track ? [['running_mean', [C], 'float32'], ['running_var', [C], 'float32'], ['num_batches_tracked', [], 'int32']] as StateSpec[] : []),
  ];
}
function recurrentState(a: unknown[], gates: number): StateSpec[] | undefined {
  const [I, H, L, bias] = [dim(a[0]), dim(a[1]), dim(option(a[2], 'numLayers') ?? 1), flag(option(a[2], 'bias'), true)];
  if (!I || !H || !L || bias === undefined) return undefined;
  const out: StateSpec[] = [];
  for (let l = 0; l < L; l++) {
    out.push([`weight_ih_l${l}`, [gates * H, l === 0 ? I : H], 'float32'], [`weight_hh_l${l}`, [gates * H, H], 'float32']);
    if (bias) out.push([`bias_ih_l${l}`, [gates * H], 'float32'], [`bias_hh_l${l}`, [gates * H], 'float32']);
  }
  return out;
}

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

/** How deep Sequentials may nest in an architecture read from a file (a real model needs a few levels). */
export const MAX_ARCHITECTURE_DEPTH = 64;

/** The entry of a layer type: an own, known name only ('constructor' or '__proto__' name no layer). */
function entryOf(type: string, where: string): Entry {
  if (!Object.hasOwn(ENTRIES, type))
    throw new RetrogradError(`${where}: unknown layer type '${type}'; known: ${['Sequential', ...Object.keys(ENTRIES)].join(', ')}`, 'INVALID_ARGUMENT');
  return ENTRIES[type];
}

/** Checks an architecture's structure without recursion: entries are objects with a string type, Sequentials
 * have layers, every type is known, and the nesting is at most MAX_ARCHITECTURE_DEPTH deep. */
function checkArchitecture(c: ModuleConfig, where: string): void {
  const stack: [unknown, number][] = [[c, 1]];
  while (stack.length) {
    const [node, depth] = stack.pop()!;
    if (depth > MAX_ARCHITECTURE_DEPTH) throw new RetrogradError(`${where}: the architecture nests deeper than ${MAX_ARCHITECTURE_DEPTH} levels`, 'INVALID_ARGUMENT');
    const n = node as ModuleConfig;
    if (n === null || typeof n !== 'object' || typeof n.type !== 'string') throw new RetrogradError(`${where}: invalid architecture entry ${describe(n)}`, 'INVALID_ARGUMENT');
    if (n.type === 'Sequential') {
      if (!Array.isArray(n.layers)) throw new RetrogradError(`${where}: Sequential without layers`, 'INVALID_ARGUMENT');
      for (const l of n.layers) stack.push([l, depth + 1]);
    } else {
      entryOf(n.type, where);
    }
  }
}

/** Builds a model from moduleConfig's output, on the current backend. */
export function buildModule(c: ModuleConfig, where = 'load'): Module {
  checkArchitecture(c, where);
  const build = (n: ModuleConfig): Module =>
    n.type === 'Sequential' ? new Sequential(n.layers!.map(build)) : entryOf(n.type, where).make(Array.isArray(n.args) ? n.args : []);
  return build(c);
}

/**
 * The tensors an architecture holds, by state-dict name, computed without building it; `complete` is false
 * when some layer's arguments are invalid (its constructor will say why).
 */
function architectureState(c: ModuleConfig): { specs: StateSpec[]; complete: boolean } {
  const specs: StateSpec[] = [];
  let complete = true;
  const walk = (n: ModuleConfig, prefix: string): void => {
    if (n.type === 'Sequential') {
      n.layers!.forEach((l, i) => walk(l, `${prefix}${i}.`));
      return;
    }
    const state = ENTRIES[n.type].state;
    if (!state) return;
    const own = state(Array.isArray(n.args) ? n.args : []);
    if (!own) complete = false;
    else for (const [name, shape, dtype] of own) specs.push([prefix + name, shape, dtype]);
  };
  walk(c, '');
  return { specs, complete };
}

const stDtype = (t: StTensor) => (t.dtype === 'I32' ? 'int32' : 'float32');

/** Checks the stored tensors against the ones a model holds (names, shapes, dtypes) before anything is built
 * or loaded: a file cannot make a model allocate what it does not store. */
function checkStored(stored: Map<string, StTensor>, specs: StateSpec[], complete: boolean, where: string): void {
  const fmt = (shape: readonly number[], dtype: string) => `[${shape.join(', ')}] ${dtype}`;
  for (const [name, shape, dtype] of specs) {
    const t = stored.get(name);
    if (!t) throw new RetrogradError(`${where}: the architecture needs tensor '${name}' ${fmt(shape, dtype)}, the file does not hold it`, 'INVALID_ARGUMENT');
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]) || stDtype(t) !== dtype)
      throw new RetrogradError(`${where}: the architecture needs tensor '${name}' ${fmt(shape, dtype)}, the file holds ${fmt(t.shape, stDtype(t))}`, 'INVALID_ARGUMENT');
  }
  if (!complete) return;
  const known = new Set(specs.map(([name]) => name));
  for (const name of stored.keys())
    if (!known.has(name)) throw new RetrogradError(`${where}: the file holds tensor '${name}', which the architecture does not have`, 'INVALID_ARGUMENT');
}

/** The state a built model holds, as specs for checkStored. */
function moduleState(m: Module): StateSpec[] {
  return Object.entries(m.stateDict()).map(([name, t]) => [name, [...t.shape], t.dtype === 'int32' ? 'int32' : 'float32']);
}

function hostTensor(t: Tensor, dtype: 'float32' | 'bfloat16' = 'float32'): StWritable {
  const data = t.toArray();
  if (data instanceof Int32Array) return { dtype: 'I32', shape: [...t.shape], data };
  return dtype === 'bfloat16' ? { dtype: 'BF16', shape: [...t.shape], data: toBfloat16(data) } : { dtype: 'F32', shape: [...t.shape], data };
}

/** A pid that no longer runs (EPERM: it runs, as another user). */
function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** Removes the temporary files of `path` that saves killed before their rename left behind: the names
 * writeAtomic makes, from processes that no longer run (a live one may be saving now). Best effort. */
async function removeStaleTemps(path: string): Promise<void> {
  const prefix = `${basename(path)}.tmp-`;
  let names: string[];
  try {
    names = await readdir(dirname(path));
  } catch {
    return; // the write itself reports a missing folder
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const m = /^(\d+)-[0-9a-f]{8}$/.exec(name.slice(prefix.length));
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid !== process.pid && gone(pid)) await rm(join(dirname(path), name), { force: true });
  }
}

/** Writes `data` to a temporary file in the same folder, fsyncs it, then renames it over `path`: a reader
 * sees the old file or the new one, and after a crash the new one is whole on disk, never half-written. */
async function writeAtomic(path: string, data: Buffer): Promise<void> {
  await removeStaleTemps(path);
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  // the rename itself lasts once the folder is synced; not every platform can open a folder
  try {
    const folder = await open(dirname(path), 'r');
    try {
      await folder.sync();
    } finally {
      await folder.close();
    }
  } catch {
    /* best effort */
  }
}

async function readSafetensors(path: string, where: string) {
  if (typeof path !== 'string') throw new TypeError(`${where}: path must be a string, got ${describe(path)}`);
  return readSafetensorsFile(path, where);
}

function stateToTensors(sd: Map<string, StTensor> | Record<string, StTensor>): Record<string, Tensor> {
  const b = currentBackend();
  return Object.fromEntries([...(sd instanceof Map ? sd : Object.entries(sd))].map(([k, t]) => [k, fromHost(b, t.data, t.shape)]));
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

/** Options of rg.save. */
export interface SaveOptions {
  /**
   * How floating-point weights are stored: 'float32' (the default, exact) or 'bfloat16' (safetensors BF16, half the
   * size, each value rounded to nearest even as PyTorch's `.to(torch.bfloat16)`; integer buffers stay int32). Loading
   * widens BF16 back to float32 exactly, so a model saved in bfloat16 loads with the rounded weights.
   */
  dtype?: 'float32' | 'bfloat16';
}

/** Writes the model's weights (safetensors, PyTorch names) and architecture to `path`. */
export async function save(model: Module, path: string, options: SaveOptions = {}): Promise<void> {
  if (!(model instanceof Module)) throw new TypeError(`save: expected a Module, got ${describe(model)}`);
  if (typeof path !== 'string') throw new TypeError(`save: path must be a string, got ${describe(path)}`);
  if (options === null || typeof options !== 'object') throw new TypeError(`save: options must be an object, got ${describe(options)}`);
  const dtype = options.dtype ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'bfloat16') throw new RangeError(`save: dtype must be 'float32' or 'bfloat16', got ${describe(dtype)}`);
  const arch = moduleConfig(model);
  const tensors = Object.fromEntries(Object.entries(model.stateDict()).map(([k, t]) => [k, hostTensor(t, dtype)]));
  await writeAtomic(path, encodeSafetensors(tensors, { format: 'retrograd', architecture: JSON.stringify(arch) }));
}

/**
 * Reads a model written by rg.save: rebuilds it on the current backend and loads its weights. With `type` (a class,
 * e.g. rg.Sequential) the model is checked to be one and typed as one: `const m = await rg.load(path, rg.Sequential)`
 * gives a Sequential, and a file holding something else is an error naming both. `rg.load<T>(path)` types the result
 * without the check.
 */
export async function load<T extends Module = Module>(path: string, type?: abstract new (...args: never[]) => T): Promise<T> {
  if (type !== undefined && !(typeof type === 'function' && (type === Module || type.prototype instanceof Module)))
    throw new TypeError(`load: type must be a Module class (e.g. rg.Sequential), got ${describe(type)}`);
  const { tensors, metadata } = await readSafetensors(path, 'load');
  const arch = parseJson<ModuleConfig>(metadata.architecture, 'architecture', path);
  const where = `load: ${path}`;
  checkArchitecture(arch, 'load');
  const { specs, complete } = architectureState(arch);
  const stored = new Map(Object.entries(tensors));
  checkStored(stored, specs, complete, where);
  const model = buildModule(arch);
  if (type !== undefined && !(model instanceof type)) throw new TypeError(`load: ${path} holds a ${arch.type}, not a ${type.name}`);
  model.loadStateDict(stateToTensors(stored));
  return model as T;
}

/** Anything with a JSON-ready state: a learning-rate scheduler, as checkpoints save and restore it. */
export interface Stateful {
  /** The state, JSON-ready. */
  stateDict(): Record<string, unknown>;
  /** Restores a state that stateDict() gave. */
  loadStateDict(sd: Record<string, unknown>): void;
}

/** What {@link saveCheckpoint} writes. */
export interface CheckpointParts {
  /** The model: its architecture and state dict. */
  model: Module;
  /** The optimizer: its hyperparameters and per-parameter state. */
  optimizer?: Optimizer<{
    /** The learning rate. */
    lr: number;
  }>;
  /** A scheduler (or anything Stateful): its state dict. */
  scheduler?: Stateful;
  /** The epoch to resume from (stored as null when omitted). */
  epoch?: number;
}

/** Writes model, optimizer and scheduler state, the epoch and the random generator's state to `path`. */
export async function saveCheckpoint(path: string, parts: CheckpointParts): Promise<void> {
  if (!parts || !(parts.model instanceof Module)) throw new TypeError('saveCheckpoint: expected { model, optimizer?, scheduler?, epoch? }');
  const tensors: Record<string, StWritable> = {};
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

/** What {@link loadCheckpoint} read. */
export interface LoadedCheckpoint {
  /** The model given in `into`, loaded, or one rebuilt from the stored architecture. */
  model: Module;
  /** The stored epoch, or null. */
  epoch: number | null;
  /** The optimizer's stored state, when the checkpoint has one (loaded into `into.optimizer` when given). */
  optimizer?: OptimizerStateDict;
  /** The scheduler's stored state, when the checkpoint has one (loaded into `into.scheduler` when given). */
  scheduler?: Record<string, unknown>;
  /** The random generator's stored state (restored unless restoreRng is false). */
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
  const where = `loadCheckpoint: ${path}`;
  // everything is read and checked first: a corrupt part loads nothing (the random state least of all: an
  // all-zero or malformed state would stall or repeat every later draw)
  const arch = into.model ? undefined : parseJson<ModuleConfig>(metadata.architecture, 'architecture', path);
  if (arch) checkArchitecture(arch, 'loadCheckpoint');
  const epoch = parseJson<number | null>(metadata.epoch, 'epoch', path);
  if (epoch !== null && !(Number.isSafeInteger(epoch) && epoch >= 0)) throw new RetrogradError(`${where}: the epoch ${JSON.stringify(epoch)} is not null or a non-negative integer`, 'INVALID_ARGUMENT');
  let rng: RngState;
  try {
    rng = checkRngState(parseJson<unknown>(metadata.rng, 'random state', path), `${where}: the random state`);
  } catch (e) {
    throw e instanceof RetrogradError ? e : new RetrogradError((e as Error).message, 'INVALID_ARGUMENT');
  }
  const modelState = new Map<string, StTensor>();
  for (const [k, t] of Object.entries(tensors)) if (k.startsWith('model.')) modelState.set(k.slice(6), t);
  if (into.model) checkStored(modelState, moduleState(into.model), true, where);
  else {
    const { specs, complete } = architectureState(arch!);
    checkStored(modelState, specs, complete, where);
  }
  const optimizerMeta = metadata.optimizer
    ? parseJson<{ param_groups: Record<string, unknown>[]; scalars: Record<string, Record<string, number>> }>(metadata.optimizer, 'optimizer state', path)
    : undefined;
  const scheduler = metadata.scheduler ? parseJson<Record<string, unknown>>(metadata.scheduler, 'scheduler state', path) : undefined;

  const model = into.model ?? buildModule(arch!, 'loadCheckpoint');
  const out: LoadedCheckpoint = { model, epoch, rng };
  // Each part checks everything before it changes anything; a part that fails after others have loaded puts those
  // back from copies taken first, so a checkpoint loads whole or not at all.
  const undo: (() => void)[] = [];
  if (into.optimizer) {
    const previous = into.optimizer.stateDict();
    const optimizer = into.optimizer;
    undo.push(() => optimizer.loadStateDict(previous));
  }
  if (into.scheduler) {
    const previous = into.scheduler.stateDict();
    const scheduler = into.scheduler;
    undo.push(() => scheduler.loadStateDict(previous));
  }
  try {
    loadParts();
    model.loadStateDict(stateToTensors(modelState));
  } catch (e) {
    for (const u of undo) u();
    throw e;
  }
  if (into.restoreRng ?? true) setRngState(rng);
  return out;

  function loadParts(): void {
    if (optimizerMeta) {
      const o = optimizerMeta;
      const state: OptimizerStateDict['state'] = {};
      for (const [i, s] of Object.entries(o.scalars ?? {})) state[Number(i)] = { ...s };
      for (const [k, t] of Object.entries(tensors)) {
        const m = /^optimizer\.state\.(\d+)\.(.+)$/.exec(k);
        if (m) (state[Number(m[1])] ??= {})[m[2]] = t.data as Float32Array;
      }
      out.optimizer = { state, param_groups: o.param_groups };
      into.optimizer?.loadStateDict(out.optimizer);
    }
    if (scheduler) {
      out.scheduler = scheduler;
      into.scheduler?.loadStateDict(out.scheduler);
    }
  }
}
