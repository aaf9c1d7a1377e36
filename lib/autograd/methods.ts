// The tensor operations as methods (x.add(y).relu()), PyTorch's names, on Tensor — and on Parameter, which stands
// for its value — plus autograd's own: requiresGrad, grad, backward, detach and the in-place ops.
import { EW } from '../backend.js';
import { RetrogradError } from '../errors.js';
import { Parameter } from '../nn/module.js';
import { Tensor } from '../tensor.js';
import { alloc, checkFloat, ewKernel, type TensorLike } from './core.js';
import { setRequiresGrad } from './creation.js';
import * as ew from './elementwise.js';
import { backward, isGradEnabled, requiresGrad, setEngineOps, type BackwardOptions } from './engine.js';
import * as linalg from './linalg.js';
import * as red from './reduce.js';
import * as shape from './shape.js';

/** The dimensions a reduction runs over: one, several, or all of them (null or undefined). */
export type Dims = number | readonly number[] | null | undefined;

/** The operations, as methods: on Tensor, and on Parameter (which stands for its value). */
export interface TensorMethods {
  /** this + alpha·other with broadcasting (rg.add). */
  add(other: TensorLike, options?: { alpha?: number }): Tensor;
  /** this − alpha·other with broadcasting (rg.sub). */
  sub(other: TensorLike, options?: { alpha?: number }): Tensor;
  /** Elementwise product with broadcasting (rg.mul). */
  mul(other: TensorLike): Tensor;
  /** Elementwise quotient with broadcasting (rg.div). */
  div(other: TensorLike): Tensor;
  /** Elementwise power with broadcasting (rg.pow). */
  pow(exponent: TensorLike): Tensor;
  /** −x elementwise. */
  neg(): Tensor;
  /** e^x elementwise. */
  exp(): Tensor;
  /** The natural logarithm elementwise. */
  log(): Tensor;
  /** log(1 + x) elementwise. */
  log1p(): Tensor;
  /** The square root elementwise. */
  sqrt(): Tensor;
  /** 1 / √x elementwise. */
  rsqrt(): Tensor;
  /** |x| elementwise. */
  abs(): Tensor;
  /** −1, 0 or 1 by the sign, elementwise. */
  sign(): Tensor;
  /** The sine elementwise. */
  sin(): Tensor;
  /** The cosine elementwise. */
  cos(): Tensor;
  /** The hyperbolic tangent elementwise. */
  tanh(): Tensor;
  /** 1 / (1 + e^−x) elementwise. */
  sigmoid(): Tensor;
  /** max(x, 0) elementwise. */
  relu(): Tensor;
  /** GELU elementwise (erf form). */
  gelu(): Tensor;
  /** x where x > 0, else negativeSlope·x (default 0.01). */
  leakyRelu(negativeSlope?: number): Tensor;
  /** log(1 + e^(beta·x)) / beta, x itself where beta·x > threshold (defaults 1 and 20), as torch's softplus. */
  softplus(beta?: number, threshold?: number): Tensor;
  /** min(max(x, min), max); either bound may be omitted. NaN stays NaN. */
  clamp(min?: number | null, max?: number | null): Tensor;
  /** x² elementwise. */
  square(): Tensor;
  /** 1 / x elementwise. */
  reciprocal(): Tensor;
  /** max(this, other) elementwise with broadcasting. */
  maximum(other: TensorLike): Tensor;
  /** min(this, other) elementwise with broadcasting. */
  minimum(other: TensorLike): Tensor;
  /** this = other, as a float 0/1 mask. */
  eq(other: TensorLike): Tensor;
  /** this ≠ other, as a float 0/1 mask. */
  ne(other: TensorLike): Tensor;
  /** this < other, as a float 0/1 mask. */
  lt(other: TensorLike): Tensor;
  /** this ≤ other, as a float 0/1 mask. */
  le(other: TensorLike): Tensor;
  /** this > other, as a float 0/1 mask. */
  gt(other: TensorLike): Tensor;
  /** this ≥ other, as a float 0/1 mask. */
  ge(other: TensorLike): Tensor;
  /** This where condition ≠ 0, else other (torch's x.where(condition, y)). */
  where(condition: TensorLike, other: TensorLike): Tensor;
  /** `value` where mask ≠ 0 (mask broadcast to this shape), as torch's masked_fill. */
  maskedFill(mask: TensorLike, value: number): Tensor;

