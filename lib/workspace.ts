// Output buffers of layers and losses. Outside the training loop every forward and backward returns fresh
// tensors (a caller may keep them, as in PyTorch). While `fit`, `evaluate` or `predict` drive a model,
// nothing outside keeps its intermediate outputs, so that model's layers (and its loss) reuse one buffer per
// output and batch shape, for the few most recent shapes: the steady-state step allocates nothing. Reuse is
// switched per workspace, so another model used directly while a fit is awaiting keeps PyTorch's semantics.
import type { Backend } from './backend.js';
import { empty, keep, type Tensor } from './tensor.js';

export class Workspace {
  /**
   * Shapes cached per output, least recently used dropped first. Enough for fit's full batch, the epoch's smaller
   * last batch and those of the validation data; a server's predict calls with ever-new batch sizes would otherwise
   * keep one buffer per size for good.
   */
  static readonly shapesPerKey = 4;
  /** Per output key, its buffers by shape, least recently used first. */
  private readonly cache = new Map<string, { shape: string; t: Tensor }[]>();
  /** > 0 while a training loop drives the owner (a count, so that evaluate inside fit nests). */
  reuse = 0;

  /** A tensor of `shape` for output `key`: the cached one when reuse is on and it fits, else a new one. */
  get(key: string, backend: Backend, shape: readonly number[], dtype: 'float' | 'int32' = 'float'): Tensor {
    // Not zero-filled: a cached buffer holds the last step's values, so every layer's kernels overwrite their outputs
    // (a fresh zeroed storage per output cost a DCGAN step 40 MB of page faults and memset, a tenth of its time)
    if (this.reuse === 0) return empty(backend, shape, dtype, false);
    // Keyed by shape too, so that an epoch's smaller last batch does not evict the full-batch buffers.
    const s = shape.join('x');
    let list = this.cache.get(key);
    if (!list) this.cache.set(key, (list = []));
    for (let i = list.length - 1; i >= 0; i--) {
      const e = list[i];
      if (e.shape !== s) continue;
      list.splice(i, 1);
      if (e.t.disposed || e.t.backend !== backend) break;
      list.push(e); // now the most recently used
      return e.t;
    }
    const t = keep(empty(backend, shape, dtype)); // reused by the next steps, even if this one runs inside rg.tidy
    list.push({ shape: s, t });
    // The dropped buffer's last step is over (its queued kernels keep the storage until they have run).
    if (list.length > Workspace.shapesPerKey) list.shift()!.t.dispose();
    return t;
  }

  /** Drops every cached buffer (after a move to another backend). */
  clear(): void {
    for (const list of this.cache.values()) for (const e of list) e.t.dispose();
    this.cache.clear();
  }
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
