// Pooling over NCHW input: MaxPool2d and AvgPool2d over KH × KW windows (stride defaults to the kernel size, zero
// padding at most half the kernel as PyTorch requires), and the global average over the whole H × W plane:
// GlobalAvgPool2d ([B, C], ready for a Linear) and PyTorch's AdaptiveAvgPool2d(1) ([B, C, 1, 1]).
// No parameters; dx overwrites. MaxPool2d keeps each window's argmax (int32) for its backward.
import { checkOptions } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { Module } from './module.js';
import { checkFloat, checkGradShape, fmtPair, fmtShape, pair, Scratch, type Size2 } from './util.js';

/** Options of {@link MaxPool2d} (and, with countIncludePad, {@link AvgPool2d}). */
export interface MaxPool2dOptions {
  /** Step of the window, n or [h, w]. Default: the kernel size. */
  stride?: Size2;
  /** Padding on both sides, n or [h, w], at most half the kernel (default 0). */
  padding?: Size2;
}

/** Options of {@link AvgPool2d}. */
export interface AvgPool2dOptions extends MaxPool2dOptions {
  /** Divide by KH·KW even where the window overlaps the padding (PyTorch's count_include_pad, default true). */
  countIncludePad?: boolean;
}

/** The sizes of one forward: input [B, C, H, W], output [B, C, OH, OW]. */
interface Geometry {
  B: number;
  C: number;
  H: number;
  W: number;
  OH: number;
  OW: number;
}

abstract class Pool2d extends Module {
  /** [KH, KW]. */
  readonly kernelSize: readonly [number, number];
  /** [SH, SW]. */
  readonly stride: readonly [number, number];
  /** [PH, PW]. */
  readonly padding: readonly [number, number];
  /** @internal The last forward's input. */
  protected x?: Tensor;
  /** @internal The last forward's sizes. */
  protected g?: Geometry;
  private yShape?: readonly number[];

  constructor(name: string, kernelSize: Size2, options: AvgPool2dOptions, valid: string[]) {
    super();
    checkOptions(name, options, valid);
    this.kernelSize = pair(name, 'kernelSize', kernelSize, 1);
    this.stride = pair(name, 'stride', options.stride ?? this.kernelSize, 1);
    this.padding = pair(name, 'padding', options.padding ?? 0, 0);
    const [KH, KW] = this.kernelSize, [PH, PW] = this.padding;
    if (2 * PH > KH || 2 * PW > KW)
      throw new RangeError(`${name}: padding must be at most half the kernel size, got padding ${fmtPair(this.padding)} with kernel ${fmtPair(this.kernelSize)}`);
  }

  /** The layer as messages and summaries name it, e.g. `MaxPool2d(k=2)` or `AvgPool2d(k=3, s=2)`. */
  abstract get label(): string;
  /** @internal The forward kernel. */
  protected abstract run(y: Tensor, x: Tensor, g: Geometry): void;
  /** @internal The backward kernel. */
  protected abstract grad(dx: Tensor, dy: Tensor, g: Geometry): void;

  /** @internal The window as labels show it: `k=3, s=2, p=1`. */
  protected get window(): string {
    const s = this.stride[0] !== this.kernelSize[0] || this.stride[1] !== this.kernelSize[1] ? `, s=${fmtPair(this.stride)}` : '';
    const p = this.padding[0] !== 0 || this.padding[1] !== 0 ? `, p=${fmtPair(this.padding)}` : '';
    return `k=${fmtPair(this.kernelSize)}${s}${p}`;
  }

