// LoRA (Hu et al., 2021): fine-tuning a large weight W [out, in] through a low-rank update, W + (α/r)·B·A with
// A [r, in] and B [out, r], while W stays frozen. B starts at zero, so the adapted model starts as the base model;
// A starts as PyTorch's Linear weight (kaiming-uniform with a = √5: U(−1/√in, 1/√in)), as PEFT does. Only A and B
// train: a rank-8 adapter on a 128 × 128 weight trains 2,048 numbers instead of 16,384.
//
// addLoRA(model, { rank, alpha, targets }) attaches an adapter to every targeted Linear (as its `lora` child: state-dict
// keys `<layer>.lora.A`, `<layer>.lora.B`) and to the in-projection of every targeted MultiheadAttention
// (`<layer>.in_proj_lora.A`, `.B`), and freezes every other parameter. A layer with an adapter runs on the autograd
// graph: Linear as x·Wᵀ + b + (α/r)·(x·Aᵀ)·Bᵀ, attention with W_in + (α/r)·B·A. mergeLoRA(model) folds each adapter
// into its weight and removes it: the merged model is a plain model again, with the base model's keys and speed.
import { checkNumber, checkOptions, describe } from '../errors.js';
import { uniform } from '../random.js';
import { currentBackend } from '../backend.js';
import { noGrad } from '../autograd/engine.js';
import { fromHost, type Tensor } from '../tensor.js';
import { MultiheadAttention } from './attention.js';
import { Linear } from './linear.js';
import { Module, Parameter } from './module.js';

/** Options of a {@link LoRA} adapter. */
export interface LoRAOptions {
  /** The rank r of the update (default 8). */
  rank?: number;
  /** The update is scaled by alpha / rank (default alpha = rank: scale 1). */
  alpha?: number;
}

/**
 * The LoRA adapter of one weight W [outFeatures, inFeatures] (Hu et al., 2021): the low-rank update (alpha/rank)·B·A
 * with A [rank, inFeatures] (U(−1/√in, 1/√in), as PyTorch's Linear weight) and B [outFeatures, rank] (zeros, so the
 * adapted model starts as the base model). Attached by {@link addLoRA}, folded into the weight by {@link mergeLoRA}.
 */
export class LoRA extends Module {
  /** Columns of the adapted weight. */
  readonly inFeatures: number;
  /** Rows of the adapted weight. */
  readonly outFeatures: number;
  /** r, the rank of the update. */
  readonly rank: number;
  /** The update's scale numerator: the update is (alpha / rank)·B·A. */
  readonly alpha: number;
  /** alpha / rank. */
  readonly scaling: number;
  /** [rank, inFeatures]. */
  readonly A: Parameter;
  /** [outFeatures, rank], starting at zero. */
  readonly B: Parameter;

  /** An adapter for a weight [outFeatures, inFeatures]; rank defaults to 8 and alpha to the rank (scale 1). */
  constructor(inFeatures: number, outFeatures: number, options: LoRAOptions = {}) {
    super();
    checkOptions('LoRA', options, ['rank', 'alpha']);
    this.inFeatures = checkNumber('LoRA', 'inFeatures', inFeatures, { min: 1, integer: true });
    this.outFeatures = checkNumber('LoRA', 'outFeatures', outFeatures, { min: 1, integer: true });
    this.rank = checkNumber('LoRA', 'rank', options.rank ?? 8, { min: 1, integer: true });
    this.alpha = checkNumber('LoRA', 'alpha', options.alpha ?? this.rank, { min: 0 });
    this.scaling = this.alpha / this.rank;
    const b = currentBackend(), bound = 1 / Math.sqrt(inFeatures);
    this.A = this.registerParameter('A', new Parameter(fromHost(b, Float32Array.from({ length: this.rank * inFeatures }, () => (2 * uniform() - 1) * bound), [this.rank, inFeatures])));
    this.B = this.registerParameter('B', new Parameter(fromHost(b, new Float32Array(outFeatures * this.rank), [outFeatures, this.rank])));
  }

  /** The layer as messages and summaries name it, e.g. `LoRA(128→128, rank 8, α 8)`. */
  get label(): string {
    return `LoRA(${this.inFeatures}→${this.outFeatures}, rank ${this.rank}, α ${this.alpha})`;
  }

