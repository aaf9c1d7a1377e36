// rg.F: torch.nn.functional's forms, on the same fused kernels as the layers, each one node of the autograd graph
// (a layer's parameters become arguments: F.conv2d(x, weight, bias, { stride })). Losses take PyTorch's
// `reduction` ('mean' by default, 'sum', 'none').
import { checkNumber, checkOptions, describe } from '../errors.js';
import { nextSeed } from '../random.js';
import { fromHost, Tensor } from '../tensor.js';
import { alloc, checkFloat, EW, ewKernel, fmt, toTensor, type TensorLike } from '../autograd/core.js';
import { noGrad, record } from '../autograd/engine.js';
import * as ew from '../autograd/elementwise.js';
import { linear, matmul } from '../autograd/linalg.js';
import { logSoftmax, mean, softmax, sum } from '../autograd/reduce.js';
import { cat, gather, indexSelect } from '../autograd/shape.js';
import { BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, MSELoss } from '../losses.js';
import {
  checkOutputPadding, interpolationInput, interpolationSpec, pair as sizePair, single, transposedSize,
  type InterpolationOptions, type Size1, type Size2,
} from './util.js';

export { linear, matmul, softmax, logSoftmax };
export type { InterpolationOptions, InterpolationMode } from './util.js';
// the activations of the tensor API (rg.relu, rg.gelu, …) under torch.nn.functional's names
export const {
  /** max(x, 0) elementwise. */
  relu,
  /** GELU elementwise, exact erf form. */
  gelu,
  /** 1 / (1 + e^−x) elementwise. */
  sigmoid,
  /** The hyperbolic tangent elementwise. */
  tanh,
  /** x where x > 0, else negativeSlope·x (default 0.01). */
  leakyRelu,
  /** log(1 + e^(beta·x)) / beta, x itself where beta·x > threshold (defaults 1 and 20). */
  softplus,
} = ew;

/** A window size, stride, padding or dilation: n for both dimensions, or [h, w]. */
export type Pair = number | [number, number];
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

/** Zeroes whole channels of x [N, C, H, W] (or [C, H, W]) with probability p and scales the kept ones by 1/(1 − p)
 * while training; the identity otherwise (PyTorch's dropout2d, channel-wise). */
export function dropout2d(x: TensorLike, p = 0.5, training = true): Tensor {
  const where = 'F.dropout2d';
  const t = toTensor(where, x);
  checkFloat(where, t);
  if (typeof p !== 'number') throw new TypeError(`${where}: p must be a number, got ${describe(p)}`);
  if (!(p >= 0 && p <= 1)) throw new RangeError(`${where}: p must be in [0, 1], got ${p}`);
  if (typeof training !== 'boolean') throw new TypeError(`${where}: training must be a boolean, got ${describe(training)}`);
  const r = t.shape.length;
  if (r !== 4 && r !== 3) throw new RangeError(`${where}: input must be [N, C, H, W] or [C, H, W], got ${fmt(t.shape)}`);
  if (!training || p === 0) return t;
  const be = t.backend, k = be.k;
  const mask = alloc(be, [...t.shape.slice(0, -2), 1, 1]);
  if (mask.size) {
    // dropout_forward of ones is its mask: 1/(1 − p) for a kept channel, 0 for a dropped one
    const ones = alloc(be, [mask.size]), scratch = alloc(be, [mask.size]);
    k.fill(ones.buf, mask.size, 1);
    k.dropout_forward(mask.buf, scratch.buf, ones.buf, mask.size, p, nextSeed());
    ones.dispose();
    scratch.dispose();
  }
  const out = ewKernel(where, EW.mul, [t, mask]);
  record(where, [t], [out], [mask], ([g], [m]) => [g ? ewKernel(where, EW.mul, [g, m]) : null]);
  return out;
}

/** Options of {@link conv2d}. */
export interface Conv2dOptions {
  /** Step of the window (default 1). */
  stride?: Pair;
  /** Zero padding on both sides (default 0). */
  padding?: Pair;
  /** Spacing of the kernel's taps (default 1). */
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
  return conv2dNode(where, t, w, b, { B, C, H, W, OC, KH, KW, SH, SW, PH, PW, DH, DW }, [B, OC, OH, OW]);
}

