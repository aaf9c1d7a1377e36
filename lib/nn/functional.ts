// rg.F: torch.nn.functional's forms, on the same fused kernels as the layers, each one node of the autograd graph
// (a layer's parameters become arguments: F.conv2d(x, weight, bias, { stride })). Losses take PyTorch's
// `reduction` ('mean' by default, 'sum', 'none').
import { checkOptions, describe } from '../errors.js';
import { nextSeed } from '../random.js';
import { fromHost, Tensor } from '../tensor.js';
import { alloc, checkFloat, fmt, toTensor, type TensorLike } from '../autograd/core.js';
import { record } from '../autograd/engine.js';
import * as ew from '../autograd/elementwise.js';
import { linear, matmul } from '../autograd/linalg.js';
import { logSoftmax, mean, softmax, sum } from '../autograd/reduce.js';
import { gather, indexSelect } from '../autograd/shape.js';
import { BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, MSELoss } from '../losses.js';

export { linear, matmul, softmax, logSoftmax };
export const { relu, gelu, sigmoid, tanh, leakyRelu, softplus } = ew;

type Pair = number | [number, number];
const pair = (where: string, name: string, v: Pair): [number, number] => {
  const p: [number, number] = Array.isArray(v) ? [v[0], v[1]] : [v, v];
  if (!p.every((x) => Number.isInteger(x) && x >= 0)) throw new RangeError(`${where}: ${name} must be a non-negative integer or a pair of them, got ${describe(v)}`);
  return p;
};
function outSize(where: string, H: number, K: number, S: number, P: number, D: number): number {
  const o = Math.floor((H + 2 * P - D * (K - 1) - 1) / S) + 1;
  if (S < 1 || o < 1) throw new RangeError(`${where}: a window of ${K} (stride ${S}, padding ${P}, dilation ${D}) does not fit an input of ${H}`);
  return o;
}
function nchw(where: string, x: Tensor): [number, number, number, number] {
  if (x.shape.length !== 4) throw new RangeError(`${where}: input must be [N, C, H, W], got ${fmt(x.shape)}`);
  return x.shape as [number, number, number, number];
}

/** Zeroes each element with probability p and scales the rest by 1/(1 − p) while training; the identity otherwise. */
export function dropout(x: TensorLike, p = 0.5, training = true): Tensor {
  const where = 'F.dropout';
  const t = toTensor(where, x);
  checkFloat(where, t);
  if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw new RangeError(`${where}: p must be in [0, 1], got ${describe(p)}`);
  if (!training || p === 0) return t;
  const out = alloc(t.backend, t.shape), mask = alloc(t.backend, t.shape);
  if (t.size) t.backend.k.dropout_forward(out.buf, mask.buf, t.buf, t.size, p, nextSeed());
  record(where, [t], [out], [mask], ([g], [m]) => {
    if (!g) return [null];
    const d = alloc(g.backend, g.shape);
    if (g.size) g.backend.k.dropout_backward(d.buf, g.buf, m.buf, g.size);
    return [d];
  });
  return out;
}

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
}
/** 2-d convolution of x [N, C, H, W] with weight [OC, C, KH, KW] (+ bias [OC]), as the Conv2d layer. */
export function conv2d(x: TensorLike, weight: TensorLike, bias?: TensorLike | null, options: Conv2dOptions = {}): Tensor {
  const where = 'F.conv2d';
  checkOptions(where, options, ['stride', 'padding', 'dilation']);
  const t = toTensor(where, x), w = toTensor(where, weight, undefined, 'weight');
  const b = bias == null ? null : toTensor(where, bias, undefined, 'bias');
  checkFloat(where, t, w, ...(b ? [b] : []));
  const [B, C, H, W] = nchw(where, t);
  if (w.shape.length !== 4 || w.shape[1] !== C) throw new RangeError(`${where}: weight must be [OC, ${C}, KH, KW] for an input of ${C} channels, got ${fmt(w.shape)}`);
  const [OC, , KH, KW] = w.shape;
  if (b && (b.shape.length !== 1 || b.shape[0] !== OC)) throw new RangeError(`${where}: bias must be [${OC}], got ${fmt(b.shape)}`);
  const [SH, SW] = pair(where, 'stride', options.stride ?? 1), [PH, PW] = pair(where, 'padding', options.padding ?? 0), [DH, DW] = pair(where, 'dilation', options.dilation ?? 1);
  const OH = outSize(where, H, KH, SH, PH, DH), OW = outSize(where, W, KW, SW, PW, DW);
  const out = alloc(t.backend, [B, OC, OH, OW]);
  if (out.size) t.backend.k.conv2d_forward(out.buf, t.buf, w.buf, b?.buf ?? null, B, C, H, W, OC, KH, KW, SH, SW, PH, PW, DH, DW);
  const inputs = b ? [t, w, b] : [t, w];
  record(where, inputs, [out], [t, w], ([g], [xx, ww]) => {
    if (!g) return inputs.map(() => null);
    const dx = alloc(g.backend, xx.shape), dw = alloc(g.backend, ww.shape), db = b ? alloc(g.backend, [OC]) : null;
    g.backend.k.conv2d_backward(dx.buf, dw.buf, db?.buf ?? null, g.buf, xx.buf, ww.buf, B, C, H, W, OC, KH, KW, SH, SW, PH, PW, DH, DW, false);
    return b ? [dx, dw, db] : [dx, dw];
  });
  return out;
}

