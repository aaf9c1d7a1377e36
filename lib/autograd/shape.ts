// Shape operations with their gradients. reshape, view, flatten, squeeze and unsqueeze are views (every tensor is
// contiguous); permute, transpose, expand, narrow and slice return contiguous copies made by one strided copy;
// cat and stack write each input into its place; indexSelect, gather and scatterAdd move rows and elements by
// int32 indices. A view's gradient is the gradient reshaped; a copy's is the inverse copy.
import { EW, MAX_DIMS } from '../backend.js';
import { describe } from '../errors.js';
import { setReshapeHook, Tensor } from '../tensor.js';
import { alloc, ewKernel, fmt, normDim, sameShape, sumTo, toTensor, type TensorLike } from './core.js';
import { record, requiresGrad } from './engine.js';

function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let step = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = step;
    step *= shape[i];
  }
  return s;
}

/** A new tensor (x's dtype) of `dims` = x[offset + Σ i_k·strides_k], one strided_copy; size-1 dimensions dropped
 * from the kernel's view and neighbours that are contiguous in x merged, so that up to MAX_DIMS suffice. */
function stridedCopy(where: string, x: Tensor, dims: readonly number[], strides: readonly number[], offset: number): Tensor {
  const out = new Tensor(x.backend, x.backend.alloc(x.dtype === 'int32' ? 'int32' : x.backend.floatType, dims.reduce((p, d) => p * d, 1), false), dims, x.dtype);
  if (out.size === 0) return out;
  const [n, D, S] = kernelLayout(where, dims, strides);
  x.backend.k.strided_copy(out.buf, x.buf, n, offset, D[0], D[1], D[2], D[3], D[4], D[5], S[0], S[1], S[2], S[3], S[4], S[5]);
  return out;
}

/** The strided kernels' view of a layout: size-1 dimensions dropped, neighbours that are contiguous merged, then
 * padded to MAX_DIMS dimensions (of 1, stride 0). */
function kernelLayout(where: string, dims: readonly number[], strides: readonly number[]): [number, number[], number[]] {
  const [d, s] = mergeDims(dims, strides);
  if (d.length > MAX_DIMS) throw new RangeError(`${where}: the copy needs ${d.length} dimensions, at most ${MAX_DIMS} are supported`);
  const D = [1, 1, 1, 1, 1, 1], S = [0, 0, 0, 0, 0, 0];
  d.forEach((v, i) => { D[i] = v; S[i] = s[i]; });
  return [d.length, D, S];
}

function mergeDims(dims: readonly number[], strides: readonly number[]): [number[], number[]] {
  const d: number[] = [], s: number[] = [];
  dims.forEach((v, i) => {
    if (v === 1) return;
    const last = d.length - 1;
    if (last >= 0 && s[last] === strides[i] * v) {
      d[last] *= v;
      s[last] = strides[i];
    } else {
      d.push(v);
      s.push(strides[i]);
    }
  });
  return [d, s];
}

/** into[offset + Σ i_k·strides_k] (+)= src[i] for src contiguous of `dims`. */
function stridedScatter(where: string, into: Tensor, src: Tensor, dims: readonly number[], strides: readonly number[], offset: number, accumulate: boolean): void {
  if (src.size === 0) return;
  const [n, D, S] = kernelLayout(where, dims, strides);
  into.backend.k.strided_scatter(into.buf, src.buf, n, offset, D[0], D[1], D[2], D[3], D[4], D[5], S[0], S[1], S[2], S[3], S[4], S[5], accumulate);
}

function zerosOf(x: Tensor, shape: readonly number[]): Tensor {
  const t = alloc(x.backend, shape);
  if (t.size) x.backend.k.fill(t.buf, t.size, 0);
  return t;
}

// ---- views ----

// Tensor.reshape (lib/tensor.ts) records itself through this hook: the gradient of a view is the gradient reshaped.
setReshapeHook((from, view) => {
  if (requiresGrad(from)) record('reshape', [from], [view], [], ([g]) => [g ? g.reshape(from.shape) : null]);
  return view;
});