/** The sizes of a convolution as the conv2d kernels take them: input [B, C, H, W], weight [OC, C, KH, KW]. */
interface ConvGeometry {
  B: number; C: number; H: number; W: number; OC: number; KH: number; KW: number;
  SH: number; SW: number; PH: number; PW: number; DH: number; DW: number;
}

/** The convolution of x with weight (+ bias) as one node on conv2d_forward / conv2d_backward. x, weight and the output
 * (outShape) may have other shapes over the same memory: conv1d's [B, C, L] and [OC, C, K] are [B, C, 1, L] and
 * [OC, C, 1, K]. */
function conv2dNode(where: string, t: Tensor, w: Tensor, b: Tensor | null, g: ConvGeometry, outShape: readonly number[]): Tensor {
  const { B, C, H, W, OC, KH, KW, SH, SW, PH, PW, DH, DW } = g;
  const out = alloc(t.backend, outShape);
  if (out.size) t.backend.k.conv2d_forward(out.buf, t.buf, w.buf, b?.buf ?? null, B, C, H, W, OC, KH, KW, SH, SW, PH, PW, DH, DW);
  const inputs = b ? [t, w, b] : [t, w];
  record(where, inputs, [out], [t, w], ([gy], [xx, ww]) => {
    if (!gy) return inputs.map(() => null);
    const dx = alloc(gy.backend, xx.shape), dw = alloc(gy.backend, ww.shape), db = b ? alloc(gy.backend, [OC]) : null;
    gy.backend.k.conv2d_backward(dx.buf, dw.buf, db?.buf ?? null, gy.buf, xx.buf, ww.buf, B, C, H, W, OC, KH, KW, SH, SW, PH, PW, DH, DW, false);
    return b ? [dx, dw, db] : [dx, dw];
  });
  return out;
}

/** Options of {@link conv1d}. */
export interface Conv1dOptions {
  /** Step of the window (default 1). */
  stride?: Size1;
  /** Zero padding on both ends (default 0). */
  padding?: Size1;
  /** Spacing of the kernel's taps (default 1). */
  dilation?: Size1;
}
/** 1-d convolution of x [N, C, L] (or [C, L]) with weight [OC, C, K] (+ bias [OC]), as the Conv1d layer: the conv2d
 * kernels with H = 1 (the same memory as [N, C, 1, L] and [OC, C, 1, K]). */
export function conv1d(x: TensorLike, weight: TensorLike, bias?: TensorLike | null, options: Conv1dOptions = {}): Tensor {
  const where = 'F.conv1d';
  checkOptions(where, options, ['stride', 'padding', 'dilation']);
  const t = toTensor(where, x), w = toTensor(where, weight, undefined, 'weight');
  const b = bias == null ? null : toTensor(where, bias, undefined, 'bias');
  checkFloat(where, t, w, ...(b ? [b] : []));
  if (w.shape.length !== 3) throw new RangeError(`${where}: weight must be [OC, C, K], got ${fmt(w.shape)}`);
  const [OC, C, K] = w.shape;
  const r = t.shape.length;
  if ((r !== 3 && r !== 2) || t.shape[r - 2] !== C)
    throw new RangeError(`${where}: input must be [N, ${C}, L] or [${C}, L] for a weight of ${C} input channels, got ${fmt(t.shape)}`);
  if (t.shape[r - 1] === 0) throw new RangeError(`${where}: input must have a non-empty length, got ${fmt(t.shape)}`);
  if (b && (b.shape.length !== 1 || b.shape[0] !== OC)) throw new RangeError(`${where}: bias must be [${OC}], got ${fmt(b.shape)}`);
  const S = single(where, 'stride', options.stride ?? 1, 1), P = single(where, 'padding', options.padding ?? 0, 0);
  const D = single(where, 'dilation', options.dilation ?? 1, 1);
  const x3 = r === 2 ? t.reshape([1, C, t.shape[1]]) : t;
  const [B, , L] = x3.shape;
  const OL = outSize(where, L, K, S, P, D);
  const y = conv2dNode(where, x3, w, b, { B, C, H: 1, W: L, OC, KH: 1, KW: K, SH: 1, SW: S, PH: 0, PW: P, DH: 1, DW: D }, [B, OC, OL]);
  return r === 2 ? y.reshape([OC, OL]) : y;
}

