// Shape checks shared by the layers (each message names the layer, what it expected and what came), the window
// sizes and private buffers of the convolution and pooling layers, and the options and output sizes of
// interpolation (F.interpolate and Upsample check theirs with the same code, each naming itself).
import type { Backend } from '../backend.js';
import { checkNumber, checkOptions, describe } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { sameShape, type Workspace } from '../workspace.js';

export function fmtShape(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

export function checkFloat(label: string, x: Tensor, name = 'input'): void {
  if (x.dtype === 'int32') throw new TypeError(`${label}: ${name} must be a float32 tensor, got int32`);
}

/** backward(dy): dy must have the shape of the last forward's output. */
export function checkGradShape(label: string, dy: Tensor, expected: readonly number[] | undefined): void {
  if (!expected) throw new Error(`${label}: backward called before forward`);
  checkFloat(label, dy, 'gradient');
  if (!sameShape(dy.shape, expected))
    throw new RangeError(`${label}: gradient has shape ${fmtShape(dy.shape)}, expected the output shape ${fmtShape(expected)}`);
}

/** A window size, stride, padding or dilation given as n or [h, w]: checked to be integers ≥ min. */
export type Size2 = number | readonly [number, number];

export function pair(label: string, name: string, v: unknown, min: number): [number, number] {
  if (typeof v === 'number') {
    checkNumber(label, name, v, { min, integer: true });
    return [v, v];
  }
  if (Array.isArray(v) && v.length === 2) {
    checkNumber(label, `${name}[0]`, v[0], { min, integer: true });
    checkNumber(label, `${name}[1]`, v[1], { min, integer: true });
    return [v[0] as number, v[1] as number];
  }
  throw new TypeError(`${label}: ${name} must be a number or [h, w], got ${describe(v)}`);
}

/** "3" for [3, 3], "3×5" otherwise (layer labels). */
export function fmtPair(p: readonly [number, number]): string {
  return p[0] === p[1] ? String(p[0]) : `${p[0]}×${p[1]}`;
}

/**
 * A layer's own buffers that never leave it (im2col columns, argmax indices, saved statistics). While a training
 * loop reuses buffers they come from the workspace and stay there; otherwise each is a fresh tensor that the layer
 * frees itself, with `release` when a call is done with it or on the next `get` of the same key (a buffer kept for
 * backward), so that a layer used outside `fit` leaves nothing behind for the garbage collector.
 */
export class Scratch {
  private readonly owned = new Map<string, Tensor>();
  constructor(private readonly ws: Workspace) {}

  /** `lendable` false: a buffer the caller hands out (it is reused inside a training loop only, never lent). */
  get(key: string, backend: Backend, shape: readonly number[], dtype: 'float' | 'int32' = 'float', lendable = true): Tensor {
    const pool = lendable ? this.ws.reusingScratch : this.ws.reuse > 0;
    // (a buffer from the cache replaces one this layer made: that one is let go of, not freed, as a pending autograd
    // node of an earlier call may still read it)
    if (pool) this.owned.delete(key);
    else this.release(key);
    const t = this.ws.get(key, backend, shape, dtype, pool);
    if (!pool) this.owned.set(key, t);
    return t;
  }

  release(key: string): void {
    const t = this.owned.get(key);
    if (!t) return;
    t.dispose();
    this.owned.delete(key);
  }

  /** @internal Lets go of the tensors made so far without disposing them: an autograd node that recorded the layer
   * keeps them for its backward (lib/nn/graph.ts), so the next forward must not free them. */
  disown(): void {
    this.owned.clear();
  }
}

/** A window size, stride, padding or dilation of a 1-d layer given as n or [n]: checked to be an integer ≥ min. */
export type Size1 = number | readonly [number];

export function single(label: string, name: string, v: unknown, min: number): number {
  if (typeof v === 'number') return checkNumber(label, name, v, { min, integer: true });
  if (Array.isArray(v) && v.length === 1) return checkNumber(label, `${name}[0]`, v[0], { min, integer: true });
  throw new TypeError(`${label}: ${name} must be a number or [n], got ${describe(v)}`);
}

/** The output length of a transposed convolution (the input length of the convolution it transposes):
 * (H − 1)·S − 2P + D·(K − 1) + outputPadding + 1. */
export function transposedSize(H: number, K: number, S: number, P: number, D: number, outputPadding: number): number {
  return (H - 1) * S - 2 * P + D * (K - 1) + outputPadding + 1;
}

/** PyTorch's rule for a transposed convolution: each outputPadding must be smaller than its stride or its dilation
 * (otherwise the extra rows would not come from one more stride of the kernel). */
export function checkOutputPadding(label: string, outputPadding: readonly [number, number], stride: readonly [number, number], dilation: readonly [number, number]): void {
  for (let i = 0; i < 2; i++) {
    if (outputPadding[i] < stride[i] || outputPadding[i] < dilation[i]) continue;
    throw new RangeError(
      `${label}: outputPadding must be smaller than the stride or the dilation, got outputPadding ${fmtPair(outputPadding)} ` +
        `with stride ${fmtPair(stride)} and dilation ${fmtPair(dilation)}`,
    );
  }
}

// ---- interpolation (F.interpolate, Upsample) ----

/** How F.interpolate and Upsample resample: the nearest source element, or bilinear between the two nearest. */
export type InterpolationMode = 'nearest' | 'bilinear';
/** Options of F.interpolate and Upsample: exactly one of size and scaleFactor. */
export interface InterpolationOptions {
  /** The output's spatial size: one number for every spatial dimension, or one per dimension. */
  size?: number | readonly number[];
  /** The output size is ⌊input size · scaleFactor⌋; one number for every spatial dimension, or one per dimension. */
  scaleFactor?: number | readonly number[];
  /** 'nearest' (the default) or 'bilinear' ([N, C, H, W] input only). */
  mode?: InterpolationMode;
  /** Bilinear only: the corner pixels of input and output align (default false). */
  alignCorners?: boolean;
}
/** Interpolation options, checked: exactly one of size and scaleFactor, each as a list. */
export interface InterpolationSpec {
  size: number[] | null;
  scaleFactor: number[] | null;
  mode: InterpolationMode;
  alignCorners: boolean;
}

function numberList(label: string, name: string, v: unknown, check: (at: string, x: unknown) => number): number[] {
  if (typeof v === 'number') return [check(name, v)];
  if (Array.isArray(v) && v.length > 0) return v.map((x, i) => check(`${name}[${i}]`, x));
  throw new TypeError(`${label}: ${name} must be a number or a non-empty array of numbers, got ${describe(v)}`);
}

/** Checks the options of F.interpolate and Upsample, as PyTorch does: one of size or scaleFactor, a known mode, and
 * alignCorners only with 'bilinear'. */
export function interpolationSpec(label: string, options: InterpolationOptions): InterpolationSpec {
  checkOptions(label, options, ['size', 'scaleFactor', 'mode', 'alignCorners']);
  const o = options ?? {};
  const mode = o.mode ?? 'nearest';
  if (typeof mode !== 'string') throw new TypeError(`${label}: mode must be a string, got ${describe(mode)}`);
  if (mode !== 'nearest' && mode !== 'bilinear') throw new RangeError(`${label}: mode must be 'nearest' or 'bilinear', got '${mode}'`);
  const size = o.size == null ? null : numberList(label, 'size', o.size, (at, x) => checkNumber(label, at, x, { min: 1, integer: true }));
  const scaleFactor = o.scaleFactor == null ? null : numberList(label, 'scaleFactor', o.scaleFactor, (at, x) => {
    const v = checkNumber(label, at, x, { min: 0, minExclusive: true });
    if (!Number.isFinite(v)) throw new RangeError(`${label}: invalid ${at} ${v}; expected a finite number > 0`);
    return v;
  });
  if (size && scaleFactor) throw new RangeError(`${label}: give either size or scaleFactor, not both`);
  if (!size && !scaleFactor) throw new TypeError(`${label}: give the output size (size) or a scale factor (scaleFactor)`);
  if (o.alignCorners !== undefined && typeof o.alignCorners !== 'boolean')
    throw new TypeError(`${label}: alignCorners must be a boolean, got ${describe(o.alignCorners)}`);
  if (o.alignCorners !== undefined && mode !== 'bilinear')
    throw new RangeError(`${label}: alignCorners can only be set with mode 'bilinear', got mode '${mode}'`);
  return { size, scaleFactor, mode, alignCorners: o.alignCorners ?? false };
}

/**
 * The output sizes of an interpolation of the spatial sizes `sizes`, and the scale factor of each dimension (null when
 * the size was given): a single size or factor applies to every dimension, a list must have one per dimension. With
 * a factor the size is ⌊size · factor⌋ (in double, as PyTorch), and must be at least 1.
 */
function interpolatedSizes(label: string, sizes: readonly number[], spec: InterpolationSpec): { out: number[]; factors: (number | null)[] } {
  const n = sizes.length;
  const perDim = (list: number[], name: string): number[] => {
    if (list.length === 1) return sizes.map(() => list[0]);
    if (list.length !== n) throw new RangeError(`${label}: ${name} has ${list.length} values for an input of ${n} spatial dimension${n === 1 ? '' : 's'} ${fmtShape(sizes)}`);
    return list;
  };
  if (spec.size) return { out: perDim(spec.size, 'size'), factors: sizes.map(() => null) };
  const f = perDim(spec.scaleFactor!, 'scaleFactor');
  const out = sizes.map((d, i) => Math.floor(d * f[i]));
  if (out.some((d) => d < 1))
    throw new RangeError(`${label}: scaleFactor ${spec.scaleFactor!.length === 1 ? spec.scaleFactor![0] : fmtShape(f)} turns the input's spatial size ${fmtShape(sizes)} into ${fmtShape(out)}; every size must be at least 1`);
  return { out, factors: f };
}

/** Checks an input of F.interpolate or Upsample ([N, C, L] or [N, C, H, W]; bilinear: 4-d only; no empty spatial
 * dimension) and gives its output sizes and scale factors. */
export function interpolationInput(label: string, shape: readonly number[], spec: InterpolationSpec): { out: number[]; factors: (number | null)[] } {
  if (spec.mode === 'bilinear' && shape.length !== 4) throw new RangeError(`${label}: mode 'bilinear' needs input [N, C, H, W], got ${fmtShape(shape)}`);
  if (shape.length !== 3 && shape.length !== 4) throw new RangeError(`${label}: input must be [N, C, L] or [N, C, H, W], got ${fmtShape(shape)}`);
  const sizes = shape.slice(2);
  if (sizes.some((d) => d === 0)) throw new RangeError(`${label}: input must have non-empty spatial dimensions, got ${fmtShape(shape)}`);
  return interpolatedSizes(label, sizes, spec);
}
