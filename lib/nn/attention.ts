// Multi-head attention, a pre-norm transformer block and a learned positional embedding.
//
// MultiheadAttention(E, H) in PyTorch's layout and names: in_proj_weight [3E, E] (q, k, v stacked, xavier-uniform),
// in_proj_bias [3E] (zeros), out_proj.weight [E, E], out_proj.bias [E] (zeros), so a state dict of
// torch.nn.MultiheadAttention(E, H, batch_first=True) loads as is (bias false: no biases; batchFirst false: [L, B, E]).
// Two forms:
//   forward(x)                self-attention on [B, T, E] by the fused kernels, with a hand-written backward:
//             forward   qkv = x·W_inᵀ + b_in (linear_forward); per head, softmax(q·kᵀ/√D)·v (attention_forward; causal:
//                       position i sees positions ≤ i); y = out_proj(heads side by side)
//             backward  out_proj's backward, attention_backward for dqkv, then linear_backward for dx, dW_in, db_in
//   forward(q, k, v, opts)    PyTorch's general form (cross-attention, masks, weights, attention dropout, a KV cache),
//                             written with tensor operations in lib/nn/attention-ops.ts: its backward is the graph's.
// With attention dropout (which the fused kernels lack) forward(x) runs the general form on the graph as well.
// TransformerBlock(E, H): x1 = x + attn(ln1(x)), y = x1 + mlp(ln2(x1)), mlp = Linear(E, r·E), GELU, Linear(r·E, E). Its
// backward is the chain rule written out: the gradient of each residual sum reaches both of its branches, and the
// two contributions to dx (and to dx1) add. forward(x, { cache }) is one step of incremental decoding (causal blocks).
// PositionalEmbedding(maxLen, E): y[b, t] = x[b, t] + weight[offset + t], weight [maxLen, E] learned (GPT-2's N(0, 0.02²)
// start); its backward returns the incoming gradient itself (the identity's), as dx. forward(x, { offset }) places the
// positions after `offset` earlier ones (a cached decoding step), on the graph.
// Gradient contract: parameter gradients accumulate (or overwrite freshly zeroed grads); dx overwrites.
import { currentBackend, EW } from '../backend.js';
import { isGradEnabled } from '../autograd/engine.js';
import { add } from '../autograd/elementwise.js';
import { linear } from '../autograd/linalg.js';
import { narrow, transpose } from '../autograd/shape.js';
import { checkNumber, checkOptions, describe, RetrogradError } from '../errors.js';
import { normal, uniform } from '../random.js';
import { fromHost, type Tensor } from '../tensor.js';
import { GELU } from './activation.js';
import { hasOwnBackward, keepPreviousForward } from './graph.js';
import type { LoRA } from './lora.js';
import { fusedSelfAttention, multiHeadAttention, type AttentionMask, type AttentionWeights } from './attention-ops.js';
import { KVCache } from './kv-cache.js';
import { LayerNorm } from './layernorm.js';
import { Linear } from './linear.js';
import { Module, Parameter } from './module.js';
import { Sequential } from './sequential.js';
import { checkFloat, checkGradShape, fmtShape, Scratch } from './util.js';

export { KVCache, type AttentionMask };

/** x must be [B, T, E] (float32): returns B and T. */
function checkSequence(label: string, x: Tensor, E: number): { B: number; T: number } {
  checkFloat(label, x);
  if (x.shape.length !== 3 || x.shape[2] !== E) throw new RangeError(`${label}: input must be [B, T, ${E}], got ${fmtShape(x.shape)}`);
  return { B: x.shape[0], T: x.shape[1] };
}

/** Options of {@link MultiheadAttention}. */
export interface MultiheadAttentionOptions {
  /** Position i attends to positions ≤ i only (a language model's mask; default false). The default of the general
   * forward's isCausal. */
  causal?: boolean;
  /** Dropout probability on the attention weights while training (PyTorch's dropout; default 0). */
  dropout?: number;
  /** in_proj_bias and out_proj.bias (default true). */
  bias?: boolean;
  /** Inputs and outputs as [B, L, E] (default true, as forward(x) on [B, T, E]); false: [L, B, E], PyTorch's default. */
  batchFirst?: boolean;
}