  private geometry(shape: readonly number[]): Geometry {
    if (shape.length !== 4) throw new RangeError(`${this.label}: input must be [B, C, H, W], got ${fmtShape(shape)}`);
    const [B, C, H, W] = shape;
    if (H === 0 || W === 0) throw new RangeError(`${this.label}: input must have a non-empty H × W plane, got ${fmtShape(shape)}`);
    const [KH, KW] = this.kernelSize, [SH, SW] = this.stride, [PH, PW] = this.padding;
    if (H + 2 * PH < KH || W + 2 * PW < KW)
      throw new RangeError(`${this.label}: input ${fmtShape(shape)} is smaller than the kernel: the padded input is ${H + 2 * PH}×${W + 2 * PW}, the kernel ${KH}×${KW}`);
    return { B, C, H, W, OH: Math.floor((H + 2 * PH - KH) / SH) + 1, OW: Math.floor((W + 2 * PW - KW) / SW) + 1 };
  }

  forward(input: Tensor): Tensor {
    const x = this.checkInput(input, this.label);
    checkFloat(this.label, x);
    const g = this.geometry(x.shape);
    const y = this.ws.get('y', x.backend, [g.B, g.C, g.OH, g.OW]);
    if (y.size > 0) this.run(y, x, g);
    this.x = x;
    this.g = g;
    this.yShape = y.shape;
    return y;
  }

  override backward(dy: Tensor, inputGrad = true): Tensor {
    checkGradShape(this.label, this.checkInput(dy, this.label), this.yShape);
    const x = this.x!;
    if (!inputGrad) return this.ws.get('none', x.backend, [0]);
    const dx = this.ws.get('dx', x.backend, x.shape);
    if (dy.size > 0) this.grad(dx, dy, this.g!);
    return dx;
  }
}

/** The maximum of each window (padding never wins); the gradient flows to the first maximum of the window. */
export class MaxPool2d extends Pool2d {
  /** @internal Its forward leaves nothing outside but its output: a Sequential's lease may lend its buffers (lib/nn/graph.ts). */
  static readonly buffersStayInside = true;
  private readonly scratch = new Scratch(this.ws);
  private argmax?: Tensor;

  /** A window of kernelSize (n or [h, w]); stride defaults to the kernel size. */
  constructor(kernelSize: Size2, options: MaxPool2dOptions = {}) {
    super('MaxPool2d', kernelSize, options, ['stride', 'padding']);
  }
  get label(): string {
    return `MaxPool2d(${this.window})`;
  }
  protected run(y: Tensor, x: Tensor, { B, C, H, W }: Geometry): void {
    const argmax = this.scratch.get('argmax', x.backend, y.shape, 'int32');
    x.backend.k.maxpool2d_forward(y.buf, argmax.buf, x.buf, B, C, H, W, ...this.kernelSize, ...this.stride, ...this.padding);
    this.argmax = argmax;
  }
  protected grad(dx: Tensor, dy: Tensor, { B, C, H, W }: Geometry): void {
    dy.backend.k.maxpool2d_backward(dx.buf, dy.buf, this.argmax!.buf, B, C, H, W, ...this.kernelSize, ...this.stride, ...this.padding);
  }
}

/** The mean of each window, over KH·KW (countIncludePad, the default) or over the window's elements inside the input. */
export class AvgPool2d extends Pool2d {
  /** @internal Its forward leaves nothing outside but its output: a Sequential's lease may lend its buffers (lib/nn/graph.ts). */
  static readonly buffersStayInside = true;
  /** Whether padded positions count in the divisor. */
  readonly countIncludePad: boolean;

  /** A window of kernelSize (n or [h, w]); stride defaults to the kernel size. */
  constructor(kernelSize: Size2, options: AvgPool2dOptions = {}) {
    super('AvgPool2d', kernelSize, options, ['stride', 'padding', 'countIncludePad']);
    const c = options.countIncludePad ?? true;
    if (typeof c !== 'boolean') throw new TypeError(`AvgPool2d: option countIncludePad must be a boolean, got ${typeof c}`);
    this.countIncludePad = c;
  }
  get label(): string {
    return `AvgPool2d(${this.window}${this.countIncludePad ? '' : ', countIncludePad=false'})`;
  }
  protected run(y: Tensor, x: Tensor, { B, C, H, W }: Geometry): void {
    x.backend.k.avgpool2d_forward(y.buf, x.buf, B, C, H, W, ...this.kernelSize, ...this.stride, ...this.padding, this.countIncludePad);
  }
  protected grad(dx: Tensor, dy: Tensor, { B, C, H, W }: Geometry): void {
    dy.backend.k.avgpool2d_backward(dx.buf, dy.buf, B, C, H, W, ...this.kernelSize, ...this.stride, ...this.padding, this.countIncludePad);
  }
}