  /** The sum over dim (all when omitted). */
  sum(dim?: Dims, options?: red.ReduceOptions): Tensor;
  /** The mean over dim (all when omitted). */
  mean(dim?: Dims, options?: red.ReduceOptions): Tensor;
  /** The largest element, a 0-d tensor. */
  max(): Tensor;
  /** The largest values along dim and their int32 positions (the first at ties). */
  max(dim: number, options?: red.ReduceOptions): {
    /** The largest values. */
    values: Tensor;
    /** Their positions along dim (int32). */
    indices: Tensor;
  };
  /** The smallest element, a 0-d tensor. */
  min(): Tensor;
  /** The smallest values along dim and their int32 positions (the first at ties). */
  min(dim: number, options?: red.ReduceOptions): {
    /** The smallest values. */
    values: Tensor;
    /** Their positions along dim (int32). */
    indices: Tensor;
  };
  /** The int32 position of the largest element (flattened, or along dim); the first at ties. */
  argmax(dim?: number, options?: red.ReduceOptions): Tensor;
  /** The int32 position of the smallest element (flattened, or along dim); the first at ties. */
  argmin(dim?: number, options?: red.ReduceOptions): Tensor;
  /** The variance over dim (all when omitted), Bessel-corrected by default. */
  var(dim?: Dims, options?: red.VarOptions): Tensor;
  /** The standard deviation over dim (all when omitted), Bessel-corrected by default. */
  std(dim?: Dims, options?: red.VarOptions): Tensor;
  /** log Σ exp(x) over dim (all when omitted), computed stably. */
  logsumexp(dim?: Dims, options?: red.ReduceOptions): Tensor;
  /** The p-norm (2 by default, 1 or Infinity) over dim (all when omitted). */
  norm(p?: number, dim?: Dims, options?: red.ReduceOptions): Tensor;
  /** Softmax along dim (the last by default). */
  softmax(dim?: number): Tensor;
  /** Log-softmax along dim (the last by default). */
  logSoftmax(dim?: number): Tensor;

  /** The matrix product with torch.matmul's rules (rg.matmul). */
  matmul(other: TensorLike): Tensor;
  /** The transpose of a matrix (a 0-d or 1-d tensor as is). */
  t(): Tensor;

  /** reshape under PyTorch's other name: a view. */
  view(shape: readonly number[]): Tensor;
  /** Dimensions startDim … endDim (default all) merged into one: a view. */
  flatten(startDim?: number, endDim?: number): Tensor;
  /** Dimensions of size 1 removed (with dim, only the listed ones): a view. */
  squeeze(dim?: number | number[]): Tensor;
  /** A size-1 dimension inserted at dim: a view. */
  unsqueeze(dim: number): Tensor;
  /** The dimensions reordered (a copy). */
  permute(...dims: number[]): Tensor;
  /** Two dimensions swapped (a copy). */
  transpose(dim0: number, dim1: number): Tensor;
  /** Broadcast to `shape` (−1 keeps a dimension), as a contiguous copy. */
  expand(...shape: number[]): Tensor;
  /** Broadcast to other's shape, as a contiguous copy. */
  expandAs(other: Tensor): Tensor;
  /** This tensor itself: every tensor is contiguous. */
  contiguous(): Tensor;
  /** Elements start … start + length − 1 along dim (a copy). */
  narrow(dim: number, start: number, length: number): Tensor;
  /** x[…, start:end:step, …] along dim, Python's slice semantics (a copy). */
  slice(dim: number, start?: number, end?: number, step?: number): Tensor;
  /** One index along dim, the dimension removed. */
  select(dim: number, index: number): Tensor;
  /** x.at(i, j) is x[i][j] (a tensor; .item() reads a single element). */
  at(...indices: number[]): Tensor;
  /** Pieces of `size` along dim (the last may be smaller), or of the given sizes. */
  split(sizeOrSizes: number | readonly number[], dim?: number): Tensor[];
  /** `chunks` pieces of equal size along dim (the last may be smaller). */
  chunk(chunks: number, dim?: number): Tensor[];
  /** The entries at the int32 1-d `index` along dim (torch.index_select). */
  indexSelect(dim: number, index: TensorLike): Tensor;
  /** out[…, j, …] = x[…, index[…, j, …], …] along dim (torch.gather). */
  gather(dim: number, index: TensorLike): Tensor;
  /** A copy with src added at index along dim (torch.scatter_add, out of place). */
  scatterAdd(dim: number, index: TensorLike, src: TensorLike): Tensor;