/** Options of {@link convTranspose2d}. */
export interface ConvTranspose2dOptions {
  /** Stride of the convolution it transposes (default 1). */
  stride?: Size2;
  /** Padding of the convolution it transposes, taken off the output's borders (default 0). */
  padding?: Size2;
  /** Rows and columns added at the bottom and right of the output; each below its stride or its dilation. */
  outputPadding?: Size2;
  /** Spacing of the kernel's taps (default 1). */
  dilation?: Size2;
}
/**
 * The transposed convolution of x [N, IC, H, W] (or [IC, H, W]) with weight [IC, OC, KH, KW] (+ bias [OC]), PyTorch's
 * conv_transpose2d with groups 1: output [N, OC, (H − 1)·S − 2P + D·(KH − 1) + outputPadding + 1, …]. It is the
 * gradient of a convolution with respect to its input, and runs as that on the conv2d kernels (see the node below).
 */
export function convTranspose2d(x: TensorLike, weight: TensorLike, bias?: TensorLike | null, options: ConvTranspose2dOptions = {}): Tensor {
  const where = 'F.convTranspose2d';
  checkOptions(where, options, ['stride', 'padding', 'outputPadding', 'dilation']);
  const t = toTensor(where, x), w = toTensor(where, weight, undefined, 'weight');
  const b = bias == null ? null : toTensor(where, bias, undefined, 'bias');
  checkFloat(where, t, w, ...(b ? [b] : []));
  if (w.shape.length !== 4) throw new RangeError(`${where}: weight must be [inChannels, outChannels, KH, KW], got ${fmt(w.shape)}`);
  const [IC, OC, KH, KW] = w.shape;
  const r = t.shape.length;
  if ((r !== 4 && r !== 3) || t.shape[r - 3] !== IC)
    throw new RangeError(`${where}: input must be [N, ${IC}, H, W] or [${IC}, H, W] for a weight of ${IC} input channels, got ${fmt(t.shape)}`);
  if (b && (b.shape.length !== 1 || b.shape[0] !== OC)) throw new RangeError(`${where}: bias must be [${OC}], got ${fmt(b.shape)}`);
  const [SH, SW] = sizePair(where, 'stride', options.stride ?? 1, 1), [PH, PW] = sizePair(where, 'padding', options.padding ?? 0, 0);
  const op = sizePair(where, 'outputPadding', options.outputPadding ?? 0, 0), [DH, DW] = sizePair(where, 'dilation', options.dilation ?? 1, 1);
  checkOutputPadding(where, op, [SH, SW], [DH, DW]);
  const [H, W] = t.shape.slice(-2);
  if (H === 0 || W === 0) throw new RangeError(`${where}: input must have a non-empty H × W plane, got ${fmt(t.shape)}`);
  const OH = transposedSize(H, KH, SH, PH, DH, op[0]), OW = transposedSize(W, KW, SW, PW, DW, op[1]);
  if (OH < 1 || OW < 1)
    throw new RangeError(`${where}: an input of ${H}×${W} gives an output of ${OH}×${OW} (kernel ${KH}×${KW}, stride ${SH}×${SW}, padding ${PH}×${PW}, dilation ${DH}×${DW}, outputPadding ${op[0]}×${op[1]}); it must be at least 1×1`);
  // The convolution that this transposes maps [OH, OW] to ⌊outputPadding / stride⌋ more rows (columns) than x has when
  // outputPadding ≥ stride (allowed below the dilation): x gets zeros there, which add nothing to the output.
  let x4 = r === 3 ? t.reshape([1, ...t.shape]) : t;
  x4 = padEnd(padEnd(x4, 2, Math.floor(op[0] / SH)), 3, Math.floor(op[1] / SW));
  const B = x4.shape[0];
  const y = convTranspose2dNode(where, x4, w, b, { B, C: OC, H: OH, W: OW, OC: IC, KH, KW, SH, SW, PH, PW, DH, DW });
  return r === 3 ? y.reshape(y.shape.slice(1)) : y;
}

