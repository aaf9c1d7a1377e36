// The convolution layers: Conv2d (hand-written forward and backward over the fused kernels), ConvTranspose2d and Conv1d
// (one node of rg.F each, on the same kernels).
//
// Conv2d: a 2-D cross-correlation over NCHW input, weight [OC, C, KH, KW] as PyTorch lays it out, initialised as
// PyTorch does (kaiming_uniform with a = √5, i.e. U(−1/√fanIn, 1/√fanIn) with fanIn = C·KH·KW, and the same bound
// for the bias). It runs as the fused kernels conv2d_forward / conv2d_backward, one matrix product over the im2col
// columns (the CPU works through the batch a few images at a time, so the columns stay in cache):
//   forward   col[C·KH·KW, B·OH·OW] = im2col(x);  Y'[OC, B·OH·OW] = W · col;  y[B, OC, OH, OW] = transpose01(Y') + bias
//   backward  dY' = transpose01(dy);  dW (+)= dY' · colᵀ;  dbias (+)= Σ_{b,oh,ow} dy;  dx = col2im(Wᵀ · dY')
// Gradient contract: dW and dbias accumulate (or overwrite freshly zeroed grads, as Linear does); dx overwrites.
import { checkNumber, checkOptions } from '../errors.js';
import { uniform } from '../random.js';
import { currentBackend } from '../backend.js';
import { fromHost, type Tensor } from '../tensor.js';
import * as F from './functional.js';
import { Module, Parameter } from './module.js';
import { checkFloat, checkGradShape, checkOutputPadding, fmtPair, fmtShape, pair, single, transposedSize, type Size1, type Size2 } from './util.js';

/** Options of {@link Conv2d}. */
export interface Conv2dOptions {
  /** Step of the window, n or [h, w] (default 1). */
  stride?: Size2;
  /** Zero padding added on both sides, n or [h, w] (default 0). */
  padding?: Size2;
  /** Spacing of the kernel's taps, n or [h, w] (default 1). */
  dilation?: Size2;
  /** Learn a bias per output channel (default true). */
  bias?: boolean;
}

/** The sizes of one forward: input [B, C, H, W], output [B, OC, OH, OW]. */
interface Geometry {
  B: number;
  H: number;
  W: number;
  OH: number;
  OW: number;
}

/**
 * A 2-d convolution (cross-correlation) over NCHW input, as torch.nn.Conv2d with groups 1: x [B, inChannels, H, W]
 * → [B, outChannels, OH, OW], OH = ⌊(H + 2·padding − dilation·(kernel − 1) − 1) / stride⌋ + 1 (OW likewise).
 * weight [outChannels, inChannels, KH, KW] and bias are initialised as PyTorch's, U(−1/√fanIn, 1/√fanIn) with
 * fanIn = inChannels·KH·KW. Runs on the fused im2col and matrix-product kernels; the input must be at least the
 * (dilated) kernel's size once padded, else a RangeError names both.
 */
export class Conv2d extends Module {
  /** @internal Its forward leaves nothing outside but its output: a Sequential's lease may lend its buffers (lib/nn/graph.ts). */
  static readonly buffersStayInside = true;
  /** Channels of the input. */
  readonly inChannels: number;
  /** Channels of the output. */
  readonly outChannels: number;
  /** [KH, KW]. */
  readonly kernelSize: readonly [number, number];
  /** [SH, SW]. */
  readonly stride: readonly [number, number];
  /** [PH, PW]. */
  readonly padding: readonly [number, number];
  /** [DH, DW]. */
  readonly dilation: readonly [number, number];
  /** [outChannels, inChannels, KH, KW]. */
  readonly weight: Parameter;
  /** [outChannels], or null with `bias: false`. */
  readonly bias: Parameter | null;
  private x?: Tensor;
  private g?: Geometry;
  private yShape?: readonly number[];

