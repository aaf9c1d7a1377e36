// Tensors made from nothing: zeros, ones, full, arange, linspace, eye, and random ones from the seeded generator
// (rg.manualSeed), on the current backend. `requiresGrad: true` makes a leaf whose gradient backward fills.
import { currentBackend } from '../backend.js';
import { checkOptions, describe } from '../errors.js';
import { normal, uniform } from '../random.js';
import { checkShape, empty, fromHost, shapeSize, Tensor } from '../tensor.js';
import { toTensor, type TensorLike } from './core.js';

/** Options of the creation functions (rg.zeros, rg.ones, rg.randn, …). */
export interface CreationOptions {
  /** Make a leaf whose gradient backward fills (float only; default false). */
  requiresGrad?: boolean;
  /** 'float32' (the default) or 'int32' (indices, labels). */
  dtype?: 'float32' | 'int32';
}

function make(where: string, shape: readonly number[], fill: (i: number) => number, options: CreationOptions = {}, backend = currentBackend()): Tensor {
  checkOptions(where, options, ['requiresGrad', 'dtype']);
  const dims = checkShape(where, shape);
  const dtype = options.dtype ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'int32') throw new TypeError(`${where}: dtype must be 'float32' or 'int32', got ${describe(dtype)}`);
  const n = shapeSize(dims);
  const data = dtype === 'int32' ? new Int32Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = fill(i);
  const t = fromHost(backend, data, dims);
  if (options.requiresGrad) setRequiresGrad(where, t, true);
  return t;
}

/** Marks a leaf as requiring grad (float tensors only). */
export function setRequiresGrad(where: string, t: Tensor, on: boolean): void {
  if (typeof on !== 'boolean') throw new TypeError(`${where}: requiresGrad must be a boolean, got ${describe(on)}`);
  if (on && t.dtype === 'int32') throw new TypeError(`${where}: only float tensors can require grad, this one is int32`);
  if (t.gradFn) throw new TypeError(`${where}: requiresGrad can be set only on leaves; this tensor is the output of ${t.gradFn.name} (use detach() for a new leaf)`);
  if (t._param) throw new TypeError(`${where}: this tensor is a Parameter's value; set parameter.requiresGrad instead`);
  t._requiresGrad = on;
}

/** A tensor of zeros of `shape` on the current backend, as torch.zeros. */
export function zeros(shape: readonly number[], options: CreationOptions = {}): Tensor {
  if (options.dtype === 'int32') return make('rg.zeros', shape, () => 0, options);
  checkOptions('rg.zeros', options, ['requiresGrad', 'dtype']);
  const t = empty(currentBackend(), checkShape('rg.zeros', shape)); // zero-filled by the allocator: no upload
  if (options.requiresGrad) setRequiresGrad('rg.zeros', t, true);
  return t;
}
/** A tensor of ones of `shape` on the current backend, as torch.ones. */
export const ones = (shape: readonly number[], options?: CreationOptions) => make('rg.ones', shape, () => 1, options);
/** A tensor of `shape` filled with `value`, as torch.full. */
export function full(shape: readonly number[], value: number, options?: CreationOptions): Tensor {
  if (typeof value !== 'number') throw new TypeError(`rg.full: value must be a number, got ${describe(value)}`);
  return make('rg.full', shape, () => value, options);
}

/** start, start + step, … below end (as torch.arange; one argument is the end). */
export function arange(start: number, end?: number, step = 1, options: CreationOptions = {}): Tensor {
  const where = 'rg.arange';
  const [s, e] = end === undefined ? [0, start] : [start, end];
  for (const [name, v] of [['start', s], ['end', e], ['step', step]] as const)
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new TypeError(`${where}: ${name} must be a finite number, got ${describe(v)}`);
  if (step === 0) throw new RangeError(`${where}: step must not be 0`);
  const n = Math.max(0, Math.ceil((e - s) / step));
  return make(where, [n], (i) => s + i * step, options);
}

/** `steps` values evenly from start to end, both included. */
export function linspace(start: number, end: number, steps: number, options?: CreationOptions): Tensor {
  if (!Number.isInteger(steps) || steps < 0) throw new RangeError(`rg.linspace: steps must be a non-negative integer, got ${steps}`);
  const step = steps > 1 ? (end - start) / (steps - 1) : 0;
  // the second half counted from the end, as PyTorch does, so that the last value is exactly end
  return make('rg.linspace', [steps], (i) => (i < steps / 2 ? start + i * step : end - (steps - 1 - i) * step), options);
}

/** The n × m identity (m = n by default). */
export function eye(n: number, m = n, options?: CreationOptions): Tensor {
  return make('rg.eye', [n, m], (i) => (Math.floor(i / m) === i % m ? 1 : 0), options);
}

/** Uniform values in [0, 1) from the seeded generator. */
export const rand = (shape: readonly number[], options?: CreationOptions) => make('rg.rand', shape, () => uniform(), options);
/** Standard-normal values from the seeded generator. */
export const randn = (shape: readonly number[], options?: CreationOptions) => make('rg.randn', shape, () => normal(), options);
/** Integers in [low, high) (int32), from the seeded generator. */
export function randint(low: number, high: number, shape: readonly number[], options: CreationOptions = {}): Tensor {
  if (!Number.isInteger(low) || !Number.isInteger(high) || high <= low) throw new RangeError(`rg.randint: expected integers low < high, got ${low} and ${high}`);
  return make('rg.randint', shape, () => low + Math.floor(uniform() * (high - low)), { dtype: 'int32', ...options });
}

/** Zeros shaped like x, on x's backend (torch.zeros_like). */
export function zerosLike(x: TensorLike, options?: CreationOptions): Tensor {
  const t = toTensor('rg.zerosLike', x);
  return make('rg.zerosLike', t.shape, () => 0, options, t.backend);
}
/** Ones shaped like x, on x's backend (torch.ones_like). */
export function onesLike(x: TensorLike, options?: CreationOptions): Tensor {
  const t = toTensor('rg.onesLike', x);
  return make('rg.onesLike', t.shape, () => 1, options, t.backend);
}
/** `value` in the shape of x, on x's backend (torch.full_like). */
export function fullLike(x: TensorLike, value: number, options?: CreationOptions): Tensor {
  const t = toTensor('rg.fullLike', x);
  if (typeof value !== 'number') throw new TypeError(`rg.fullLike: value must be a number, got ${describe(value)}`);
  return make('rg.fullLike', t.shape, () => value, options, t.backend);
}
