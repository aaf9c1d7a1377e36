// Tensor: a shape, a dtype and a buffer on one backend. Data crosses to and from JavaScript by copy; a
// tensor's buffer lives until dispose() (or, as a last resort, the garbage collector).
import { backendByName, currentBackend, type Backend, type Buf, type HostArray } from './backend.js';
import { describe, RetrogradError } from './errors.js';

/** A tensor's element type: float32, int32 (indices and labels), or float64 (the reference backend's gradient checks). */
export type TensorDType = 'float32' | 'int32' | 'float64';

/** The tensors made inside each rg.tidy scope, innermost last. */
const tidyScopes: Tensor[][] = [];

/**
 * Runs fn and disposes every tensor made while it ran, except what it returns (a tensor, or tensors in an array or
 * an object's values) and leaves that require grad: deterministic release for code that makes many intermediates
 * (TensorFlow.js's habit). A tensor a later backward needs must not be made inside (it would be disposed).
 */
export function tidy<T>(fn: () => T): T {
  const scope: Tensor[] = [];
  tidyScopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    tidyScopes.pop();
  }
  if (result instanceof Promise) throw new TypeError('rg.tidy: fn must be synchronous (it returned a promise)');
  const keep = new Set<Tensor>();
  const visit = (v: unknown) => {
    if (v instanceof Tensor) {
      keep.add(v);
      keep.add(v.viewBase); // a view's storage is its base's
    }
    else if (Array.isArray(v)) v.forEach(visit);
    else if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) Object.values(v).forEach(visit);
  };
  visit(result);
  for (const t of scope) {
    if (!keep.has(t) && !t._requiresGrad && !t._param && !t._kept) t.dispose();
  }
  // what is kept belongs to the enclosing scope now
  if (tidyScopes.length) for (const t of keep) tidyScopes[tidyScopes.length - 1].push(t);
  return result;
}

/**
 * Exempts t from every rg.tidy scope (TensorFlow.js's tf.keep): a tensor made inside one that must outlive it. The
 * library keeps what it owns this way — an optimizer's state, a module's buffers, reused output buffers — so that a
 * training step may run inside rg.tidy. Returns t.
 */
export function keep<T extends Tensor>(t: T): T {
  checkTensor('rg.keep', t);
  t._kept = true;
  return t;
}

/** A node of the autograd graph (lib/autograd/engine.ts), as Tensor sees it. */
export interface GradNode {
  readonly name: string;
}
/** Set by lib/autograd/: records reshape on the graph (a view's gradient is the reshaped gradient). */
let reshapeHook: ((from: Tensor, view: Tensor) => Tensor) | undefined;
/** @internal */
export function setReshapeHook(hook: (from: Tensor, view: Tensor) => Tensor): void {
  reshapeHook = hook;
}

/**
 * An n-dimensional array: a shape, a dtype and a buffer on one backend ('cpu', 'cuda' or 'reference'), as
 * torch.Tensor. Made with {@link tensor}, {@link zeros}, {@link randn} and the other creation functions (the
 * constructor is internal); every operation (`x.add(y)`, `x.matmul(w)`, `x.sum()`, …) queues kernels on the
 * backend and returns a new tensor, recorded on the autograd graph when an input requires grad. Data crosses to
 * and from JavaScript by copy (`toArray`, `data`, `item`); the buffer lives until `dispose()` or {@link tidy}.
 */
export class Tensor {
  /** The dimensions, outermost first (frozen; `[]` for a scalar). */
  readonly shape: readonly number[];
  /** The number of elements: the product of the shape. */
  readonly size: number;
  /** The element type. */
  readonly dtype: TensorDType;
  /** The backend whose buffer holds the data. */
  readonly backend: Backend;
  /** @internal For int32 tensors made from host data: the smallest and largest value, so class indices can be checked without a read. */
  intRange?: readonly [number, number];
  private _buf: Buf | null;
  /** For a view (reshape): the tensor that owns the storage. Disposing a view lets go of the view only. */
  private base?: Tensor;
  /** @internal Autograd (lib/autograd/): the node that made this tensor, and which of its outputs it is. */
  gradFn: GradNode | null = null;
  /** @internal */
  outputIndex = 0;
  /** @internal A leaf's accumulated gradient (a parameter's lives in the Parameter). */
  _grad: Tensor | null = null;
  /** @internal A leaf that requires grad. */
  _requiresGrad = false;
  /** @internal The Parameter whose value this tensor is: its gradient accumulates into the Parameter's. */
  _param?: { accumulate(g: Tensor): void; readonly grad: Tensor; readonly requiresGrad: boolean };
  /** @internal rg.keep (a leaf's .grad too): never disposed by rg.tidy. */
  _kept = false;
  /** In-place changes of this storage so far (on a view, unused: it counts on its base's). */
  private _v = 0;
  /** @internal In-place changes so far, shared with views: a backward that saved this tensor checks it. */
  get _version(): number {
    return (this.base ?? this)._v;
  }
  /** @internal Counts an in-place change (of this tensor and every view of its storage). */
  bumpVersion(): void {
    (this.base ?? this)._v++;
  }