  /** In place: this += alpha·other. Every in-place op bumps the version (a backward that saved this tensor then
   * refuses to run) and is refused on a tensor that requires grad while the graph records. */
  add_(other: TensorLike, options?: { alpha?: number }): this;
  /** In place: this −= alpha·other. */
  sub_(other: TensorLike, options?: { alpha?: number }): this;
  /** In place: this ·= other. */
  mul_(other: TensorLike): this;
  /** In place: this /= other. */
  div_(other: TensorLike): this;
  /** In place: every element 0. */
  zero_(): this;
  /** In place: every element `value`. */
  fill_(value: number): this;
  /** In place: clamped to [min, max]. */
  clamp_(min?: number | null, max?: number | null): this;
}

declare module '../tensor.js' {
  interface Tensor extends TensorMethods {
    /** Whether backward computes a gradient for this tensor (leaves set it; results of operations inherit it). */
    requiresGrad: boolean;
    /** The gradient backward accumulated into this leaf (null until then); a Parameter's value shows its grad. */
    grad: Tensor | null;
    /** A leaf that requires grad, or not: `x.requiresGrad_()` as PyTorch. */
    requiresGrad_(on?: boolean): this;
    /** Whether this tensor is a leaf of the graph (not the result of a recorded operation). */
    readonly isLeaf: boolean;
    /** dL/dleaf for every leaf this tensor depends on, accumulated into .grad (gradient: needed unless one element). */
    backward(gradient?: Tensor, options?: BackwardOptions): void;
    /** The same data without a gradient function: a new leaf that does not require grad (shares storage). */
    detach(): Tensor;
    /** A copy that stays in the graph (PyTorch's clone). */
    clone(): Tensor;
  }
}
declare module '../nn/module.js' {
  interface Parameter extends TensorMethods {}
}

const P = Tensor.prototype as unknown as Record<string, unknown>;

Object.defineProperty(Tensor.prototype, 'requiresGrad', {
  get(this: Tensor) {
    return requiresGrad(this);
  },
  set(this: Tensor, on: boolean) {
    setRequiresGrad('Tensor.requiresGrad', this, on);
  },
});
Object.defineProperty(Tensor.prototype, 'grad', {
  get(this: Tensor) {
    return this._param ? this._param.grad : this._grad;
  },
  set(this: Tensor, g: Tensor | null) {
    if (this._param) throw new TypeError("Tensor.grad: this tensor is a Parameter's value; set or zero the Parameter's grad");
    if (g !== null && !(g instanceof Tensor)) throw new TypeError('Tensor.grad: expected a Tensor or null');
    if (g && (g.size !== this.size || g.shape.some((d, i) => d !== this.shape[i]))) throw new RangeError(`Tensor.grad: shape [${g.shape.join(', ')}] does not match the tensor's [${this.shape.join(', ')}]`);
    if (g) g._kept = true; // the leaf's, whatever rg.tidy scope it was made in
    this._grad = g;
  },
});
Object.defineProperty(Tensor.prototype, 'isLeaf', {
  get(this: Tensor) {
    return this.gradFn === null;
  },
});

