// The ground every tensor operation stands on: turning arguments into tensors (a Parameter is its value, a plain
// number a scalar), NumPy broadcasting, the one elementwise kernel, reductions over axes, and the reduction of a
// broadcast gradient back to an input's shape. Each operation is shape logic here plus one queued kernel call.
import { EW, MAX_DIMS, REDUCE, type Backend } from '../backend.js';
import { describe, RetrogradError } from '../errors.js';
import { copyOf, fromHost, Tensor } from '../tensor.js';
import { record } from './engine.js';

/** Anything an operation takes as a tensor: a Tensor, a Parameter (its value) or a plain number (a scalar). */
export type TensorLike = Tensor | number | {
  /** The tensor a Parameter stands for. */
  readonly value: Tensor;
};

/** The tensor an argument stands for; numbers become scalars on `like`'s backend. */
export function toTensor(where: string, x: unknown, like?: Tensor, name = 'input'): Tensor {
  if (x instanceof Tensor) {
    if (x.disposed) throw new RetrogradError(`${where}: ${name} has been disposed`, 'DISPOSED');
    return x;
  }
  if (typeof x === 'number') {
    if (!like) throw new TypeError(`${where}: ${name} must be a Tensor (a number needs a tensor beside it), got ${x}`);
    return scalarLike(like, x);
  }
  if (x !== null && typeof x === 'object' && 'value' in x && (x as { value: unknown }).value instanceof Tensor) return (x as { value: Tensor }).value;
  throw new TypeError(`${where}: ${name} must be a Tensor, a Parameter or a number, got ${describe(x)}`);
}

/** A 0-d tensor holding v, on x's backend. */
export function scalarLike(x: Tensor, v: number): Tensor {
  return fromHost(x.backend, Float32Array.of(v), []);
}

/** A new float tensor on `backend`; its contents are for the kernel to write. */
export function alloc(backend: Backend, shape: readonly number[]): Tensor {
  let n = 1;
  for (const d of shape) n *= d;
  return new Tensor(backend, backend.alloc(backend.floatType, n, false), shape, backend.floatType);
}

export function fmt(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Float inputs on one backend; `where` names the operation in errors. */
export function checkFloat(where: string, ...xs: Tensor[]): void {
  for (const x of xs) {
    if (x.dtype === 'int32') throw new TypeError(`${where}: expected a float tensor, got an int32 tensor of shape ${fmt(x.shape)} (int32 tensors hold indices and labels)`);
    if (x.backend !== xs[0].backend) throw new TypeError(`${where}: tensors on '${xs[0].device}' and '${x.device}'; move one of them with .to()`);
  }
}

/** NumPy's broadcast shape of several shapes, or a RangeError naming the operation and the shapes. */
export function broadcastShapes(where: string, ...shapes: (readonly number[])[]): number[] {
  const n = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(n).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const k = n - s.length + i, d = s[i];
      if (d === out[k] || d === 1) continue;
      if (out[k] === 1) out[k] = d;
      else throw new RangeError(`${where}: shapes ${shapes.map(fmt).join(' and ')} cannot be broadcast together (dimension ${k - n}: ${out[k]} vs ${d})`);
    }
  }
  return out;
}

/** Normalises a dimension (negative counts from the end) of a tensor with `ndim` dimensions. */
export function normDim(where: string, dim: unknown, ndim: number, forInsert = false): number {
  const n = forInsert ? ndim + 1 : ndim;
  if (typeof dim !== 'number' || !Number.isInteger(dim)) throw new TypeError(`${where}: dim must be an integer, got ${describe(dim)}`);
  const lo = -Math.max(n, 1), hi = Math.max(n, 1) - 1;
  if (dim < lo || dim > hi) throw new RangeError(`${where}: dim ${dim} is out of range for a tensor of ${ndim} dimension${ndim === 1 ? '' : 's'} (expected ${lo} to ${hi})`);
  return dim < 0 ? dim + Math.max(n, 1) : dim;
}

/**
 * The dimensions and broadcast masks of `shapes` against `out`, merged where possible: neighbouring dimensions that
 * every input broadcasts alike fold into one, so most calls need one to three dimensions (and the contiguous fast
 * path when no input broadcasts). Throws beyond MAX_DIMS.
 */
function layout(where: string, out: readonly number[], shapes: (readonly number[])[]): { dims: number[]; masks: number[] } {
  const n = out.length;
  // per dimension: the out size, and whether each input broadcasts along it
  const cols: { d: number; b: boolean[] }[] = [];
  for (let k = 0; k < n; k++) {
    if (out[k] === 1) continue; // size-1 dimensions change nothing
    cols.push({ d: out[k], b: shapes.map((s) => (k - (n - s.length) < 0 ? true : s[k - (n - s.length)] === 1)) });
  }
  const merged: { d: number; b: boolean[] }[] = [];
  for (const c of cols) {
    const last = merged[merged.length - 1];
    if (last && last.b.every((v, i) => v === c.b[i])) last.d *= c.d;
    else merged.push({ d: c.d, b: [...c.b] });
  }
  if (merged.length > MAX_DIMS) throw new RangeError(`${where}: broadcasting over ${merged.length} dimensions, at most ${MAX_DIMS} are supported`);
  return {
    dims: merged.map((c) => c.d),
    masks: shapes.map((_, i) => merged.reduce((m, c, k) => m | ((c.b[i] ? 1 : 0) << k), 0)),
  };
}