/** The general forward's options: PyTorch's MultiheadAttention.forward arguments, camelCase. */
export interface AttentionForwardOptions {
  /** [B, S] (unbatched [S]): true / nonzero int32 = that key is padding and is not attended to; a float mask is added. */
  keyPaddingMask?: AttentionMask | null;
  /** [L, S] or [B·H, L, S] (unbatched [H, L, S]): bool-like (true = masked) or float (added to the scores). */
  attnMask?: AttentionMask | null;
  /** Return the attention weights (default true). */
  needWeights?: boolean;
  /** Average the weights over the heads: [B, L, S] (default true); else [B, H, L, S]. */
  averageAttnWeights?: boolean;
  /** Query i sees keys j ≤ i, added to the masks (default: the constructor's causal). */
  isCausal?: boolean;
  /** Incremental decoding under rg.noGrad: self-attention appends its keys and values, cross-attention projects its
   * memory once (lib/nn/kv-cache.ts). */
  cache?: KVCache | null;
}

/**
 * Multi-head attention, as torch.nn.MultiheadAttention: PyTorch's layout and names (in_proj_weight [3E, E],
 * xavier-uniform; in_proj_bias [3E] and out_proj.bias zeros; out_proj.weight [E, E]), so a PyTorch state dict loads
 * as is. forward(x) is self-attention on [B, T, E] ([T, B, E] when not batchFirst) by fused kernels with a
 * hand-written backward; forward(query, key, value, options) is PyTorch's general form (cross-attention, masks,
 * returned weights, a KV cache), whose backward is the graph's. embedDim must be divisible by numHeads.
 */
export class MultiheadAttention extends Module {
  /** E, the model width. */
  readonly embedDim: number;
  /** H, the heads. */
  readonly numHeads: number;
  /** D = E / H, each head's width. */
  readonly headDim: number;
  /** Whether position i attends only to positions ≤ i by default. */
  readonly causal: boolean;
  /** Dropout probability on the attention weights while training. */
  readonly dropout: number;
  /** Whether inputs are [B, L, E] (else [L, B, E]). */
  readonly batchFirst: boolean;
  /** in_proj_weight [3E, E]: the query, key and value projections stacked. */
  readonly inProjWeight: Parameter;
  /** in_proj_bias [3E], or null with `bias: false`. */
  readonly inProjBias: Parameter | null;
  /** out_proj: the output projection, a Linear(E, E). */
  readonly outProj: Linear;
  private readonly scratch = new Scratch(this.ws);
  private saved?: { x: Tensor; qkv: Tensor; probs: Tensor; B: number; T: number };

  /** embedDim E split into numHeads heads (E divisible by numHeads, else a RangeError). */
  constructor(embedDim: number, numHeads: number, options: MultiheadAttentionOptions = {}) {
    super();
    checkOptions('MultiheadAttention', options, ['causal', 'dropout', 'bias', 'batchFirst']);
    this.embedDim = checkNumber('MultiheadAttention', 'embedDim', embedDim, { min: 1, integer: true });
    this.numHeads = checkNumber('MultiheadAttention', 'numHeads', numHeads, { min: 1, integer: true });
    if (embedDim % numHeads !== 0)
      throw new RangeError(`MultiheadAttention: embedDim (${embedDim}) must be divisible by numHeads (${numHeads})`);
    const flag = (name: 'causal' | 'bias' | 'batchFirst', byDefault: boolean) => {
      const v = options[name] ?? byDefault;
      if (typeof v !== 'boolean') throw new TypeError(`MultiheadAttention: option ${name} must be a boolean, got ${describe(v)}`);
      return v;
    };
    this.causal = flag('causal', false);
    const bias = flag('bias', true);
    this.batchFirst = flag('batchFirst', true);
    this.dropout = checkNumber('MultiheadAttention', 'dropout', options.dropout ?? 0, { min: 0, max: 1 });
    this.headDim = embedDim / numHeads;
    const E = embedDim, b = currentBackend();
    const bound = Math.sqrt(6 / (E + 3 * E)); // xavier_uniform_ of a [3E, E] matrix
    const w = Float32Array.from({ length: 3 * E * E }, () => (2 * uniform() - 1) * bound);
    this.inProjWeight = this.registerParameter('in_proj_weight', new Parameter(fromHost(b, w, [3 * E, E])));
    this.inProjBias = bias ? this.registerParameter('in_proj_bias', new Parameter(fromHost(b, new Float32Array(3 * E), [3 * E]))) : null;
    this.outProj = this.registerModule('out_proj', new Linear(E, E, { bias })) as Linear;
    this.outProj.bias?.value.assign(new Float32Array(E));
  }