export interface PoolOptions {
  stride?: Pair;
  padding?: Pair;
}
function poolGeometry(where: string, t: Tensor, kernelSize: Pair, options: PoolOptions) {
  const [B, C, H, W] = nchw(where, t);
  const [KH, KW] = pair(where, 'kernelSize', kernelSize);
  const [SH, SW] = pair(where, 'stride', options.stride ?? kernelSize), [PH, PW] = pair(where, 'padding', options.padding ?? 0);
  if (2 * PH > KH || 2 * PW > KW) throw new RangeError(`${where}: padding must be at most half the kernel size, got padding ${PH}×${PW} for a ${KH}×${KW} kernel`);
  return { B, C, H, W, KH, KW, SH, SW, PH, PW, OH: outSize(where, H, KH, SH, PH, 1), OW: outSize(where, W, KW, SW, PW, 1) };
}
export function maxPool2d(x: TensorLike, kernelSize: Pair, options: PoolOptions = {}): Tensor {
  const where = 'F.maxPool2d';
  checkOptions(where, options, ['stride', 'padding']);
  const t = toTensor(where, x);
  checkFloat(where, t);
  const g0 = poolGeometry(where, t, kernelSize, options);
  const { B, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW } = g0;
  const out = alloc(t.backend, [B, C, OH, OW]);
  const argmax = new Tensor(t.backend, t.backend.alloc('int32', out.size, false), out.shape, 'int32');
  if (out.size) t.backend.k.maxpool2d_forward(out.buf, argmax.buf, t.buf, B, C, H, W, KH, KW, SH, SW, PH, PW);
  record(where, [t], [out], [argmax], ([g], [am]) => {
    if (!g) return [null];
    const d = alloc(g.backend, t.shape);
    g.backend.k.maxpool2d_backward(d.buf, g.buf, am.buf, B, C, H, W, KH, KW, SH, SW, PH, PW);
    return [d];
  });
  return out;
}
export function avgPool2d(x: TensorLike, kernelSize: Pair, options: PoolOptions & { countIncludePad?: boolean } = {}): Tensor {
  const where = 'F.avgPool2d';
  checkOptions(where, options, ['stride', 'padding', 'countIncludePad']);
  const t = toTensor(where, x);
  checkFloat(where, t);
  const { B, C, H, W, KH, KW, SH, SW, PH, PW, OH, OW } = poolGeometry(where, t, kernelSize, options);
  const cip = options.countIncludePad ?? true;
  const out = alloc(t.backend, [B, C, OH, OW]);
  if (out.size) t.backend.k.avgpool2d_forward(out.buf, t.buf, B, C, H, W, KH, KW, SH, SW, PH, PW, cip);
  record(where, [t], [out], [], ([g]) => {
    if (!g) return [null];
    const d = alloc(g.backend, t.shape);
    g.backend.k.avgpool2d_backward(d.buf, g.buf, B, C, H, W, KH, KW, SH, SW, PH, PW, cip);
    return [d];
  });
  return out;
}

