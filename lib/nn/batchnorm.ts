// Batch normalisation as PyTorch does it: per channel c of x [B, C, R] (R = 1 or L for BatchNorm1d, H·W for
// BatchNorm2d), y = (x − mean)/√(var + eps)·weight[c] + bias[c] with the batch's mean and biased variance in
// training, the running statistics in eval. Training forwards update running_mean / running_var with PyTorch's
// momentum convention (new = (1 − momentum)·old + momentum·batch, the variance unbiased; momentum null: the
// cumulative average, momentum = 1/num_batches_tracked) and count num_batches_tracked (an int32 scalar tensor).
// Weight starts at 1, bias at 0. Gradient contract: dweight and dbias accumulate (or overwrite freshly zeroed
// grads); dx overwrites.
import { currentBackend, type Backend } from '../backend.js';
import { checkNumber, checkOptions } from '../errors.js';
import { fromHost, Tensor } from '../tensor.js';
import { Module, Parameter } from './module.js';
import { checkFloat, checkGradShape, fmtShape, Scratch } from './util.js';

/** Options of {@link BatchNorm1d} and {@link BatchNorm2d}. */
export interface BatchNormOptions {
  /** Added to the variance inside the square root (default 1e-5). */
  eps?: number;
  /** Weight of the batch statistics in the running ones (default 0.1); null for the cumulative average. */
  momentum?: number | null;
  /** Learnable per-channel weight and bias (default true). */
  affine?: boolean;
  /** Keep running statistics for eval mode (default true); without them eval mode uses the batch statistics too. */
  trackRunningStats?: boolean;
}

/**
 * num_batches_tracked with a copy of its value on the JavaScript side, so that counting a training step (and the
 * cumulative momentum 1/count) is a queued write and never waits for the device. The copy is dropped whenever the
 * tensor is written from outside (loadStateDict, assign) and read back once, on the next training forward.
 */
class BatchCounter extends Tensor {
  count: number | undefined;
  override assign(src: Tensor | ArrayLike<number>): this {
    super.assign(src);
    this.count = undefined;
    return this;
  }
}

abstract class BatchNorm extends Module {
  /** C, the channels. */
  readonly numFeatures: number;
  /** Added to the variance inside the square root. */
  readonly eps: number;
  /** Weight of each batch's statistics in the running ones; null: the cumulative average. */
  readonly momentum: number | null;
  /** Whether weight and bias are learned. */
  readonly affine: boolean;
  /** Whether running statistics are kept (buffers running_mean, running_var, num_batches_tracked). */
  readonly trackRunningStats: boolean;
  /** [C], starting at 1; null when not affine. */
  readonly weight: Parameter | null;
  /** [C], starting at 0; null when not affine. */
  readonly bias: Parameter | null;
  private readonly scratch = new Scratch(this.ws);
  private x?: Tensor;
  private saved?: { mean: Tensor; invstd: Tensor; R: number; batchStats: boolean };
  private yShape?: readonly number[];

  constructor(name: string, numFeatures: number, options: BatchNormOptions) {
    super();
    checkOptions(name, options, ['eps', 'momentum', 'affine', 'trackRunningStats']);
    this.numFeatures = checkNumber(name, 'numFeatures', numFeatures, { min: 1, integer: true });
    this.eps = checkNumber(name, 'eps', options.eps ?? 1e-5, { min: 0, minExclusive: true });
    const momentum = options.momentum === undefined ? 0.1 : options.momentum;
    this.momentum = momentum === null ? null : checkNumber(name, 'momentum', momentum, { min: 0, max: 1 });
    for (const key of ['affine', 'trackRunningStats'] as const) {
      const v = options[key] ?? true;
      if (typeof v !== 'boolean') throw new TypeError(`${name}: option ${key} must be a boolean, got ${typeof v}`);
    }
    this.affine = options.affine ?? true;
    this.trackRunningStats = options.trackRunningStats ?? true;
    const b = currentBackend();
    const C = numFeatures;
    this.weight = this.affine ? this.registerParameter('weight', new Parameter(fromHost(b, new Float32Array(C).fill(1), [C]))) : null;
    this.bias = this.affine ? this.registerParameter('bias', new Parameter(fromHost(b, new Float32Array(C), [C]))) : null;
    if (this.trackRunningStats) {
      this.registerBuffer('running_mean', fromHost(b, new Float32Array(C), [C]));
      this.registerBuffer('running_var', fromHost(b, new Float32Array(C).fill(1), [C]));
      const counter = new BatchCounter(b, b.fromHost(Int32Array.of(0)), [], 'int32');
      counter.count = 0;
      this.registerBuffer('num_batches_tracked', counter);
    }
  }

  /** The layer as messages and summaries name it, e.g. `BatchNorm2d(16)`. */
  abstract get label(): string;
  /** @internal R, the elements per (sample, channel), after checking the input's rank and channel count. */
  protected abstract planeSize(shape: readonly number[]): number;

  /** The backend of the parameters, else of the running statistics (a BatchNorm with affine false has only those). */
  override get backend(): Backend {
    if (this.weight) return this.weight.value.backend;
    if (this.trackRunningStats) return this.getBuffer('running_mean').backend;
    return currentBackend();
  }

  /** The num_batches_tracked buffer as a BatchCounter (a move or a gradient check replaces it with a plain tensor). */
  private counter(): BatchCounter {
    const t = this.getBuffer('num_batches_tracked');
    if (t instanceof BatchCounter) return t;
    const c = new BatchCounter(t.backend, t.buf, t.shape, t.dtype);
    this.registerBuffer('num_batches_tracked', c);
    return c;
  }