  /** The layer as messages and summaries name it, e.g. `MultiheadAttention(64, 4, causal)`. */
  get label(): string {
    const extra = [
      this.causal ? 'causal' : '', this.dropout ? `dropout=${this.dropout}` : '', this.inProjBias ? '' : 'bias=false', this.batchFirst ? '' : 'batchFirst=false',
    ].filter(Boolean);
    return `MultiheadAttention(${[this.embedDim, this.numHeads, ...extra].join(', ')})`;
  }

  /** @internal With attention dropout, or a LoRA adapter on a projection, the layer runs on the autograd graph
   * (lib/nn/graph.ts): the fused kernels' hand-written backward has neither. */
  get graphOnly(): boolean {
    return this.dropout > 0 || this.adapted;
  }

  /** A LoRA adapter of the in-projection (lib/nn/lora.ts: addLoRA sets it, mergeLoRA clears it), registered as the
   * child `in_proj_lora`: the layer then projects with in_proj_weight + the adapter's update. */
  get inProjLora(): LoRA | null {
    return this._inProjLora;
  }
  /** Attaches an adapter of the in-projection (the child `in_proj_lora`), or with null removes it. */
  set inProjLora(a: LoRA | null) {
    this.unregisterModule('in_proj_lora');
    this._inProjLora = a;
    if (a) this.registerModule('in_proj_lora', a);
  }
  private _inProjLora: LoRA | null = null;

  /** Whether a projection has a LoRA adapter. */
  private get adapted(): boolean {
    return this._inProjLora !== null || this.outProj.lora !== null;
  }

  /** The projection weights, each with its LoRA adapter's update added (a node of the graph) when it has one. */
  private weights(): AttentionWeights {
    const inLora = this._inProjLora, outLora = this.outProj.lora;
    return {
      inW: inLora ? add(this.inProjWeight.value, inLora.delta()) : this.inProjWeight.value, inB: this.inProjBias?.value ?? null,
      outW: outLora ? add(this.outProj.weight.value, outLora.delta()) : this.outProj.weight.value, outB: this.outProj.bias?.value ?? null,
    };
  }

