// The transformer of "Attention Is All You Need" as PyTorch 1.13's torch.nn builds it, with its names, options, weight
// layouts and state-dict keys, so that a checkpoint moves between the two. Written with tensor operations and the
// built-in layers: the backward of each module is the graph's.
//
// TransformerEncoderLayer(d, h): self-attention and a feed-forward block, each with dropout, a residual and LayerNorm:
//   post-norm (normFirst false)   x = norm1(x + sa(x));          x = norm2(x + ff(x))
//   pre-norm  (normFirst true)    x = x + sa(norm1(x));          x = x + ff(norm2(x))
//   sa(x) = dropout1(self_attn(x, x, x, srcMask, srcKeyPaddingMask)); ff(x) = dropout2(linear2(dropout(act(linear1(x)))))
// TransformerDecoderLayer(d, h): the same with cross-attention over the encoder's memory between the two:
//   post-norm   x = norm1(x + sa(x)); x = norm2(x + mha(x, memory)); x = norm3(x + ff(x))    (pre-norm likewise)
//   mha(x, m) = dropout2(multihead_attn(x, m, m, memoryMask, memoryKeyPaddingMask)); ff ends with dropout3
// TransformerEncoder / TransformerDecoder(layer, n, { norm }): n copies of the layer (its configuration and its
// weights, as PyTorch's deepcopy), layers.0 … layers.n−1, then the optional final norm.
// Transformer({ dModel, nhead, … }): an encoder and a decoder with final LayerNorms (encoder.norm, decoder.norm), every
// matrix re-initialised xavier-uniform, as PyTorch's _reset_parameters.
// Incremental decoding: decoderLayer.forward / decoder.forward(tgtStep, memory, { cache }) under rg.noGrad, with a
// KVCache (lib/nn/kv-cache.ts): the self-attention is causal over the cached positions and the step's, the memory's
// keys and values are projected once.
import { currentBackend } from '../backend.js';
import { add, gelu, relu } from '../autograd/elementwise.js';
import { checkNumber, checkOptions, describe } from '../errors.js';
import { uniform } from '../random.js';
import { fromHost, Tensor } from '../tensor.js';
import { MultiheadAttention } from './attention.js';
import type { AttentionMask } from './attention-ops.js';
import { ModuleList } from './containers.js';
import { KVCache } from './kv-cache.js';
import { LayerNorm } from './layernorm.js';
import { Linear } from './linear.js';
import { Module } from './module.js';
import { Dropout } from './shape.js';
import { fmtShape } from './util.js';

/** The feed-forward activation: PyTorch's 'relu' or 'gelu' (erf form), or any function of a tensor. */
export type Activation = 'relu' | 'gelu' | ((x: Tensor) => Tensor);

/** Options of {@link TransformerEncoderLayer} and {@link TransformerDecoderLayer} (and of {@link Transformer}). */
export interface TransformerLayerOptions {
  /** Width of the feed-forward block (default 2048). */
  dimFeedforward?: number;
  /** Dropout after the attention, in and after the feed-forward block, and on the attention weights (default 0.1). */
  dropout?: number;
  /** 'relu' (default), 'gelu' or a function. */
  activation?: Activation;
  /** LayerNorm's eps (default 1e-5). */
  layerNormEps?: number;
  /** [B, S, E] inputs (default false: [S, B, E], PyTorch's default). */
  batchFirst?: boolean;
  /** LayerNorm before each block (pre-norm) instead of after its residual (default false). */
  normFirst?: boolean;
}

/** A layer's configuration: its {@link TransformerLayerOptions} with the defaults filled in. */
export interface TransformerLayerConfig {
  /** Width of the feed-forward block. */
  dimFeedforward: number;
  /** Dropout probability (after the attention, in and after the feed-forward block, on the attention weights). */
  dropout: number;
  /** The feed-forward activation. */
  activation: Activation;
  /** LayerNorm's eps. */
  layerNormEps: number;
  /** Whether inputs are [B, S, E] (else [S, B, E]). */
  batchFirst: boolean;
  /** Whether LayerNorm comes before each block (pre-norm) rather than after its residual. */
  normFirst: boolean;
}

