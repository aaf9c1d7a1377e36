// Linear: y = x·Wᵀ + b over the last dimension, weight [out, in] as PyTorch lays it out, initialised as
// PyTorch does (kaiming_uniform with a = √5, i.e. U(−1/√in, 1/√in), and the same bound for the bias).
import { checkNumber, checkOptions } from '../errors.js';
import { uniform } from '../random.js';
import { ACT, currentBackend, type ActCode, type Buf } from '../backend.js';
import { fromHost, type Tensor } from '../tensor.js';
import { linear } from '../autograd/linalg.js';
import type { LoRA } from './lora.js';
import { Module, Parameter } from './module.js';
import { checkFloat, checkGradShape, fmtShape } from './util.js';

/** Options of {@link Linear}. */
export interface LinearOptions {
  /** Learn an additive bias (default true). */
  bias?: boolean;
}

/**
 * A fully connected layer, as torch.nn.Linear: y = x·Wᵀ + b over the last dimension of x [..., inFeatures], giving
 * [..., outFeatures]. weight [outFeatures, inFeatures] and bias [outFeatures] are initialised as PyTorch does,
 * U(−1/√inFeatures, 1/√inFeatures). Runs on one fused kernel each way; a following ReLU or LeakyReLU in a Sequential
 * runs in its epilogue.
 */
export class Linear extends Module {
  /** @internal Its forward leaves nothing outside but its output: a Sequential's lease may lend its buffers (lib/nn/graph.ts). */
  static readonly buffersStayInside = true;
  /** Features of the input's last dimension. */
  readonly inFeatures: number;
  /** Features of the output's last dimension. */
  readonly outFeatures: number;
  /** [outFeatures, inFeatures], PyTorch's layout. */
  readonly weight: Parameter;
  /** [outFeatures], or null with `bias: false`. */
  readonly bias: Parameter | null;
  /** A LoRA adapter (lib/nn/lora.ts: addLoRA sets it, mergeLoRA clears it), registered as the child `lora`: the layer
   * then runs on the autograd graph as x·Wᵀ + b + lora(x). */
  get lora(): LoRA | null {
    return this._lora;
  }
  /** Attaches an adapter (registered as the child `lora`), or with null removes it. */
  set lora(a: LoRA | null) {
    this.unregisterModule('lora');
    this._lora = a;
    if (a) this.registerModule('lora', a);
  }
  private _lora: LoRA | null = null;
  private x?: Tensor;
  private y?: Tensor;

  /** A layer from inFeatures to outFeatures (integers ≥ 1); unknown option keys are a TypeError. */
  constructor(inFeatures: number, outFeatures: number, options: LinearOptions = {}) {
    super();
    checkOptions('Linear', options, ['bias']);
    this.inFeatures = checkNumber('Linear', 'inFeatures', inFeatures, { min: 1, integer: true });
    this.outFeatures = checkNumber('Linear', 'outFeatures', outFeatures, { min: 1, integer: true });
    const bound = 1 / Math.sqrt(inFeatures);
    const init = (n: number) => Float32Array.from({ length: n }, () => (2 * uniform() - 1) * bound);
    const b = currentBackend();
    this.weight = this.registerParameter('weight', new Parameter(fromHost(b, init(outFeatures * inFeatures), [outFeatures, inFeatures])));
    const useBias = options.bias ?? true;
    if (typeof useBias !== 'boolean') throw new TypeError(`Linear: option bias must be a boolean, got ${typeof useBias}`);
    this.bias = useBias ? this.registerParameter('bias', new Parameter(fromHost(b, init(outFeatures), [outFeatures]))) : null;
  }

  /** The layer as messages and summaries name it, e.g. `Linear(4→3)`. */
  get label(): string {
    return `Linear(${this.inFeatures}→${this.outFeatures})`;
  }

  forward(input: Tensor): Tensor {
    return this.forwardAct(input, ACT.none, 0);
  }

  /** @internal forward with ReLU / LeakyReLU applied in the matrix product's epilogue (Sequential's fusion). */
  forwardAct(input: Tensor, act: ActCode, slope: number): Tensor {
    const x = this.checkInput(input, this.label);
    checkFloat(this.label, x);
    const last = x.shape[x.shape.length - 1];
    if (x.shape.length === 0) throw new RangeError(`${this.label}: input must be [..., ${this.inFeatures}], got a scalar`);
    if (last !== this.inFeatures)
      throw new RangeError(`${this.label}: input has ${last} features, expected ${this.inFeatures} (input shape ${fmtShape(x.shape)})`);
    if (this._lora) {
      const y = linear(x, this.weight.value, this.bias?.value ?? null).add(this._lora.forward(x));
      return act === ACT.relu ? y.relu() : act === ACT.leakyRelu ? y.leakyRelu(slope) : y;
    }
    const rows = x.size / this.inFeatures;
    const yShape = x.shape.slice();
    yShape[yShape.length - 1] = this.outFeatures;
    const y = this.ws.get('y', x.backend, yShape);
    x.backend.k.linear_forward(y.buf, x.buf, this.weight.value.buf, this.bias ? this.bias.value.buf : null, rows, this.inFeatures, this.outFeatures, act, slope);
    this.x = x;
    this.y = y;
    return y;
  }

  override backward(dy: Tensor, inputGrad = true): Tensor {
    checkGradShape(this.label, this.checkInput(dy, this.label), this.y?.shape);
    const { bufs: [dw, db], accumulate } = Parameter.gradTargets([this.weight, this.bias]);
    return this.backwardFrom(dy, dw, db, accumulate, inputGrad);
  }

  /** @internal backward through this layer and the activation fused into its forward: dy is the gradient of the
   * activation's output; the activation's derivative and the bias gradient are taken in one pass. */
  backwardAct(dy: Tensor, act: ActCode, slope: number, inputGrad: boolean): Tensor {
    checkGradShape(this.label, this.checkInput(dy, this.label), this.y?.shape);
    const y = this.y!;
    const k = y.backend.k;
    const rows = y.size / this.outFeatures;
    const dz = this.ws.get('dz', y.backend, y.shape);
    const bias = Parameter.gradTargets([this.bias]);
    k.act_bias_backward(dz.buf, bias.bufs[0], dy.buf, y.buf, rows, this.outFeatures, act, slope, bias.accumulate);
    const weight = Parameter.gradTargets([this.weight]);
    return this.backwardFrom(dz, weight.bufs[0], null, weight.accumulate, inputGrad);
  }

  private backwardFrom(dz: Tensor, dw: Buf | null, db: Buf | null, accumulate: boolean, inputGrad: boolean): Tensor {
    const x = this.x!;
    const dx = inputGrad ? this.ws.get('dx', x.backend, x.shape) : this.ws.get('none', x.backend, [0]);
    x.backend.k.linear_backward(
      inputGrad ? dx.buf : null, dw, db, dz.buf, x.buf, this.weight.value.buf,
      x.size / this.inFeatures, this.inFeatures, this.outFeatures, accumulate,
    );
    return dx;
  }
}
