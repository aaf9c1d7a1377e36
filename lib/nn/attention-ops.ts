// The general multi-head attention behind MultiheadAttention.forward(query, key, value, options), written with tensor
// operations (so its backward comes from the graph, on every backend), step by step as PyTorch 1.13's
// F.multi_head_attention_forward: queries [B, L, E], keys and values [B, S, E] (batch first inside; the layer
// transposes [L, B, E] and adds the batch of an unbatched [L, E]),
//   in-projection   one linear for self-attention (query, key, value the same tensor) then split, one for the query and
//                   one for key and value when key is value (cross-attention), three otherwise — slices of
//                   in_proj_weight [3E, E] and in_proj_bias [3E]
//   heads           [B, L, E] → [B, H, L, D]
//   scores          (q/√D)·kᵀ [B, H, L, S] + the additive mask (key padding, attnMask, causal: −∞ where masked)
//   weights         softmax over S, then dropout while training (PyTorch returns these, after dropout)
//   output          weights·v, heads side by side [B, L, E], out_proj
// Self-attention without masks, attention dropout or returned weights runs the fused kernels instead
// (attention_forward / attention_backward, one node of the graph), as PyTorch's fast path does.
// With a KVCache (lib/nn/kv-cache.ts), self-attention appends the step's keys and values and cross-attention
// projects the memory once.
import type { Backend } from '../backend.js';
import { describe, RetrogradError } from '../errors.js';
import { alloc, fmt } from '../autograd/core.js';
import { isGradEnabled, record } from '../autograd/engine.js';
import { add, mul } from '../autograd/elementwise.js';
import { linear, matmul } from '../autograd/linalg.js';
import { mean, softmax } from '../autograd/reduce.js';
import { cat, narrow, permute, select, transpose, unsqueeze } from '../autograd/shape.js';
import { fromHost, Tensor } from '../tensor.js';
import { dropout as dropoutOp } from './functional.js';
import type { KVCache } from './kv-cache.js';
import type { Module } from './module.js';

/**
 * An attention mask as PyTorch takes it. A Tensor: int32 is PyTorch's bool mask (nonzero, true, = masked: that key is
 * not attended to), float is added to the scores (0 keeps, −∞ masks). Nested arrays of booleans: true = masked.
 * (Comparisons give float 0/1 masks, which would be added: turn them into int32 or booleans first.)
 */
export type AttentionMask = Tensor | readonly boolean[] | readonly (readonly boolean[])[] | readonly (readonly (readonly boolean[])[])[];

/** The projection weights of one attention layer (biases null when it has none). */
export interface AttentionWeights {
  inW: Tensor;
  inB: Tensor | null;
  outW: Tensor;
  outB: Tensor | null;
}

export interface AttentionCall {
  /** The layer's name in messages. */
  label: string;
  E: number;
  H: number;
  keyPaddingMask?: AttentionMask | null;
  attnMask?: AttentionMask | null;
  needWeights: boolean;
  averageAttnWeights: boolean;
  /** Query i sees keys j ≤ i (j ≤ past + i with a cache). */
  causal: boolean;
  dropout: number;
  training: boolean;
  batchFirst: boolean;
  cache?: KVCache | null;
  /** The module whose cache entry this is. */
  owner: Module;
}

/** Self-attention over qkv [B, T, 3E] by the fused kernels, as one node of the graph: [B, T, E]. */
export function fusedSelfAttention(qkv: Tensor, B: number, T: number, H: number, D: number, causal: boolean): Tensor {
  const b = qkv.backend, E = H * D;
  const out = alloc(b, [B, T, E]), probs = alloc(b, [B, H, T, T]);
  if (out.size) b.k.attention_forward(out.buf, probs.buf, qkv.buf, B, T, H, D, causal);
  const node = record('attention', [qkv], [out], [qkv, probs], ([g], [x, p]) => {
    if (!g) return [null];
    const d = alloc(g.backend, [B, T, 3 * E]);
    if (d.size === 0) return [d];
    const scratch = alloc(g.backend, [B, H, T, T]);
    g.backend.k.attention_backward(d.buf, scratch.buf, g.buf, x.buf, p.buf, B, T, H, D, causal);
    scratch.dispose();
    return [d];
  });
  if (!node) probs.dispose();
  return out;
}

/** The number of elements of a shape. */
const count = (s: readonly number[]) => s.reduce((p, d) => p * d, 1);

/** Checks an input of the layer: a float tensor on the layer's backend. */
function checkArg(label: string, name: string, x: unknown, backend: Backend): Tensor {
  if (!(x instanceof Tensor)) throw new TypeError(`${label}: ${name} must be a Tensor, got ${describe(x)}`);
  if (x.disposed) throw new RetrogradError(`${label}: ${name} has been disposed`, 'DISPOSED');
  if (x.dtype === 'int32') throw new TypeError(`${label}: ${name} must be a float32 tensor, got int32`);
  if (x.backend !== backend) throw new TypeError(`${label}: ${name} is on '${x.device}' but the layer is on '${backend.name}'; move one of them with .to()`);
  return x;
}