Object.assign(P, {
  requiresGrad_(this: Tensor, on = true) {
    setRequiresGrad('Tensor.requiresGrad_', this, on);
    return this;
  },
  backward(this: Tensor, gradient?: Tensor, options?: BackwardOptions) {
    backward(this, gradient, options);
  },
  detach(this: Tensor) {
    const t = this.reshape(this.shape);
    t.gradFn = null;
    return t;
  },
  clone(this: Tensor) {
    return ew.mul(this, 1);
  },
  add(this: Tensor, o: TensorLike, opts?: { alpha?: number }) { return ew.add(this, o, opts?.alpha ?? 1); },
  sub(this: Tensor, o: TensorLike, opts?: { alpha?: number }) { return ew.sub(this, o, opts?.alpha ?? 1); },
  mul(this: Tensor, o: TensorLike) { return ew.mul(this, o); },
  div(this: Tensor, o: TensorLike) { return ew.div(this, o); },
  pow(this: Tensor, o: TensorLike) { return ew.pow(this, o); },
  neg(this: Tensor) { return ew.neg(this); },
  exp(this: Tensor) { return ew.exp(this); },
  log(this: Tensor) { return ew.log(this); },
  log1p(this: Tensor) { return ew.log1p(this); },
  sqrt(this: Tensor) { return ew.sqrt(this); },
  rsqrt(this: Tensor) { return ew.rsqrt(this); },
  abs(this: Tensor) { return ew.abs(this); },
  sign(this: Tensor) { return ew.sign(this); },
  sin(this: Tensor) { return ew.sin(this); },
  cos(this: Tensor) { return ew.cos(this); },
  tanh(this: Tensor) { return ew.tanh(this); },
  sigmoid(this: Tensor) { return ew.sigmoid(this); },
  relu(this: Tensor) { return ew.relu(this); },
  gelu(this: Tensor) { return ew.gelu(this); },
  leakyRelu(this: Tensor, s?: number) { return ew.leakyRelu(this, s); },
  softplus(this: Tensor, b?: number, th?: number) { return ew.softplus(this, b, th); },
  clamp(this: Tensor, lo?: number | null, hi?: number | null) { return ew.clamp(this, lo, hi); },
  square(this: Tensor) { return ew.square(this); },
  reciprocal(this: Tensor) { return ew.reciprocal(this); },
  maximum(this: Tensor, o: TensorLike) { return ew.maximum(this, o); },
  minimum(this: Tensor, o: TensorLike) { return ew.minimum(this, o); },
  eq(this: Tensor, o: TensorLike) { return ew.eq(this, o); },
  ne(this: Tensor, o: TensorLike) { return ew.ne(this, o); },
  lt(this: Tensor, o: TensorLike) { return ew.lt(this, o); },
  le(this: Tensor, o: TensorLike) { return ew.le(this, o); },
  gt(this: Tensor, o: TensorLike) { return ew.gt(this, o); },
  ge(this: Tensor, o: TensorLike) { return ew.ge(this, o); },
  where(this: Tensor, c: TensorLike, o: TensorLike) { return ew.where(c, this, o); },
  maskedFill(this: Tensor, m: TensorLike, v: number) { return ew.maskedFill(this, m, v); },

  sum(this: Tensor, d?: Dims, o?: red.ReduceOptions) { return red.sum(this, d, o); },
  mean(this: Tensor, d?: Dims, o?: red.ReduceOptions) { return red.mean(this, d, o); },
  max(this: Tensor, d?: number, o?: red.ReduceOptions) { return d === undefined ? red.max(this) : red.max(this, d, o); },
  min(this: Tensor, d?: number, o?: red.ReduceOptions) { return d === undefined ? red.min(this) : red.min(this, d, o); },
  argmax(this: Tensor, d?: number, o?: red.ReduceOptions) { return red.argmax(this, d, o); },
  argmin(this: Tensor, d?: number, o?: red.ReduceOptions) { return red.argmin(this, d, o); },
  var(this: Tensor, d?: Dims, o?: red.VarOptions) { return red.variance(this, d, o); },
  std(this: Tensor, d?: Dims, o?: red.VarOptions) { return red.std(this, d, o); },
  logsumexp(this: Tensor, d?: Dims, o?: red.ReduceOptions) { return red.logsumexp(this, d, o); },
  norm(this: Tensor, p?: number, d?: Dims, o?: red.ReduceOptions) { return red.norm(this, p, d, o); },
  softmax(this: Tensor, d?: number) { return red.softmax(this, d); },
  logSoftmax(this: Tensor, d?: number) { return red.logSoftmax(this, d); },

  matmul(this: Tensor, o: TensorLike) { return linalg.matmul(this, o); },
  t(this: Tensor) { return shape.t(this); },

  view(this: Tensor, s: readonly number[]) { return this.reshape(s); },
  flatten(this: Tensor, s?: number, e?: number) { return shape.flatten(this, s, e); },
  squeeze(this: Tensor, d?: number | number[]) { return shape.squeeze(this, d); },
  unsqueeze(this: Tensor, d: number) { return shape.unsqueeze(this, d); },
  permute(this: Tensor, ...dims: (number | number[])[]) { return shape.permute(this, dims.flat()); },
  transpose(this: Tensor, a: number, b: number) { return shape.transpose(this, a, b); },
  expand(this: Tensor, ...s: (number | number[])[]) { return shape.expand(this, s.flat()); },
  expandAs(this: Tensor, o: Tensor) { return shape.expand(this, o.shape); },
  contiguous(this: Tensor) { return this; },
  narrow(this: Tensor, d: number, s: number, l: number) { return shape.narrow(this, d, s, l); },
  slice(this: Tensor, d: number, s?: number, e?: number, st?: number) { return shape.slice(this, d, s, e, st); },
  select(this: Tensor, d: number, i: number) { return shape.select(this, d, i); },
  at(this: Tensor, ...indices: number[]) {
    let t: Tensor = this;
    for (const i of indices) t = shape.select(t, 0, i);
    return t;
  },
  split(this: Tensor, s: number | readonly number[], d?: number) { return shape.split(this, s, d); },
  chunk(this: Tensor, c: number, d?: number) { return shape.chunk(this, c, d); },
  indexSelect(this: Tensor, d: number, i: TensorLike) { return shape.indexSelect(this, d, i); },
  gather(this: Tensor, d: number, i: TensorLike) { return shape.gather(this, d, i); },
  scatterAdd(this: Tensor, d: number, i: TensorLike, s: TensorLike) { return shape.scatterAdd(this, d, i, s); },

  add_(this: Tensor, o: TensorLike, opts?: { alpha?: number }) { return inPlace(this, 'add_', () => ew.add(this, o, opts?.alpha ?? 1)); },
  sub_(this: Tensor, o: TensorLike, opts?: { alpha?: number }) { return inPlace(this, 'sub_', () => ew.sub(this, o, opts?.alpha ?? 1)); },
  mul_(this: Tensor, o: TensorLike) { return inPlace(this, 'mul_', () => ew.mul(this, o)); },
  div_(this: Tensor, o: TensorLike) { return inPlace(this, 'div_', () => ew.div(this, o)); },
  clamp_(this: Tensor, lo?: number | null, hi?: number | null) { return inPlace(this, 'clamp_', () => ew.clamp(this, lo, hi)); },
  zero_(this: Tensor) { return this.fill_(0); },
  fill_(this: Tensor, v: number) {
    checkInPlace(this, 'fill_');
    if (typeof v !== 'number') throw new TypeError(`fill_: value must be a number, got ${typeof v}`);
    if (this.size) this.backend.k.fill(this.buf, this.size, v);
    this.bumpVersion();
    return this;
  },
});