  /** inChannels → outChannels with a kernelSize window (n or [h, w]); sizes are integers ≥ 1, padding ≥ 0. */
  constructor(inChannels: number, outChannels: number, kernelSize: Size2, options: Conv2dOptions = {}) {
    super();
    checkOptions('Conv2d', options, ['stride', 'padding', 'dilation', 'bias']);
    this.inChannels = checkNumber('Conv2d', 'inChannels', inChannels, { min: 1, integer: true });
    this.outChannels = checkNumber('Conv2d', 'outChannels', outChannels, { min: 1, integer: true });
    this.kernelSize = pair('Conv2d', 'kernelSize', kernelSize, 1);
    this.stride = pair('Conv2d', 'stride', options.stride ?? 1, 1);
    this.padding = pair('Conv2d', 'padding', options.padding ?? 0, 0);
    this.dilation = pair('Conv2d', 'dilation', options.dilation ?? 1, 1);
    const useBias = checkBias('Conv2d', options.bias ?? true);
    const [KH, KW] = this.kernelSize;
    const fanIn = inChannels * KH * KW;
    const bound = 1 / Math.sqrt(fanIn);
    const b = currentBackend();
    this.weight = this.registerParameter('weight', new Parameter(fromHost(b, uniformInit(outChannels * fanIn, bound), [outChannels, inChannels, KH, KW])));
    this.bias = useBias ? this.registerParameter('bias', new Parameter(fromHost(b, uniformInit(outChannels, bound), [outChannels]))) : null;
  }

  /** The layer as messages and summaries name it, e.g. `Conv2d(3→16, k=3, s=2)`. */
  get label(): string {
    const extra = [
      this.stride[0] !== 1 || this.stride[1] !== 1 ? `s=${fmtPair(this.stride)}` : '',
      this.padding[0] !== 0 || this.padding[1] !== 0 ? `p=${fmtPair(this.padding)}` : '',
      this.dilation[0] !== 1 || this.dilation[1] !== 1 ? `d=${fmtPair(this.dilation)}` : '',
    ].filter(Boolean);
    return `Conv2d(${this.inChannels}→${this.outChannels}, k=${[fmtPair(this.kernelSize), ...extra].join(', ')})`;
  }

  /** Checks the input shape and computes the output's; every message names the layer, the expectation and the input. */
  private geometry(shape: readonly number[]): Geometry {
    const C = this.inChannels;
    if (shape.length !== 4 || shape[1] !== C)
      throw new RangeError(`${this.label}: input must be [B, ${C}, H, W], got ${fmtShape(shape)}`);
    const [B, , H, W] = shape;
    if (H === 0 || W === 0) throw new RangeError(`${this.label}: input must have a non-empty H × W plane, got ${fmtShape(shape)}`);
    const [KH, KW] = this.kernelSize, [SH, SW] = this.stride, [PH, PW] = this.padding, [DH, DW] = this.dilation;
    // The dilated kernel spans DH·(KH − 1) + 1 rows; it must fit in the padded input at least once.
    const EH = DH * (KH - 1) + 1, EW = DW * (KW - 1) + 1;
    if (H + 2 * PH < EH || W + 2 * PW < EW)
      throw new RangeError(
        `${this.label}: input ${fmtShape(shape)} is smaller than the kernel: the padded input is ${H + 2 * PH}×${W + 2 * PW}, ` +
          `the${DH > 1 || DW > 1 ? ' dilated' : ''} kernel ${EH}×${EW}`,
      );
    const OH = Math.floor((H + 2 * PH - EH) / SH) + 1;
    const OW = Math.floor((W + 2 * PW - EW) / SW) + 1;
    return { B, H, W, OH, OW };
  }

  forward(input: Tensor): Tensor {
    const x = this.checkInput(input, this.label);
    checkFloat(this.label, x);
    const g = this.geometry(x.shape);
    const { B, H, W, OH, OW } = g;
    const C = this.inChannels, OC = this.outChannels;
    const [KH, KW] = this.kernelSize, [SH, SW] = this.stride, [PH, PW] = this.padding, [DH, DW] = this.dilation;
    const b = x.backend, k = b.k;
    const y = this.ws.get('y', b, [B, OC, OH, OW]);
    if (B * OH * OW > 0)
      k.conv2d_forward(y.buf, x.buf, this.weight.value.buf, this.bias ? this.bias.value.buf : null, B, C, H, W, OC, KH, KW, SH, SW, PH, PW, DH, DW);
    this.x = x;
    this.g = g;
    this.yShape = y.shape;
    return y;
  }

