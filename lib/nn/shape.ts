// Layers without parameters or arithmetic: Flatten (a view), Identity, Dropout and Dropout2d.
import { checkNumber } from '../errors.js';
import { nextSeed } from '../random.js';
import type { Tensor } from '../tensor.js';
import { dropout2d } from './functional.js';
import { Module } from './module.js';
import { checkFloat, checkGradShape, fmtShape } from './util.js';

/** Flattens every dimension after the first: [N, d1, d2, …] → [N, d1·d2·…] (PyTorch's start_dim = 1). */
export class Flatten extends Module {
  /** @internal Its forward leaves nothing outside but its output: a Sequential's lease may lend its buffers (lib/nn/graph.ts). */
  static readonly buffersStayInside = true;
  private xShape?: readonly number[];
  private yShape?: readonly number[];
  forward(input: Tensor): Tensor {
    const x = this.checkInput(input, 'Flatten');
    if (x.shape.length < 1) throw new RangeError(`Flatten: input must have a batch dimension, got shape ${fmtShape(x.shape)}`);
    const n = x.shape[0];
    const y = x.reshape([n, n === 0 ? 0 : x.size / n]);
    this.xShape = x.shape;
    this.yShape = y.shape;
    return y;
  }
  override backward(dy: Tensor): Tensor {
    checkGradShape('Flatten', this.checkInput(dy, 'Flatten'), this.yShape);
    return dy.reshape(this.xShape!);
  }
}

/** Inverted dropout: in training, zeroes each element with probability p and scales the rest by 1/(1−p). */
export class Dropout extends Module {
  /** @internal Its forward leaves nothing outside but its output: a Sequential's lease may lend its buffers (lib/nn/graph.ts). */
  static readonly buffersStayInside = true;
  /** The probability of zeroing an element. */
  readonly p: number;
  private mask?: Tensor;
  private yShape?: readonly number[];
  /** p in [0, 1] (default 0.5). */
  constructor(p = 0.5) {
    super();
    this.p = checkNumber('Dropout', 'p', p, { min: 0, max: 1 });
  }
  /** The layer as messages and summaries name it, e.g. `Dropout(p=0.5)`. */
  get label(): string {
    return `Dropout(p=${this.p})`;
  }
  forward(input: Tensor): Tensor {
    const x = this.checkInput(input, this.label);
    checkFloat(this.label, x);
    this.yShape = x.shape;
    if (!this.training || this.p === 0) {
      this.mask = undefined;
      return x;
    }
    const y = this.ws.get('y', x.backend, x.shape);
    const mask = this.ws.get('mask', x.backend, x.shape);
    x.backend.k.dropout_forward(y.buf, mask.buf, x.buf, x.size, this.p, nextSeed());
    this.mask = mask;
    return y;
  }
  override backward(dy: Tensor): Tensor {
    checkGradShape(this.label, this.checkInput(dy, this.label), this.yShape);
    if (!this.mask) return dy;
    const dx = this.ws.get('dx', dy.backend, dy.shape);
    dy.backend.k.dropout_backward(dx.buf, dy.buf, this.mask.buf, dy.size);
    return dx;
  }
}

/** Returns its input (PyTorch's nn.Identity, a stand-in for a layer that is switched off); constructor arguments are
 * accepted and ignored, as PyTorch's are. Its backward returns the gradient, so a Sequential of built-in layers that
 * holds it keeps its hand-written backward. */
export class Identity extends Module {
  /** @internal Its forward leaves nothing outside but its output: a Sequential's lease may lend its buffers (lib/nn/graph.ts). */
  static readonly buffersStayInside = true;
  private yShape?: readonly number[];
  /** Any arguments are accepted and ignored, as PyTorch's nn.Identity does. */
  constructor(..._args: unknown[]) {
    super();
  }
  forward(input: Tensor): Tensor {
    const x = this.checkInput(input, 'Identity');
    this.yShape = x.shape;
    return x;
  }
  override backward(dy: Tensor): Tensor {
    checkGradShape('Identity', this.checkInput(dy, 'Identity'), this.yShape);
    return dy;
  }
}

/** Channel dropout (PyTorch's Dropout2d): in training, zeroes each whole channel of [N, C, H, W] (or [C, H, W]) with
 * probability p and scales the kept ones by 1/(1−p); the identity in eval mode. One node of rg.F.dropout2d. */
export class Dropout2d extends Module {
  /** The probability of zeroing a channel. */
  readonly p: number;
  /** p in [0, 1] (default 0.5). */
  constructor(p = 0.5) {
    super();
    this.p = checkNumber('Dropout2d', 'p', p, { min: 0, max: 1 });
  }
  /** The layer as messages and summaries name it, e.g. `Dropout2d(p=0.5)`. */
  get label(): string {
    return `Dropout2d(p=${this.p})`;
  }
  forward(input: Tensor): Tensor {
    const x = this.checkInput(input, this.label);
    checkFloat(this.label, x);
    if (x.shape.length !== 4 && x.shape.length !== 3) throw new RangeError(`${this.label}: input must be [N, C, H, W] or [C, H, W], got ${fmtShape(x.shape)}`);
    return dropout2d(x, this.p, this.training);
  }
}