/** Layer normalisation over the last dimensions (normalizedShape), with optional weight and bias of that shape. */
export function layerNorm(x: TensorLike, normalizedShape: number | readonly number[], weight?: TensorLike | null, bias?: TensorLike | null, eps = 1e-5): Tensor {
  const where = 'F.layerNorm';
  const t = toTensor(where, x);
  const w = weight == null ? null : toTensor(where, weight, undefined, 'weight');
  const b = bias == null ? null : toTensor(where, bias, undefined, 'bias');
  checkFloat(where, t, ...[w, b].filter((v): v is Tensor => v !== null));
  const ns = Array.isArray(normalizedShape) ? [...normalizedShape] : [normalizedShape as number];
  const tail = t.shape.slice(t.shape.length - ns.length);
  if (ns.length > t.shape.length || ns.some((d, i) => d !== tail[i])) throw new RangeError(`${where}: normalizedShape ${fmt(ns)} does not end the input's shape ${fmt(t.shape)}`);
  const dim = ns.reduce((p, d) => p * d, 1), rows = t.size / Math.max(dim, 1);
  for (const [name, v] of [['weight', w], ['bias', b]] as const)
    if (v && v.size !== dim) throw new RangeError(`${where}: ${name} must have the normalized shape ${fmt(ns)}, got ${fmt(v.shape)}`);
  const out = alloc(t.backend, t.shape), m = alloc(t.backend, [rows]), is = alloc(t.backend, [rows]);
  if (out.size) t.backend.k.layernorm_forward(out.buf, m.buf, is.buf, t.buf, w?.buf ?? null, b?.buf ?? null, rows, dim, eps);
  const inputs = [t, ...(w ? [w] : []), ...(b ? [b] : [])];
  record(where, inputs, [out], [t, m, is, ...(w ? [w] : [])], ([g], [xx, mm, ii, ww]) => {
    if (!g) return inputs.map(() => null);
    const dx = alloc(g.backend, t.shape), dw = w ? alloc(g.backend, w.shape) : null, db = b ? alloc(g.backend, b.shape) : null;
    if (g.size) g.backend.k.layernorm_backward(dx.buf, dw?.buf ?? null, db?.buf ?? null, g.buf, xx.buf, ww?.buf ?? null, mm.buf, ii.buf, rows, dim, false);
    else for (const z of [dw, db]) if (z) g.backend.k.fill(z.buf, z.size, 0);
    return [dx, ...(dw ? [dw] : []), ...(db ? [db] : [])];
  });
  return out;
}

export interface BatchNormOptions {
  weight?: TensorLike | null;
  bias?: TensorLike | null;
  training?: boolean;
  momentum?: number;
  eps?: number;
}
/** Batch normalisation over x [N, C, …] per channel; the running statistics (updated in place while training, as
 * PyTorch does) may be null when training. */
export function batchNorm(x: TensorLike, runningMean: Tensor | null, runningVar: Tensor | null, options: BatchNormOptions = {}): Tensor {
  const where = 'F.batchNorm';
  checkOptions(where, options, ['weight', 'bias', 'training', 'momentum', 'eps']);
  const t = toTensor(where, x);
  const training = options.training ?? false;
  if (t.shape.length < 2) throw new RangeError(`${where}: input must be [N, C, …], got ${fmt(t.shape)}`);
  const [B, C] = t.shape;
  const R = t.size / Math.max(B * C, 1);
  const w = options.weight == null ? null : toTensor(where, options.weight, undefined, 'weight');
  const b = options.bias == null ? null : toTensor(where, options.bias, undefined, 'bias');
  if (!training && (!runningMean || !runningVar)) throw new TypeError(`${where}: evaluation (training false) needs runningMean and runningVar`);
  for (const [name, v] of [['weight', w], ['bias', b], ['runningMean', runningMean], ['runningVar', runningVar]] as const)
    if (v && (v.shape.length !== 1 || v.shape[0] !== C)) throw new RangeError(`${where}: ${name} must be [${C}], got ${fmt(v.shape)}`);
  checkFloat(where, t, ...[w, b, runningMean, runningVar].filter((v): v is Tensor => v !== null));
  const scratch = () => new Tensor(t.backend, t.backend.alloc(t.backend.floatType, C), [C], t.backend.floatType);
  const rm = runningMean ?? scratch(), rv = runningVar ?? scratch();
  const out = alloc(t.backend, t.shape), sm = alloc(t.backend, [C]), si = alloc(t.backend, [C]);
  t.backend.k.batchnorm_forward(out.buf, sm.buf, si.buf, rm.buf, rv.buf, t.buf, w?.buf ?? null, b?.buf ?? null, B, C, R, options.momentum ?? 0.1, options.eps ?? 1e-5, training);
  if (runningMean) runningMean.bumpVersion();
  if (runningVar) runningVar.bumpVersion();
  const inputs = [t, ...(w ? [w] : []), ...(b ? [b] : [])];
  record(where, inputs, [out], [t, sm, si, ...(w ? [w] : [])], ([g], [xx, mm, ii, ww]) => {
    if (!g) return inputs.map(() => null);
    const dx = alloc(g.backend, t.shape), dw = w ? alloc(g.backend, [C]) : null, db = b ? alloc(g.backend, [C]) : null;
    g.backend.k.batchnorm_backward(dx.buf, dw?.buf ?? null, db?.buf ?? null, g.buf, xx.buf, ww?.buf ?? null, mm.buf, ii.buf, B, C, R, training, false);
    return [dx, ...(dw ? [dw] : []), ...(db ? [db] : [])];
  });
  return out;
}