  /** @internal Use rg.tensor / rg.zeros / rg.randn. */
  constructor(backend: Backend, buf: Buf, shape: readonly number[], dtype: TensorDType) {
    this.backend = backend;
    this._buf = buf;
    this.shape = Object.isFrozen(shape) ? shape : Object.freeze([...shape]); // another tensor's shape is shared
    this.size = shapeSize(shape);
    this.dtype = dtype;
    if (tidyScopes.length) tidyScopes[tidyScopes.length - 1].push(this);
  }

  /** @internal The tensor that owns this one's storage: the base of a view, else itself. */
  get viewBase(): Tensor {
    return this.base ?? this;
  }

  /** The backend's name: 'cpu', 'cuda' or 'reference'. */
  get device(): string {
    return this.backend.name;
  }
  /** Whether the buffer has been freed (by dispose(), rg.tidy, or the disposal of the tensor this one is a view of). */
  get disposed(): boolean {
    return this._buf === null || (this.base !== undefined && this.base._buf === null);
  }
  /** @internal The backend buffer. */
  get buf(): Buf {
    if (this._buf === null) throw new RetrogradError(`Tensor [${this.shape.join(', ')}] has been disposed`, 'DISPOSED');
    if (this.base && this.base._buf === null)
      throw new RetrogradError(`Tensor [${this.shape.join(', ')}] is a view of a tensor [${this.base.shape.join(', ')}] that has been disposed`, 'DISPOSED');
    return this._buf;
  }

  /** The same data under another shape (one dimension may be -1): a view sharing this tensor's buffer. */
  reshape(shape: readonly number[]): Tensor {
    const resolved = resolveShape('Tensor.reshape', shape, this.size);
    const t = new Tensor(this.backend, this.buf, resolved, this.dtype);
    t.intRange = this.intRange;
    t.base = this.base ?? this;
    return reshapeHook ? reshapeHook(this, t) : t;
  }