const LAYER_OPTIONS = ['dimFeedforward', 'dropout', 'activation', 'layerNormEps', 'batchFirst', 'normFirst'] as const;

function layerConfig(where: string, options: TransformerLayerOptions): TransformerLayerConfig {
  const flag = (name: 'batchFirst' | 'normFirst') => {
    const v = options[name] ?? false;
    if (typeof v !== 'boolean') throw new TypeError(`${where}: option ${name} must be a boolean, got ${describe(v)}`);
    return v;
  };
  const activation = options.activation ?? 'relu';
  if (typeof activation === 'string') {
    if (activation !== 'relu' && activation !== 'gelu') throw new RangeError(`${where}: activation must be 'relu' or 'gelu' (or a function), got '${activation}'`);
  } else if (typeof activation !== 'function') {
    throw new TypeError(`${where}: activation must be 'relu', 'gelu' or a function of a tensor, got ${describe(activation)}`);
  }
  return {
    dimFeedforward: checkNumber(where, 'dimFeedforward', options.dimFeedforward ?? 2048, { min: 1, integer: true }),
    dropout: checkNumber(where, 'dropout', options.dropout ?? 0.1, { min: 0, max: 1 }),
    activation,
    layerNormEps: checkNumber(where, 'layerNormEps', options.layerNormEps ?? 1e-5, { min: 0, minExclusive: true }),
    batchFirst: flag('batchFirst'),
    normFirst: flag('normFirst'),
  };
}

function checkWidths(where: string, dModel: unknown, nhead: unknown): [number, number] {
  const d = checkNumber(where, 'dModel', dModel, { min: 1, integer: true });
  const h = checkNumber(where, 'nhead', nhead, { min: 1, integer: true });
  if (d % h !== 0) throw new RangeError(`${where}: dModel (${d}) must be divisible by nhead (${h})`);
  return [d, h];
}

/** x must be [S, B, E] ([B, S, E] when batchFirst) or unbatched [S, E]: returns its batch (null when unbatched). */
function checkSequence(label: string, name: string, x: unknown, E: number, batchFirst: boolean): number | null {
  if (!(x instanceof Tensor)) throw new TypeError(`${label}: ${name} must be a Tensor, got ${describe(x)}`);
  if (x.dtype === 'int32') throw new TypeError(`${label}: ${name} must be a float32 tensor, got int32`);
  if ((x.shape.length !== 3 && x.shape.length !== 2) || x.shape[x.shape.length - 1] !== E)
    throw new RangeError(`${label}: ${name} must be ${batchFirst ? '[B, S' : '[S, B'}, ${E}] (batchFirst ${batchFirst}) or unbatched [S, ${E}], got ${fmtShape(x.shape)}`);
  return x.shape.length === 2 ? null : x.shape[batchFirst ? 0 : 1];
}

/** Checks that memory matches tgt: both batched with one batch size, or both unbatched. */
function checkMemory(label: string, batch: number | null, memory: unknown, E: number, batchFirst: boolean): void {
  const mb = checkSequence(label, 'memory', memory, E, batchFirst);
  if (mb !== batch)
    throw new RangeError(`${label}: memory has ${mb === null ? 'no batch (unbatched)' : `a batch of ${mb}`} and tgt ${batch === null ? 'none (unbatched)' : `a batch of ${batch}`}; they must agree`);
}

function checkCache(where: string, cache: unknown): KVCache | null {
  if (cache == null) return null;
  if (!(cache instanceof KVCache)) throw new TypeError(`${where}: option cache must be a KVCache, got ${describe(cache)}`);
  return cache;
}

/** The feed-forward activation as a function. */
function activationFn(a: Activation): (x: Tensor) => Tensor {
  return a === 'relu' ? (x) => relu(x) : a === 'gelu' ? (x) => gelu(x) : a;
}