  /** Self-attention of x [B, T, E] ([T, B, E] when not batchFirst; causal as constructed): the output. */
  forward(x: Tensor): Tensor;
  /** PyTorch's general form: [output, weights or null]. query [B, L, E], key and value [B, S, E] ([L, B, E] and
   * [S, B, E] when not batchFirst; unbatched [L, E] and [S, E]); weights [B, L, S] averaged, else [B, H, L, S]. */
  forward(query: Tensor, key: Tensor, value: Tensor, options?: AttentionForwardOptions): [Tensor, Tensor | null];
  forward(...args: unknown[]): Tensor | [Tensor, Tensor | null] {
    if (args.length <= 1) return this.selfForward(args[0]);
    const [query, key, value, options = {}] = args as [Tensor, Tensor, Tensor, AttentionForwardOptions | undefined];
    const where = `${this.label}.forward`;
    checkOptions(where, options, ['keyPaddingMask', 'attnMask', 'needWeights', 'averageAttnWeights', 'isCausal', 'cache']);
    const flag = (name: 'needWeights' | 'averageAttnWeights' | 'isCausal', byDefault: boolean) => {
      const v = options[name] ?? byDefault;
      if (typeof v !== 'boolean') throw new TypeError(`${where}: option ${name} must be a boolean, got ${describe(v)}`);
      return v;
    };
    const cache = options.cache ?? null;
    if (cache !== null && !(cache instanceof KVCache)) throw new TypeError(`${where}: option cache must be a KVCache, got ${describe(cache)}`);
    return multiHeadAttention(query, key, value, this.weights(), {
      label: this.label, E: this.embedDim, H: this.numHeads, keyPaddingMask: options.keyPaddingMask, attnMask: options.attnMask,
      needWeights: flag('needWeights', true), averageAttnWeights: flag('averageAttnWeights', true), causal: flag('isCausal', this.causal),
      dropout: this.dropout, training: this.training, batchFirst: this.batchFirst, cache, owner: this,
    });
  }

  private selfForward(input: unknown): Tensor {
    const x = this.checkInput(input, this.label);
    const E = this.embedDim, H = this.numHeads, D = this.headDim;
    checkFloat(this.label, x);
    if (x.shape.length !== 3 || x.shape[2] !== E)
      throw new RangeError(`${this.label}: input must be ${this.batchFirst ? '[B, T' : '[T, B'}, ${E}], got ${fmtShape(x.shape)}`);
    if (this.dropout > 0 && this.training) {
      // attention dropout: the general path, on the graph (graphOnly)
      return multiHeadAttention(x, x, x, this.weights(), {
        label: this.label, E, H, needWeights: false, averageAttnWeights: false, causal: this.causal,
        dropout: this.dropout, training: true, batchFirst: this.batchFirst, owner: this,
      })[0];
    }
    if (this.adapted || (this.graphOnly && isGradEnabled())) {
      // no dropout now, but no hand-written backward either (or adapters, with or without the graph): the fused
      // attention kernels as one node of the graph, the projections as operations
      const xb = this.batchFirst ? x : transpose(x, 0, 1);
      const w = this.weights();
      const qkv = linear(xb, w.inW, w.inB);
      const y = linear(fusedSelfAttention(qkv, xb.shape[0], xb.shape[1], H, D, this.causal), w.outW, w.outB);
      return this.batchFirst ? y : transpose(y, 0, 1);
    }
    // the fused kernels with the hand-written backward ([T, B, E] transposed in and out)
    const xb = this.batchFirst ? x : transpose(x, 0, 1);
    const [B, T] = xb.shape;
    const b = x.backend, k = b.k;
    const qkv = this.scratch.get('qkv', b, [B, T, 3 * E]);
    const probs = this.scratch.get('probs', b, [B, H, T, T]);
    const ctx = this.scratch.get('ctx', b, [B, T, E]);
    if (B * T > 0) {
      k.linear_forward(qkv.buf, xb.buf, this.inProjWeight.value.buf, this.inProjBias?.value.buf ?? null, B * T, E, 3 * E, 0, 0);
      k.attention_forward(ctx.buf, probs.buf, qkv.buf, B, T, H, D, this.causal);
    }
    this.saved = { x: xb, qkv, probs, B, T };
    const y = this.outProj.forward(ctx);
    return this.batchFirst ? y : transpose(y, 0, 1); // (out_proj keeps y for its backward)
  }

