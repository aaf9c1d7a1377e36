// GroupNorm: group normalisation as PyTorch does it, in training and eval alike (no running statistics). The C
// channels of x [N, C, …] form numGroups groups; each (sample, group) is normalised over its C/numGroups channels and
// all their positions with its own mean and biased variance, y = (x − mean)/√(var + eps)·weight[c] + bias[c].
// weight and bias are [C] (PyTorch's names), starting at 1 and 0; affine false leaves them out. One layer-norm node
// over rows [N·numGroups, C/numGroups·…] and a broadcast product and sum (rg.F.groupNorm); the backward is the graph's.
import { currentBackend } from '../backend.js';
import { checkNumber, checkOptions } from '../errors.js';
import { fromHost, type Tensor } from '../tensor.js';
import { groupNorm } from './functional.js';
import { Module, Parameter } from './module.js';
import { checkFloat, fmtShape } from './util.js';

/** Options of {@link GroupNorm}. */
export interface GroupNormOptions {
  /** Added to the variance inside the square root (default 1e-5). */
  eps?: number;
  /** Learnable per-channel weight and bias (default true). */
  affine?: boolean;
}

/**
 * Group normalisation, as torch.nn.GroupNorm: the channels of x [N, C, …] in numGroups groups, each (sample, group)
 * normalised over its channels and positions with its own mean and biased variance, then weight[c]·x̂ + bias[c]. No
 * running statistics: the same in training and eval. Its backward comes from the graph.
 */
export class GroupNorm extends Module {
  /** Groups the channels are split into. */
  readonly numGroups: number;
  /** C, divisible by numGroups. */
  readonly numChannels: number;
  /** Added to the variance inside the square root. */
  readonly eps: number;
  /** Whether weight and bias are learned. */
  readonly affine: boolean;
  /** [C], starting at 1; null when not affine. */
  readonly weight: Parameter | null;
  /** [C], starting at 0; null when not affine. */
  readonly bias: Parameter | null;

  /** numChannels in numGroups groups (numChannels divisible by numGroups, else a RangeError). */
  constructor(numGroups: number, numChannels: number, options: GroupNormOptions = {}) {
    super();
    const name = 'GroupNorm';
    checkOptions(name, options, ['eps', 'affine']);
    this.numGroups = checkNumber(name, 'numGroups', numGroups, { min: 1, integer: true });
    this.numChannels = checkNumber(name, 'numChannels', numChannels, { min: 1, integer: true });
    if (numChannels % numGroups !== 0)
      throw new RangeError(`${name}: numChannels must be divisible by numGroups, got ${numChannels} channels in ${numGroups} groups`);
    this.eps = checkNumber(name, 'eps', options.eps ?? 1e-5, { min: 0, minExclusive: true });
    const affine = options.affine ?? true;
    if (typeof affine !== 'boolean') throw new TypeError(`${name}: option affine must be a boolean, got ${typeof affine}`);
    this.affine = affine;
    const b = currentBackend(), C = numChannels;
    this.weight = affine ? this.registerParameter('weight', new Parameter(fromHost(b, new Float32Array(C).fill(1), [C]))) : null;
    this.bias = affine ? this.registerParameter('bias', new Parameter(fromHost(b, new Float32Array(C), [C]))) : null;
  }

  /** The layer as messages and summaries name it, e.g. `GroupNorm(4, 32)`. */
  get label(): string {
    return `GroupNorm(${this.numGroups}, ${this.numChannels})`;
  }

  forward(input: Tensor): Tensor {
    const x = this.checkInput(input, this.label);
    checkFloat(this.label, x);
    const C = this.numChannels;
    if (x.shape.length < 2 || x.shape[1] !== C) throw new RangeError(`${this.label}: input must be [N, ${C}, …], got ${fmtShape(x.shape)}`);
    return groupNorm(x, this.numGroups, this.weight, this.bias, this.eps);
  }
}
