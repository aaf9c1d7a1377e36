// Shape checks shared by the layers (each message names the layer, what it expected and what came), and the
// window sizes and private buffers of the convolution and pooling layers.
import type { Backend } from '../backend.js';
import { checkNumber, describe } from '../errors.js';
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

  get(key: string, backend: Backend, shape: readonly number[], dtype: 'float' | 'int32' = 'float'): Tensor {
    this.release(key);
    const t = this.ws.get(key, backend, shape, dtype);
    if (this.ws.reuse === 0) this.owned.set(key, t);
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