  /**
   * A copy of the data; waits for queued work. With the element type it expects, `t.toArray('float32')` is typed
   * `Float32Array` (any floating tensor) and `t.toArray('int32')` `Int32Array`; a tensor of the other kind is a
   * TypeError naming both, checked before the read.
   */
  toArray(dtype: 'float32'): Float32Array;
  toArray(dtype: 'int32'): Int32Array;
  toArray(): Float32Array | Int32Array;
  toArray(dtype?: 'float32' | 'int32'): Float32Array | Int32Array {
    this.expectKind('toArray', dtype);
    return toFloat32(this.backend.read(this.buf));
  }
  /** The same as toArray without blocking the event loop (`data('float32')`, `data('int32')` typed likewise). */
  data(dtype: 'float32'): Promise<Float32Array>;
  data(dtype: 'int32'): Promise<Int32Array>;
  data(): Promise<Float32Array | Int32Array>;
  async data(dtype?: 'float32' | 'int32'): Promise<Float32Array | Int32Array> {
    this.expectKind('data', dtype);
    return toFloat32(await this.backend.readAsync(this.buf));
  }
  private expectKind(method: string, dtype: 'float32' | 'int32' | undefined): void {
    if (dtype === undefined) return;
    if (dtype !== 'float32' && dtype !== 'int32') throw new TypeError(`Tensor.${method}: the element type must be 'float32' or 'int32', got ${JSON.stringify(dtype)}`);
    if ((dtype === 'int32') !== (this.dtype === 'int32'))
      throw new TypeError(`Tensor.${method}('${dtype}'): this tensor [${this.shape.join(', ')}] holds ${this.dtype} values, so it reads as ${this.dtype === 'int32' ? 'an Int32Array' : 'a Float32Array'}`);
  }
  /** The value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) throw new RangeError(`Tensor.item: only one-element tensors have an item, this one has shape [${this.shape.join(', ')}]`);
    return this.backend.read(this.buf)[0];
  }

  /** In-place copy of `src` (a tensor or numbers) with the same number of elements. */
  assign(src: Tensor | ArrayLike<number>): this {
    if (src instanceof Tensor) {
      if (src.size !== this.size) throw new RangeError(`Tensor.assign: source has ${src.size} elements, expected ${this.size}`);
      if (src.dtype !== this.dtype && !(isFloat(src.dtype) && isFloat(this.dtype)))
        throw new TypeError(`Tensor.assign: source dtype ${src.dtype} does not match ${this.dtype}`);
      if (src.backend === this.backend) this.backend.k.copy(this.buf, src.buf, this.size);
      else this.backend.write(this.buf, src.backend.read(src.buf));
      this.intRange = src.intRange;
      this.bumpVersion();
      return this;
    }
    if (src === null || typeof src !== 'object' || typeof (src as ArrayLike<number>).length !== 'number')
      throw new TypeError(`Tensor.assign: expected a Tensor or an array of numbers, got ${describe(src)}`);
    if (src.length !== this.size) throw new RangeError(`Tensor.assign: source has ${src.length} elements, expected ${this.size}`);
    // (write copies the data when called: a typed array of the tensor's kind goes as it is, without an element-by-element copy)
    const data = this.dtype === 'int32' ? (src instanceof Int32Array ? src : Int32Array.from(src)) : src instanceof Float32Array ? src : Float32Array.from(src);
    this.backend.write(this.buf, data);
    if (data instanceof Int32Array) this.intRange = intRangeOf(data);
    this.bumpVersion();
    return this;
  }

  /** A copy of this tensor on another backend ('cpu', 'reference', 'cuda'). */
  to(backendName: string): Tensor {
    const target = backendByName(backendName);
    if (target === this.backend) return this;
    return this.toBackend(target);
  }
  /** @internal */
  toBackend(target: Backend): Tensor {
    const host = this.backend.read(this.buf);
    const t = new Tensor(target, target.fromHost(host), this.shape, this.dtype === 'int32' ? 'int32' : target.floatType);
    t.intRange = this.intRange;
    return t;
  }

  /** Frees the buffer now (queued kernels that use it still complete). Views of it become unusable. A view's
   * dispose() lets go of the view only: the storage belongs to the tensor it was made from. */
  dispose(): void {
    if (this._buf === null) return;
    if (!this.base) this.backend.dispose(this._buf, this.dtype === 'int32' ? undefined : this.size);
    this._buf = null;
  }

  /** `Tensor(shape=[2, 3], dtype=float32, device=cpu)`: the shape, dtype and device, never the data. */
  toString(): string {
    return `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}, device=${this.device})`;
  }
}

function isFloat(d: TensorDType): boolean {
  return d !== 'int32';
}
function toFloat32(a: HostArray): Float32Array | Int32Array {
  return a instanceof Float64Array ? Float32Array.from(a) : a;
}

export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Checks a shape: an array of non-negative integers. */
export function checkShape(where: string, shape: unknown): number[] {
  if (!Array.isArray(shape)) throw new TypeError(`${where}: shape must be an array of dimensions, got ${describe(shape)}`);
  for (const d of shape) {
    if (typeof d !== 'number') throw new TypeError(`${where}: every dimension must be a number, got ${describe(d)} in [${shape.join(', ')}]`);
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`${where}: every dimension must be a non-negative integer, got ${d} in [${shape.join(', ')}]`);
  }
  return [...shape];
}