  override backward(dy: Tensor, inputGrad = true): Tensor {
    if (this.graphOnly)
      throw new TypeError(`${this.label}: with attention dropout the layer runs on the autograd graph and has no hand-written backward; compute a loss from its output and call loss.backward()`);
    if (!this.saved) throw new Error(`${this.label}: backward called before forward`);
    const { x, qkv, probs, B, T } = this.saved;
    const g = this.checkInput(dy, this.label);
    checkGradShape(this.label, g, this.batchFirst ? x.shape : [T, B, this.embedDim]);
    const E = this.embedDim, b = x.backend, k = b.k;
    const gb = this.batchFirst ? g : transpose(g, 0, 1);
    const dctx = this.outProj.backward(gb);
    if (gb !== g) gb.dispose();
    const dqkv = this.scratch.get('dqkv', b, [B, T, 3 * E]);
    const scratch = this.scratch.get('dscores', b, [B, this.numHeads, T, T]);
    const dx = inputGrad ? this.ws.get('dx', b, x.shape) : this.ws.get('none', b, [0]);
    const { bufs: [dw, db], accumulate } = Parameter.gradTargets([this.inProjWeight, this.inProjBias]);
    if (B * T === 0) {
      if (!accumulate) for (const [gr, n] of [[dw, 3 * E * E], [db, 3 * E]] as const) if (gr) k.fill(gr, n, 0);
      if (!this.ws.reusing) dctx.dispose();
      return this.batchFirst || !inputGrad ? dx : transpose(dx, 0, 1);
    }
    k.attention_backward(dqkv.buf, scratch.buf, dctx.buf, qkv.buf, probs.buf, B, T, this.numHeads, this.headDim, this.causal);
    this.scratch.release('dscores');
    if (!this.ws.reusing) dctx.dispose(); // out_proj's fresh gradient, seen only here
    if (inputGrad || dw || db) k.linear_backward(inputGrad ? dx.buf : null, dw, db, dqkv.buf, x.buf, this.inProjWeight.value.buf, B * T, E, 3 * E, accumulate);
    if (this.batchFirst || !inputGrad) return dx;
    const dxt = transpose(dx, 0, 1);
    if (!this.ws.reusing) dx.dispose();
    return dxt;
  }
}

/** Options of {@link TransformerBlock}. */
export interface TransformerBlockOptions {
  /** Hidden width of the MLP as a multiple of embedDim (default 4). */
  mlpRatio?: number;
  /** Causal self-attention (a GPT block; default false). */
  causal?: boolean;
  /** LayerNorm's eps (default 1e-5). */
  eps?: number;
}

/** Options of TransformerBlock.forward. */
export interface TransformerBlockForwardOptions {
  /** Incremental decoding: the block's attention keeps its keys and values here (lib/nn/kv-cache.ts). */
  cache?: KVCache | null;
}

/**
 * A pre-norm transformer block (GPT-2's): x1 = x + attn(ln1(x)), y = x1 + mlp(ln2(x1)), with mlp = Linear(E, r·E),
 * GELU, Linear(r·E, E), on [B, T, E]. A hand-written backward over its sub-layers' fused kernels;
 * forward(x, { cache }) is one step of incremental decoding (causal blocks, under rg.noGrad).
 */
export class TransformerBlock extends Module {
  /** E, the model width. */
  readonly embedDim: number;
  /** The attention's heads. */
  readonly numHeads: number;
  /** The MLP's hidden width as a multiple of E. */
  readonly mlpRatio: number;
  /** Whether the self-attention is causal. */
  readonly causal: boolean;
  /** The LayerNorms' eps. */
  readonly eps: number;
  /** The LayerNorm before the attention. */
  readonly ln1: LayerNorm;
  /** The self-attention. */
  readonly attn: MultiheadAttention;
  /** The LayerNorm before the MLP. */
  readonly ln2: LayerNorm;
  /** Linear(E, r·E), GELU, Linear(r·E, E). */
  readonly mlp: Sequential;
  private xShape?: readonly number[];
  private readonly held: Tensor[] = [];