  override backward(dy: Tensor, inputGrad = true): Tensor {
    checkGradShape(this.label, this.checkInput(dy, this.label), this.yShape);
    const x = this.x!;
    const { B, H, W, OH, OW } = this.g!;
    const C = this.inChannels, OC = this.outChannels;
    const [KH, KW] = this.kernelSize, [SH, SW] = this.stride, [PH, PW] = this.padding, [DH, DW] = this.dilation;
    const b = x.backend, k = b.k;
    const { bufs: [dw, db], accumulate } = Parameter.gradTargets([this.weight, this.bias]);
    const dx = inputGrad ? this.ws.get('dx', b, x.shape) : this.ws.get('none', b, [0]);
    if (dw || db || (inputGrad && B * OH * OW > 0))
      k.conv2d_backward(inputGrad ? dx.buf : null, dw, db, dy.buf, x.buf, this.weight.value.buf, B, C, H, W, OC, KH, KW, SH, SW, PH, PW, DH, DW, accumulate);
    return dx;
  }
}

// ConvTranspose2d: the transposed convolution ("deconvolution", the gradient of a convolution with respect to its
// input), weight [IC, OC, KH, KW] as PyTorch lays it out, groups 1. PyTorch's _ConvNd.reset_parameters initialises it
// with kaiming_uniform(a = √5), whose fan_in is weight.size(1)·KH·KW: OC·KH·KW for this layout, so the weight and the
// bias are U(−1/√(OC·KH·KW), 1/√(OC·KH·KW)). It runs as one node of rg.F.convTranspose2d, on the conv2d kernels.

/** Options of {@link ConvTranspose2d}. */
export interface ConvTranspose2dOptions {
  /** Stride of the convolution it transposes, n or [h, w] (default 1). */
  stride?: Size2;
  /** Padding of the convolution it transposes, taken off the output's borders, n or [h, w] (default 0). */
  padding?: Size2;
  /** Rows and columns added at the bottom and right of the output (default 0); each below its stride or its dilation. */
  outputPadding?: Size2;
  /** Spacing of the kernel's taps, n or [h, w] (default 1). */
  dilation?: Size2;
  /** Learn a bias per output channel (default true). */
  bias?: boolean;
}

/** Uniform U(−bound, bound) values from retrograd's seeded generator. */
function uniformInit(n: number, bound: number): Float32Array {
  return Float32Array.from({ length: n }, () => (2 * uniform() - 1) * bound);
}

function checkBias(name: string, useBias: unknown): boolean {
  if (typeof useBias !== 'boolean') throw new TypeError(`${name}: option bias must be a boolean, got ${typeof useBias}`);
  return useBias;
}

/**
 * The transposed convolution (the gradient of a convolution with respect to its input), as torch.nn.ConvTranspose2d
 * with groups 1: x [B, inChannels, H, W] (or unbatched) → [B, outChannels, OH, OW], OH = (H − 1)·stride − 2·padding +
 * dilation·(KH − 1) + outputPadding + 1. weight [inChannels, outChannels, KH, KW] (PyTorch's layout) and bias are
 * U(−1/√(outChannels·KH·KW), 1/√(outChannels·KH·KW)), as PyTorch initialises them. One node of F.convTranspose2d.
 */
export class ConvTranspose2d extends Module {
  /** Channels of the input. */
  readonly inChannels: number;
  /** Channels of the output. */
  readonly outChannels: number;
  /** [KH, KW]. */
  readonly kernelSize: readonly [number, number];
  /** [SH, SW]. */
  readonly stride: readonly [number, number];
  /** [PH, PW]. */
  readonly padding: readonly [number, number];
  /** Rows and columns added at the bottom and right of the output. */
  readonly outputPadding: readonly [number, number];
  /** [DH, DW]. */
  readonly dilation: readonly [number, number];
  /** [inChannels, outChannels, KH, KW] (PyTorch's layout for a transposed convolution). */
  readonly weight: Parameter;
  /** [outChannels], or null with `bias: false`. */
  readonly bias: Parameter | null;