/** x with n zeros appended along dim (x itself for n = 0); the zeros take no gradient. */
function padEnd(x: Tensor, dim: number, n: number): Tensor {
  if (n === 0) return x;
  const shape = [...x.shape];
  shape[dim] = n;
  const zeros = alloc(x.backend, shape);
  if (zeros.size) x.backend.k.fill(zeros.buf, zeros.size, 0);
  return cat([x, zeros], dim);
}

/**
 * One node for the transposed convolution of x [B, IC, ·] with w [IC, OC, KH, KW], written with the geometry `g` of the
 * convolution it transposes: conv(y) maps y [B, OC, OH, OW] (g's input: C = OC, H = OH, W = OW) to [B, IC, ·] (g's output)
 * with the same w (g's OC = IC). Then
 *   forward   y = conv2d_backward's input gradient with x as the output gradient (+ bias[c])
 *   backward  dx = conv2d_forward(dy) (the convolution itself, no bias); dw = conv2d_backward's weight gradient with dy
 *             as the input and x as the output gradient; dbias = channel_sum(dy)
 * conv2d_backward reads its `inp` only for the weight gradient, on every backend (native/cpu/conv.cc,
 * native/cuda/conv.cu, lib/backends/reference/conv.ts), so the forward passes y itself there: a buffer of the size
 * the addon checks, never read.
 */
function convTranspose2dNode(where: string, t: Tensor, w: Tensor, b: Tensor | null, g: ConvGeometry): Tensor {
  const { B, C, H, W, OC, KH, KW, SH, SW, PH, PW, DH, DW } = g;
  const y = alloc(t.backend, [B, C, H, W]);
  if (y.size) t.backend.k.conv2d_backward(y.buf, null, null, t.buf, y.buf, w.buf, B, C, H, W, OC, KH, KW, SH, SW, PH, PW, DH, DW, false);
  const out = b ? addChannelBias(where, y, b) : y;
  const inputs = b ? [t, w, b] : [t, w];
  record(where, inputs, [out], [t, w], ([gy], [xx, ww]) => {
    if (!gy) return inputs.map(() => null);
    const k = gy.backend.k;
    const dx = alloc(gy.backend, xx.shape), dw = alloc(gy.backend, ww.shape), db = b ? alloc(gy.backend, [C]) : null;
    if (dx.size) k.conv2d_forward(dx.buf, gy.buf, ww.buf, null, B, C, H, W, OC, KH, KW, SH, SW, PH, PW, DH, DW);
    if (B > 0) k.conv2d_backward(null, dw.buf, null, xx.buf, gy.buf, ww.buf, B, C, H, W, OC, KH, KW, SH, SW, PH, PW, DH, DW, false);
    else k.fill(dw.buf, dw.size, 0);
    if (db) k.channel_sum(db.buf, gy.buf, B, C, H * W, false);
    return b ? [dx, dw, db] : [dx, dw];
  });
  return out;
}

/** y [B, C, …] + bias[c], a new tensor (y is freed): the elementwise kernel with the bias broadcast. */
function addChannelBias(where: string, y: Tensor, bias: Tensor): Tensor {
  const view = noGrad(() => bias.reshape([1, bias.size, ...y.shape.slice(2).map(() => 1)]));
  const out = ewKernel(where, EW.add, [y, view]);
  view.dispose();
  y.dispose();
  return out;
}

/** Options of {@link maxPool2d} and {@link avgPool2d}. */
export interface PoolOptions {
  /** Step of the window (default: the kernel size). */
  stride?: Pair;
  /** Padding on both sides, at most half the kernel (default 0; −∞ for max, 0 for the average). */
  padding?: Pair;
}
function poolGeometry(where: string, t: Tensor, kernelSize: Pair, options: PoolOptions) {
  const [B, C, H, W] = nchw(where, t);
  const [KH, KW] = pair(where, 'kernelSize', kernelSize);
  const [SH, SW] = pair(where, 'stride', options.stride ?? kernelSize), [PH, PW] = pair(where, 'padding', options.padding ?? 0);
  if (2 * PH > KH || 2 * PW > KW) throw new RangeError(`${where}: padding must be at most half the kernel size, got padding ${PH}×${PW} for a ${KH}×${KW} kernel`);
  return { B, C, H, W, KH, KW, SH, SW, PH, PW, OH: outSize(where, H, KH, SH, PH, 1), OW: outSize(where, W, KW, SW, PW, 1) };
}
/** The maximum of each kernelSize window of x [N, C, H, W], as the MaxPool2d layer; the gradient goes to the first maximum. */
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
/** The mean of each kernelSize window of x [N, C, H, W], as the AvgPool2d layer (countIncludePad default true). */
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