  /** A block of width embedDim with numHeads attention heads (embedDim divisible by numHeads). */
  constructor(embedDim: number, numHeads: number, options: TransformerBlockOptions = {}) {
    super();
    checkOptions('TransformerBlock', options, ['mlpRatio', 'causal', 'eps']);
    this.embedDim = checkNumber('TransformerBlock', 'embedDim', embedDim, { min: 1, integer: true });
    this.numHeads = checkNumber('TransformerBlock', 'numHeads', numHeads, { min: 1, integer: true });
    this.mlpRatio = checkNumber('TransformerBlock', 'mlpRatio', options.mlpRatio ?? 4, { min: 0, minExclusive: true });
    const hidden = Math.round(embedDim * this.mlpRatio);
    if (hidden < 1) throw new RangeError(`TransformerBlock: mlpRatio ${this.mlpRatio} leaves the MLP no hidden units`);
    this.eps = checkNumber('TransformerBlock', 'eps', options.eps ?? 1e-5, { min: 0, minExclusive: true });
    const causal = options.causal ?? false;
    if (typeof causal !== 'boolean') throw new TypeError(`TransformerBlock: option causal must be a boolean, got ${describe(causal)}`);
    this.causal = causal;
    this.ln1 = this.registerModule('ln1', new LayerNorm(embedDim, { eps: this.eps })) as LayerNorm;
    this.attn = this.registerModule('attn', new MultiheadAttention(embedDim, numHeads, { causal: this.causal })) as MultiheadAttention;
    this.ln2 = this.registerModule('ln2', new LayerNorm(embedDim, { eps: this.eps })) as LayerNorm;
    this.mlp = this.registerModule('mlp', new Sequential([new Linear(embedDim, hidden), new GELU(), new Linear(hidden, embedDim)])) as Sequential;
  }

  /** The layer as messages and summaries name it, e.g. `TransformerBlock(64, 4, causal)`. */
  get label(): string {
    return `TransformerBlock(${this.embedDim}, ${this.numHeads}${this.causal ? ', causal' : ''})`;
  }

  /** out = a + b (a fresh buffer `key` of this block). */
  private sum(key: string, a: Tensor, bT: Tensor): Tensor {
    const b = a.backend;
    const out = this.ws.get(key, b, a.shape);
    b.k.elementwise_flat(out.buf, a.buf, bT.buf, null, EW.add, 1, 1, a.size);
    return out;
  }

  /**
   * Outside a training loop every sub-layer returns fresh tensors; the block frees those that only it sees: the
   * forward's when the next forward starts (the sub-layers' backwards read them), the backward's once used. Inside
   * fit they are the sub-layers' reused buffers and are left alone.
   */
  private free(...ts: Tensor[]): void {
    if (!this.ws.reusing) for (const t of ts) t.dispose();
  }

  /** The block on x [B, T, E]. */
  forward(x: Tensor): Tensor;
  /** One step of incremental decoding (a causal block, under rg.noGrad): x [B, L, E] holds the positions after the
   * cache's; the attention sees them and the cached ones, and appends theirs to the cache. */
  forward(x: Tensor, options: TransformerBlockForwardOptions): Tensor;
  forward(...args: unknown[]): Tensor {
    if (args.length > 1) {
      const options = (args[1] ?? {}) as TransformerBlockForwardOptions;
      checkOptions(`${this.label}.forward`, options, ['cache']);
      const cache = options.cache ?? null;
      if (cache !== null && !(cache instanceof KVCache)) throw new TypeError(`${this.label}.forward: option cache must be a KVCache, got ${describe(cache)}`);
      // without a cache, the one-tensor call (through the graph's wrapper, so that it records when it should)
      return cache ? this.step(args[0], cache) : (this.forward as (x: unknown) => Tensor)(args[0]);
    }
    const x = this.checkInput(args[0], this.label);
    checkSequence(this.label, x, this.embedDim);
    const [fc1, act, fc2] = this.mlp.layers as [Linear, GELU, Linear];
    if (isGradEnabled() && !hasOwnBackward(this)) {
      // a sub-layer without a hand-written backward (a LoRA adapter): the residual sums on the graph too
      const x1 = add(x, this.attn.forward(this.ln1.forward(x)));
      return add(x1, fc2.forward(act.forward(fc1.forward(this.ln2.forward(x1)))));
    }
    // held only outside a training loop: the block's own, freed here unless the last call's backward has yet to read
    // them (the block called twice in one forward: that call's node keeps them, and the garbage collector frees them)
    const previous = this.held.splice(0);
    if (!keepPreviousForward()) for (const t of previous) t.dispose();
    const h1 = this.ln1.forward(x);
    const a = this.attn.forward(h1);
    const x1 = this.sum('x1', x, a);
    const h2 = this.ln2.forward(x1);
    const z = fc1.forward(h2);
    const g = act.forward(z);
    const m = fc2.forward(g);
    const y = this.sum('y', x1, m);
    this.free(a, m);
    if (!this.ws.reusing) this.held.push(h1, x1, h2, z, g);
    this.xShape = x.shape;
    return y;
  }