  /** inChannels → outChannels with a kernelSize window (n or [h, w]); each outputPadding below its stride or its dilation. */
  constructor(inChannels: number, outChannels: number, kernelSize: Size2, options: ConvTranspose2dOptions = {}) {
    super();
    const name = 'ConvTranspose2d';
    checkOptions(name, options, ['stride', 'padding', 'outputPadding', 'dilation', 'bias']);
    this.inChannels = checkNumber(name, 'inChannels', inChannels, { min: 1, integer: true });
    this.outChannels = checkNumber(name, 'outChannels', outChannels, { min: 1, integer: true });
    this.kernelSize = pair(name, 'kernelSize', kernelSize, 1);
    this.stride = pair(name, 'stride', options.stride ?? 1, 1);
    this.padding = pair(name, 'padding', options.padding ?? 0, 0);
    this.outputPadding = pair(name, 'outputPadding', options.outputPadding ?? 0, 0);
    this.dilation = pair(name, 'dilation', options.dilation ?? 1, 1);
    checkOutputPadding(name, this.outputPadding, this.stride, this.dilation);
    const useBias = checkBias(name, options.bias ?? true);
    const [KH, KW] = this.kernelSize;
    const fanIn = outChannels * KH * KW;
    const bound = 1 / Math.sqrt(fanIn);
    const b = currentBackend();
    this.weight = this.registerParameter('weight', new Parameter(fromHost(b, uniformInit(inChannels * fanIn, bound), [inChannels, outChannels, KH, KW])));
    this.bias = useBias ? this.registerParameter('bias', new Parameter(fromHost(b, uniformInit(outChannels, bound), [outChannels]))) : null;
  }

  /** The layer as messages and summaries name it, e.g. `ConvTranspose2d(16→3, k=4, s=2, p=1)`. */
  get label(): string {
    const extra = [
      this.stride[0] !== 1 || this.stride[1] !== 1 ? `s=${fmtPair(this.stride)}` : '',
      this.padding[0] !== 0 || this.padding[1] !== 0 ? `p=${fmtPair(this.padding)}` : '',
      this.outputPadding[0] !== 0 || this.outputPadding[1] !== 0 ? `op=${fmtPair(this.outputPadding)}` : '',
      this.dilation[0] !== 1 || this.dilation[1] !== 1 ? `d=${fmtPair(this.dilation)}` : '',
    ].filter(Boolean);
    return `ConvTranspose2d(${this.inChannels}→${this.outChannels}, k=${[fmtPair(this.kernelSize), ...extra].join(', ')})`;
  }

  /** x [B, IC, H, W] or [IC, H, W] → [B, OC, OH, OW] (or [OC, OH, OW]), OH = (H − 1)·S − 2P + D·(KH − 1) + outputPadding + 1. */
  forward(input: Tensor): Tensor {
    const x = this.checkInput(input, this.label);
    checkFloat(this.label, x);
    const r = x.shape.length, IC = this.inChannels;
    if ((r !== 4 && r !== 3) || x.shape[r - 3] !== IC)
      throw new RangeError(`${this.label}: input must be [B, ${IC}, H, W] or [${IC}, H, W], got ${fmtShape(x.shape)}`);
    const [H, W] = x.shape.slice(-2);
    if (H === 0 || W === 0) throw new RangeError(`${this.label}: input must have a non-empty H × W plane, got ${fmtShape(x.shape)}`);
    const [KH, KW] = this.kernelSize, [SH, SW] = this.stride, [PH, PW] = this.padding, [DH, DW] = this.dilation, [OPH, OPW] = this.outputPadding;
    const OH = transposedSize(H, KH, SH, PH, DH, OPH), OW = transposedSize(W, KW, SW, PW, DW, OPW);
    if (OH < 1 || OW < 1)
      throw new RangeError(`${this.label}: input ${fmtShape(x.shape)} gives an output of ${OH}×${OW}: the padding takes away more than the kernel adds`);
    return F.convTranspose2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding, outputPadding: this.outputPadding, dilation: this.dilation });
  }
}

// Conv1d: a 1-d cross-correlation over [B, C, L] (or [C, L]), weight [OC, C, K] as PyTorch, initialised as Conv2d
// (U(−1/√(C·K), 1/√(C·K)) for the weight and the bias). One node of rg.F.conv1d: the conv2d kernels with H = 1.

