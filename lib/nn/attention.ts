// Multi-head self-attention, a pre-norm transformer block and a learned positional embedding.
//
// MultiheadAttention(E, H) on x [B, T, E], PyTorch's layout and names: in_proj_weight [3E, E] (q, k, v stacked,
// xavier-uniform), in_proj_bias [3E] (zeros), out_proj.weight [E, E], out_proj.bias [E] (zeros), so a state dict of
// torch.nn.MultiheadAttention(E, H, batch_first=True) loads as is.
//   forward   qkv = x·W_inᵀ + b_in (linear_forward); per head, softmax(q·kᵀ/√D)·v (attention_forward; causal:
//             position i sees positions ≤ i); y = out_proj(heads side by side)
//   backward  out_proj's backward, attention_backward for dqkv, then linear_backward for dx, dW_in, db_in
// TransformerBlock(E, H): x1 = x + attn(ln1(x)), y = x1 + mlp(ln2(x1)), mlp = Linear(E, r·E), GELU, Linear(r·E, E). Its
// backward is the chain rule written out: the gradient of each residual sum reaches both of its branches, and the
// two contributions to dx (and to dx1) add.
// PositionalEmbedding(maxLen, E): y[b, t] = x[b, t] + weight[t], weight [maxLen, E] learned (GPT-2's N(0, 0.02²) start);
// its backward returns the incoming gradient itself (the identity's), as dx.
// Gradient contract: parameter gradients accumulate (or overwrite freshly zeroed grads); dx overwrites.
import { currentBackend } from '../backend.js';
import { checkNumber, checkOptions, describe } from '../errors.js';
import { normal, uniform } from '../random.js';
import { fromHost, type Tensor } from '../tensor.js';
import { GELU } from './activation.js';
import { LayerNorm } from './layernorm.js';
import { Linear } from './linear.js';
import { Module, Parameter } from './module.js';
import { Sequential } from './sequential.js';
import { checkFloat, checkGradShape, fmtShape, Scratch } from './util.js';

/** x must be [B, T, E] (float32): returns B and T. */
function checkSequence(label: string, x: Tensor, E: number): { B: number; T: number } {
  checkFloat(label, x);
  if (x.shape.length !== 3 || x.shape[2] !== E) throw new RangeError(`${label}: input must be [B, T, ${E}], got ${fmtShape(x.shape)}`);
  return { B: x.shape[0], T: x.shape[1] };
}

export interface MultiheadAttentionOptions {
  /** Position i attends to positions ≤ i only (a language model's mask; default false). */
  causal?: boolean;
}

export class MultiheadAttention extends Module {
  readonly embedDim: number;
  readonly numHeads: number;
  readonly headDim: number;
  readonly causal: boolean;
  readonly inProjWeight: Parameter;
  readonly inProjBias: Parameter;
  readonly outProj: Linear;
  private readonly scratch = new Scratch(this.ws);
  private saved?: { x: Tensor; qkv: Tensor; probs: Tensor; B: number; T: number };

  constructor(embedDim: number, numHeads: number, options: MultiheadAttentionOptions = {}) {
    super();
    checkOptions('MultiheadAttention', options, ['causal']);
    this.embedDim = checkNumber('MultiheadAttention', 'embedDim', embedDim, { min: 1, integer: true });
    this.numHeads = checkNumber('MultiheadAttention', 'numHeads', numHeads, { min: 1, integer: true });
    if (embedDim % numHeads !== 0)
      throw new RangeError(`MultiheadAttention: embedDim (${embedDim}) must be divisible by numHeads (${numHeads})`);
    const causal = options.causal ?? false;
    if (typeof causal !== 'boolean') throw new TypeError(`MultiheadAttention: option causal must be a boolean, got ${describe(causal)}`);
    this.causal = causal;
    this.headDim = embedDim / numHeads;
    const E = embedDim, b = currentBackend();
    const bound = Math.sqrt(6 / (E + 3 * E)); // xavier_uniform_ of a [3E, E] matrix
    const w = Float32Array.from({ length: 3 * E * E }, () => (2 * uniform() - 1) * bound);
    this.inProjWeight = this.registerParameter('in_proj_weight', new Parameter(fromHost(b, w, [3 * E, E])));
    this.inProjBias = this.registerParameter('in_proj_bias', new Parameter(fromHost(b, new Float32Array(3 * E), [3 * E])));
    this.outProj = this.registerModule('out_proj', new Linear(E, E)) as Linear;
    this.outProj.bias!.value.assign(new Float32Array(E));
  }

  get label(): string {
    return `MultiheadAttention(${this.embedDim}, ${this.numHeads}${this.causal ? ', causal' : ''})`;
  }

  forward(input: Tensor): Tensor {
    const x = this.checkInput(input, this.label);
    const { B, T } = checkSequence(this.label, x, this.embedDim);
    const E = this.embedDim, H = this.numHeads, D = this.headDim;
    const b = x.backend, k = b.k;
    const qkv = this.scratch.get('qkv', b, [B, T, 3 * E]);
    const probs = this.scratch.get('probs', b, [B, H, T, T]);
    const ctx = this.scratch.get('ctx', b, [B, T, E]);
    if (B * T > 0) {
      k.linear_forward(qkv.buf, x.buf, this.inProjWeight.value.buf, this.inProjBias.value.buf, B * T, E, 3 * E, 0, 0);
      k.attention_forward(ctx.buf, probs.buf, qkv.buf, B, T, H, D, this.causal);
    }
    this.saved = { x, qkv, probs, B, T };
    return this.outProj.forward(ctx);
  }

