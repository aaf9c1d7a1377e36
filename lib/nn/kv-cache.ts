// KVCache: the keys and values of past positions, kept between the steps of incremental decoding (generation), so that
// each new token costs one pass over the cached positions instead of re-running the whole prefix.
//
// One cache serves a whole model: each MultiheadAttention that is handed the cache keeps its own entry, keyed by the
// module. Two kinds of entry, chosen by what the attention is given (PyTorch's own test for the in-projection: `query
// is key`, `key is value`):
//   self    query, key and value the same tensor (a decoder's or a GPT block's self-attention): each step's projected
//           keys and values are appended; the step's queries see every cached position and, within the step, the
//           positions up to their own (causal, as generation needs).
//   static  key and value the same tensor but not the query (a decoder's cross-attention over the encoder's memory):
//           the memory's keys and values are projected at the first step and reused; the memory must stay the same
//           tensor until reset().
// Entries hold keys and values as [B, H, S, D] (batch, head, position, head width), made by the step that appended
// them (a view's storage included); the cache disposes them on reset(). Incremental decoding runs under rg.noGrad: the cache keeps no graph.
import { RetrogradError } from '../errors.js';
import type { Tensor } from '../tensor.js';
import type { Module } from './module.js';

/** @internal What one attention module keeps. */
export interface CacheEntry {
  kind: 'self' | 'static';
  /** keys and values [B, H, S, D] */
  k: Tensor;
  v: Tensor;
  /** static: the memory tensor the keys and values were projected from. */
  source?: Tensor;
}

/**
 * The keys and values of past positions, kept between the steps of incremental decoding (generation) so that each
 * new token costs one pass over the cached positions. One cache serves a whole model: each MultiheadAttention that
 * is handed it keeps its own entry (self-attention appends each step's keys and values; cross-attention projects the
 * memory once). Steps run under rg.noGrad; reset() starts a new sequence.
 */
export class KVCache {
  private readonly entries = new Map<Module, CacheEntry>();
  /** Inside atomic(): the tensors that entries replaced, freed when the step succeeds. */
  private replaced: Tensor[] | null = null;

  /**
   * Positions held by the self-attention entries: the position of the next token (0 for an empty cache). Read it
   * before a step, e.g. as PositionalEmbedding's offset. (The count of the first module that appended: within a step
   * the layers after it have not appended yet.)
   */
  get length(): number {
    for (const e of this.entries.values()) if (e.kind === 'self') return e.k.shape[2];
    return 0;
  }

  /** The batch size of the cached entries (undefined while empty). */
  get batchSize(): number | undefined {
    for (const e of this.entries.values()) return e.k.shape[0];
    return undefined;
  }

  /** The number of attention modules holding an entry. */
  get size(): number {
    return this.entries.size;
  }

  /** Empties the cache (its tensors are disposed): the next step starts a new sequence. */
  reset(): void {
    for (const e of this.entries.values()) {
      e.k.viewBase.dispose();
      e.v.viewBase.dispose();
    }
    this.entries.clear();
  }

  /** The same as reset(). */
  dispose(): void {
    this.reset();
  }

  /** @internal The entry of `owner` (checked to be alive), or undefined. */
  get(owner: Module, label: string): CacheEntry | undefined {
    const e = this.entries.get(owner);
    if (e && (e.k.disposed || e.v.disposed))
      throw new RetrogradError(
        `KVCache: the cached keys and values of ${label} have been disposed (by dispose() or rg.tidy); run incremental steps outside rg.tidy, or reset() the cache`,
        'DISPOSED',
      );
    return e;
  }

  /** @internal The first module whose self-attention appended (the one `length` reads), or undefined. */
  leader(): Module | undefined {
    for (const [m, e] of this.entries) if (e.kind === 'self') return m;
    return undefined;
  }

  /** @internal Stores `owner`'s entry, disposing the tensors it replaces (at the end of the step inside atomic()). */
  set(owner: Module, entry: CacheEntry): void {
    const old = this.entries.get(owner);
    this.entries.set(owner, entry);
    if (!old) return;
    for (const t of [old.k, old.v]) {
      if (t === entry.k || t === entry.v) continue;
      if (this.replaced) this.replaced.push(t);
      else t.viewBase.dispose();
    }
  }

  /**
   * @internal Runs one step (fn) all or nothing: when it throws, the cache is put back as it was before (the entries
   * it made or replaced are dropped and their tensors freed), so that a failed call changes nothing. Nested steps (a
   * decoder's layers) belong to the outermost one.
   */
  atomic<T>(fn: () => T): T {
    if (this.replaced) return fn();
    const before = new Map(this.entries);
    this.replaced = [];
    try {
      const r = fn();
      for (const t of this.replaced) t.viewBase.dispose();
      return r;
    } catch (e) {
      for (const [m, entry] of this.entries) {
        const was = before.get(m);
        for (const t of [entry.k, entry.v]) if (t !== was?.k && t !== was?.v) t.viewBase.dispose();
      }
      this.entries.clear();
      for (const [m, entry] of before) this.entries.set(m, entry);
      throw e;
    } finally {
      this.replaced = null;
    }
  }
}