/** Options of {@link Conv1d}. */
export interface Conv1dOptions {
  /** Step of the window (default 1). */
  stride?: Size1;
  /** Zero padding added on both ends (default 0). */
  padding?: Size1;
  /** Spacing of the kernel's taps (default 1). */
  dilation?: Size1;
  /** Learn a bias per output channel (default true). */
  bias?: boolean;
}

/**
 * A 1-d convolution over [B, inChannels, L] (or unbatched [inChannels, L]), as torch.nn.Conv1d with groups 1:
 * output [B, outChannels, OL], OL = ⌊(L + 2·padding − dilation·(K − 1) − 1) / stride⌋ + 1. weight [outChannels,
 * inChannels, K] and bias are U(−1/√(inChannels·K), 1/√(inChannels·K)). One node of F.conv1d, on the conv2d kernels.
 */
export class Conv1d extends Module {
  /** Channels of the input. */
  readonly inChannels: number;
  /** Channels of the output. */
  readonly outChannels: number;
  /** K. */
  readonly kernelSize: number;
  /** The window's step. */
  readonly stride: number;
  /** Zeros added on both ends. */
  readonly padding: number;
  /** Spacing of the kernel's taps. */
  readonly dilation: number;
  /** [outChannels, inChannels, K]. */
  readonly weight: Parameter;
  /** [outChannels], or null with `bias: false`. */
  readonly bias: Parameter | null;

  /** inChannels → outChannels with a window of kernelSize (n or [n]); sizes are integers ≥ 1, padding ≥ 0. */
  constructor(inChannels: number, outChannels: number, kernelSize: Size1, options: Conv1dOptions = {}) {
    super();
    const name = 'Conv1d';
    checkOptions(name, options, ['stride', 'padding', 'dilation', 'bias']);
    this.inChannels = checkNumber(name, 'inChannels', inChannels, { min: 1, integer: true });
    this.outChannels = checkNumber(name, 'outChannels', outChannels, { min: 1, integer: true });
    this.kernelSize = single(name, 'kernelSize', kernelSize, 1);
    this.stride = single(name, 'stride', options.stride ?? 1, 1);
    this.padding = single(name, 'padding', options.padding ?? 0, 0);
    this.dilation = single(name, 'dilation', options.dilation ?? 1, 1);
    const useBias = checkBias(name, options.bias ?? true);
    const K = this.kernelSize, fanIn = inChannels * K, bound = 1 / Math.sqrt(fanIn);
    const b = currentBackend();
    this.weight = this.registerParameter('weight', new Parameter(fromHost(b, uniformInit(outChannels * fanIn, bound), [outChannels, inChannels, K])));
    this.bias = useBias ? this.registerParameter('bias', new Parameter(fromHost(b, uniformInit(outChannels, bound), [outChannels]))) : null;
  }

  /** The layer as messages and summaries name it, e.g. `Conv1d(8→16, k=3)`. */
  get label(): string {
    const extra = [
      this.stride !== 1 ? `s=${this.stride}` : '',
      this.padding !== 0 ? `p=${this.padding}` : '',
      this.dilation !== 1 ? `d=${this.dilation}` : '',
    ].filter(Boolean);
    return `Conv1d(${this.inChannels}→${this.outChannels}, k=${[String(this.kernelSize), ...extra].join(', ')})`;
  }

  /** x [B, C, L] or [C, L] → [B, OC, OL] (or [OC, OL]), OL = ⌊(L + 2P − D·(K − 1) − 1)/S⌋ + 1. */
  forward(input: Tensor): Tensor {
    const x = this.checkInput(input, this.label);
    checkFloat(this.label, x);
    const r = x.shape.length, C = this.inChannels;
    if ((r !== 3 && r !== 2) || x.shape[r - 2] !== C) throw new RangeError(`${this.label}: input must be [B, ${C}, L] or [${C}, L], got ${fmtShape(x.shape)}`);
    const L = x.shape[r - 1], span = this.dilation * (this.kernelSize - 1) + 1;
    if (L === 0 || L + 2 * this.padding < span)
      throw new RangeError(
        `${this.label}: input ${fmtShape(x.shape)} is shorter than the kernel: the padded input has length ${L + 2 * this.padding}, ` +
          `the${this.dilation > 1 ? ' dilated' : ''} kernel ${span}`,
      );
    return F.conv1d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding, dilation: this.dilation });
  }
}