  /** forward(x, { cache }): the block's computation with tensor operations, the attention through the cache. */
  private step(input: unknown, cache: KVCache): Tensor {
    const x = this.checkInput(input, this.label);
    checkSequence(this.label, x, this.embedDim);
    if (!this.causal) throw new RangeError(`${this.label}: a KVCache needs causal self-attention (construct the block with { causal: true })`);
    if (isGradEnabled())
      throw new RetrogradError(`${this.label}: a KVCache is for incremental decoding under rg.noGrad (the cache keeps no graph); run the step inside rg.noGrad(() => …)`, 'INVALID_ARGUMENT');
    const [fc1, act, fc2] = this.mlp.layers as [Linear, GELU, Linear];
    return cache.atomic(() => {
      // the sub-layers' fused kernels, the attention's general form through the cache
      const h1 = this.ln1.forward(x);
      const [a] = this.attn.forward(h1, h1, h1, { cache, needWeights: false });
      const x1 = add(x, a);
      const h2 = this.ln2.forward(x1);
      const z = fc1.forward(h2);
      const g = act.forward(z);
      const m = fc2.forward(g);
      const y = add(x1, m);
      a.dispose();
      x1.dispose();
      this.free(h1, h2, z, g, m);
      return y;
    });
  }

  override backward(dy: Tensor, inputGrad = true): Tensor {
    checkGradShape(this.label, this.checkInput(dy, this.label), this.xShape);
    const [fc1, act, fc2] = this.mlp.layers as [Linear, GELU, Linear];
    // y = x1 + mlp(ln2(x1)): dx1 = dy + ln2ᵀ·mlpᵀ·dy
    const dg = fc2.backward(dy);
    const dz = act.backward(dg);
    const dh2 = fc1.backward(dz);
    const dm = this.ln2.backward(dh2);
    const dx1 = this.sum('dx1', dy, dm);
    this.free(dg, dz, dh2, dm);
    // x1 = x + attn(ln1(x)): dx = dx1 + ln1ᵀ·attnᵀ·dx1
    const dh1 = this.attn.backward(dx1);
    const dBranch = this.ln1.backward(dh1, inputGrad);
    this.free(dh1);
    if (!inputGrad) {
      this.free(dx1);
      return dBranch;
    }
    const dx = this.sum('dx', dx1, dBranch);
    this.free(dx1, dBranch);
    return dx;
  }
}

/**
 * A learned positional embedding: y[…, t, :] = x[…, t, :] + weight[t] for x [..., T, E], weight [maxLen, E] starting
 * N(0, 0.02²) as GPT-2's. Its backward returns the incoming gradient as dx; forward(x, { offset }) places the
 * positions after `offset` earlier ones (a cached decoding step).
 */
export class PositionalEmbedding extends Module {
  /** The most positions a sequence may have. */
  readonly maxLen: number;
  /** E, the width of each position's embedding. */
  readonly embeddingDim: number;
  /** [maxLen, embeddingDim]. */
  readonly weight: Parameter;
  private positions?: { T: number; rows: number; t: Tensor };
  private yShape?: readonly number[];

