// Reductions with their gradients: sum, mean, max / min (over all elements, or over one dimension with the
// positions), argmax / argmin, var, std, logsumexp, norm, and softmax / logSoftmax along a dimension. A reduction
// over several dimensions reduces them one at a time, highest first, in a fixed order (deterministic).
import { describe } from '../errors.js';
import { Tensor } from '../tensor.js';
import { alloc, checkFloat, EW, ewKernel, fmt, normDim, REDUCE, reduceDim, reduceKept, scalarLike, toTensor, type TensorLike } from './core.js';
import { record } from './engine.js';
import { abs, add, div, exp, log, mul, sqrt, sub } from './elementwise.js';
import { permute } from './shape.js';

/** Options of the reductions. */
export interface ReduceOptions {
  /** Keep each reduced dimension with size 1 (default false: it is removed). */
  keepdim?: boolean;
}

/** The reduced dimensions, sorted (all when dim is undefined or null). */
function dimsOf(where: string, x: Tensor, dim: number | readonly number[] | undefined | null): number[] {
  const n = x.shape.length;
  if (dim === undefined || dim === null) return Array.from({ length: n }, (_, i) => i);
  const list = Array.isArray(dim) ? dim : [dim];
  if (!Array.isArray(dim) && typeof dim !== 'number') throw new TypeError(`${where}: dim must be a number or an array of numbers, got ${describe(dim)}`);
  const ds = list.map((d) => normDim(where, d, n));
  if (new Set(ds).size !== ds.length) throw new RangeError(`${where}: dim [${list.join(', ')}] repeats a dimension`);
  return ds.sort((a, b) => a - b);
}

function keptShape(shape: readonly number[], dims: number[]): number[] {
  return shape.map((d, i) => (dims.includes(i) ? 1 : d));
}
function finalShape(shape: readonly number[], dims: number[], keepdim: boolean): number[] {
  return keepdim ? keptShape(shape, dims) : shape.filter((_, i) => !dims.includes(i));
}

/** g (of the kept shape) broadcast back to `shape`. */
function expandBack(g: Tensor, kept: number[], shape: readonly number[]): Tensor {
  return ewKernel('grad', EW.identity, [g.reshape(kept)], 0, 0, shape);
}

/** The sum over dim (one dimension, several, or all when omitted), as torch.sum. */
export function sum(x: TensorLike, dim?: number | readonly number[] | null, options: ReduceOptions = {}): Tensor {
  const where = 'sum';
  const t = toTensor(where, x);
  checkFloat(where, t);
  const dims = dimsOf(where, t, dim);
  const kept = keptShape(t.shape, dims);
  const out = reduceKept(t, dims, REDUCE.sum).reshape(finalShape(t.shape, dims, options.keepdim ?? false));
  record(where, [t], [out], [], ([g]) => [g ? expandBack(g, kept, t.shape) : null]);
  return out;
}

/** The mean over dim (one dimension, several, or all when omitted), as torch.mean. */
export function mean(x: TensorLike, dim?: number | readonly number[] | null, options: ReduceOptions = {}): Tensor {
  const where = 'mean';
  const t = toTensor(where, x);
  checkFloat(where, t);
  const dims = dimsOf(where, t, dim);
  const count = dims.reduce((p, d) => p * t.shape[d], 1);
  const kept = keptShape(t.shape, dims);
  const s = reduceKept(t, dims, REDUCE.sum);
  const out = ewKernel(where, EW.div, [s, scalarLike(s, count)]).reshape(finalShape(t.shape, dims, options.keepdim ?? false));
  s.dispose();
  record(where, [t], [out], [], ([g]) => {
    if (!g) return [null];
    const scaled = ewKernel(where, EW.div, [g, scalarLike(g, count)]);
    const r = expandBack(scaled, kept, t.shape);
    scaled.dispose();
    return [r];
  });
  return out;
}

/** max / min over all elements (a 0-d tensor; the gradient is shared evenly among the elements that tie). */
function extremeAll(where: string, op: number, t: Tensor): Tensor {
  checkFloat(where, t);
  if (t.size === 0) throw new RangeError(`${where}: the tensor is empty, so it has no ${where}`);
  const flat = t.reshape([t.size]);
  const { values } = reduceDim(flat, 0, op);
  const out = values.reshape([]);
  record(where, [t], [out], [t, out], ([g], [x, m]) => {
    if (!g) return [null];
    const mask = ewKernel(where, EW.eq, [x, m]);
    const count = reduceDim(mask.reshape([mask.size]), 0, REDUCE.sum).values;
    const share = ewKernel(where, EW.div, [g, count.reshape([])]);
    const r = ewKernel(where, EW.mul, [mask, share]);
    for (const v of [mask, count, share]) v.dispose();
    return [r];
  });
  return out;
}