/** int32 masks turned additive, per mask tensor (rebuilt when the tensor changed in place or the copy was disposed). */
const converted = new WeakMap<Tensor, { version: number; t: Tensor }>();
/** Causal masks by backend and size: the same [T, T] serves every layer and step. */
const causalMasks = new WeakMap<Backend, Map<string, Tensor>>();

/** A mask as an additive float tensor (0 keeps, −∞ masks), its shape checked against `allowed` (described by `names`);
 * one made from arrays is new (the caller frees it), the others are the caller's or kept here. */
function additiveMask(label: string, name: string, m: AttentionMask, allowed: number[][], names: string[], backend: Backend): Tensor {
  const expect = () => allowed.map((s, i) => `${names[i]} = ${fmt(s)}`).join(' or ');
  const checkShape = (shape: readonly number[]) => {
    if (!allowed.some((s) => s.length === shape.length && s.every((d, i) => d === shape[i])))
      throw new RangeError(`${label}: ${name} must be ${expect()}, got ${fmt(shape)}`);
  };
  if (m instanceof Tensor) {
    if (m.disposed) throw new RetrogradError(`${label}: ${name} has been disposed`, 'DISPOSED');
    if (m.backend !== backend) throw new TypeError(`${label}: ${name} is on '${m.device}' but the layer is on '${backend.name}'; move one of them with .to()`);
    checkShape(m.shape);
    if (m.dtype !== 'int32') return m;
    const have = converted.get(m);
    if (have && have.version === m._version && !have.t.disposed) return have.t;
    const host = m.backend.read(m.buf) as Int32Array;
    const t = fromHost(backend, Float32Array.from(host, (v) => (v !== 0 ? -Infinity : 0)), m.shape);
    converted.set(m, { version: m._version, t });
    return t;
  }
  if (!Array.isArray(m))
    throw new TypeError(`${label}: ${name} must be a Tensor (int32: nonzero masks, as PyTorch's bool mask; float: added to the scores) or nested arrays of booleans, got ${describe(m)}`);
  // nested arrays of booleans: the shape from the nesting, every row as long as the first
  const shape: number[] = [];
  for (let v: unknown = m; Array.isArray(v); v = v[0]) shape.push(v.length);
  const flat = (m as unknown[]).flat(shape.length - 1) as unknown[];
  if (flat.length !== count(shape) || flat.some((v) => typeof v !== 'boolean'))
    throw new TypeError(`${label}: ${name} given as arrays must be nested arrays of booleans of one shape (true = masked), got ${describe(m)}`);
  checkShape(shape);
  return fromHost(backend, Float32Array.from(flat as boolean[], (v) => (v ? -Infinity : 0)), shape);
}

/** [L, S] with −∞ where key j comes after query i's position past + i. */
function causalMask(backend: Backend, L: number, S: number, past: number): Tensor {
  let byKey = causalMasks.get(backend);
  if (!byKey) causalMasks.set(backend, (byKey = new Map()));
  const key = `${L}x${S}+${past}`;
  const have = byKey.get(key);
  if (have && !have.disposed) return have;
  if (byKey.size >= 16) byKey.clear(); // a few sizes in use at a time; the dropped ones go to the garbage collector
  const data = new Float32Array(L * S);
  for (let i = 0; i < L; i++) for (let j = past + i + 1; j < S; j++) data[i * S + j] = -Infinity;
  const t = fromHost(backend, data, [L, S]);
  byKey.set(key, t);
  return t;
}

/**
 * PyTorch's multi-head attention forward: [output, weights or null]. query [B, L, E] (or [L, B, E] when not batchFirst,
 * or unbatched [L, E]); key and value of one shape, [B, S, E] likewise.
 */
export function multiHeadAttention(query: unknown, key: unknown, value: unknown, w: AttentionWeights, c: AttentionCall): [Tensor, Tensor | null] {
  // with a cache, all or nothing: a call that fails leaves the cache as it was
  return c.cache ? c.cache.atomic(() => attend(query, key, value, w, c)) : attend(query, key, value, w, c);
}