function describeLayer(name: string, d: number, h: number, c: TransformerLayerConfig): string {
  const extra = [
    c.dimFeedforward !== 2048 ? `dimFeedforward=${c.dimFeedforward}` : '', c.normFirst ? 'normFirst' : '', c.batchFirst ? 'batchFirst' : '',
  ].filter(Boolean);
  return `${name}(${[d, h, ...extra].join(', ')})`;
}

/** A fresh copy of a layer: the same configuration and weights (requiresGrad and training mode too). */
function copyLayer<M extends Module>(from: M, made: M): M {
  if (made.backend !== from.backend) made.moveTo(from.backend); // where the layer lives, whatever the current backend
  made.loadStateDict(from.stateDict());
  const flags = new Map(from.namedParameters().map(([n, p]) => [n, p.requiresGrad]));
  for (const [n, p] of made.namedParameters()) p.requiresGrad = flags.get(n) ?? true;
  made.train(from.training);
  return made;
}

/** Options of TransformerEncoderLayer.forward (PyTorch's arguments, camelCase). */
export interface EncoderLayerForwardOptions {
  /** [S, S] or [B·nhead, S, S]: bool-like (true = masked) or float (added). */
  srcMask?: AttentionMask | null;
  /** Key padding, [B, S]; true or nonzero marks a padding position, which is not attended to. */
  srcKeyPaddingMask?: AttentionMask | null;
}

/**
 * An encoder layer, as torch.nn.TransformerEncoderLayer (PyTorch 1.13's names and state-dict keys): self-attention
 * and a feed-forward block, each with dropout, a residual and LayerNorm, after the residual (post-norm, the default)
 * or before the block (normFirst). Written with tensor operations: its backward is the graph's.
 */
export class TransformerEncoderLayer extends Module {
  /** E, the model width. */
  readonly dModel: number;
  /** Attention heads. */
  readonly nhead: number;
  /** The layer's options with the defaults filled in (frozen). */
  readonly config: TransformerLayerConfig;
  /** self_attn. */
  readonly selfAttn: MultiheadAttention;
  /** linear1: E → dimFeedforward. */
  readonly linear1: Linear;
  /** dropout: inside the feed-forward block. */
  readonly dropout: Dropout;
  /** linear2: dimFeedforward → E. */
  readonly linear2: Linear;
  /** norm1: around the self-attention block. */
  readonly norm1: LayerNorm;
  /** norm2: around the feed-forward block. */
  readonly norm2: LayerNorm;
  /** dropout1: after the self-attention. */
  readonly dropout1: Dropout;
  /** dropout2: after the feed-forward block. */
  readonly dropout2: Dropout;
  private readonly act: (x: Tensor) => Tensor;

  /** A layer of width dModel with nhead heads (dModel divisible by nhead, else a RangeError). */
  constructor(dModel: number, nhead: number, options: TransformerLayerOptions = {}) {
    super();
    const where = 'TransformerEncoderLayer';
    checkOptions(where, options, LAYER_OPTIONS);
    [this.dModel, this.nhead] = checkWidths(where, dModel, nhead);
    const c = (this.config = Object.freeze(layerConfig(where, options)));
    const d = this.dModel;
    // registered in PyTorch's order, under its names: the state dict's keys and order are torch's
    this.selfAttn = this.registerModule('self_attn', new MultiheadAttention(d, this.nhead, { dropout: c.dropout, batchFirst: c.batchFirst })) as MultiheadAttention;
    this.linear1 = this.registerModule('linear1', new Linear(d, c.dimFeedforward)) as Linear;
    this.dropout = this.registerModule('dropout', new Dropout(c.dropout)) as Dropout;
    this.linear2 = this.registerModule('linear2', new Linear(c.dimFeedforward, d)) as Linear;
    this.norm1 = this.registerModule('norm1', new LayerNorm(d, { eps: c.layerNormEps })) as LayerNorm;
    this.norm2 = this.registerModule('norm2', new LayerNorm(d, { eps: c.layerNormEps })) as LayerNorm;
    this.dropout1 = this.registerModule('dropout1', new Dropout(c.dropout)) as Dropout;
    this.dropout2 = this.registerModule('dropout2', new Dropout(c.dropout)) as Dropout;
    this.act = activationFn(c.activation);
  }