/** max / min along dim: { values, indices } (int32), the gradient going to the position found. */
function extremeDim(where: string, op: number, t: Tensor, dim: number, keepdim: boolean): { values: Tensor; indices: Tensor } {
  checkFloat(where, t);
  const d = normDim(where, dim, t.shape.length);
  if (t.shape.length === 0) return { values: t, indices: new Tensor(t.backend, t.backend.fromHost(Int32Array.of(0)), [], 'int32') };
  if (t.shape[d] === 0) throw new RangeError(`${where}: dimension ${dim} of shape ${fmt(t.shape)} is empty, so it has no ${where}`);
  const r = reduceDim(t, d, op, true);
  const shape = finalShape(t.shape, [d], keepdim);
  const values = r.values.reshape(shape), indices = r.indices!.reshape(shape);
  const kept = keptShape(t.shape, [d]);
  let outer = 1, inner = 1;
  for (let i = 0; i < d; i++) outer *= t.shape[i];
  for (let i = d + 1; i < t.shape.length; i++) inner *= t.shape[i];
  record(where, [t], [values], [indices], ([g], [ix]) => {
    if (!g) return [null];
    const z = alloc(g.backend, t.shape);
    g.backend.k.fill(z.buf, z.size, 0);
    g.backend.k.scatter_add(z.buf, g.reshape(kept).buf, ix.buf, outer, t.shape[d], 1, inner);
    return [z];
  });
  return { values, indices };
}

/** The largest element (a 0-d tensor); the gradient is shared evenly among the elements that tie. NaN wins. */
export function max(x: TensorLike): Tensor;
/** The largest values along dim and their int32 positions (the first at ties), as torch.max(x, dim); the gradient
 * goes to the position found. */
export function max(x: TensorLike, dim: number, options?: ReduceOptions): {
  /** The largest values. */
  values: Tensor;
  /** Their positions along dim (int32). */
  indices: Tensor;
};
export function max(x: TensorLike, dim?: number, options: ReduceOptions = {}): Tensor | { values: Tensor; indices: Tensor } {
  const t = toTensor('max', x);
  return dim === undefined ? extremeAll('max', REDUCE.max, t) : extremeDim('max', REDUCE.max, t, dim, options.keepdim ?? false);
}
/** The smallest element (a 0-d tensor); the gradient is shared evenly among the elements that tie. NaN wins. */
export function min(x: TensorLike): Tensor;
/** The smallest values along dim and their int32 positions (the first at ties), as torch.min(x, dim); the gradient
 * goes to the position found. */
export function min(x: TensorLike, dim: number, options?: ReduceOptions): {
  /** The smallest values. */
  values: Tensor;
  /** Their positions along dim (int32). */
  indices: Tensor;
};
export function min(x: TensorLike, dim?: number, options: ReduceOptions = {}): Tensor | { values: Tensor; indices: Tensor } {
  const t = toTensor('min', x);
  return dim === undefined ? extremeAll('min', REDUCE.min, t) : extremeDim('min', REDUCE.min, t, dim, options.keepdim ?? false);
}

function argExtreme(where: string, op: number, x: TensorLike, dim?: number, options: ReduceOptions = {}): Tensor {
  const t = toTensor(where, x);
  checkFloat(where, t);
  if (dim === undefined) {
    if (t.size === 0) throw new RangeError(`${where}: the tensor is empty`);
    return reduceDim(t.reshape([t.size]), 0, op, true).indices!.reshape([]);
  }
  const d = normDim(where, dim, t.shape.length);
  if (t.shape.length === 0) return new Tensor(t.backend, t.backend.fromHost(Int32Array.of(0)), [], 'int32');
  if (t.shape[d] === 0) throw new RangeError(`${where}: dimension ${dim} of shape ${fmt(t.shape)} is empty`);
  const r = reduceDim(t, d, op, true);
  r.values.dispose();
  return r.indices!.reshape(finalShape(t.shape, [d], options.keepdim ?? false));
}
/** The position of the largest element (over all, flattened, or along dim), int32; the first one at ties. */
export const argmax = (x: TensorLike, dim?: number, options?: ReduceOptions) => argExtreme('argmax', REDUCE.max, x, dim, options);
/** The position of the smallest element (over all, flattened, or along dim), int32; the first one at ties. */
export const argmin = (x: TensorLike, dim?: number, options?: ReduceOptions) => argExtreme('argmin', REDUCE.min, x, dim, options);

/** Options of var and std. */
export interface VarOptions extends ReduceOptions {
  /** Subtracted from the count in the denominator: 1 (Bessel's correction, PyTorch's default) or 0. */
  correction?: number;
}

