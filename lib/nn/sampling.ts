// Upsample: resampling of [N, C, H, W] (or, 'nearest', [N, C, L]) to a size or by a scale factor, PyTorch's
// nn.Upsample with its source positions (rg.F.interpolate says which). No parameters; its backward comes from the
// graph (index_add for 'nearest', two matrix products for 'bilinear').
import type { Tensor } from '../tensor.js';
import { interpolate } from './functional.js';
import { Module } from './module.js';
import { checkFloat, fmtShape, interpolationInput, interpolationSpec, type InterpolationMode, type InterpolationOptions, type InterpolationSpec } from './util.js';

/** Options of {@link Upsample}: F.interpolate's (exactly one of size and scaleFactor). */
export type UpsampleOptions = InterpolationOptions;

/**
 * Resampling of [N, C, H, W] (or, 'nearest' only, [N, C, L]) to a size or by a scale factor, as torch.nn.Upsample
 * with PyTorch's source positions ({@link F.interpolate}). No parameters; its backward comes from the graph.
 */
export class Upsample extends Module {
  /** The output's spatial size, one number per dimension or one for all; null when a scale factor was given. */
  readonly size: readonly number[] | null;
  /** The scale factor, one per dimension or one for all; null when a size was given. */
  readonly scaleFactor: readonly number[] | null;
  /** 'nearest' or 'bilinear'. */
  readonly mode: InterpolationMode;
  /** Bilinear: whether the corner pixels of input and output align. */
  readonly alignCorners: boolean;
  private readonly spec: InterpolationSpec;

  /** One of size and scaleFactor, and the mode (default 'nearest'); errors name the option. */
  constructor(options: UpsampleOptions = {}) {
    super();
    this.spec = interpolationSpec('Upsample', options);
    this.size = this.spec.size && Object.freeze([...this.spec.size]);
    this.scaleFactor = this.spec.scaleFactor && Object.freeze([...this.spec.scaleFactor]);
    this.mode = this.spec.mode;
    this.alignCorners = this.spec.alignCorners;
  }

  /** The layer as messages and summaries name it, e.g. `Upsample(scaleFactor=2, mode='nearest')`. */
  get label(): string {
    const list = (v: readonly number[]) => (v.length === 1 ? String(v[0]) : fmtShape(v));
    const what = this.size ? `size=${list(this.size)}` : `scaleFactor=${list(this.scaleFactor!)}`;
    return `Upsample(${what}, mode='${this.mode}'${this.mode === 'bilinear' ? `, alignCorners=${this.alignCorners}` : ''})`;
  }

  forward(input: Tensor): Tensor {
    const x = this.checkInput(input, this.label);
    checkFloat(this.label, x);
    interpolationInput(this.label, x.shape, this.spec); // the input's errors name the layer
    return interpolate(x, {
      ...(this.size ? { size: this.size } : { scaleFactor: this.scaleFactor! }),
      mode: this.mode,
      ...(this.mode === 'bilinear' ? { alignCorners: this.alignCorners } : {}),
    });
  }
}