function resolveShape(where: string, shape: readonly number[], size: number): number[] {
  if (!Array.isArray(shape)) throw new TypeError(`${where}: shape must be an array, got ${describe(shape)}`);
  const free = shape.filter((d) => d === -1).length;
  if (free > 1) throw new RangeError(`${where}: at most one dimension may be -1, got [${shape.join(', ')}]`);
  const known = checkShape(where, shape.filter((d) => d !== -1));
  const prod = shapeSize(known);
  const out = [...shape];
  if (free === 1) {
    if (prod === 0 || size % prod !== 0) throw new RangeError(`${where}: cannot reshape ${size} elements into [${shape.join(', ')}]`);
    out[out.indexOf(-1)] = size / prod;
  } else if (prod !== size) {
    throw new RangeError(`${where}: cannot reshape ${size} elements into [${shape.join(', ')}]`);
  }
  return out;
}

/** Creates a tensor on the current backend from a copy of `data`. Int32Array gives int32, anything else float32. */
export function tensor(data: Float32Array | Int32Array | Float64Array | readonly number[], shape: readonly number[], options: { requiresGrad?: boolean } = {}): Tensor {
  const where = 'rg.tensor';
  if (options === null || typeof options !== 'object') throw new TypeError(`${where}: options must be an object, got ${describe(options)}`);
  for (const key of Object.keys(options)) if (key !== 'requiresGrad') throw new TypeError(`${where}: unknown option '${key}'; known: requiresGrad`);
  if (!(Array.isArray(data) || ArrayBuffer.isView(data)) || data instanceof DataView)
    throw new TypeError(`${where}: data must be a Float32Array, an Int32Array or an array of numbers, got ${describe(data)}`);
  const dims = checkShape(where, shape);
  const n = shapeSize(dims);
  const len = (data as ArrayLike<number>).length;
  if (len !== n) throw new RangeError(`${where}: data has ${len} elements but shape [${dims.join(', ')}] needs ${n}`);
  if (Array.isArray(data)) {
    for (let i = 0; i < data.length; i++)
      if (typeof data[i] !== 'number') throw new TypeError(`${where}: data[${i}] is ${describe(data[i])}, expected a number`);
  }
  const t = fromHost(currentBackend(), data instanceof Int32Array ? data : Float32Array.from(data as ArrayLike<number>), dims);
  if (options.requiresGrad !== undefined) {
    if (typeof options.requiresGrad !== 'boolean') throw new TypeError(`${where}: requiresGrad must be a boolean, got ${describe(options.requiresGrad)}`);
    if (options.requiresGrad && t.dtype === 'int32') throw new TypeError(`${where}: only float tensors can require grad, the data is an Int32Array`);
    t._requiresGrad = options.requiresGrad;
  }
  return t;
}

/** @internal A tensor on `backend` holding a copy of host data. */
export function fromHost(backend: Backend, data: Float32Array | Int32Array | Float64Array, shape: readonly number[]): Tensor {
  const isInt = data instanceof Int32Array;
  const t = new Tensor(backend, backend.fromHost(data), shape, isInt ? 'int32' : backend.floatType);
  if (isInt) t.intRange = intRangeOf(data);
  return t;
}

function intRangeOf(data: Int32Array): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < data.length; i++) {
    if (data[i] < lo) lo = data[i];
    if (data[i] > hi) hi = data[i];
  }
  return [lo, hi];
}

/** @internal A zero-filled tensor on `backend`; with `zero` false, its contents are for a kernel to write (the
 * storage may be a disposed tensor's, kept by the backend for reuse). */
export function empty(backend: Backend, shape: readonly number[], dtype: 'float' | 'int32' = 'float', zero = true): Tensor {
  const dt = dtype === 'int32' ? 'int32' : backend.floatType;
  return new Tensor(backend, backend.alloc(dt, shapeSize(shape), zero), shape, dt);
}

/** @internal A new tensor holding a copy of x's data, under `shape` (x's by default): one queued copy, the output
 * not zeroed first. */
export function copyOf(x: Tensor, shape: readonly number[] = x.shape): Tensor {
  const dt = x.dtype === 'int32' ? 'int32' : x.backend.floatType;
  const t = new Tensor(x.backend, x.backend.alloc(dt, x.size, false), shape, dt);
  if (x.size) x.backend.k.copy(t.buf, x.buf, x.size);
  return t;
}

/** Throws a TypeError unless `x` is a Tensor. */
export function checkTensor(where: string, x: unknown, name = 'input'): Tensor {
  if (!(x instanceof Tensor)) throw new TypeError(`${where}: ${name} must be a Tensor, got ${describe(x)}`);
  return x;
}