function attend(query: unknown, key: unknown, value: unknown, w: AttentionWeights, c: AttentionCall): [Tensor, Tensor | null] {
  const { label, E, H } = c;
  const D = E / H;
  const backend = w.inW.backend;
  const q0 = checkArg(label, 'query', query, backend), k0 = checkArg(label, 'key', key, backend), v0 = checkArg(label, 'value', value, backend);
  const batched = q0.shape.length === 3;
  const layout = batched ? (c.batchFirst ? '[B, L, E]' : '[L, B, E]') : '[L, E]';
  if ((q0.shape.length !== 3 && q0.shape.length !== 2) || q0.shape[q0.shape.length - 1] !== E)
    throw new RangeError(`${label}: query must be ${c.batchFirst ? '[B, L, E]' : '[L, B, E]'} (or unbatched [L, E]) with E = ${E}, got ${fmt(q0.shape)}`);
  for (const [name, t] of [['key', k0], ['value', v0]] as const) {
    const bad = t.shape.length !== q0.shape.length || t.shape[t.shape.length - 1] !== E ||
      (batched && t.shape[c.batchFirst ? 0 : 1] !== q0.shape[c.batchFirst ? 0 : 1]);
    if (bad) throw new RangeError(`${label}: ${name} must be ${layout.replace('L', 'S')} with E = ${E} and the query's batch, for a query ${fmt(q0.shape)}; got ${fmt(t.shape)}`);
  }
  if (k0.shape.some((d, i) => d !== v0.shape[i])) throw new RangeError(`${label}: key ${fmt(k0.shape)} and value ${fmt(v0.shape)} must have one shape`);

  const selfAttn = q0 === k0 && k0 === v0, kvSame = k0 === v0;
  const cache = c.cache ?? null;
  const grad = isGradEnabled();
  if (cache) {
    if (grad)
      throw new RetrogradError(`${label}: a KVCache is for incremental decoding under rg.noGrad (the cache keeps no graph); run the step inside rg.noGrad(() => …)`, 'INVALID_ARGUMENT');
    if (!kvSame)
      throw new TypeError(`${label}: a KVCache needs key and value to be the same tensor: query too for self-attention (the keys and values grow by each step), or a memory for cross-attention (its keys and values are made once)`);
  }
  /** Frees what this call made and no longer needs, when nothing was recorded (the graph holds it otherwise). */
  const drop = (...ts: (Tensor | null)[]) => {
    if (!grad) for (const t of ts) t?.viewBase.dispose();
  };
  // batch first inside; a tensor given twice stays one tensor (the in-projection depends on it)
  const inside = new Map<Tensor, Tensor>();
  const toInside = (t: Tensor) => {
    let r = inside.get(t);
    if (!r) inside.set(t, (r = !batched ? unsqueeze(t, 0) : c.batchFirst ? t : transpose(t, 0, 1)));
    return r;
  };
  /** Frees the transposed copies of the inputs (an unsqueezed input is a view of the caller's tensor). */
  const dropInside = () => {
    if (batched && !c.batchFirst) drop(...inside.values());
  };
  const q = toInside(q0);
  const B = q.shape[0], L = q.shape[1];
  const weightsOf = (t: Tensor, from: number, n: number) => (from === 0 && n === t.shape[0] ? t : narrow(t, 0, from, n));
  const project = (x: Tensor, part: number, parts: number) => {
    const wp = weightsOf(w.inW, part * E, parts * E), bp = w.inB ? weightsOf(w.inB, part * E, parts * E) : null;
    const y = linear(x, wp, bp);
    drop(wp !== w.inW ? wp : null, bp !== w.inB ? bp : null);
    return y;
  };
  /** [B, n, parts·E] (freed) → parts × [B, H, n, D] */
  const heads = (x: Tensor, n: number, parts: number): Tensor[] => {
    const split = permute(x.reshape([B, n, parts, H, D]), [2, 0, 3, 1, 4]);
    drop(x);
    if (parts === 1) return [split.reshape([B, H, n, D])];
    const out = Array.from({ length: parts }, (_, i) => select(split, 0, i));
    drop(split);
    return out;
  };
  const back = (y: Tensor) => {
    if (!batched) return y.reshape([L, E]);
    if (c.batchFirst) return y;
    const t = transpose(y, 0, 1);
    drop(y);
    return t;
  };

  const noMasks = c.keyPaddingMask == null && c.attnMask == null;
  if (!cache && selfAttn && noMasks && !c.needWeights && !(c.dropout > 0 && c.training)) {
    // the fast path: one projection, the fused attention kernels, out_proj
    const qkv = project(q, 0, 3);
    const ctx = fusedSelfAttention(qkv, B, L, H, D, c.causal);
    const y = linear(ctx, w.outW, w.outB);
    drop(qkv, ctx);
    dropInside();
    return [back(y), null];
  }

  let qh: Tensor, kh: Tensor, vh: Tensor;
  let past = 0;
  if (selfAttn) {
    [qh, kh, vh] = heads(project(q, 0, 3), L, 3);
  } else {
    [qh] = heads(project(q, 0, 1), L, 1);
    const entry = cache?.get(c.owner, label);
    if (entry) {
      if (entry.kind !== 'static' || entry.source !== k0)
        throw new RangeError(`${label}: the KVCache holds this layer's keys and values of ${entry.kind === 'static' ? 'another memory tensor' : 'its self-attention'}; reset() the cache before decoding against a new memory`);
      if (entry.k.shape[0] !== B) throw new RangeError(`${label}: the KVCache holds a batch of ${entry.k.shape[0]}, this step has ${B}; reset() the cache for a new batch`);
      [kh, vh] = [entry.k, entry.v];
    } else {
      const k = toInside(k0), S0 = k.shape[1];
      [kh, vh] = kvSame ? heads(project(k, 1, 2), S0, 2) : [heads(project(k, 1, 1), S0, 1)[0], heads(project(toInside(v0), 2, 1), S0, 1)[0]];
      if (cache) cache.set(c.owner, { kind: 'static', k: kh, v: vh, source: k0 });
    }
  }
  dropInside();
  let causal = c.causal;
  if (cache && selfAttn) {
    const entry = cache.get(c.owner, label);
    if (entry && entry.kind !== 'self') throw new RangeError(`${label}: the KVCache holds this layer's cross-attention memory, and this call is self-attention; one cache entry per layer and use`);
    if (entry && entry.k.shape[0] !== B) throw new RangeError(`${label}: the KVCache holds a batch of ${entry.k.shape[0]}, this step has ${B}; reset() the cache for a new batch`);
    past = entry ? entry.k.shape[2] : 0;
    // every layer appends once per step: after the first layer has appended, each other one holds what it held before
    const leader = cache.leader();
    if (leader && leader !== c.owner && past !== cache.length - L)
      throw new RangeError(`${label}: the KVCache holds ${past} positions of this layer and ${cache.length} of the first layer after this step of ${L}; each step must pass through every layer once (reset() to start again)`);
    if (entry) {
      const [K, V] = [cat([entry.k, kh], 2), cat([entry.v, vh], 2)];
      drop(kh, vh);
      [kh, vh] = [K, V];
    }
    cache.set(c.owner, { kind: 'self', k: kh, v: vh });
    causal = true; // generation: a step's queries see the cache and the step's positions up to their own
  }
  const S = kh.shape[2];

  // the additive mask: key padding [B, 1, 1, S], attnMask [1, 1, L, S] or [B, H, L, S], causal [1, 1, L, S]
  const parts: Tensor[] = [], made: Tensor[] = [];
  if (c.keyPaddingMask != null) {
    const m = additiveMask(label, 'keyPaddingMask', c.keyPaddingMask, [batched ? [B, S] : [S]], [batched ? '[B, S]' : '[S]'], backend);
    if (!(c.keyPaddingMask instanceof Tensor)) made.push(m);
    parts.push(m.reshape([B, 1, 1, S]));
  }
  if (c.attnMask != null) {
    const m = additiveMask(label, 'attnMask', c.attnMask, [[L, S], batched ? [B * H, L, S] : [H, L, S]], ['[L, S]', batched ? '[B·H, L, S]' : '[H, L, S]'], backend);
    if (!(c.attnMask instanceof Tensor)) made.push(m);
    parts.push(m.shape.length === 2 ? m.reshape([1, 1, L, S]) : m.reshape([B, H, L, S]));
  }
  if (causal && S > past + 1) parts.push(causalMask(backend, L, S, past).reshape([1, 1, L, S]));
  let mask: Tensor | null = parts[0] ?? null;
  for (const p of parts.slice(1)) {
    const sum = add(mask!, p);
    if (mask !== parts[0]) made.push(mask!);
    mask = sum;
  }
  if (parts.length > 1) made.push(mask!);

  const qs = mul(qh, 1 / Math.sqrt(D));
  const kt = transpose(kh, -2, -1);
  const raw = matmul(qs, kt);
  drop(qh, qs, kt);
  const scores = mask ? add(raw, mask) : raw;
  if (mask) drop(raw, ...made);
  const probs = softmax(scores, -1);
  drop(scores);
  const attn = c.dropout > 0 && c.training ? dropoutOp(probs, c.dropout, true) : probs;
  const o = matmul(attn, vh);
  if (!cache) drop(kh, vh);
  const ctx = permute(o, [0, 2, 1, 3]).reshape([B, L, E]);
  drop(o);
  const y = linear(ctx, w.outW, w.outB);
  drop(ctx);
  let weights: Tensor | null = null;
  if (c.needWeights) {
    weights = c.averageAttnWeights ? mean(attn, 1) : attn;
    if (!batched) weights = weights.reshape(weights.shape.slice(1));
  }
  if (weights?.viewBase !== attn.viewBase) drop(attn);
  if (attn !== probs) drop(probs);
  return [back(y), weights];
}
