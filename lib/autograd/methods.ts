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

type Dims = number | readonly number[] | null | undefined;

/** The operations, as methods: on Tensor, and on Parameter (which stands for its value). */
export interface TensorMethods {
  add(other: TensorLike, options?: { alpha?: number }): Tensor;
  sub(other: TensorLike, options?: { alpha?: number }): Tensor;
  mul(other: TensorLike): Tensor;
  div(other: TensorLike): Tensor;
  pow(exponent: TensorLike): Tensor;
  neg(): Tensor;
  exp(): Tensor;
  log(): Tensor;
  log1p(): Tensor;
  sqrt(): Tensor;
  rsqrt(): Tensor;
  abs(): Tensor;
  sign(): Tensor;
  sin(): Tensor;
  cos(): Tensor;
  tanh(): Tensor;
  sigmoid(): Tensor;
  relu(): Tensor;
  gelu(): Tensor;
  leakyRelu(negativeSlope?: number): Tensor;
  softplus(beta?: number, threshold?: number): Tensor;
  clamp(min?: number | null, max?: number | null): Tensor;
  square(): Tensor;
  reciprocal(): Tensor;
  maximum(other: TensorLike): Tensor;
  minimum(other: TensorLike): Tensor;
  eq(other: TensorLike): Tensor;
  ne(other: TensorLike): Tensor;
  lt(other: TensorLike): Tensor;
  le(other: TensorLike): Tensor;
  gt(other: TensorLike): Tensor;
  ge(other: TensorLike): Tensor;
  where(condition: TensorLike, other: TensorLike): Tensor;
  maskedFill(mask: TensorLike, value: number): Tensor;

  sum(dim?: Dims, options?: red.ReduceOptions): Tensor;
  mean(dim?: Dims, options?: red.ReduceOptions): Tensor;
  max(): Tensor;
  max(dim: number, options?: red.ReduceOptions): { values: Tensor; indices: Tensor };
  min(): Tensor;
  min(dim: number, options?: red.ReduceOptions): { values: Tensor; indices: Tensor };
  argmax(dim?: number, options?: red.ReduceOptions): Tensor;
  argmin(dim?: number, options?: red.ReduceOptions): Tensor;
  var(dim?: Dims, options?: red.VarOptions): Tensor;
  std(dim?: Dims, options?: red.VarOptions): Tensor;
  logsumexp(dim?: Dims, options?: red.ReduceOptions): Tensor;
  norm(p?: number, dim?: Dims, options?: red.ReduceOptions): Tensor;
  softmax(dim?: number): Tensor;
  logSoftmax(dim?: number): Tensor;

  matmul(other: TensorLike): Tensor;
  t(): Tensor;

  view(shape: readonly number[]): Tensor;
  flatten(startDim?: number, endDim?: number): Tensor;
  squeeze(dim?: number | number[]): Tensor;
  unsqueeze(dim: number): Tensor;
  permute(...dims: number[]): Tensor;
  transpose(dim0: number, dim1: number): Tensor;
  expand(...shape: number[]): Tensor;
  expandAs(other: Tensor): Tensor;
  contiguous(): Tensor;
  narrow(dim: number, start: number, length: number): Tensor;
  slice(dim: number, start?: number, end?: number, step?: number): Tensor;
  select(dim: number, index: number): Tensor;
  /** x.at(i, j) is x[i][j] (a tensor; .item() reads a single element). */
  at(...indices: number[]): Tensor;
  split(sizeOrSizes: number | readonly number[], dim?: number): Tensor[];
  chunk(chunks: number, dim?: number): Tensor[];
  indexSelect(dim: number, index: TensorLike): Tensor;
  gather(dim: number, index: TensorLike): Tensor;
  scatterAdd(dim: number, index: TensorLike, src: TensorLike): Tensor;

  /** In place (bumps the version: a backward that saved this tensor then refuses to run). */
  add_(other: TensorLike, options?: { alpha?: number }): this;
  sub_(other: TensorLike, options?: { alpha?: number }): this;
  mul_(other: TensorLike): this;
  div_(other: TensorLike): this;
  zero_(): this;
  fill_(value: number): this;
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

