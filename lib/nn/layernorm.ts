// Layer normalisation as PyTorch does it: over the last len(normalizedShape) dimensions of x, flattened into one of
// D elements (everything before them into rows), y = (x − mean)/√(var + eps)·weight + bias with each row's mean and
// biased variance, in training and eval alike. weight and bias have the shape normalizedShape (PyTorch's names and
// layout) and start at 1 and 0; elementwiseAffine false leaves them out.
//   forward   layernorm_forward: y, and each row's mean and 1/√(var + eps), saved for the backward
//   backward  layernorm_backward: dx from the saved statistics; dweight (+)= Σ_rows dy·x̂, dbias (+)= Σ_rows dy
// Gradient contract: dweight and dbias accumulate (or overwrite freshly zeroed grads); dx overwrites.
import { currentBackend } from '../backend.js';
import { checkNumber, checkOptions, describe } from '../errors.js';
import { fromHost, type Tensor } from '../tensor.js';
import { Module, Parameter } from './module.js';
import { checkFloat, checkGradShape, fmtShape, Scratch } from './util.js';

/** Options of {@link LayerNorm}. */
export interface LayerNormOptions {
  /** Added to the variance inside the square root (default 1e-5). */
  eps?: number;
  /** Learnable weight and bias of shape normalizedShape (default true). */
  elementwiseAffine?: boolean;
}

/**
 * Layer normalisation, as torch.nn.LayerNorm: over the last dimensions of x [..., *normalizedShape], y =
 * (x − mean)/√(var + eps)·weight + bias with each row's mean and biased variance, in training and eval alike.
 * weight and bias have the shape normalizedShape and start at 1 and 0.
 */
export class LayerNorm extends Module {
  /** @internal Its forward leaves nothing outside but its output: a Sequential's lease may lend its buffers (lib/nn/graph.ts). */
  static readonly buffersStayInside = true;
  /** The trailing dimensions normalised together. */
  readonly normalizedShape: readonly number[];
  /** Added to the variance inside the square root. */
  readonly eps: number;
  /** Whether weight and bias are learned. */
  readonly elementwiseAffine: boolean;
  /** normalizedShape, starting at 1; null without elementwiseAffine. */
  readonly weight: Parameter | null;
  /** normalizedShape, starting at 0; null without elementwiseAffine. */
  readonly bias: Parameter | null;
  /** D: the elements normalised together (the product of normalizedShape). */
  private readonly dim: number;
  private readonly scratch = new Scratch(this.ws);
  private x?: Tensor;
  private saved?: { mean: Tensor; invstd: Tensor };
  private yShape?: readonly number[];

  /** normalizedShape: the size of the last dimension, or of the last few. */
  constructor(normalizedShape: number | readonly number[], options: LayerNormOptions = {}) {
    super();
    checkOptions('LayerNorm', options, ['eps', 'elementwiseAffine']);
    if (typeof normalizedShape === 'number') {
      this.normalizedShape = [checkNumber('LayerNorm', 'normalizedShape', normalizedShape, { min: 1, integer: true })];
    } else if (Array.isArray(normalizedShape) && normalizedShape.length > 0) {
      this.normalizedShape = normalizedShape.map((d, i) => checkNumber('LayerNorm', `normalizedShape[${i}]`, d, { min: 1, integer: true }));
    } else {
      throw new TypeError(`LayerNorm: normalizedShape must be a number or a non-empty array of numbers, got ${describe(normalizedShape)}`);
    }
    Object.freeze(this.normalizedShape);
    this.eps = checkNumber('LayerNorm', 'eps', options.eps ?? 1e-5, { min: 0, minExclusive: true });
    const affine = options.elementwiseAffine ?? true;
    if (typeof affine !== 'boolean') throw new TypeError(`LayerNorm: option elementwiseAffine must be a boolean, got ${typeof affine}`);
    this.elementwiseAffine = affine;
    this.dim = this.normalizedShape.reduce((a, d) => a * d, 1);
    const b = currentBackend(), D = this.dim, shape = this.normalizedShape;
    this.weight = affine ? this.registerParameter('weight', new Parameter(fromHost(b, new Float32Array(D).fill(1), shape))) : null;
    this.bias = affine ? this.registerParameter('bias', new Parameter(fromHost(b, new Float32Array(D), shape))) : null;
  }

  /** The layer as messages and summaries name it, e.g. `LayerNorm(64)`. */
  get label(): string {
    return `LayerNorm(${this.normalizedShape.length === 1 ? this.normalizedShape[0] : fmtShape(this.normalizedShape)})`;
  }

  forward(input: Tensor): Tensor {
    const x = this.checkInput(input, this.label);
    checkFloat(this.label, x);
    const ns = this.normalizedShape, k = ns.length;
    if (x.shape.length < k || ns.some((d, i) => x.shape[x.shape.length - k + i] !== d))
      throw new RangeError(`${this.label}: input must be [..., ${ns.join(', ')}], got ${fmtShape(x.shape)}`);
    const D = this.dim, rows = x.size / D;
    const b = x.backend;
    const y = this.ws.get('y', b, x.shape);
    const mean = this.scratch.get('mean', b, [rows]);
    const invstd = this.scratch.get('invstd', b, [rows]);
    if (rows > 0)
      b.k.layernorm_forward(y.buf, mean.buf, invstd.buf, x.buf, this.weight ? this.weight.value.buf : null, this.bias ? this.bias.value.buf : null, rows, D, this.eps);
    this.x = x;
    this.saved = { mean, invstd };
    this.yShape = y.shape;
    return y;
  }

  override backward(dy: Tensor, inputGrad = true): Tensor {
    checkGradShape(this.label, this.checkInput(dy, this.label), this.yShape);
    const x = this.x!;
    const { mean, invstd } = this.saved!;
    const D = this.dim, rows = x.size / D;
    const b = x.backend, k = b.k;
    const { bufs: [dw, db], accumulate } = Parameter.gradTargets([this.weight, this.bias]);
    const dx = inputGrad ? this.ws.get('dx', b, x.shape) : this.ws.get('none', b, [0]);
    if (rows === 0) {
      // An empty batch contributes nothing; grads claimed for overwriting still have to read as zeros.
      if (!accumulate) for (const g of [dw, db]) if (g) k.fill(g, D, 0);
      return dx;
    }
    if (inputGrad || dw || db)
      k.layernorm_backward(inputGrad ? dx.buf : null, dw, db, dy.buf, x.buf, this.weight ? this.weight.value.buf : null, mean.buf, invstd.buf, rows, D, accumulate);
    return dx;
  }
}
