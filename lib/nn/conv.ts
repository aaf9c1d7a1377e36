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
import { Module, Parameter } from './module.js';
import { checkFloat, checkGradShape, fmtPair, fmtShape, pair, type Size2 } from './util.js';

export interface Conv2dOptions {
  stride?: Size2;
  padding?: Size2;
  dilation?: Size2;
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

export class Conv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: readonly [number, number];
  readonly stride: readonly [number, number];
  readonly padding: readonly [number, number];
  readonly dilation: readonly [number, number];
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  private x?: Tensor;
  private g?: Geometry;
  private yShape?: readonly number[];

  constructor(inChannels: number, outChannels: number, kernelSize: Size2, options: Conv2dOptions = {}) {
    super();
    checkOptions('Conv2d', options, ['stride', 'padding', 'dilation', 'bias']);
    this.inChannels = checkNumber('Conv2d', 'inChannels', inChannels, { min: 1, integer: true });
    this.outChannels = checkNumber('Conv2d', 'outChannels', outChannels, { min: 1, integer: true });
    this.kernelSize = pair('Conv2d', 'kernelSize', kernelSize, 1);
    this.stride = pair('Conv2d', 'stride', options.stride ?? 1, 1);
    this.padding = pair('Conv2d', 'padding', options.padding ?? 0, 0);
    this.dilation = pair('Conv2d', 'dilation', options.dilation ?? 1, 1);
    const useBias = options.bias ?? true;
    if (typeof useBias !== 'boolean') throw new TypeError(`Conv2d: option bias must be a boolean, got ${typeof useBias}`);
    const [KH, KW] = this.kernelSize;
    const fanIn = inChannels * KH * KW;
    const bound = 1 / Math.sqrt(fanIn);
    const init = (n: number) => Float32Array.from({ length: n }, () => (2 * uniform() - 1) * bound);
    const b = currentBackend();
    this.weight = this.registerParameter('weight', new Parameter(fromHost(b, init(outChannels * fanIn), [outChannels, inChannels, KH, KW])));
    this.bias = useBias ? this.registerParameter('bias', new Parameter(fromHost(b, init(outChannels), [outChannels]))) : null;
  }

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
