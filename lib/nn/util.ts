// Shape checks shared by the layers; each message names the layer, what it expected and what came.
import type { Tensor } from '../tensor.js';
import { sameShape } from '../workspace.js';

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