  override backward(dy: Tensor, inputGrad = true): Tensor {
    if (!this.saved) throw new Error(`${this.label}: backward called before forward`);
    const { x, qkv, probs, B, T } = this.saved;
    checkGradShape(this.label, this.checkInput(dy, this.label), x.shape);
    const E = this.embedDim, b = x.backend, k = b.k;
    const dctx = this.outProj.backward(dy);
    const dqkv = this.scratch.get('dqkv', b, [B, T, 3 * E]);
    const scratch = this.scratch.get('dscores', b, [B, this.numHeads, T, T]);
    const dx = inputGrad ? this.ws.get('dx', b, x.shape) : this.ws.get('none', b, [0]);
    const { bufs: [dw, db], accumulate } = Parameter.gradTargets([this.inProjWeight, this.inProjBias]);
    if (B * T === 0) {
      if (!accumulate) for (const [g, n] of [[dw, 3 * E * E], [db, 3 * E]] as const) if (g) k.fill(g, n, 0);
      if (this.ws.reuse === 0) dctx.dispose();
      return dx;
    }
    k.attention_backward(dqkv.buf, scratch.buf, dctx.buf, qkv.buf, probs.buf, B, T, this.numHeads, this.headDim, this.causal);
    this.scratch.release('dscores');
    if (this.ws.reuse === 0) dctx.dispose(); // out_proj's fresh gradient, seen only here
    if (inputGrad || dw || db) k.linear_backward(inputGrad ? dx.buf : null, dw, db, dqkv.buf, x.buf, this.inProjWeight.value.buf, B * T, E, 3 * E, accumulate);
    return dx;
  }
}

export interface TransformerBlockOptions {
  /** Hidden width of the MLP as a multiple of embedDim (default 4). */
  mlpRatio?: number;
  /** Causal self-attention (a GPT block; default false). */
  causal?: boolean;
  /** LayerNorm's eps (default 1e-5). */
  eps?: number;
}

export class TransformerBlock extends Module {
  readonly embedDim: number;
  readonly numHeads: number;
  readonly mlpRatio: number;
  readonly causal: boolean;
  readonly eps: number;
  readonly ln1: LayerNorm;
  readonly attn: MultiheadAttention;
  readonly ln2: LayerNorm;
  readonly mlp: Sequential;
  private xShape?: readonly number[];
  private readonly held: Tensor[] = [];

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

  get label(): string {
    return `TransformerBlock(${this.embedDim}, ${this.numHeads}${this.causal ? ', causal' : ''})`;
  }

  /** out = a + b (a fresh buffer `key` of this block). */
  private sum(key: string, a: Tensor, bT: Tensor): Tensor {
    const b = a.backend;
    const out = this.ws.get(key, b, a.shape);
    b.k.copy(out.buf, a.buf, a.size);
    b.k.axpy(out.buf, bT.buf, a.size, 1);
    return out;
  }

  /**
   * Outside a training loop every sub-layer returns fresh tensors; the block frees those that only it sees: the
   * forward's when the next forward starts (the sub-layers' backwards read them), the backward's once used. Inside
   * fit they are the sub-layers' reused buffers and are left alone.
   */
  private free(...ts: Tensor[]): void {
    if (this.ws.reuse === 0) for (const t of ts) t.dispose();
  }

  forward(input: Tensor): Tensor {
    const x = this.checkInput(input, this.label);
    checkSequence(this.label, x, this.embedDim);
    const [fc1, act, fc2] = this.mlp.layers as [Linear, GELU, Linear];
    for (const t of this.held.splice(0)) t.dispose(); // held only outside a training loop: the block's own
    const h1 = this.ln1.forward(x);
    const a = this.attn.forward(h1);
    const x1 = this.sum('x1', x, a);
    const h2 = this.ln2.forward(x1);
    const z = fc1.forward(h2);
    const g = act.forward(z);
    const m = fc2.forward(g);
    const y = this.sum('y', x1, m);
    this.free(a, m);
    if (this.ws.reuse === 0) this.held.push(h1, x1, h2, z, g);
    this.xShape = x.shape;
    return y;
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

export class PositionalEmbedding extends Module {
  readonly maxLen: number;
  readonly embeddingDim: number;
  readonly weight: Parameter;
  private positions?: { T: number; rows: number; t: Tensor };
  private yShape?: readonly number[];

  constructor(maxLen: number, embeddingDim: number) {
    super();
    this.maxLen = checkNumber('PositionalEmbedding', 'maxLen', maxLen, { min: 1, integer: true });
    this.embeddingDim = checkNumber('PositionalEmbedding', 'embeddingDim', embeddingDim, { min: 1, integer: true });
    const w = Float32Array.from({ length: maxLen * embeddingDim }, () => 0.02 * normal());
    this.weight = this.registerParameter('weight', new Parameter(fromHost(currentBackend(), w, [maxLen, embeddingDim])));
  }

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

  forward(input: Tensor): Tensor {
    const x = this.checkInput(input, this.label);
    checkFloat(this.label, x);
    const E = this.embeddingDim;
    if (x.shape.length < 2 || x.shape[x.shape.length - 1] !== E)
      throw new RangeError(`${this.label}: input must be [..., T, ${E}], got ${fmtShape(x.shape)}`);
    const T = x.shape[x.shape.length - 2];
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