  /** Embeddings for maxLen positions of embeddingDim values (integers ≥ 1). */
  constructor(maxLen: number, embeddingDim: number) {
    super();
    this.maxLen = checkNumber('PositionalEmbedding', 'maxLen', maxLen, { min: 1, integer: true });
    this.embeddingDim = checkNumber('PositionalEmbedding', 'embeddingDim', embeddingDim, { min: 1, integer: true });
    const w = Float32Array.from({ length: maxLen * embeddingDim }, () => 0.02 * normal());
    this.weight = this.registerParameter('weight', new Parameter(fromHost(currentBackend(), w, [maxLen, embeddingDim])));
  }

  /** The layer as messages and summaries name it, e.g. `PositionalEmbedding(256, 64)`. */
  get label(): string {
    return `PositionalEmbedding(${this.maxLen}, ${this.embeddingDim})`;
  }

  /** The position of every row of x [..., T, E] as int32 indices (kept while the shape stays). */
  private positionIndex(x: Tensor, T: number): Tensor {
    const rows = x.size / this.embeddingDim;
    const p = this.positions;
    if (p && p.T === T && p.rows === rows && p.t.backend === x.backend && !p.t.disposed) return p.t;
    p?.t.dispose();
    const t = fromHost(x.backend, Int32Array.from({ length: rows }, (_, r) => r % T), [rows]);
    this.positions = { T, rows, t };
    return t;
  }

  /** x [..., T, E] + the embeddings of positions 0 … T − 1. */
  forward(x: Tensor): Tensor;
  /** x [..., T, E] + the embeddings of positions offset … offset + T − 1 (a cached decoding step: offset =
   * cache.length), with tensor operations (on the graph when it records). */
  forward(x: Tensor, options: { offset?: number }): Tensor;
  forward(...args: unknown[]): Tensor {
    const x = this.checkInput(args[0], this.label);
    checkFloat(this.label, x);
    const E = this.embeddingDim;
    if (x.shape.length < 2 || x.shape[x.shape.length - 1] !== E)
      throw new RangeError(`${this.label}: input must be [..., T, ${E}], got ${fmtShape(x.shape)}`);
    const T = x.shape[x.shape.length - 2];
    if (args.length > 1) {
      const options = (args[1] ?? {}) as { offset?: number };
      checkOptions(`${this.label}.forward`, options, ['offset']);
      const offset = checkNumber(`${this.label}.forward`, 'offset', options.offset ?? 0, { min: 0, integer: true });
      if (offset + T > this.maxLen)
        throw new RangeError(`${this.label}: positions ${offset} to ${offset + T - 1} (offset ${offset} and ${T} positions) run past maxLen ${this.maxLen}`);
      const rows = narrow(this.weight.value, 0, offset, T);
      const y = add(x, rows);
      if (!isGradEnabled() && rows !== this.weight.value) rows.dispose(); // the graph keeps nothing of it then
      return y;
    }
    if (T > this.maxLen) throw new RangeError(`${this.label}: the sequence has ${T} positions, more than maxLen ${this.maxLen}`);
    const b = x.backend;
    const y = this.ws.get('y', b, x.shape);
    if (x.size > 0) {
      b.k.gather_rows(y.buf, this.weight.value.buf, this.positionIndex(x, T).buf, x.size / E, E, this.maxLen, 0);
      b.k.axpy(y.buf, x.buf, x.size, 1);
    }
    this.yShape = y.shape;
    return y;
  }

  override backward(dy: Tensor): Tensor {
    checkGradShape(this.label, this.checkInput(dy, this.label), this.yShape);
    const b = dy.backend, E = this.embeddingDim;
    const { bufs: [dw], accumulate } = Parameter.gradTargets([this.weight]);
    if (dw) {
      if (dy.size > 0) b.k.embedding_backward(dw, this.positions!.t.buf, dy.buf, dy.size / E, E, this.maxLen, accumulate);
      else if (!accumulate) b.k.fill(dw, this.weight.value.size, 0);
    }
    return dy; // the identity's gradient
  }
}