  /** The layer as messages and summaries name it, e.g. `TransformerEncoderLayer(512, 8)`. */
  get label(): string {
    return describeLayer('TransformerEncoderLayer', this.dModel, this.nhead, this.config);
  }

  /** A new layer with this one's configuration and a copy of its weights (what TransformerEncoder stacks). */
  clone(): TransformerEncoderLayer {
    return copyLayer(this, new TransformerEncoderLayer(this.dModel, this.nhead, this.config));
  }

  /** src [S, B, E] ([B, S, E] when batchFirst; unbatched [S, E]) → the same shape. */
  forward(src: Tensor, options: EncoderLayerForwardOptions = {}): Tensor {
    const label = this.label;
    checkOptions(`${label}.forward`, options, ['srcMask', 'srcKeyPaddingMask']);
    checkSequence(label, 'src', src, this.dModel, this.config.batchFirst);
    const sa = (x: Tensor) =>
      this.dropout1.forward(this.selfAttn.forward(x, x, x, { attnMask: options.srcMask, keyPaddingMask: options.srcKeyPaddingMask, needWeights: false })[0]);
    const ff = (x: Tensor) => this.dropout2.forward(this.linear2.forward(this.dropout.forward(this.act(this.linear1.forward(x)))));
    let x = src;
    if (this.config.normFirst) {
      x = add(x, sa(this.norm1.forward(x)));
      x = add(x, ff(this.norm2.forward(x)));
    } else {
      x = this.norm1.forward(add(x, sa(x)));
      x = this.norm2.forward(add(x, ff(x)));
    }
    return x;
  }
}

/** Options of TransformerDecoderLayer.forward and TransformerDecoder.forward (PyTorch's arguments, camelCase). */
export interface DecoderForwardOptions {
  /** Self-attention mask [T, T] or [B·nhead, T, T] (with a cache: [T, past + T]); e.g. generateSquareSubsequentMask(T). */
  tgtMask?: AttentionMask | null;
  /** Cross-attention mask [T, S] or [B·nhead, T, S]. */
  memoryMask?: AttentionMask | null;
  /** [B, T] (with a cache: [B, past + T]): true / nonzero = padding. */
  tgtKeyPaddingMask?: AttentionMask | null;
  /** Key padding of the memory, [B, S]; true or nonzero marks a padding position. */
  memoryKeyPaddingMask?: AttentionMask | null;
  /** Incremental decoding under rg.noGrad: tgt holds the positions after the cached ones (causal self-attention). */
  cache?: KVCache | null;
}
const DECODER_OPTIONS = ['tgtMask', 'memoryMask', 'tgtKeyPaddingMask', 'memoryKeyPaddingMask', 'cache'] as const;

/**
 * A decoder layer, as torch.nn.TransformerDecoderLayer: self-attention, cross-attention over the encoder's memory and
 * a feed-forward block, each with dropout, a residual and LayerNorm (post- or pre-norm as the encoder layer). With
 * { cache }, one step of incremental decoding under rg.noGrad. Its backward is the graph's.
 */
export class TransformerDecoderLayer extends Module {
  /** E, the model width. */
  readonly dModel: number;
  /** Attention heads. */
  readonly nhead: number;
  /** The layer's options with the defaults filled in (frozen). */
  readonly config: TransformerLayerConfig;
  /** self_attn. */
  readonly selfAttn: MultiheadAttention;
  /** multihead_attn: the cross-attention over the memory. */
  readonly multiheadAttn: MultiheadAttention;
  /** linear1: E → dimFeedforward. */
  readonly linear1: Linear;
  /** dropout: inside the feed-forward block. */
  readonly dropout: Dropout;
  /** linear2: dimFeedforward → E. */
  readonly linear2: Linear;
  /** norm1: around the self-attention block. */
  readonly norm1: LayerNorm;
  /** norm2: around the cross-attention block. */
  readonly norm2: LayerNorm;
  /** norm3: around the feed-forward block. */
  readonly norm3: LayerNorm;
  /** dropout1: after the self-attention. */
  readonly dropout1: Dropout;
  /** dropout2: after the cross-attention. */
  readonly dropout2: Dropout;
  /** dropout3: after the feed-forward block. */
  readonly dropout3: Dropout;
  private readonly act: (x: Tensor) => Tensor;