/** The mean over the whole H × W plane of each channel: one average-pooling window the size of the input. */
abstract class GlobalAvg extends Module {
  private x?: Tensor;
  private yShape?: readonly number[];
  /** The layer as messages and summaries name it, e.g. `GlobalAvgPool2d`. */
  abstract get label(): string;
  /** @internal The output shape for input [B, C, H, W]. */
  protected abstract outShape(B: number, C: number): number[];

  forward(input: Tensor): Tensor {
    const x = this.checkInput(input, this.label);
    checkFloat(this.label, x);
    if (x.shape.length !== 4) throw new RangeError(`${this.label}: input must be [B, C, H, W], got ${fmtShape(x.shape)}`);
    const [B, C, H, W] = x.shape;
    if (H === 0 || W === 0) throw new RangeError(`${this.label}: input must have a non-empty H × W plane, got ${fmtShape(x.shape)}`);
    const y = this.ws.get('y', x.backend, this.outShape(B, C));
    if (y.size > 0) x.backend.k.avgpool2d_forward(y.buf, x.buf, B, C, H, W, H, W, H, W, 0, 0, true);
    this.x = x;
    this.yShape = y.shape;
    return y;
  }

  override backward(dy: Tensor, inputGrad = true): Tensor {
    checkGradShape(this.label, this.checkInput(dy, this.label), this.yShape);
    const x = this.x!;
    if (!inputGrad) return this.ws.get('none', x.backend, [0]);
    const [B, C, H, W] = x.shape;
    const dx = this.ws.get('dx', x.backend, x.shape);
    if (dy.size > 0) x.backend.k.avgpool2d_backward(dx.buf, dy.buf, B, C, H, W, H, W, H, W, 0, 0, true);
    return dx;
  }
}

/** [B, C, H, W] → [B, C]: the mean of each channel's plane (Keras' GlobalAveragePooling2D; feeds a Linear directly). */
export class GlobalAvgPool2d extends GlobalAvg {
  /** @internal Its forward leaves nothing outside but its output: a Sequential's lease may lend its buffers (lib/nn/graph.ts). */
  static readonly buffersStayInside = true;
  get label(): string {
    return 'GlobalAvgPool2d';
  }
  protected outShape(B: number, C: number): number[] {
    return [B, C];
  }
}

/** PyTorch's AdaptiveAvgPool2d for output size 1 only: [B, C, H, W] → [B, C, 1, 1]. */
export class AdaptiveAvgPool2d extends GlobalAvg {
  /** @internal Its forward leaves nothing outside but its output: a Sequential's lease may lend its buffers (lib/nn/graph.ts). */
  static readonly buffersStayInside = true;
  /** Always [1, 1]. */
  readonly outputSize: readonly [number, number];
  /** outputSize must be 1 (or [1, 1]): other sizes are a RangeError. */
  constructor(outputSize: Size2 = 1) {
    super();
    const size = pair('AdaptiveAvgPool2d', 'outputSize', outputSize, 1);
    if (size[0] !== 1 || size[1] !== 1)
      throw new RangeError(`AdaptiveAvgPool2d: only output size 1 (the global average) is supported, got ${fmtPair(size)}`);
    this.outputSize = size;
  }
  get label(): string {
    return 'AdaptiveAvgPool2d(1)';
  }
  protected outShape(B: number, C: number): number[] {
    return [B, C, 1, 1];
  }
}