/** In-place operations change a tensor that the graph may hold: refused on tensors in the graph while it records. */
function checkInPlace(t: Tensor, where: string): void {
  checkFloat(where, t);
  if (isGradEnabled() && requiresGrad(t))
    throw new RetrogradError(
      `${where}: an in-place operation on a tensor that requires grad (${t.isLeaf ? 'a leaf' : `the output of ${t.gradFn!.name}`}) while the graph records; use the out-of-place ${where.slice(0, -1)} or rg.noGrad`,
      'INVALID_ARGUMENT',
    );
}
function inPlace(t: Tensor, where: string, op: () => Tensor): Tensor {
  checkInPlace(t, where);
  const r = op();
  if (r.size !== t.size) {
    r.dispose();
    throw new RangeError(`${where}: the result has shape [${r.shape.join(', ')}], which does not fit the tensor's [${t.shape.join(', ')}]`);
  }
  t.backend.k.copy(t.buf, r.buf, t.size);
  r.dispose();
  t.bumpVersion();
  return t;
}

// Parameter stands for its value in every operation: p.matmul(x), p.t(), p.sum() …
for (const name of Object.getOwnPropertyNames(P)) {
  const f = Object.getOwnPropertyDescriptor(P, name)?.value;
  if (typeof f !== 'function' || name === 'constructor' || name in Parameter.prototype) continue;
  Object.defineProperty(Parameter.prototype, name, {
    value(this: Parameter, ...args: unknown[]) {
      return (f as (...a: unknown[]) => unknown).apply(this.value, args);
    },
    configurable: true,
  });
}

setEngineOps({
  add: (a, b) => ewKernel('backward', EW.add, [a, b]),
  onesLike: (x) => {
    const t = alloc(x.backend, x.shape);
    x.backend.k.fill(t.buf, t.size, 1);
    return t;
  },
});

