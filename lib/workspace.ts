// Output buffers of layers and losses. Outside the training loop every forward and backward returns fresh
// tensors (a caller may keep them, as in PyTorch). While `fit`, `evaluate` or `predict` drive a model,
// nothing outside keeps its intermediate outputs, so that model's layers (and its loss) reuse one buffer per
// output and batch shape, for the few most recent shapes: the steady-state step allocates nothing. Reuse is
// switched per workspace, so another model used directly while a fit is awaiting keeps PyTorch's semantics.
//
// A hand-written training loop gets the same reuse for what never leaves a model: lib/nn/graph.ts lends a built-in
// module's workspace to one forward and its backward at a time (a lease), and while such a call runs `leaseMode` says
// which buffers come from the workspace (see there).
import type { Backend } from './backend.js';
import { empty, keep, shapeSize, type Tensor } from './tensor.js';

/** Which buffers the call running now takes from its modules' workspaces outside a training loop: 'scratch' a layer's
 * own scratch buffers only (its output and input gradient stay fresh), 'all' every buffer (a Sequential's layers'
 * outputs and gradients too; the caller copies whatever of them would leave). */
export type LeaseMode = 'none' | 'scratch' | 'all';
let leaseMode: LeaseMode = 'none';
/** The most elements a lent buffer may have (Infinity: any): an inference call (nothing recorded) borrows only small
 * buffers, which a batch-1 request reuses, while a large batch's activations stay fresh and go to the garbage
 * collector rather than stay with the module. */
let leaseLimit = Infinity;
/** @internal The limit for an inference call: 64 K elements (256 KB) per buffer. */
export const INFERENCE_LEASE_LIMIT = 1 << 16;
/** @internal Sets the lease mode (and the largest buffer it lends) for the call about to run; returns what was set
 * before, to be put back after it. */
export function setLeaseMode(mode: LeaseMode, limit = Infinity): [LeaseMode, number] {
  const was: [LeaseMode, number] = [leaseMode, leaseLimit];
  leaseMode = mode;
  leaseLimit = limit;
  return was;
}

/** @internal Runs fn with fresh output buffers where every buffer is lent: a Sequential runs its last layer (whose
 * output leaves it) and its first layer's backward (whose input gradient leaves it) so, instead of copying them out. */
export function freshOutputs<T>(fn: () => T): T {
  if (leaseMode !== 'all') return fn();
  leaseMode = 'scratch';
  try {
    return fn();
  } finally {
    leaseMode = 'all';
  }
}

/** The buffers a workspace has handed out for reuse (so that a caller can tell one that must not leave). */
const pooled = new WeakSet<Tensor>();
/** @internal Whether t (or the tensor it is a view of) is a workspace's reused buffer. */
export function isPooled(t: Tensor): boolean {
  return pooled.has(t.viewBase);
}

export class Workspace {
  /**
   * Shapes cached per output, least recently used dropped first. Enough for fit's full batch, the epoch's smaller
   * last batch and those of the validation data; a server's predict calls with ever-new batch sizes would otherwise
   * keep one buffer per size for good.
   */
  static readonly shapesPerKey = 4;
  /** Per output key, its buffers (each of its own shape), least recently used first: those of the training loops
   * (reuse > 0), and apart from them those lent to leased calls, which an autograd node may still hold while fit,
   * evaluate or predict run on the same module. */
  private readonly cache = new Map<string, Tensor[]>();
  private readonly lent = new Map<string, Tensor[]>();
  /** > 0 while a training loop drives the owner (a count, so that evaluate inside fit nests). */
  reuse = 0;

  /** Whether an output buffer comes from the cache now: inside a training loop, or under a lease of every buffer. */
  get reusing(): boolean {
    return this.reuse > 0 || leaseMode === 'all';
  }
  /** Whether a layer's scratch buffer (one that never leaves it) comes from the cache now. */
  get reusingScratch(): boolean {
    return this.reuse > 0 || leaseMode !== 'none';
  }

  /** A tensor of `shape` for output `key`: the cached one when reuse is on (`pool`) and it fits, else a new one. */
  get(key: string, backend: Backend, shape: readonly number[], dtype: 'float' | 'int32' = 'float', pool = this.reusing): Tensor {
    // Not zero-filled: a cached buffer holds the last step's values, so every layer's kernels overwrite their outputs
    // (a fresh zeroed storage per output cost a DCGAN step 40 MB of page faults and memset, a tenth of its time)
    if (!pool || (this.reuse === 0 && shapeSize(shape) > leaseLimit)) return empty(backend, shape, dtype, false);
    // Keyed by shape too, so that an epoch's smaller last batch does not evict the full-batch buffers.
    const cache = this.reuse > 0 ? this.cache : this.lent;
    let list = cache.get(key);
    if (!list) cache.set(key, (list = []));
    for (let i = list.length - 1; i >= 0; i--) {
      const e = list[i];
      if (!sameShape(e.shape, shape)) continue;
      list.splice(i, 1);
      if (e.disposed || e.backend !== backend) break;
      list.push(e); // now the most recently used
      return e;
    }
    const t = keep(empty(backend, shape, dtype)); // reused by the next steps, even if this one runs inside rg.tidy
    pooled.add(t);
    list.push(t);
    // The dropped buffer's last step is over (its queued kernels keep the storage until they have run).
    if (list.length > Workspace.shapesPerKey) list.shift()!.dispose();
    return t;
  }

  /** Drops every cached buffer (after a move to another backend). */
  clear(): void {
    for (const cache of [this.cache, this.lent]) {
      for (const list of cache.values()) for (const t of list) t.dispose();
      cache.clear();
    }
  }
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