  /** The update of a layer's output for input x [..., in]: (α/r)·(x·Aᵀ)·Bᵀ, [..., out] (never the full matrix). */
  forward(x: Tensor): Tensor {
    return x.matmul(this.A.value.t()).matmul(this.B.value.t()).mul(this.scaling);
  }

  /** The update of the weight itself: (α/r)·B·A, [out, in]. */
  delta(): Tensor {
    return this.B.value.matmul(this.A.value).mul(this.scaling);
  }
}

/** Options of {@link addLoRA}: the adapters' rank and alpha, and which layers get one. */
export interface AddLoRAOptions extends LoRAOptions {
  /**
   * Which layers get an adapter, by the layer's name in the model (its state-dict prefix, e.g. '2.mlp.0' or
   * 'layers.0.self_attn'): a predicate, or a list of name fragments of which one must occur in the name. Default: every
   * Linear and every MultiheadAttention's in-projection.
   */
  targets?: ((name: string, layer: Linear | MultiheadAttention) => boolean) | readonly string[];
}

/** What {@link addLoRA} did. */
export interface LoRAReport {
  /** The adapters, by the name of the layer each adapts. */
  adapters: Map<string, LoRA>;
  /** Numbers that train: the adapters'. */
  trainable: number;
  /** Numbers in the model, the adapters included. */
  total: number;
}

/** Attaches LoRA adapters to the targeted layers of `model` and freezes every other parameter. */
export function addLoRA(model: Module, options: AddLoRAOptions = {}): LoRAReport {
  const where = 'addLoRA';
  if (!(model instanceof Module)) throw new TypeError(`${where}: expected a Module, got ${describe(model)}`);
  checkOptions(where, options, ['rank', 'alpha', 'targets']);
  const { targets, ...lora } = options;
  let wanted: (name: string, layer: Linear | MultiheadAttention) => boolean;
  if (targets === undefined) wanted = () => true;
  else if (typeof targets === 'function') wanted = targets;
  else if (Array.isArray(targets) && targets.every((t) => typeof t === 'string')) wanted = (name) => targets.some((t) => name.includes(t));
  else throw new TypeError(`${where}: option targets must be a function of (name, layer) or an array of name fragments, got ${describe(targets)}`);
  const attach: [Linear | MultiheadAttention, LoRA][] = [];
  const adapters = new Map<string, LoRA>();
  for (const [name, layer] of model.namedModules()) {
    if (layer instanceof LoRA) throw new RangeError(`${where}: the model has adapters already (at '${name}'): merge or remove them first`);
    if (!(layer instanceof Linear || layer instanceof MultiheadAttention) || !wanted(name, layer)) continue;
    const a = layer instanceof Linear ? new LoRA(layer.inFeatures, layer.outFeatures, lora) : new LoRA(layer.embedDim, 3 * layer.embedDim, lora);
    attach.push([layer, a]);
    adapters.set(name, a);
  }
  if (adapters.size === 0) throw new RangeError(`${where}: no Linear or MultiheadAttention layer of the model matches the targets`);
  for (const p of model.parameters()) p.requiresGrad = false;
  for (const [layer, a] of attach) {
    if (layer instanceof Linear) layer.lora = a;
    else layer.inProjLora = a;
  }
  const count = (ps: Parameter[]) => ps.reduce((s, p) => s + p.value.size, 0);
  return { adapters, trainable: count([...adapters.values()].flatMap((a) => a.parameters())), total: count(model.parameters()) };
}

/** Folds every adapter of `model` into its weight (W += (α/r)·B·A) and removes it; every parameter trains again.
 * Returns the number of adapters merged. */
export function mergeLoRA(model: Module): number {
  if (!(model instanceof Module)) throw new TypeError(`mergeLoRA: expected a Module, got ${describe(model)}`);
  let merged = 0;
  noGrad(() => {
    for (const [, layer] of model.namedModules()) {
      const adapter = layer instanceof Linear ? layer.lora : layer instanceof MultiheadAttention ? layer.inProjLora : null;
      if (!adapter) continue;
      const weight = layer instanceof Linear ? layer.weight : (layer as MultiheadAttention).inProjWeight;
      const w = weight.value.add(adapter.delta());
      weight.value.assign(w);
      w.dispose();
      if (layer instanceof Linear) layer.lora = null;
      else (layer as MultiheadAttention).inProjLora = null;
      merged++;
    }
  });
  for (const p of model.parameters()) p.requiresGrad = true;
  return merged;
}