/** The same data under another shape (one dimension may be −1): a view, as torch.reshape. */
export function reshape(x: TensorLike, shape: readonly number[]): Tensor {
  return toTensor('reshape', x).reshape(shape);
}
/** Dimensions startDim … endDim (default all) merged into one: a view, as torch.flatten; a 0-d tensor becomes [1]. */
export function flatten(x: TensorLike, startDim = 0, endDim = -1): Tensor {
  const t = toTensor('flatten', x);
  if (t.shape.length === 0) return t.reshape([1]);
  const s = normDim('flatten', startDim, t.shape.length), e = normDim('flatten', endDim, t.shape.length);
  if (s > e) throw new RangeError(`flatten: startDim ${startDim} comes after endDim ${endDim}`);
  const shape = [...t.shape.slice(0, s), t.shape.slice(s, e + 1).reduce((p, d) => p * d, 1), ...t.shape.slice(e + 1)];
  return t.reshape(shape);
}
/** Dimensions of size 1 removed (with dim, only the listed ones, each if its size is 1): a view, as torch.squeeze. */
export function squeeze(x: TensorLike, dim?: number | number[]): Tensor {
  const t = toTensor('squeeze', x);
  if (dim === undefined) return t.reshape(t.shape.filter((d) => d !== 1));
  const dims = (Array.isArray(dim) ? dim : [dim]).map((d) => normDim('squeeze', d, t.shape.length));
  return t.reshape(t.shape.filter((d, i) => !(dims.includes(i) && d === 1)));
}
/** A size-1 dimension inserted at dim (negative counts from the end): a view, as torch.unsqueeze. */
export function unsqueeze(x: TensorLike, dim: number): Tensor {
  const t = toTensor('unsqueeze', x);
  const d = normDim('unsqueeze', dim, t.shape.length, true);
  return t.reshape([...t.shape.slice(0, d), 1, ...t.shape.slice(d)]);
}

// ---- copies ----

/** The dimensions reordered: output dimension i is input dimension dims[i] (a contiguous copy), as torch.permute. */
export function permute(x: TensorLike, dims: readonly number[]): Tensor {
  const where = 'permute';
  const t = toTensor(where, x);
  if (!Array.isArray(dims)) throw new TypeError(`${where}: dims must be an array, got ${describe(dims)}`);
  const n = t.shape.length;
  if (dims.length !== n) throw new RangeError(`${where}: expected ${n} dims for a tensor of shape ${fmt(t.shape)}, got [${dims.join(', ')}]`);
  const p = dims.map((d) => normDim(where, d, n));
  if (new Set(p).size !== n) throw new RangeError(`${where}: dims [${dims.join(', ')}] repeat a dimension`);
  if (p.every((d, i) => d === i)) return t;
  const strides = contiguousStrides(t.shape);
  const out = stridedCopy(where, t, p.map((d) => t.shape[d]), p.map((d) => strides[d]), 0);
  const inverse = new Array<number>(n);
  p.forEach((d, i) => (inverse[d] = i));
  record(where, [t], [out], [], ([g]) => [g ? permuteRaw(g, inverse) : null]);
  return out;
}
function permuteRaw(g: Tensor, p: number[]): Tensor {
  const strides = contiguousStrides(g.shape);
  return stridedCopy('permute', g, p.map((d) => g.shape[d]), p.map((d) => strides[d]), 0);
}

/** Dimensions dim0 and dim1 swapped (a contiguous copy), as torch.transpose. */
export function transpose(x: TensorLike, dim0: number, dim1: number): Tensor {
  const t = toTensor('transpose', x);
  const n = t.shape.length;
  const a = normDim('transpose', dim0, n), b = normDim('transpose', dim1, n);
  const p = Array.from({ length: n }, (_, i) => i);
  [p[a], p[b]] = [p[b], p[a]];
  return permute(t, p);
}
/** The transpose of a matrix (a 0-d or 1-d tensor is returned as is), as torch.t. */
export function t(x: TensorLike): Tensor {
  const v = toTensor('t', x);
  if (v.shape.length > 2) throw new RangeError(`t: expects a tensor of at most 2 dimensions, got shape ${fmt(v.shape)}; use transpose(dim0, dim1)`);
  return v.shape.length < 2 ? v : transpose(v, 0, 1);
}