  /** A layer of width dModel with nhead heads (dModel divisible by nhead, else a RangeError). */
  constructor(dModel: number, nhead: number, options: TransformerLayerOptions = {}) {
    super();
    const where = 'TransformerDecoderLayer';
    checkOptions(where, options, LAYER_OPTIONS);
    [this.dModel, this.nhead] = checkWidths(where, dModel, nhead);
    const c = (this.config = Object.freeze(layerConfig(where, options)));
    const d = this.dModel, attn = { dropout: c.dropout, batchFirst: c.batchFirst };
    this.selfAttn = this.registerModule('self_attn', new MultiheadAttention(d, this.nhead, attn)) as MultiheadAttention;
    this.multiheadAttn = this.registerModule('multihead_attn', new MultiheadAttention(d, this.nhead, attn)) as MultiheadAttention;
    this.linear1 = this.registerModule('linear1', new Linear(d, c.dimFeedforward)) as Linear;
    this.dropout = this.registerModule('dropout', new Dropout(c.dropout)) as Dropout;
    this.linear2 = this.registerModule('linear2', new Linear(c.dimFeedforward, d)) as Linear;
    this.norm1 = this.registerModule('norm1', new LayerNorm(d, { eps: c.layerNormEps })) as LayerNorm;
    this.norm2 = this.registerModule('norm2', new LayerNorm(d, { eps: c.layerNormEps })) as LayerNorm;
    this.norm3 = this.registerModule('norm3', new LayerNorm(d, { eps: c.layerNormEps })) as LayerNorm;
    this.dropout1 = this.registerModule('dropout1', new Dropout(c.dropout)) as Dropout;
    this.dropout2 = this.registerModule('dropout2', new Dropout(c.dropout)) as Dropout;
    this.dropout3 = this.registerModule('dropout3', new Dropout(c.dropout)) as Dropout;
    this.act = activationFn(c.activation);
  }

  /** The layer as messages and summaries name it, e.g. `TransformerDecoderLayer(512, 8)`. */
  get label(): string {
    return describeLayer('TransformerDecoderLayer', this.dModel, this.nhead, this.config);
  }

  /** A new layer with this one's configuration and a copy of its weights (what TransformerDecoder stacks). */
  clone(): TransformerDecoderLayer {
    return copyLayer(this, new TransformerDecoderLayer(this.dModel, this.nhead, this.config));
  }

  /** tgt [T, B, E] and memory [S, B, E] ([B, T, E], [B, S, E] when batchFirst; unbatched [T, E], [S, E]) → tgt's shape. */
  forward(tgt: Tensor, memory: Tensor, options: DecoderForwardOptions = {}): Tensor {
    const label = this.label;
    checkOptions(`${label}.forward`, options, DECODER_OPTIONS);
    const batch = checkSequence(label, 'tgt', tgt, this.dModel, this.config.batchFirst);
    checkMemory(label, batch, memory, this.dModel, this.config.batchFirst);
    const cache = checkCache(`${label}.forward`, options.cache);
    const sa = (x: Tensor) =>
      this.dropout1.forward(this.selfAttn.forward(x, x, x, { attnMask: options.tgtMask, keyPaddingMask: options.tgtKeyPaddingMask, needWeights: false, cache })[0]);
    const mha = (x: Tensor) =>
      this.dropout2.forward(this.multiheadAttn.forward(x, memory, memory, { attnMask: options.memoryMask, keyPaddingMask: options.memoryKeyPaddingMask, needWeights: false, cache })[0]);
    const ff = (x: Tensor) => this.dropout3.forward(this.linear2.forward(this.dropout.forward(this.act(this.linear1.forward(x)))));
    const run = () => {
      let x = tgt;
      if (this.config.normFirst) {
        x = add(x, sa(this.norm1.forward(x)));
        x = add(x, mha(this.norm2.forward(x)));
        x = add(x, ff(this.norm3.forward(x)));
      } else {
        x = this.norm1.forward(add(x, sa(x)));
        x = this.norm2.forward(add(x, mha(x)));
        x = this.norm3.forward(add(x, ff(x)));
      }
      return x;
    };
    return cache ? cache.atomic(run) : run(); // a step that fails leaves the cache as it was
  }
}