/** Rows of weight [num, dim] at the int32 indices of input (any shape): [...input.shape, dim]. */
export function embedding(input: Tensor, weight: TensorLike): Tensor {
  const where = 'F.embedding';
  const w = toTensor(where, weight, undefined, 'weight');
  if (!(input instanceof Tensor) || input.dtype !== 'int32') throw new TypeError(`${where}: input must be an int32 tensor of indices, got ${describe(input)}`);
  if (w.shape.length !== 2) throw new RangeError(`${where}: weight must be [num, dim], got ${fmt(w.shape)}`);
  return indexSelect(w, 0, input.reshape([input.size])).reshape([...input.shape, w.shape[1]]);
}

// ---- losses ----

export type Reduction = 'mean' | 'sum' | 'none';
function reductionOf(where: string, r: unknown): Reduction {
  if (r === undefined) return 'mean';
  if (r !== 'mean' && r !== 'sum' && r !== 'none') throw new RangeError(`${where}: reduction must be 'mean', 'sum' or 'none', got ${describe(r)}`);
  return r;
}
function reduce(r: Reduction, v: Tensor): Tensor {
  return r === 'none' ? v : r === 'sum' ? sum(v) : mean(v);
}

export function mseLoss(input: TensorLike, target: TensorLike, options: { reduction?: Reduction } = {}): Tensor {
  const where = 'F.mseLoss', r = reductionOf(where, options.reduction);
  const [p, t] = [toTensor(where, input), toTensor(where, target, undefined, 'target')];
  return r === 'mean' ? new MSELoss().forward(p, t) : reduce(r, ew.square(ew.sub(p, t)));
}
export function l1Loss(input: TensorLike, target: TensorLike, options: { reduction?: Reduction } = {}): Tensor {
  const where = 'F.l1Loss', r = reductionOf(where, options.reduction);
  const [p, t] = [toTensor(where, input), toTensor(where, target, undefined, 'target')];
  return r === 'mean' ? new L1Loss().forward(p, t) : reduce(r, ew.abs(ew.sub(p, t)));
}
export function huberLoss(input: TensorLike, target: TensorLike, options: { reduction?: Reduction; delta?: number } = {}): Tensor {
  const where = 'F.huberLoss', r = reductionOf(where, options.reduction), delta = options.delta ?? 1;
  const [p, t] = [toTensor(where, input), toTensor(where, target, undefined, 'target')];
  if (r === 'mean') return new HuberLoss({ delta }).forward(p, t);
  const d = ew.sub(p, t), a = ew.abs(d);
  const quadratic = ew.mul(ew.square(d), 0.5), linearPart = ew.mul(ew.sub(a, 0.5 * delta), delta);
  return reduce(r, ew.where(ew.lt(a, delta), quadratic, linearPart));
}
export function binaryCrossEntropy(input: TensorLike, target: TensorLike, options: { reduction?: Reduction } = {}): Tensor {
  const where = 'F.binaryCrossEntropy', r = reductionOf(where, options.reduction);
  const [p, t] = [toTensor(where, input), toTensor(where, target, undefined, 'target')];
  if (r === 'mean') return new BCELoss().forward(p, t);
  // −(t·log p + (1 − t)·log(1 − p)), the logs clamped at −100 as PyTorch does
  const lp = ew.clamp(ew.log(p), -100), lq = ew.clamp(ew.log(ew.sub(1, p)), -100);
  return reduce(r, ew.neg(ew.add(ew.mul(t, lp), ew.mul(ew.sub(1, t), lq))));
}
export function binaryCrossEntropyWithLogits(input: TensorLike, target: TensorLike, options: { reduction?: Reduction } = {}): Tensor {
  const where = 'F.binaryCrossEntropyWithLogits', r = reductionOf(where, options.reduction);
  const [x, t] = [toTensor(where, input), toTensor(where, target, undefined, 'target')];
  if (r === 'mean') return new BCEWithLogitsLoss().forward(x, t);
  // max(x, 0) − x·t + log(1 + e^−|x|)
  return reduce(r, ew.add(ew.sub(ew.relu(x), ew.mul(x, t)), ew.log1p(ew.exp(ew.neg(ew.abs(x))))));
}