/** x broadcast to `shape` (−1 keeps a dimension), as a contiguous copy. */
export function expand(x: TensorLike, shape: readonly number[]): Tensor {
  const where = 'expand';
  const t = toTensor(where, x);
  if (!Array.isArray(shape)) throw new TypeError(`${where}: shape must be an array, got ${describe(shape)}`);
  if (shape.length < t.shape.length) throw new RangeError(`${where}: cannot expand ${fmt(t.shape)} to fewer dimensions ${fmt(shape)}`);
  const lead = shape.length - t.shape.length;
  const target = shape.map((d, i) => {
    const have = i < lead ? 1 : t.shape[i - lead];
    const want = d === -1 ? have : d;
    if (d === -1 && i < lead) throw new RangeError(`${where}: −1 is not allowed for a new leading dimension, got ${fmt(shape)}`);
    if (!Number.isInteger(want) || want < 0 || (have !== 1 && have !== want))
      throw new RangeError(`${where}: cannot expand ${fmt(t.shape)} to ${fmt(shape)} (dimension ${i}: ${have} to ${d})`);
    return want;
  });
  if (sameShape(target, t.shape)) return t;
  const out = t.dtype === 'int32' ? expandInt(t, target) : ewKernel(where, EW.identity, [t], 0, 0, target);
  record(where, [t], [out], [], ([g]) => [g ? sumTo(g, t.shape) : null]);
  return out;
}
function expandInt(t: Tensor, target: number[]): Tensor {
  const lead = target.length - t.shape.length;
  const own = contiguousStrides(t.shape);
  return stridedCopy('expand', t, target, target.map((_, i) => (i < lead || t.shape[i - lead] === 1 ? 0 : own[i - lead])), 0);
}
/** expand under NumPy's name: x broadcast to `shape` (a contiguous copy), as torch.broadcast_to. */
export function broadcastTo(x: TensorLike, shape: readonly number[]): Tensor {
  return expand(x, shape);
}

/** Every tensor is contiguous: returns x. */
export function contiguous(x: TensorLike): Tensor {
  return toTensor('contiguous', x);
}

/** Elements start … start + length − 1 along dim (a copy). */
export function narrow(x: TensorLike, dim: number, start: number, length: number): Tensor {
  const t = toTensor('narrow', x);
  const d = normDim('narrow', dim, t.shape.length);
  const n = t.shape[d];
  const s = start < 0 ? start + n : start;
  if (!Number.isInteger(start) || !Number.isInteger(length) || s < 0 || length < 0 || s + length > n)
    throw new RangeError(`narrow: start ${start} and length ${length} do not fit dimension ${dim} of size ${n} (shape ${fmt(t.shape)})`);
  return slice(t, d, s, s + length, 1);
}

/** x[…, start:end:step, …] along dim (Python's slice semantics, negative start and end from the end; a copy). */
export function slice(x: TensorLike, dim: number, start = 0, end?: number, step = 1): Tensor {
  const where = 'slice';
  const t = toTensor(where, x);
  const d = normDim(where, dim, t.shape.length);
  const n = t.shape[d];
  if (!Number.isInteger(step) || step < 1) throw new RangeError(`${where}: step must be a positive integer, got ${step}`);
  const clampIndex = (i: number) => Math.min(Math.max(i < 0 ? i + n : i, 0), n);
  const s = clampIndex(start), e = clampIndex(end ?? n);
  const len = Math.max(0, Math.ceil((e - s) / step));
  const strides = contiguousStrides(t.shape);
  const dims = [...t.shape];
  dims[d] = len;
  const st = [...strides];
  st[d] = strides[d] * step;
  const offset = s * strides[d];
  if (len === n && step === 1) return t;
  const out = stridedCopy(where, t, dims, st, offset);
  record(where, [t], [out], [], ([g]) => {
    if (!g) return [null];
    const z = zerosOf(g, t.shape);
    stridedScatter(where, z, g, dims, st, offset, false);
    return [z];
  });
  return out;
}

/** One index along dim, the dimension removed (x[i] for dim 0). */
export function select(x: TensorLike, dim: number, index: number): Tensor {
  const t = toTensor('select', x);
  const d = normDim('select', dim, t.shape.length);
  const n = t.shape[d];
  if (!Number.isInteger(index) || index < -n || index >= n) throw new RangeError(`select: index ${index} is out of range for dimension ${dim} of size ${n}`);
  const i = index < 0 ? index + n : index;
  const s = slice(t, d, i, i + 1);
  return s.reshape(t.shape.filter((_, k) => k !== d));
}