/** The variance over dim (all when omitted), with Bessel's correction by default, as torch.var. */
export function variance(x: TensorLike, dim?: number | readonly number[] | null, options: VarOptions = {}): Tensor {
  const where = 'var';
  const t = toTensor(where, x);
  checkFloat(where, t);
  const dims = dimsOf(where, t, dim);
  const count = dims.reduce((p, d) => p * t.shape[d], 1);
  const correction = options.correction ?? 1;
  if (typeof correction !== 'number' || correction < 0) throw new TypeError(`${where}: correction must be a non-negative number, got ${describe(correction)}`);
  const m = mean(t, dims, { keepdim: true });
  const d = sub(t, m);
  const sq = mul(d, d);
  const s = sum(sq, dims, { keepdim: options.keepdim ?? false });
  return div(s, Math.max(0, count - correction));
}
/** The standard deviation over dim (all when omitted): √var, with Bessel's correction by default, as torch.std. */
export function std(x: TensorLike, dim?: number | readonly number[] | null, options: VarOptions = {}): Tensor {
  return sqrt(variance(x, dim, options));
}

/** log Σ exp(x) over dim, computed as m + log Σ exp(x − m) with m the maximum (infinite m taken as 0). */
export function logsumexp(x: TensorLike, dim?: number | readonly number[] | null, options: ReduceOptions = {}): Tensor {
  const where = 'logsumexp';
  const t = toTensor(where, x);
  checkFloat(where, t);
  const dims = dimsOf(where, t, dim);
  // the shift: the maximum, detached (it cancels in the gradient)
  const m = reduceKept(t, dims, REDUCE.max);
  const finite = ewKernel(where, EW.abs, [m]);
  const isInf = ewKernel(where, EW.eq, [finite, scalarLike(m, Infinity)]);
  const shift = ewKernel(where, EW.maskedFill, [m, isInf], 0);
  for (const v of [m, finite, isInf]) v.dispose();
  const e = exp(sub(t, shift));
  const s = sum(e, dims, { keepdim: true });
  const out = add(log(s), shift);
  const shape = finalShape(t.shape, dims, options.keepdim ?? false);
  return out.reshape(shape);
}

/** The p-norm (p = 2 by default; 1 and Infinity too) over dim or all; its gradient is 0 where the norm is 0. */
export function norm(x: TensorLike, p = 2, dim?: number | readonly number[] | null, options: ReduceOptions = {}): Tensor {
  const where = 'norm';
  const t = toTensor(where, x);
  checkFloat(where, t);
  if (p === 1) return sum(abs(t), dim, options);
  if (p === Infinity) {
    const a = abs(t);
    if (dim === undefined || dim === null) return max(a);
    if (typeof dim !== 'number') throw new TypeError(`${where}: the infinity norm takes one dim`);
    return max(a, dim, options).values;
  }
  if (p !== 2) throw new RangeError(`${where}: p must be 1, 2 or Infinity, got ${p}`);
  const dims = dimsOf(where, t, dim);
  const kept = keptShape(t.shape, dims);
  const sq = ewKernel(where, EW.square, [t]);
  const s = reduceKept(sq, dims, REDUCE.sum);
  sq.dispose();
  const n = ewKernel(where, EW.sqrt, [s]);
  s.dispose();
  const out = n.reshape(finalShape(t.shape, dims, options.keepdim ?? false));
  record(where, [t], [out], [t, n], ([g], [xx, nn]) => {
    if (!g) return [null];
    // g · x / ‖x‖, 0 where ‖x‖ = 0
    const q = ewKernel(where, EW.div, [g.reshape(kept), nn]);
    const zero = ewKernel(where, EW.eq, [nn, scalarLike(nn, 0)]);
    const safe = ewKernel(where, EW.maskedFill, [q, zero], 0);
    const r = ewKernel(where, EW.mul, [xx, safe]);
    for (const v of [q, zero, safe]) v.dispose();
    return [r];
  });
  return out;
}

/** softmax along dim (the last by default): the row kernel, with the dimension moved last when it is not. */
export function softmax(x: TensorLike, dim = -1): Tensor {
  const where = 'softmax';
  const t = toTensor(where, x);
  checkFloat(where, t);
  if (t.shape.length === 0) return softmax(t.reshape([1]), 0).reshape([]);
  const d = normDim(where, dim, t.shape.length);
  const last = t.shape.length - 1;
  if (d !== last) {
    const p = Array.from({ length: t.shape.length }, (_, i) => i);
    [p[d], p[last]] = [p[last], p[d]];
    return permute(softmax(permute(t, p), -1), p);
  }
  const C = t.shape[last], B = t.size / Math.max(C, 1);
  const out = alloc(t.backend, t.shape);
  if (out.size) t.backend.k.softmax_forward(out.buf, t.buf, B, C);
  record(where, [t], [out], [out], ([g], [y]) => {
    if (!g) return [null];
    const r = alloc(g.backend, g.shape);
    if (r.size) g.backend.k.softmax_backward(r.buf, g.buf, y.buf, B, C);
    return [r];
  });
  return out;
}

/** log softmax along dim: x − logsumexp(x). */
export function logSoftmax(x: TensorLike, dim = -1): Tensor {
  const t = toTensor('logSoftmax', x);
  checkFloat('logSoftmax', t);
  if (t.shape.length === 0) return sub(t, t);
  const d = normDim('logSoftmax', dim, t.shape.length);
  return sub(t, logsumexp(t, d, { keepdim: true }));
}