/** Cross-entropy of logits [N, C] (or [N, C, d…]) against int32 class indices, log-softmax fused. */
export function crossEntropy(input: TensorLike, target: Tensor, options: { reduction?: Reduction; ignoreIndex?: number } = {}): Tensor {
  const where = 'F.crossEntropy';
  checkOptions(where, options, ['reduction', 'ignoreIndex']);
  const r = reductionOf(where, options.reduction);
  const x = toTensor(where, input);
  if (r === 'mean') return new CrossEntropyLoss({ ignoreIndex: options.ignoreIndex }).forward(x, target);
  return nllLoss(logSoftmax(x, x.shape.length === 1 ? 0 : 1), target, options);
}

/** The negative log-likelihood of log-probabilities [N, C] at int32 targets [N] (ignoreIndex: those count nothing). */
export function nllLoss(input: TensorLike, target: Tensor, options: { reduction?: Reduction; ignoreIndex?: number } = {}): Tensor {
  const where = 'F.nllLoss';
  checkOptions(where, options, ['reduction', 'ignoreIndex']);
  const r = reductionOf(where, options.reduction);
  const lp = toTensor(where, input);
  checkFloat(where, lp);
  if (!(target instanceof Tensor) || target.dtype !== 'int32') throw new TypeError(`${where}: target must be an int32 tensor of class indices, got ${describe(target)}`);
  if (lp.shape.length !== 2 || target.shape.length !== 1 || target.shape[0] !== lp.shape[0])
    throw new RangeError(`${where}: expected input [N, C] and target [N], got ${fmt(lp.shape)} and ${fmt(target.shape)}`);
  const ignore = options.ignoreIndex ?? -100;
  const [N, C] = lp.shape;
  // targets equal to ignoreIndex pick column 0 and are masked out (the host decides, once, from the indices)
  const idx = target.backend.read(target.buf) as Int32Array;
  const keep = new Float32Array(N), safe = new Int32Array(N);
  for (let i = 0; i < N; i++) {
    if (idx[i] === ignore) continue;
    if (!(idx[i] >= 0 && idx[i] < C)) throw new RangeError(`${where}: target ${idx[i]} at position ${i} is outside [0, ${C})`);
    keep[i] = 1;
    safe[i] = idx[i];
  }
  const picked = gather(lp, 1, fromHost(lp.backend, safe, [N, 1])).reshape([N]);
  const losses = ew.mul(ew.neg(picked), fromHost(lp.backend, keep, [N]));
  if (r === 'none') return losses;
  const s = sum(losses);
  if (r === 'sum') return s;
  const count = keep.reduce((a, v) => a + v, 0);
  return ew.div(s, count);
}

/** Cosine similarity along dim (1 by default), norms clamped below at eps. */
export function cosineSimilarity(a: TensorLike, b: TensorLike, dim = 1, eps = 1e-8): Tensor {
  const x = toTensor('F.cosineSimilarity', a), y = toTensor('F.cosineSimilarity', b, undefined, 'other');
  const dot = sum(ew.mul(x, y), dim);
  const nx = ew.clamp(ew.sqrt(sum(ew.square(x), dim)), eps), ny = ew.clamp(ew.sqrt(sum(ew.square(y), dim)), eps);
  return ew.div(dot, ew.mul(nx, ny));
}