/** Tensors joined along dim; all shapes equal outside dim. */
export function cat(tensors: readonly TensorLike[], dim = 0): Tensor {
  const where = 'cat';
  if (!Array.isArray(tensors) || tensors.length === 0) throw new TypeError(`${where}: expected a non-empty array of tensors, got ${describe(tensors)}`);
  const ts = tensors.map((x, i) => toTensor(where, x, undefined, `tensors[${i}]`));
  const first = ts[0];
  const d = normDim(where, dim, first.shape.length);
  ts.forEach((x, i) => {
    if (x.backend !== first.backend) throw new TypeError(`${where}: tensors[${i}] is on '${x.device}', tensors[0] on '${first.device}'`);
    if (x.dtype === 'int32') throw new TypeError(`${where}: tensors[${i}] is int32; int32 tensors cannot be joined yet (join their host arrays)`);
    if (x.shape.length !== first.shape.length || x.shape.some((v, k) => k !== d && v !== first.shape[k]))
      throw new RangeError(`${where}: tensors[${i}] has shape ${fmt(x.shape)}, expected ${fmt(first.shape)} outside dimension ${dim}`);
  });
  const shape = [...first.shape];
  shape[d] = ts.reduce((s, x) => s + x.shape[d], 0);
  const out = new Tensor(first.backend, first.backend.alloc(first.dtype === 'int32' ? 'int32' : first.backend.floatType, shape.reduce((p, v) => p * v, 1), false), shape, first.dtype);
  const strides = contiguousStrides(shape);
  const offsets: number[] = [];
  let at = 0;
  for (const x of ts) {
    offsets.push(at * strides[d]);
    stridedScatter(where, out, x, x.shape, strides, at * strides[d], false);
    at += x.shape[d];
  }
  record(where, ts, [out], [], ([g]) => ts.map((x, i) => (g ? stridedCopy(where, g, x.shape, strides, offsets[i]) : null)));
  return out;
}

/** Tensors of one shape joined along a new dimension dim. */
export function stack(tensors: readonly TensorLike[], dim = 0): Tensor {
  if (!Array.isArray(tensors) || tensors.length === 0) throw new TypeError(`stack: expected a non-empty array of tensors, got ${describe(tensors)}`);
  const ts = tensors.map((x, i) => toTensor('stack', x, undefined, `tensors[${i}]`));
  ts.forEach((x, i) => {
    if (!sameShape(x.shape, ts[0].shape)) throw new RangeError(`stack: tensors[${i}] has shape ${fmt(x.shape)}, tensors[0] ${fmt(ts[0].shape)}`);
  });
  const d = normDim('stack', dim, ts[0].shape.length, true);
  return cat(ts.map((x) => unsqueeze(x, d)), d);
}

/** Pieces of `size` along dim (the last may be smaller), or of the given sizes. */
export function split(x: TensorLike, sizeOrSizes: number | readonly number[], dim = 0): Tensor[] {
  const t = toTensor('split', x);
  const d = normDim('split', dim, t.shape.length);
  const n = t.shape[d];
  let sizes: number[];
  if (typeof sizeOrSizes === 'number') {
    if (!Number.isInteger(sizeOrSizes) || sizeOrSizes < 1) throw new RangeError(`split: size must be a positive integer, got ${sizeOrSizes}`);
    sizes = [];
    for (let at = 0; at < n; at += sizeOrSizes) sizes.push(Math.min(sizeOrSizes, n - at));
    if (n === 0) sizes = [0];
  } else {
    sizes = [...sizeOrSizes];
    if (sizes.reduce((s, v) => s + v, 0) !== n) throw new RangeError(`split: sizes [${sizes.join(', ')}] do not add up to dimension ${dim} of size ${n}`);
  }
  let at = 0;
  return sizes.map((s) => {
    const piece = narrow(t, d, at, s);
    at += s;
    return piece;
  });
}
/** `chunks` pieces of equal size along dim (the last may be smaller), as torch.chunk. */
export function chunk(x: TensorLike, chunks: number, dim = 0): Tensor[] {
  const t = toTensor('chunk', x);
  if (!Number.isInteger(chunks) || chunks < 1) throw new RangeError(`chunk: chunks must be a positive integer, got ${chunks}`);
  const d = normDim('chunk', dim, t.shape.length);
  return split(t, Math.max(1, Math.ceil(t.shape[d] / chunks)), d);
}

// ---- indexing ----