/**
 * Resamples x [N, C, H, W] (or, 'nearest' only, [N, C, L]) to `size` or by `scaleFactor` (the output ⌊size·factor⌋),
 * with PyTorch 1.13's source positions, computed in float32 as its CPU kernels do (scale = in/out, or 1/scaleFactor
 * when a factor was given):
 *   nearest                  src = min(⌊dst·scale⌋, in − 1) (2-d: dst when out = in, ⌊dst/2⌋ when out = 2·in): an
 *                            indexSelect per spatial dimension
 *   bilinear                 src = max(0, (dst + 0.5)·scale − 0.5), or with alignCorners dst·(in − 1)/(out − 1);
 *                            the two neighbours ⌊src⌋ and ⌊src⌋ + 1 (clamped) weighted by 1 − frac and frac; an output
 *                            the size of the input is a copy. One node: two matrix products with the interpolation
 *                            matrices [OH, H] and [OW, W] built here.
 */
export function interpolate(x: TensorLike, options: InterpolationOptions): Tensor {
  const where = 'F.interpolate';
  const spec = interpolationSpec(where, options);
  const t = toTensor(where, x);
  checkFloat(where, t);
  const { out, factors } = interpolationInput(where, t.shape, spec);
  const sizes = t.shape.slice(2);
  if (spec.mode === 'nearest') {
    let y = t;
    sizes.forEach((n, i) => {
      y = indexSelect(y, 2 + i, fromHost(t.backend, nearestSources(n, out[i], factors[i], sizes.length === 2), [out[i]]));
    });
    return y;
  }
  const [H, W] = sizes, [OH, OW] = out;
  const rows = fromHost(t.backend, linearWeights(H, OH, spec.alignCorners, factors[0]), [OH, H]);
  const cols = fromHost(t.backend, linearWeights(W, OW, spec.alignCorners, factors[1]), [OW, W]);
  return bilinearNode(where, t, rows, cols);
}

/**
 * PyTorch 1.13's nearest source index of each of m outputs from n inputs: min(⌊dst·scale⌋, n − 1) in float32. Its 2-d
 * kernel (`twoD`) takes dst itself when m = n and ⌊dst/2⌋ when m = 2n (nearest_idx), its 1-d kernel does not; the two
 * differ when a scale factor is given whose reciprocal is not n/m (5 by 2.1 → 10: 2-d [0, 0, 1, 1, …], 1-d [0, 0, 0,
 * 1, …]). Both forwards are torch 1.13's (test/golden has the 2-d one, test/layers-conv-sampling.test.ts the 1-d one).
 * torch 1.13's 1-d backward takes the 2-d rule, so there its gradient is not that of its forward; ours is.
 */
function nearestSources(n: number, m: number, factor: number | null, twoD: boolean): Int32Array {
  if (twoD && (m === n || m === 2 * n)) return Int32Array.from({ length: m }, (_, i) => (m === n ? i : i >> 1));
  const scale = factor ? Math.fround(1 / factor) : Math.fround(n / m);
  return Int32Array.from({ length: m }, (_, i) => Math.min(Math.floor(Math.fround(i * scale)), n - 1));
}

/** The [m, n] matrix of PyTorch 1.13's linear interpolation from n points to m: row i holds 1 − λ at i0 and λ at i1. */
function linearWeights(n: number, m: number, alignCorners: boolean, factor: number | null): Float32Array {
  const f = Math.fround;
  const A = new Float32Array(m * n);
  if (m === n) {
    for (let i = 0; i < m; i++) A[i * n + i] = 1;
    return A;
  }
  const scale = alignCorners ? (m > 1 ? f((n - 1) / (m - 1)) : 0) : factor ? f(1 / factor) : f(n / m);
  for (let i = 0; i < m; i++) {
    const src = alignCorners ? f(scale * i) : Math.max(0, f(f(scale * (i + 0.5)) - 0.5));
    const i0 = Math.min(Math.floor(src), n - 1);
    const i1 = i0 < n - 1 ? i0 + 1 : i0;
    const lambda = Math.min(Math.max(f(src - i0), 0), 1);
    A[i * n + i0] += f(1 - lambda);
    A[i * n + i1] += lambda;
  }
  return A;
}