/** The layers of a stack: `numLayers` clones of `layer`. */
function stackOf(where: string, layer: unknown, numLayers: unknown, kind: typeof TransformerEncoderLayer | typeof TransformerDecoderLayer): ModuleList {
  if (!(layer instanceof kind)) throw new TypeError(`${where}: the layer must be a ${kind.name}, got ${describe(layer)}`);
  const n = checkNumber(where, 'numLayers', numLayers, { min: 1, integer: true });
  return new ModuleList(Array.from({ length: n }, () => (layer as TransformerEncoderLayer | TransformerDecoderLayer).clone()));
}

function checkNorm(where: string, options: { norm?: Module | null }): Module | null {
  const norm = options.norm ?? null;
  if (norm !== null && !(norm instanceof Module)) throw new TypeError(`${where}: option norm must be a Module (a LayerNorm) or null, got ${describe(norm)}`);
  return norm;
}

/** Options of TransformerEncoder.forward (PyTorch's arguments, camelCase). */
export interface EncoderForwardOptions {
  /** [S, S] or [B·nhead, S, S] (PyTorch's `mask`). */
  mask?: AttentionMask | null;
  /** Key padding, [B, S]; true or nonzero marks a padding position. */
  srcKeyPaddingMask?: AttentionMask | null;
}

/** A stack of encoder layers, as torch.nn.TransformerEncoder: `layers.0` … `layers.n−1`, then the optional final norm. */
export class TransformerEncoder extends Module {
  /** The number of layers. */
  readonly numLayers: number;
  /** The layers (copies of the one given). */
  readonly layers: ModuleList;
  /** The final norm, or null. */
  readonly norm: Module | null;

  /** `numLayers` copies of `encoderLayer` (its configuration and weights, as PyTorch's deepcopy), then `norm`. */
  constructor(encoderLayer: TransformerEncoderLayer, numLayers: number, options: { norm?: Module | null } = {}) {
    super();
    const where = 'TransformerEncoder';
    checkOptions(where, options, ['norm']);
    this.layers = this.registerModule('layers', stackOf(where, encoderLayer, numLayers, TransformerEncoderLayer)) as ModuleList;
    this.numLayers = this.layers.length;
    this.norm = checkNorm(where, options);
    if (this.norm) this.registerModule('norm', this.norm);
  }

  /** The layer as messages and summaries name it, e.g. `TransformerEncoder(TransformerEncoderLayer(512, 8) × 6)`. */
  get label(): string {
    return `TransformerEncoder(${(this.layers.at(0) as TransformerEncoderLayer).label} × ${this.numLayers})`;
  }

  /** Every layer on src in turn, then the norm: src's shape. */
  forward(src: Tensor, options: EncoderForwardOptions = {}): Tensor {
    checkOptions(`${this.label}.forward`, options, ['mask', 'srcKeyPaddingMask']);
    let x = src;
    for (const layer of this.layers) x = (layer as TransformerEncoderLayer).forward(x, { srcMask: options.mask, srcKeyPaddingMask: options.srcKeyPaddingMask });
    return this.norm ? this.norm.forward(x) : x;
  }
}

/** A stack of decoder layers, as torch.nn.TransformerDecoder: `layers.0` … `layers.n−1`, then the optional final norm. */
export class TransformerDecoder extends Module {
  /** The number of layers. */
  readonly numLayers: number;
  /** The layers (copies of the one given). */
  readonly layers: ModuleList;
  /** The final norm, or null. */
  readonly norm: Module | null;