function indexTensor(where: string, index: unknown, x: Tensor): Tensor {
  const idx = toTensor(where, index, undefined, 'index');
  if (idx.dtype !== 'int32') throw new TypeError(`${where}: index must be an int32 tensor, got ${idx.dtype}`);
  if (idx.backend !== x.backend) throw new TypeError(`${where}: index is on '${idx.device}' but the input is on '${x.device}'`);
  return idx;
}
function around(shape: readonly number[], d: number): [number, number] {
  let outer = 1, inner = 1;
  for (let i = 0; i < d; i++) outer *= shape[i];
  for (let i = d + 1; i < shape.length; i++) inner *= shape[i];
  return [outer, inner];
}

/** The entries of x at `index` (int32, 1-d) along dim. */
export function indexSelect(x: TensorLike, dim: number, index: TensorLike): Tensor {
  const where = 'indexSelect';
  const t = toTensor(where, x);
  const idx = indexTensor(where, index, t);
  if (idx.shape.length > 1) throw new RangeError(`${where}: index must be 1-d, got shape ${fmt(idx.shape)}`);
  const d = normDim(where, dim, t.shape.length);
  const [outer, inner] = around(t.shape, d);
  const n = idx.size, D = t.shape[d];
  const shape = [...t.shape];
  shape[d] = n;
  const out = new Tensor(t.backend, t.backend.alloc(t.dtype === 'int32' ? 'int32' : t.backend.floatType, outer * n * inner, false), shape, t.dtype);
  if (out.size) t.backend.k.index_select(out.buf, t.buf, idx.buf, outer, D, inner, n);
  record(where, [t], [out], [idx], ([g], [ix]) => {
    if (!g) return [null];
    const z = zerosOf(g, t.shape);
    if (g.size) g.backend.k.index_add(z.buf, g.buf, ix.buf, outer, D, inner, n);
    return [z];
  });
  return out;
}

function gatherLayout(where: string, t: Tensor, idx: Tensor, d: number): [number, number, number, number] {
  if (idx.shape.length !== t.shape.length || idx.shape.some((v, k) => k !== d && v !== t.shape[k]))
    throw new RangeError(`${where}: index of shape ${fmt(idx.shape)} must match the input's shape ${fmt(t.shape)} outside dimension ${d}`);
  const [outer, inner] = around(t.shape, d);
  return [outer, t.shape[d], idx.shape[d], inner];
}

/** out[…, j, …] = x[…, index[…, j, …], …] along dim (torch.gather; index matches x outside dim). */
export function gather(x: TensorLike, dim: number, index: TensorLike): Tensor {
  const where = 'gather';
  const t = toTensor(where, x);
  const idx = indexTensor(where, index, t);
  const d = normDim(where, dim, t.shape.length);
  const [outer, D, n, inner] = gatherLayout(where, t, idx, d);
  const out = new Tensor(t.backend, t.backend.alloc(t.dtype === 'int32' ? 'int32' : t.backend.floatType, idx.size, false), idx.shape, t.dtype);
  if (out.size) t.backend.k.gather(out.buf, t.buf, idx.buf, outer, D, n, inner);
  record(where, [t], [out], [idx], ([g], [ix]) => {
    if (!g) return [null];
    const z = zerosOf(g, t.shape);
    if (g.size) g.backend.k.scatter_add(z.buf, g.buf, ix.buf, outer, D, n, inner);
    return [z];
  });
  return out;
}

/** x with src added at index along dim (torch.scatter_add, out of place; deterministic). */
export function scatterAdd(x: TensorLike, dim: number, index: TensorLike, src: TensorLike): Tensor {
  const where = 'scatterAdd';
  const t = toTensor(where, x);
  const idx = indexTensor(where, index, t);
  const s = toTensor(where, src, t, 'src');
  if (!sameShape(s.shape, idx.shape)) throw new RangeError(`${where}: src has shape ${fmt(s.shape)}, index ${fmt(idx.shape)}; they must match`);
  const d = normDim(where, dim, t.shape.length);
  const [outer, D, n, inner] = gatherLayout(where, t, idx, d);
  const out = alloc(t.backend, t.shape);
  t.backend.k.copy(out.buf, t.buf, t.size);
  if (s.size) t.backend.k.scatter_add(out.buf, s.buf, idx.buf, outer, D, n, inner);
  record(where, [t, s], [out], [idx], ([g], [ix]) => {
    if (!g) return [null, null];
    const gs = alloc(g.backend, idx.shape);
    if (gs.size) g.backend.k.gather(gs.buf, g.buf, ix.buf, outer, D, n, inner);
    return [g, gs];
  });
  return out;
}