  forward(input: Tensor): Tensor {
    const x = this.checkInput(input, this.label);
    checkFloat(this.label, x);
    const R = this.planeSize(x.shape);
    const B = x.shape[0], C = this.numFeatures;
    // PyTorch: batch statistics in training, and always when there are no running ones.
    const batchStats = this.training || !this.trackRunningStats;
    if (batchStats && B * R <= 1)
      throw new RangeError(`${this.label}: expected more than 1 value per channel when using batch statistics (training), got input ${fmtShape(x.shape)}`);
    const b = x.backend, k = b.k;
    let momentum = 0;
    let runMean: Tensor, runVar: Tensor;
    if (this.trackRunningStats) {
      runMean = this.getBuffer('running_mean');
      runVar = this.getBuffer('running_var');
      if (this.training) {
        const c = this.counter();
        c.count = (c.count ?? c.item()) + 1;
        b.write(c.buf, Int32Array.of(c.count));
        momentum = this.momentum ?? 1 / c.count;
      }
    } else {
      // The kernel's training path blends into the running statistics: here throwaway ones, blended with weight 0.
      runMean = this.scratch.get('runMean', b, [C]);
      runVar = this.scratch.get('runVar', b, [C]);
    }
    const y = this.ws.get('y', b, x.shape);
    const mean = this.scratch.get('mean', b, [C]);
    const invstd = this.scratch.get('invstd', b, [C]);
    if (x.size > 0) {
      k.batchnorm_forward(
        y.buf, mean.buf, invstd.buf, runMean.buf, runVar.buf, x.buf,
        this.weight ? this.weight.value.buf : null, this.bias ? this.bias.value.buf : null,
        B, C, R, momentum, this.eps, batchStats,
      );
    }
    this.scratch.release('runMean');
    this.scratch.release('runVar');
    this.x = x;
    this.saved = { mean, invstd, R, batchStats };
    this.yShape = y.shape;
    return y;
  }

  override backward(dy: Tensor, inputGrad = true): Tensor {
    checkGradShape(this.label, this.checkInput(dy, this.label), this.yShape);
    const x = this.x!;
    const { mean, invstd, R, batchStats } = this.saved!;
    const B = x.shape[0], C = this.numFeatures;
    const b = x.backend, k = b.k;
    const { bufs: [dw, db], accumulate } = Parameter.gradTargets([this.weight, this.bias]);
    const dx = inputGrad ? this.ws.get('dx', b, x.shape) : this.ws.get('none', b, [0]);
    if (x.size === 0) {
      // An empty batch (eval mode) contributes nothing; grads claimed for overwriting still have to read as zeros.
      if (!accumulate) for (const g of [dw, db]) if (g) k.fill(g, C, 0);
      return dx;
    }
    k.batchnorm_backward(
      inputGrad ? dx.buf : null, dw, db, dy.buf, x.buf, this.weight ? this.weight.value.buf : null,
      mean.buf, invstd.buf, B, C, R, batchStats, accumulate,
    );
    return dx;
  }
}

/**
 * Batch normalisation over [B, C] or [B, C, L], as torch.nn.BatchNorm1d: per channel, y = (x − mean)/√(var + eps)·
 * weight + bias with the batch's statistics (over B and L) in training, the running ones in eval. Training updates
 * running_mean and running_var with PyTorch's momentum (the variance unbiased) and counts num_batches_tracked.
 */
export class BatchNorm1d extends BatchNorm {
  /** @internal Its forward leaves nothing outside but its output: a Sequential's lease may lend its buffers (lib/nn/graph.ts). */
  static readonly buffersStayInside = true;
  /** numFeatures: C, the channels (an integer ≥ 1). */
  constructor(numFeatures: number, options: BatchNormOptions = {}) {
    super('BatchNorm1d', numFeatures, options);
  }
  get label(): string {
    return `BatchNorm1d(${this.numFeatures})`;
  }
  protected planeSize(shape: readonly number[]): number {
    const C = this.numFeatures;
    if ((shape.length !== 2 && shape.length !== 3) || shape[1] !== C)
      throw new RangeError(`${this.label}: input must be [B, ${C}] or [B, ${C}, L], got ${fmtShape(shape)}`);
    return shape.length === 3 ? shape[2] : 1;
  }
}

/**
 * Batch normalisation over [B, C, H, W], as torch.nn.BatchNorm2d: per channel, statistics over the batch and the
 * plane (the batch's in training, the running ones in eval); otherwise as {@link BatchNorm1d}.
 */
export class BatchNorm2d extends BatchNorm {
  /** @internal Its forward leaves nothing outside but its output: a Sequential's lease may lend its buffers (lib/nn/graph.ts). */
  static readonly buffersStayInside = true;
  /** numFeatures: C, the channels (an integer ≥ 1). */
  constructor(numFeatures: number, options: BatchNormOptions = {}) {
    super('BatchNorm2d', numFeatures, options);
  }
  get label(): string {
    return `BatchNorm2d(${this.numFeatures})`;
  }
  protected planeSize(shape: readonly number[]): number {
    const C = this.numFeatures;
    if (shape.length !== 4 || shape[1] !== C) throw new RangeError(`${this.label}: input must be [B, ${C}, H, W], got ${fmtShape(shape)}`);
    return shape[2] * shape[3];
  }
}
