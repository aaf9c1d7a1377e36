// Output buffers of layers and losses. Outside the training loop every forward and backward returns fresh
// tensors (a caller may keep them, as in PyTorch). While `fit`, `evaluate` or `predict` drive a model,
// nothing outside keeps its intermediate outputs, so that model's layers (and its loss) reuse one buffer per
// output and batch shape: the steady-state step allocates nothing. Reuse is switched per workspace, so
// another model used directly while a fit is awaiting keeps PyTorch's semantics.
import type { Backend } from './backend.js';
import { empty, type Tensor } from './tensor.js';

export class Workspace {
  private readonly cache = new Map<string, Tensor>();
  /** > 0 while a training loop drives the owner (a count, so that evaluate inside fit nests). */
  reuse = 0;

  /** A tensor of `shape` for output `key`: the cached one when reuse is on and it fits, else a new one. */
  get(key: string, backend: Backend, shape: readonly number[], dtype: 'float' | 'int32' = 'float'): Tensor {
    if (this.reuse === 0) return empty(backend, shape, dtype);
    // Keyed by shape too, so that an epoch's smaller last batch does not evict the full-batch buffers.
    const k = `${key}:${shape.join('x')}`;
    const have = this.cache.get(k);
    if (have && !have.disposed && have.backend === backend) return have;
    const t = empty(backend, shape, dtype);
    this.cache.set(k, t);
    return t;
  }

  /** Drops every cached buffer (after a move to another backend). */
  clear(): void {
    for (const t of this.cache.values()) t.dispose();
    this.cache.clear();
  }
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