  /** `numLayers` copies of `decoderLayer` (its configuration and weights, as PyTorch's deepcopy), then `norm`. */
  constructor(decoderLayer: TransformerDecoderLayer, numLayers: number, options: { norm?: Module | null } = {}) {
    super();
    const where = 'TransformerDecoder';
    checkOptions(where, options, ['norm']);
    this.layers = this.registerModule('layers', stackOf(where, decoderLayer, numLayers, TransformerDecoderLayer)) as ModuleList;
    this.numLayers = this.layers.length;
    this.norm = checkNorm(where, options);
    if (this.norm) this.registerModule('norm', this.norm);
  }

  /** The layer as messages and summaries name it, e.g. `TransformerDecoder(TransformerDecoderLayer(512, 8) × 6)`. */
  get label(): string {
    return `TransformerDecoder(${(this.layers.at(0) as TransformerDecoderLayer).label} × ${this.numLayers})`;
  }

  /** Every layer on tgt, each attending to memory; with { cache }, one step of incremental decoding. */
  forward(tgt: Tensor, memory: Tensor, options: DecoderForwardOptions = {}): Tensor {
    checkOptions(`${this.label}.forward`, options, DECODER_OPTIONS);
    const cache = checkCache(`${this.label}.forward`, options.cache);
    const run = () => {
      let x = tgt;
      for (const layer of this.layers) x = (layer as TransformerDecoderLayer).forward(x, memory, options);
      return this.norm ? this.norm.forward(x) : x;
    };
    return cache ? cache.atomic(run) : run(); // a step that fails in a later layer leaves the cache as it was
  }
}

/** Options of {@link Transformer}: the sizes, and the layer options every layer gets. */
export interface TransformerOptions extends TransformerLayerOptions {
  /** Model width (default 512). */
  dModel?: number;
  /** Attention heads (default 8). */
  nhead?: number;
  /** Encoder layers (default 6). */
  numEncoderLayers?: number;
  /** Decoder layers (default 6). */
  numDecoderLayers?: number;
  /** An encoder to use instead of the built one (PyTorch's custom_encoder). */
  customEncoder?: Module | null;
  /** A decoder to use instead of the built one (PyTorch's custom_decoder). */
  customDecoder?: Module | null;
}

/** Options of Transformer.forward: PyTorch's masks, camelCase (bool-like: true = masked; float: added to the scores). */
export interface TransformerForwardOptions {
  /** The encoder's self-attention mask, [S, S] or [B·nhead, S, S]. */
  srcMask?: AttentionMask | null;
  /** The decoder's self-attention mask, [T, T] or [B·nhead, T, T] (e.g. generateSquareSubsequentMask(T)). */
  tgtMask?: AttentionMask | null;
  /** The decoder's cross-attention mask, [T, S] or [B·nhead, T, S]. */
  memoryMask?: AttentionMask | null;
  /** Key padding of src, [B, S]. */
  srcKeyPaddingMask?: AttentionMask | null;
  /** Key padding of tgt, [B, T]. */
  tgtKeyPaddingMask?: AttentionMask | null;
  /** Key padding of the memory (the encoder's output), [B, S]. */
  memoryKeyPaddingMask?: AttentionMask | null;
}

/**
 * The transformer of "Attention Is All You Need", as torch.nn.Transformer: an encoder and a decoder stack with final
 * LayerNorms (encoder.norm, decoder.norm), every matrix re-initialised xavier-uniform as PyTorch's
 * _reset_parameters. Defaults dModel 512, nhead 8, 6 + 6 layers, dimFeedforward 2048, dropout 0.1.
 */
export class Transformer extends Module {
  /** E, the model width. */
  readonly dModel: number;
  /** Attention heads. */
  readonly nhead: number;
  /** Whether inputs are [B, S, E] (else [S, B, E]). */
  readonly batchFirst: boolean;
  /** The encoder stack (or the customEncoder given). */
  readonly encoder: Module;
  /** The decoder stack (or the customDecoder given). */
  readonly decoder: Module;