/**
 * y [N, C, OH, OW] = rows · x_p · colsᵀ for each plane x_p [H, W] of x, with rows [OH, H] and cols [OW, W], as one node
 * on the matrix-product kernels (P = N·C planes):
 *   forward   t [P·H, OW] = x [P·H, W] · colsᵀ;   y_p = rows · t_p
 *   backward  dt_p = rowsᵀ · dy_p;                dx [P·H, W] = dt [P·H, OW] · cols
 */
function bilinearNode(where: string, t: Tensor, rows: Tensor, cols: Tensor): Tensor {
  const [N, C, H, W] = t.shape, [OH, OW] = [rows.shape[0], cols.shape[0]], P = N * C;
  const y = alloc(t.backend, [N, C, OH, OW]);
  if (y.size) {
    const k = t.backend.k, tmp = alloc(t.backend, [P * H, OW]);
    k.matmul(tmp.buf, t.buf, cols.buf, P * H, OW, W, false, true, 1, 0);
    k.bmm(y.buf, rows.buf, tmp.buf, P, OH, OW, H, false, false, 0, H * OW, 1, 0);
    tmp.dispose();
  }
  const node = record(where, [t], [y], [rows, cols], ([g], [r, c]) => {
    if (!g) return [null];
    const dx = alloc(g.backend, t.shape);
    if (dx.size) {
      const k = g.backend.k, tmp = alloc(g.backend, [P * H, OW]);
      k.bmm(tmp.buf, r.buf, g.buf, P, H, OW, OH, true, false, 0, OH * OW, 1, 0);
      k.matmul(dx.buf, tmp.buf, c.buf, P * H, W, OW, false, false, 1, 0);
      tmp.dispose();
    }
    return [dx];
  });
  if (!node) {
    rows.dispose();
    cols.dispose();
  }
  return y;
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

/**
 * Group normalisation of x [N, C, …] (PyTorch's group_norm): the C channels in numGroups groups of C/numGroups, each
 * (sample, group) normalised over its channels and positions with its mean and biased variance, (x − mean)/√(var + eps),
 * then weight[c]·x̂ + bias[c] (each optional). The normalisation is the layer-norm kernels over rows
 * [N·numGroups, C/numGroups·…]; the affine is a broadcast product and sum.
 */
export function groupNorm(x: TensorLike, numGroups: number, weight?: TensorLike | null, bias?: TensorLike | null, eps = 1e-5): Tensor {
  const where = 'F.groupNorm';
  const t = toTensor(where, x);
  const w = weight == null ? null : toTensor(where, weight, undefined, 'weight');
  const b = bias == null ? null : toTensor(where, bias, undefined, 'bias');
  checkFloat(where, t, ...[w, b].filter((v): v is Tensor => v !== null));
  const G = checkNumber(where, 'numGroups', numGroups, { min: 1, integer: true });
  checkNumber(where, 'eps', eps, { min: 0 });
  if (t.shape.length < 2) throw new RangeError(`${where}: input must be [N, C, …], got ${fmt(t.shape)}`);
  const [N, C] = t.shape;
  if (C % G !== 0) throw new RangeError(`${where}: ${C} channels cannot be split into ${G} groups of equal size`);
  for (const [name, v] of [['weight', w], ['bias', b]] as const)
    if (v && (v.shape.length !== 1 || v.shape[0] !== C)) throw new RangeError(`${where}: ${name} must be [${C}], got ${fmt(v.shape)}`);
  const D = (C / G) * t.shape.slice(2).reduce((p, d) => p * d, 1);
  const normed = layerNorm(t.reshape([N * G, D]), [D], null, null, eps).reshape(t.shape);
  const perChannel = [1, C, ...t.shape.slice(2).map(() => 1)];
  const scaled = w ? ew.mul(normed, w.reshape(perChannel)) : normed;
  return b ? ew.add(scaled, b.reshape(perChannel)) : scaled;
}

/** Options of {@link batchNorm}. */
export interface BatchNormOptions {
  /** Per-channel scale [C] (default none: 1). */
  weight?: TensorLike | null;
  /** Per-channel shift [C] (default none: 0). */
  bias?: TensorLike | null;
  /** Batch statistics, updating the running ones when given (default false: the running statistics). */
  training?: boolean;
  /** Weight of the batch statistics in the running ones (default 0.1). */
  momentum?: number;
  /** Added to the variance inside the square root (default 1e-5). */
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

/** How a loss reduces its elementwise values: their mean (the default), their sum, or none (the values themselves). */
export type Reduction = 'mean' | 'sum' | 'none';
function reductionOf(where: string, r: unknown): Reduction {
  if (r === undefined) return 'mean';
  if (r !== 'mean' && r !== 'sum' && r !== 'none') throw new RangeError(`${where}: reduction must be 'mean', 'sum' or 'none', got ${describe(r)}`);
  return r;
}
function reduce(r: Reduction, v: Tensor): Tensor {
  return r === 'none' ? v : r === 'sum' ? sum(v) : mean(v);
}

/** The squared error (input − target)², reduced (default: the mean), as F.mse_loss. */
export function mseLoss(input: TensorLike, target: TensorLike, options: { reduction?: Reduction } = {}): Tensor {
  const where = 'F.mseLoss', r = reductionOf(where, options.reduction);
  const [p, t] = [toTensor(where, input), toTensor(where, target, undefined, 'target')];
  return r === 'mean' ? new MSELoss().forward(p, t) : reduce(r, ew.square(ew.sub(p, t)));
}
/** The absolute error |input − target|, reduced (default: the mean), as F.l1_loss. */
export function l1Loss(input: TensorLike, target: TensorLike, options: { reduction?: Reduction } = {}): Tensor {
  const where = 'F.l1Loss', r = reductionOf(where, options.reduction);
  const [p, t] = [toTensor(where, input), toTensor(where, target, undefined, 'target')];
  return r === 'mean' ? new L1Loss().forward(p, t) : reduce(r, ew.abs(ew.sub(p, t)));
}
/** The Huber loss, quadratic below delta (default 1) and linear above, reduced (default: the mean), as F.huber_loss. */
export function huberLoss(input: TensorLike, target: TensorLike, options: { reduction?: Reduction; delta?: number } = {}): Tensor {
  const where = 'F.huberLoss', r = reductionOf(where, options.reduction), delta = options.delta ?? 1;
  const [p, t] = [toTensor(where, input), toTensor(where, target, undefined, 'target')];
  if (r === 'mean') return new HuberLoss({ delta }).forward(p, t);
  const d = ew.sub(p, t), a = ew.abs(d);
  const quadratic = ew.mul(ew.square(d), 0.5), linearPart = ew.mul(ew.sub(a, 0.5 * delta), delta);
  return reduce(r, ew.where(ew.lt(a, delta), quadratic, linearPart));
}
/** Binary cross-entropy of probabilities in [0, 1] against targets, the logs clamped at −100, as F.binary_cross_entropy. */
export function binaryCrossEntropy(input: TensorLike, target: TensorLike, options: { reduction?: Reduction } = {}): Tensor {
  const where = 'F.binaryCrossEntropy', r = reductionOf(where, options.reduction);
  const [p, t] = [toTensor(where, input), toTensor(where, target, undefined, 'target')];
  if (r === 'mean') return new BCELoss().forward(p, t);
  // −(t·log p + (1 − t)·log(1 − p)), the logs clamped at −100 as PyTorch does
  const lp = ew.clamp(ew.log(p), -100), lq = ew.clamp(ew.log(ew.sub(1, p)), -100);
  return reduce(r, ew.neg(ew.add(ew.mul(t, lp), ew.mul(ew.sub(1, t), lq))));
}
/** Binary cross-entropy of logits against targets, computed stably for large |x|, as F.binary_cross_entropy_with_logits. */
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