/** out = op(inputs…) by the elementwise kernel, broadcasting the inputs to `outShape` (default: their broadcast). */
export function ewKernel(where: string, op: number, inputs: Tensor[], alpha = 0, beta = 0, outShape?: readonly number[]): Tensor {
  const [a, b, c] = inputs;
  if ((!outShape || sameShape(outShape, a.shape)) && (!b || sameShape(b.shape, a.shape)) && (!c || sameShape(c.shape, a.shape))) {
    // nothing broadcasts: the short call
    const out = alloc(a.backend, a.shape);
    if (out.size > 0) out.backend.k.elementwise_flat(out.buf, a.buf, b ? b.buf : null, c ? c.buf : null, op, alpha, beta, out.size);
    return out;
  }
  const shape = outShape ?? broadcastShapes(where, ...inputs.map((x) => x.shape));
  const out = alloc(inputs[0].backend, shape);
  if (out.size === 0) return out;
  const { dims, masks } = layout(where, shape, inputs.map((x) => x.shape));
  const d = [1, 1, 1, 1, 1, 1];
  dims.forEach((v, i) => (d[i] = v));
  out.backend.k.elementwise(out.buf, inputs[0].buf, inputs[1]?.buf ?? null, inputs[2]?.buf ?? null, op, alpha, beta, dims.length,
    d[0], d[1], d[2], d[3], d[4], d[5], masks[0] ?? 0, masks[1] ?? 0, masks[2] ?? 0);
  return out;
}

/** Sums g over the dimensions that broadcasting added to or expanded in `shape`: the gradient of a broadcast. */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const n = g.shape.length, lead = n - shape.length;
  const dims: number[] = [];
  for (let k = 0; k < n; k++) if ((k < lead ? 1 : shape[k - lead]) === 1) dims.push(k);
  return reduceKept(g, dims, REDUCE.sum).reshape(shape);
}

/** op over each of `dims` in turn (highest first, a fixed order), each kept with size 1: a new tensor (a copy when
 * no dimension has more than one element), the intermediates freed. */
export function reduceKept(x: Tensor, dims: readonly number[], op: number): Tensor {
  let t = x;
  for (let i = dims.length - 1; i >= 0; i--) {
    if (t.shape[dims[i]] === 1) continue;
    const next = reduceDim(t, dims[i], op).values;
    if (t !== x) t.dispose();
    t = next;
  }
  return t === x ? copyOf(x) : t;
}

/** op over dimension k of x, kept with size 1; for max / min also the int32 positions along k. */
export function reduceDim(x: Tensor, k: number, op: number, withIndex = false): { values: Tensor; indices?: Tensor } {
  const shape = [...x.shape];
  const R = shape[k];
  let outer = 1, inner = 1;
  for (let i = 0; i < k; i++) outer *= shape[i];
  for (let i = k + 1; i < shape.length; i++) inner *= shape[i];
  shape[k] = 1;
  const values = alloc(x.backend, shape);
  const indices = withIndex ? new Tensor(x.backend, x.backend.alloc('int32', values.size, false), shape, 'int32') : undefined;
  if (values.size > 0) x.backend.k.reduce(values.buf, indices?.buf ?? null, x.buf, op, outer, R, inner);
  return { values, indices };
}

/** Float inputs on one backend (the common case checked without building checkFloat's arguments). */
function checkInputs(where: string, inputs: Tensor[]): void {
  for (const x of inputs) if (x.dtype === 'int32' || x.backend !== inputs[0].backend) checkFloat(where, ...inputs); // throws
}

/** A differentiable elementwise op: records `backward` (given the output gradient, the inputs and the output). */
export function ewOp(
  where: string, op: number, inputs: Tensor[], alpha: number, beta: number,
  backward: ((g: Tensor, inputs: Tensor[], out: Tensor) => (Tensor | null)[]) | null,
  saveOutput = false,
): Tensor {
  checkInputs(where, inputs);
  const out = ewKernel(where, op, inputs, alpha, beta);
  if (backward) {
    const n = inputs.length;
    record(where, inputs, [out], saveOutput ? [...inputs, out] : inputs, (grads, s) => {
      const g = grads[0];
      return g ? backward(g, saveOutput ? s.slice(0, n) : s, s[n]) : inputs.map(() => null);
    });
  }
  return out;
}

/** An elementwise op whose gradient needs only the inputs' shapes (add, sub, a product with a number; `backward`
 * captures them): nothing is saved, so an in-place change to an input after it is no error, as in PyTorch. */
export function ewOpByShape(where: string, op: number, inputs: Tensor[], alpha: number, beta: number, backward: (g: Tensor) => (Tensor | null)[]): Tensor {
  checkInputs(where, inputs);
  const out = ewKernel(where, op, inputs, alpha, beta);
  record(where, inputs, [out], [], (grads) => (grads[0] ? backward(grads[0]) : inputs.map(() => null)));
  return out;
}

export { EW, REDUCE };