  /** A transformer with `options` (all optional); dModel must be divisible by nhead. */
  constructor(options: TransformerOptions = {}) {
    super();
    const where = 'Transformer';
    checkOptions(where, options, ['dModel', 'nhead', 'numEncoderLayers', 'numDecoderLayers', 'customEncoder', 'customDecoder', ...LAYER_OPTIONS]);
    [this.dModel, this.nhead] = checkWidths(where, options.dModel ?? 512, options.nhead ?? 8);
    const layer: TransformerLayerOptions = {};
    for (const k of LAYER_OPTIONS) if (options[k] !== undefined) (layer as Record<string, unknown>)[k] = options[k];
    const c = layerConfig(where, layer);
    this.batchFirst = c.batchFirst;
    const custom = (name: 'customEncoder' | 'customDecoder') => {
      const m = options[name] ?? null;
      if (m !== null && !(m instanceof Module)) throw new TypeError(`${where}: option ${name} must be a Module, got ${describe(m)}`);
      return m;
    };
    const d = this.dModel, h = this.nhead;
    const encoder = custom('customEncoder') ?? new TransformerEncoder(new TransformerEncoderLayer(d, h, c), checkNumber(where, 'numEncoderLayers', options.numEncoderLayers ?? 6, { min: 1, integer: true }), { norm: new LayerNorm(d, { eps: c.layerNormEps }) });
    const decoder = custom('customDecoder') ?? new TransformerDecoder(new TransformerDecoderLayer(d, h, c), checkNumber(where, 'numDecoderLayers', options.numDecoderLayers ?? 6, { min: 1, integer: true }), { norm: new LayerNorm(d, { eps: c.layerNormEps }) });
    this.encoder = this.registerModule('encoder', encoder);
    this.decoder = this.registerModule('decoder', decoder);
    this.resetParameters();
  }

  /** The layer as messages and summaries name it, e.g. `Transformer(dModel=512, nhead=8)`. */
  get label(): string {
    return `Transformer(dModel=${this.dModel}, nhead=${this.nhead})`;
  }

  /** PyTorch's _reset_parameters: every parameter with more than one dimension drawn xavier-uniform. */
  resetParameters(): void {
    for (const p of this.parameters()) {
      if (p.shape.length < 2) continue;
      const [fanOut, fanIn] = [p.shape[0], p.shape.slice(1).reduce((a, v) => a * v, 1)];
      const bound = Math.sqrt(6 / (fanIn + fanOut));
      p.value.assign(Float32Array.from({ length: p.value.size }, () => (2 * uniform() - 1) * bound));
    }
  }

  /** src [S, B, E] and tgt [T, B, E] ([B, S, E], [B, T, E] when batchFirst) → the decoder's output, tgt's shape. */
  forward(src: Tensor, tgt: Tensor, options: TransformerForwardOptions = {}): Tensor {
    const label = this.label;
    checkOptions(`${label}.forward`, options, ['srcMask', 'tgtMask', 'memoryMask', 'srcKeyPaddingMask', 'tgtKeyPaddingMask', 'memoryKeyPaddingMask']);
    const bs = checkSequence(label, 'src', src, this.dModel, this.batchFirst);
    const bt = checkSequence(label, 'tgt', tgt, this.dModel, this.batchFirst);
    if (bs !== bt) throw new RangeError(`${label}: src and tgt must have one batch size, got ${fmtShape(src.shape)} and ${fmtShape(tgt.shape)}`);
    const memory = this.encoder.forward(src, { mask: options.srcMask, srcKeyPaddingMask: options.srcKeyPaddingMask });
    return this.decoder.forward(tgt, memory, {
      tgtMask: options.tgtMask, memoryMask: options.memoryMask, tgtKeyPaddingMask: options.tgtKeyPaddingMask, memoryKeyPaddingMask: options.memoryKeyPaddingMask,
    });
  }

  /** [n, n] float: 0 on and below the diagonal, −∞ above it (a causal tgtMask), on the current backend. */
  static generateSquareSubsequentMask(n: number): Tensor {
    checkNumber('Transformer.generateSquareSubsequentMask', 'n', n, { min: 0, integer: true });
    const data = new Float32Array(n * n);
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) data[i * n + j] = -Infinity;
    return fromHost(currentBackend(), data, [n, n]);
  }
}
