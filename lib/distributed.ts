// rg.distributed: collectives between processes started by an MPI launcher (`mpirun -np 4 node train.mjs`), on the
// optional MPI addon (native/mpi/, built at install where mpicxx is found). `await rg.distributed.init()` reads the
// launcher's environment; without a launcher the world is this one process, every collective is the identity, and
// no addon is needed. Collectives run on the addon's communication thread, in the order they were asked for, so the
// event loop stays free. An all-reduce of a native (cpu, cuda) tensor is queued with the kernels: the queue's thread
// hands the tensor's bytes to the communication thread after the kernels queued before, and a later command copies
// the result back, with nothing crossing through JavaScript; the other collectives (and every collective on the
// reference backend) read the tensor asynchronously, after the native queues have handed over what they hold, so that
// every rank sees the same order. Tensors are float; every collective first checks that all ranks passed the same
// shape, so a mismatch is an error on every rank, naming the shapes, rather than a hang or silently mixed data.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { loadedBackends, type Backend, type QueuedCollective } from './backend.js';
import { packageRoot } from './backends/cpu.js';
import { permutation as seededPermutation } from './data/split.js';
import { checkNumber, checkOptions, describe, RetrogradError } from './errors.js';
import { watchGradWrites } from './nn/grad-writes.js';
import { Module, type Parameter } from './nn/module.js';
import { fromHost, Tensor } from './tensor.js';

interface MpiAddon {
  init(): Promise<{ rank: number; size: number; threadLevel: number }>;
  barrier(): Promise<void>;
  allReduce(values: Float32Array, mean: boolean): Promise<Float32Array>;
  broadcast(values: Float32Array, root: number): Promise<Float32Array>;
  allGather<T extends Float32Array | Int32Array>(values: T): Promise<T>;
  /** The table through which the compute addons queue collectives (native/core/collectives.h). */
  collectives(): unknown;
}

/** A launcher's world as its environment variables describe it. */
export interface LauncherWorld {
  /** This process's rank. */
  rank: number;
  /** The number of processes. */
  size: number;
  /** Which launcher's variables said so ('Open MPI', 'PMI (MPICH, Slurm)'). */
  launcher: string;
}

/** This process's place in the world, once joined. */
export interface DistributedWorld {
  /** This process's rank, 0 … worldSize − 1. */
  rank: number;
  /** The number of processes. */
  worldSize: number;
}

/** How this process was launched: the world's size and this rank, from the launcher's variables. */
export function launcherWorld(env: NodeJS.ProcessEnv = process.env): LauncherWorld | undefined {
  const pairs: [string, string, string][] = [
    ['Open MPI', 'OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE'],
    ['PMI (MPICH, Slurm)', 'PMI_RANK', 'PMI_SIZE'],
  ];
  for (const [launcher, r, s] of pairs) {
    if (env[s] !== undefined) return { rank: Number(env[r] ?? 0), size: Number(env[s]), launcher };
  }
  return undefined;
}

let addon: MpiAddon | undefined;
let world: { rank: number; size: number } | undefined;
/** The MPI addon's collectives table, once joined to a world of several. */
let table: unknown;

function loadAddon(): MpiAddon {
  const file = join(packageRoot, 'build-mpi', 'Release', 'retrograd_mpi.node');
  if (!existsSync(file)) {
    const reasonFile = join(packageRoot, 'build-mpi', 'not-built.txt');
    const why = existsSync(reasonFile) ? readFileSync(reasonFile, 'utf8').trim() : 'it was not built at install';
    throw new RetrogradError(`distributed.init: launched by MPI, but the MPI addon is missing (${why}); install Open MPI's headers (apt-get install libopenmpi-dev) and run npm rebuild retrograd`, 'NATIVE_LOAD_FAILED');
  }
  try {
    return createRequire(import.meta.url)(file) as MpiAddon;
  } catch (e) {
    throw new RetrogradError(`distributed.init: the MPI addon ${file} does not load: ${e instanceof Error ? e.message.split('\n')[0] : e}`, 'NATIVE_LOAD_FAILED');
  }
}

/** Joins the world the launcher started (or a world of one without a launcher); resolves to this rank and the size. */
async function init(): Promise<DistributedWorld> {
  if (!world) {
    const launched = launcherWorld();
    if (!launched || launched.size <= 1) world = { rank: 0, size: 1 };
    else {
      // one GPU per rank: the local rank's, unless the launcher or the user chose (before the cuda backend starts)
      const local = process.env.OMPI_COMM_WORLD_LOCAL_RANK, localSize = Number(process.env.OMPI_COMM_WORLD_LOCAL_SIZE ?? 1);
      if (local !== undefined && localSize > 1 && process.env.CUDA_VISIBLE_DEVICES === undefined && !loadedBackends().some((b) => b.name === 'cuda'))
        process.env.CUDA_VISIBLE_DEVICES = local;
      addon = loadAddon();
      const w = await addon.init();
      table = addon.collectives();
      world = { rank: w.rank, size: w.size };
    }
  }
  return { rank: world.rank, worldSize: world.size };
}

function joined(where: string): { rank: number; size: number } {
  if (!world) throw new RetrogradError(`distributed.${where}: call await rg.distributed.init() first`, 'INVALID_ARGUMENT');
  return world;
}

function floatTensor(where: string, t: unknown): Tensor {
  if (!(t instanceof Tensor)) throw new TypeError(`distributed.${where}: expected a Tensor, got ${describe(t)}`);
  if (t.dtype === 'int32') throw new TypeError(`distributed.${where}: tensors must be float, got an int32 tensor [${t.shape.join(', ')}]`);
  return t;
}

/** Per backend, whether its collectives go through the device's own communicator (NCCL on cuda), once decided. */
const onDevice = new Map<Backend, Promise<boolean>>();
const decided = new Map<Backend, boolean>();

/**
 * Whether `b`'s collectives go through its device communicator: NCCL on the cuda backend, set up on first use. Every
 * rank tries to load NCCL; their verdicts and rank 0's communicator id travel over MPI (an allGather), so that the
 * ranks agree; where any rank cannot, all of them use MPI through host memory, with one warning saying why.
 */
function deviceCollectives(b: Backend): Promise<boolean> {
  const known = onDevice.get(b);
  if (known) return known;
  const p = (async () => {
    if (b.name !== 'cuda' || !b.deviceCollectivesId || !b.deviceCollectivesInit) return false;
    let id: Uint8Array = new Uint8Array(128), why = '';
    try {
      id = b.deviceCollectivesId();
    } catch (e) {
      why = e instanceof Error ? e.message : String(e);
    }
    const mine = new Int32Array(33);
    mine[0] = why ? 0 : 1;
    mine.set(new Int32Array(Uint8Array.from(id).buffer), 1); // (a copy: 4-byte aligned)
    const all = await afterQueued(() => addon!.allGather(mine));
    const failed = Array.from({ length: world!.size }, (_, r) => r).filter((r) => all[r * 33] !== 1);
    if (failed.length) {
      if (world!.rank === Math.min(...failed))
        process.emitWarning(`rg.distributed: NCCL is unavailable on rank ${failed.join(', ')} (${why}); collectives on cuda tensors go through MPI and host memory`, { code: 'RETROGRAD_NCCL' });
      return false;
    }
    const root = new Uint8Array(all.buffer, all.byteOffset + 4, 128).slice();
    b.deviceCollectivesInit(root, world!.rank, world!.size);
    await b.syncAsync(); // every rank has joined (or the failure is reported here)
    return true;
  })().then(
    (v) => (decided.set(b, v), v),
    (e) => {
      decided.set(b, false);
      throw e;
    },
  );
  onDevice.set(b, p);
  return p;
}

/** Where an all-reduce on `b` goes: its device communicator once set up, else the MPI addon's table. */
function target(b: Backend): unknown {
  return decided.get(b) ? 'device' : table;
}

/**
 * Runs a collective handed over from JavaScript once the native queues have handed over theirs: MPI matches
 * collectives by their order, which must be the order they were asked for on every rank. A native queue's own failure
 * that the wait comes across is reported after the collective, which every rank has then issued.
 */
async function afterQueued<T>(collective: () => Promise<T>): Promise<T> {
  const settled = await Promise.allSettled(loadedBackends().filter((b) => b.allReduce).map((b) => b.syncAsync()));
  const result = await collective();
  const failed = settled.find((x): x is PromiseRejectedResult => x.status === 'rejected');
  if (failed) throw failed.reason;
  return result;
}

/** Every rank's shape, gathered; an error on every rank when they differ. */
async function sameShape(where: string, t: Tensor): Promise<void> {
  const w = world!;
  if (w.size === 1) return;
  const MAX = 8;
  const header = new Int32Array(MAX + 1).fill(-1);
  header[0] = t.shape.length;
  t.shape.slice(0, MAX).forEach((d, i) => { header[i + 1] = d; });
  if (t.shape.length > MAX) header[MAX] = t.size; // deeper shapes compare by rank and element count
  const all = await addon!.allGather(header);
  const shapes = Array.from({ length: w.size }, (_, r) => all.subarray(r * (MAX + 1), (r + 1) * (MAX + 1)));
  const differs = shapes.some((s) => s.some((v, i) => v !== shapes[0][i]));
  if (differs) {
    const show = (s: Int32Array) => `[${Array.from(s.subarray(1, 1 + Math.min(s[0], MAX))).join(', ')}]`;
    throw new RetrogradError(`distributed.${where}: the ranks passed tensors of different shapes: ${shapes.map((s, r) => `rank ${r} ${show(s)}`).join(', ')}`, 'INVALID_ARGUMENT');
  }
}

/** Sums (or averages, 'mean') `tensor` elementwise over every rank, in place; resolves to the tensor. */
async function allReduce(tensor: Tensor, op: 'sum' | 'mean' = 'sum'): Promise<Tensor> {
  const w = joined('allReduce');
  const t = floatTensor('allReduce', tensor);
  if (op !== 'sum' && op !== 'mean') throw new RangeError(`distributed.allReduce: op must be 'sum' or 'mean', got ${describe(op)}`);
  if (w.size === 1) return t;
  const b = t.backend;
  if (b.allReduce) {
    // (the first collective on cuda sets up NCCL; after that, and on the cpu, it is queued before this returns)
    if (b.name === 'cuda' && !decided.has(b)) await deviceCollectives(b);
    if (decided.get(b)) {
      // NCCL checks nothing: the shapes are compared over MPI first, in queue order
      const check = b.allReduce(table, [], false, t.shape);
      check.wait();
      b.allReduce('device', [t.buf], op === 'mean', t.shape, check).wait();
    } else b.allReduce(table, [t.buf], op === 'mean', t.shape).wait();
    t.bumpVersion();
    await b.syncAsync(); // settles once the result is in the tensor (or with the collective's error)
    return t;
  }
  return afterQueued(async () => {
    await sameShape('allReduce', t);
    t.assign(await addon!.allReduce(await t.data('float32'), op === 'mean'));
    return t;
  });
}

/** Copies `root`'s `tensor` into every rank's `tensor`, in place; resolves to the tensor. */
async function broadcast(tensor: Tensor, root = 0): Promise<Tensor> {
  const w = joined('broadcast');
  const t = floatTensor('broadcast', tensor);
  if (!Number.isSafeInteger(root) || root < 0 || root >= w.size) throw new RangeError(`distributed.broadcast: root must be a rank in 0…${w.size - 1}, got ${describe(root)}`);
  if (w.size === 1) return t;
  if (t.backend.broadcast) {
    t.backend.broadcast(table, [t.buf], root, t.shape).wait();
    t.bumpVersion();
    await t.backend.syncAsync(); // settles once root's values are in the tensor (or with the collective's error)
    return t;
  }
  return afterQueued(async () => {
    await sameShape('broadcast', t);
    t.assign(await addon!.broadcast(await t.data('float32'), root));
    return t;
  });
}

/** Every rank's `tensor`, stacked along a new first dimension in rank order: [worldSize, …shape]. */
async function allGather(tensor: Tensor): Promise<Tensor> {
  const w = joined('allGather');
  const t = floatTensor('allGather', tensor);
  if (w.size === 1) return fromHost(t.backend, Float32Array.from(await t.data('float32')), [1, ...t.shape]);
  return afterQueued(async () => {
    await sameShape('allGather', t);
    const all = await addon!.allGather(await t.data('float32'));
    return fromHost(t.backend, all, [w.size, ...t.shape]);
  });
}

/** Waits until every rank has reached it. */
async function barrier(): Promise<void> {
  const w = joined('barrier');
  if (w.size > 1) await afterQueued(() => addon!.barrier());
}

/** Data-parallel training across processes: see the file's header. */
export const distributed = {
  /** Joins the world the launcher started (a world of one without a launcher); resolves to this rank and the size. */
  init,
  /** How this process was launched, read from `env` (default process.env): undefined without a launcher. */
  launcherWorld,
  /** Sums (op 'sum', the default) or averages ('mean') a float tensor elementwise over every rank, in place. */
  allReduce,
  /** Copies rank `root`'s tensor (default 0) into every rank's tensor of the same shape, in place. */
  broadcast,
  /** Every rank's tensor stacked along a new first dimension, in rank order: [worldSize, …shape]. */
  allGather,
  /** Resolves once every rank has reached it. */
  barrier,
  /** This process's rank (0 … worldSize − 1); 0 before init. */
  get rank(): number {
    return world?.rank ?? 0;
  },
  /** The number of processes; 1 before init. */
  get worldSize(): number {
    return world?.size ?? 1;
  },
  /** Whether init has run. */
  get initialized(): boolean {
    return world !== undefined;
  },
};

/** Options of {@link DistributedDataParallel}. */
export interface DistributedDataParallelOptions {
  /** Gradients are averaged in buckets of about this many megabytes, one collective each (default 25, PyTorch's; the
   * first bucket, the backward's first gradients, holds at most 1 MB, as PyTorch's does). */
  bucketMB?: number;
  /** Start each bucket's average as soon as the backward has written it (default true), rather than all of them in
   * syncGradients. Overlap hides communication behind the backward where spare cores can poll MPI; with as many
   * busy ranks as cores, the polling takes time from the kernels instead (see README's measurements). */
  overlap?: boolean;
  /** Each forward through the DDP in training mode first copies rank 0's float buffers (BatchNorm's running
   * statistics) to every rank, as PyTorch's broadcast_buffers (default true): the ranks' models stay alike, for
   * evaluation and checkpoints. */
  broadcastBuffers?: boolean;
}

/** What {@link DistributedDataParallel.syncGradients} has measured so far. */
export interface DistributedDataParallelStats {
  /** Synchronisations (steps) so far. */
  syncs: number;
  /** Bucket collectives so far. */
  buckets: number;
  /** Of those, the ones started while the backward was still running (overlapped with it). */
  overlapped: number;
  /** Milliseconds from each bucket's collective being handed to the communication thread to its result, summed (of
   * the collectives that have finished). */
  communicationMs: number;
  /** Milliseconds that the steps waited for communication once their backward was done, summed: the communication
   * that overlap did not hide. On native backends, the time the command queue waited for the results. */
  exposedMs: number;
}

/** One bucket's average, started: finish() queues (native) or applies (reference) the copy back into the gradients. */
interface Started {
  finish(): Promise<void> | void;
  /** The queued collective (native backends), for its times. */
  queued?: QueuedCollective;
}

/** One backward's progress towards its buckets' collectives. */
interface Round {
  /** Writes into each parameter's gradient so far. */
  counts: Map<Parameter, number>;
  /** Per bucket: its parameters still short of their expected writes. */
  waiting: number[];
  /** The buckets started, in bucket order. */
  started: Started[];
  /** Settles once the last started bucket's collective has been handed to the communication thread (reference). */
  handedOver: Promise<unknown>;
  /** A parameter written again after its bucket had been read. */
  overrun?: Parameter;
}

/**
 * Data-parallel training across the ranks of `rg.distributed`, PyTorch's DistributedDataParallel for a hand-written
 * loop: every rank builds the same model, `await ddp.broadcastParameters()` gives them rank 0's weights, each step
 * runs `ddp.forward(x)`, the loss's `backward()`, then `await ddp.syncGradients()`, which leaves every gradient
 * averaged over the ranks, before `optimizer.step()`. With each rank on a disjoint shard of a batch of B rows (B/N
 * each), the step equals one process's step on the whole batch.
 *
 * The gradients are averaged in buckets of `bucketMB` (last parameters first, as the backward produces them), one
 * collective each. A step that goes through `ddp.forward` starts each bucket's collective as soon as the backward has
 * queued the last write into its gradients, so communication overlaps the rest of the backward. Which writes to wait
 * for is learnt from the first step (every bucket then waits for syncGradients): each later step must write each
 * gradient as often (the same graph; several backwards before one sync count together), and a parameter written again
 * after its bucket was read is an error. Modify gradients (clipping, penalties) only after syncGradients. A step that
 * calls the module's forward directly has nothing started early: all buckets are reduced in syncGradients.
 *
 * On the native backends the buckets are queued with the kernels (see rg.distributed): syncGradients queues the copy
 * of the averages back into the gradients and returns without waiting for them, so the optimizer's kernels queue
 * behind it and JavaScript goes on to the next step; a failed collective fails the queue, and the next read reports
 * it. In a world of one, nothing is exchanged.
 */
export class DistributedDataParallel {
  /** The buckets of parameters, each averaged by one collective. */
  readonly buckets: Parameter[][];
  /** Whether each forward copies rank 0's float buffers to every rank (see the options). */
  readonly broadcastBuffers: boolean;
  /** Whether buckets start during the backward (see the options). */
  readonly overlap: boolean;
  private readonly counted = { syncs: 0, buckets: 0, overlapped: 0, communicationMs: 0, exposedMs: 0 };
  /** Native collectives whose times are not yet counted. */
  private timing: QueuedCollective[] = [];
  private readonly bucketOf = new Map<Parameter, number>();
  /** Writes into each gradient per step, as counted in the first step that went through forward. */
  private expected?: Map<Parameter, number>;
  private round?: Round;
  private unwatch?: () => void;

  /** Groups the module's trainable parameters into buckets; no collective runs until broadcastParameters/syncGradients. */
  constructor(
    /** The model, the same on every rank. */
    readonly module: Module,
    options: DistributedDataParallelOptions = {},
  ) {
    if (!(module instanceof Module)) throw new TypeError(`DistributedDataParallel: expected a Module, got ${describe(module)}`);
    checkOptions('DistributedDataParallel', options, ['bucketMB', 'broadcastBuffers', 'overlap']);
    if (options.overlap !== undefined && typeof options.overlap !== 'boolean')
      throw new TypeError(`DistributedDataParallel: overlap must be a boolean, got ${describe(options.overlap)}`);
    this.overlap = options.overlap ?? true;
    if (options.broadcastBuffers !== undefined && typeof options.broadcastBuffers !== 'boolean')
      throw new TypeError(`DistributedDataParallel: broadcastBuffers must be a boolean, got ${describe(options.broadcastBuffers)}`);
    this.broadcastBuffers = options.broadcastBuffers ?? true;
    const bucketMB = checkNumber('DistributedDataParallel', 'bucketMB', options.bucketMB ?? 25, { min: 0, minExclusive: true });
    // (the first bucket holds at most 1 MB, as PyTorch's: the backward's first gradients go out early)
    const limit = () => (this.buckets.length === 0 ? Math.min(bucketMB, 1) : bucketMB) * 2 ** 20;
    this.buckets = [];
    let bucket: Parameter[] = [], bytes = 0;
    for (const p of [...new Set(module.parameters())].reverse()) {
      if (!p.requiresGrad) continue;
      if (bucket.length && bytes + 4 * p.value.size > limit()) {
        this.buckets.push(bucket);
        bucket = [];
        bytes = 0;
      }
      bucket.push(p);
      bytes += 4 * p.value.size;
    }
    if (bucket.length) this.buckets.push(bucket);
    this.buckets.forEach((b, i) => b.forEach((p) => this.bucketOf.set(p, i)));
  }

  /** Running figures of the synchronisations (see the interface); native collectives count once they have finished. */
  get stats(): DistributedDataParallelStats {
    this.foldTimes();
    return { ...this.counted };
  }

  /** Counts the times of the native collectives that have finished (the rest wait for a later call). */
  private foldTimes(): void {
    this.timing = this.timing.filter((q) => {
      const t = q.times();
      if (t) {
        this.counted.communicationMs += t.communicationMs;
        this.counted.exposedMs += t.waitedMs;
      }
      return !t;
    });
  }

  /** The module's forward; the backward that follows starts the buckets' collectives as their gradients are ready. */
  forward(...args: unknown[]): Tensor {
    if (distributed.worldSize > 1) {
      // (in training mode only: an evaluation through the DDP on some ranks must not add a collective to theirs)
      if (this.broadcastBuffers && this.module.training) this.copyBuffers();
      // a step that started buckets and never reached syncGradients (it threw): its collectives are finished (every
      // rank issued them) and its bookkeeping dropped, so that this step starts clean
      if (this.round && this.round.started.length > 0) this.abandonRound();
      if (!this.round && this.overlap) this.beginRound(true);
    }
    return (this.module.forward as (...a: unknown[]) => Tensor)(...args);
  }

  /** Drops the round in progress, finishing the collectives it started (their results are overwritten by the next
   * backward's writes, or ignored). */
  private abandonRound(): void {
    for (const s of this.endRound()!.started) void Promise.resolve(s.finish()).catch(() => undefined);
  }

  /** Stops following gradient writes; returns the round that was in progress, if any. */
  private endRound(): Round | undefined {
    const r = this.round;
    this.round = undefined;
    this.unwatch?.();
    this.unwatch = undefined;
    return r;
  }

  /** Rank 0's float buffers into every rank's, queued before the forward's kernels (native backends; the reference
   * backend's buffers are copied by broadcastParameters only). */
  private copyBuffers(): void {
    const buffers = this.module.namedBuffers().map(([, t]) => t).filter((t) => t.dtype !== 'int32');
    const backend = buffers[0]?.backend;
    if (!backend?.broadcast) return;
    backend.broadcast(table, buffers.map((t) => t.buf), 0, [buffers.reduce((n, t) => n + t.size, 0)]).wait();
    for (const t of buffers) t.bumpVersion();
  }

  /** Copies rank `root`'s parameters and float buffers (BatchNorm's running statistics) to every rank. */
  async broadcastParameters(root = 0): Promise<void> {
    joined('broadcastParameters');
    for (const t of Object.values(this.module.stateDict())) if (t.dtype !== 'int32') await broadcast(t, root);
  }

  /**
   * Averages every trainable parameter's gradient over the ranks, in place (a gradient nothing wrote since zeroGrad
   * counts as zeros): finishes the buckets started during the backward and reduces the others. Every rank must call
   * it at the same point of its loop. On native backends it resolves once the copies back are queued (see above).
   */
  async syncGradients(): Promise<void> {
    const w = joined('syncGradients');
    if (w.size === 1) return;
    const called = performance.now();
    const r = this.endRound() ?? this.beginRound(false);
    const overlapped = r.started.length;
    const backend = this.buckets[0]?.[0].value.backend;
    // (decided once, on cuda; buckets start early only after the first sync)
    if (backend?.name === 'cuda' && !decided.has(backend)) await deviceCollectives(backend);
    const reference = backend !== undefined && !backend.allReduce;
    // (reference: the backward's kernels are done when this resolves, as it is queued before the remaining reads)
    const computed = reference ? backend.syncAsync().then(() => performance.now()) : undefined;
    this.startReady(r, true);
    await Promise.all(r.started.map((s) => s.finish()));
    this.foldTimes(); // (the steps before this one's: the list stays as short as the steps in flight)
    for (const s of r.started) if (s.queued) this.timing.push(s.queued);
    if (computed) this.counted.exposedMs += performance.now() - Math.max(called, await computed);
    const c = this.counted;
    c.syncs++;
    c.buckets += this.buckets.length;
    c.overlapped += overlapped;
    if (r.overrun) {
      const name = this.module.namedParameters().find(([, p]) => p === r.overrun)?.[0] ?? '?';
      throw new RetrogradError(
        `DistributedDataParallel: the gradient of '${name}' was written ${r.counts.get(r.overrun)} times in this step, ${this.expected!.get(r.overrun)} in the first, after its bucket had been read; every step must build the same graph (or call the module's forward, not ddp.forward, for a step that differs)`,
        'INVALID_ARGUMENT',
      );
    }
    this.expected ??= r.counts;
  }

  /** A step's bookkeeping; `watch`: its gradient writes are followed (forward), else every bucket starts at sync. */
  private beginRound(watch: boolean): Round {
    // a bucket waits for each of its parameters to reach its expected writes; one holding a parameter whose writes the
    // first step did not see (unused then, or written by a hand-written backward that gives no notice) waits for
    // syncGradients: it must not be read before it is written
    const expected = this.expected;
    const waiting = this.buckets.map((b) => (expected && b.every((p) => (expected.get(p) ?? 0) > 0) ? b.length : Infinity));
    const r: Round = { counts: new Map(), waiting, started: [], handedOver: Promise.resolve() };
    if (watch) {
      this.unwatch?.();
      this.unwatch = watchGradWrites((p) => this.written(r, p));
      this.round = r;
    }
    return r;
  }

  private written(r: Round, p: Parameter): void {
    const b = this.bucketOf.get(p);
    if (b === undefined) return;
    const n = (r.counts.get(p) ?? 0) + 1;
    r.counts.set(p, n);
    if (!this.expected) return; // the first step: counting only
    const want = this.expected.get(p) ?? 0;
    if (n === want && --r.waiting[b] === 0) this.startReady(r, false);
    else if (n > want && b < r.started.length) r.overrun ??= p;
  }

  /** Starts, in bucket order (MPI matches collectives by order, the same on every rank), the buckets whose gradients
   * are complete (`all`: every one left, from syncGradients). */
  private startReady(r: Round, all: boolean): void {
    while (r.started.length < this.buckets.length && (all || r.waiting[r.started.length] === 0))
      r.started.push(this.start(r, this.buckets[r.started.length]));
  }

  /** One bucket's average, started: queued with the kernels on native backends; on the reference backend its
   * gradients are read in queue order and handed to the communication thread once the previous bucket's have been. */
  private start(r: Round, bucket: Parameter[]): Started {
    const backend = bucket[0].value.backend;
    const size = bucket.reduce((n, p) => n + p.value.size, 0);
    if (backend.allReduce) {
      const queued = backend.allReduce(target(backend), bucket.map((p) => p.grad.buf), true, [size]);
      return { finish: () => queued.wait(), queued };
    }
    const read = Promise.all(bucket.map((p) => p.grad.data('float32')));
    const handed = Promise.all([read, r.handedOver]).then(([parts]) => {
      const flat = new Float32Array(size);
      let at = 0;
      for (const a of parts) {
        flat.set(a, at);
        at += a.length;
      }
      const t0 = performance.now();
      // (an array, so that the promise is not flattened: handing over must not wait for the result)
      return [addon!.allReduce(flat, true).then((mean) => ((this.counted.communicationMs += performance.now() - t0), mean))] as const;
    });
    r.handedOver = handed.catch(() => undefined);
    const result = handed.then(([mean]) => mean);
    result.catch(() => undefined); // awaited in syncGradients; a step abandoned before it must not leave it unhandled
    return {
      finish: async () => {
        const mean = await result;
        let at = 0;
        for (const p of bucket) {
          p.grad.assign(mean.subarray(at, at + p.value.size));
          at += p.value.size;
        }
      },
    };
  }
}

/**
 * Each rank's share of a data set of `n` samples, PyTorch's DistributedSampler: every epoch a permutation seeded by
 * `seed + epoch` (the same on every rank), dealt out rank by rank (sample i goes to rank i mod worldSize), so the
 * shards are disjoint and together cover the data; padded by wrapping around so that every rank has the same count
 * (the ranks step in lockstep). `shuffle: false` deals out 0 … n − 1 in order.
 */
export class DistributedSampler {
  /** Samples per rank per epoch. */
  readonly perRank: number;
  /** The rank whose shard this is (default: rg.distributed.rank). */
  readonly rank: number;
  /** The number of shards (default: rg.distributed.worldSize). */
  readonly worldSize: number;
  /** The permutations' base seed (epoch e uses seed + e). */
  readonly seed: number;
  /** Whether each epoch is permuted (else 0 … n − 1 in order). */
  readonly shuffle: boolean;

  /** A sampler of `n` samples for this rank (or the rank and world size given). */
  constructor(
    /** The data set's size. */
    readonly n: number,
    options: { seed?: number; shuffle?: boolean; rank?: number; worldSize?: number } = {},
  ) {
    checkOptions('DistributedSampler', options, ['seed', 'shuffle', 'rank', 'worldSize']);
    this.n = checkNumber('DistributedSampler', 'n', n, { min: 1, integer: true });
    this.worldSize = checkNumber('DistributedSampler', 'worldSize', options.worldSize ?? distributed.worldSize, { min: 1, integer: true });
    this.rank = checkNumber('DistributedSampler', 'rank', options.rank ?? distributed.rank, { min: 0, max: this.worldSize - 1, integer: true });
    this.seed = checkNumber('DistributedSampler', 'seed', options.seed ?? 0, { integer: true });
    this.shuffle = options.shuffle ?? true;
    this.perRank = Math.ceil(this.n / this.worldSize);
  }

  /** This rank's sample indices for `epoch`. */
  indices(epoch = 0): Int32Array {
    const order = this.shuffle ? seededPermutation(this.n, this.seed + epoch) : Int32Array.from({ length: this.n }, (_, i) => i);
    const out = new Int32Array(this.perRank);
    for (let k = 0; k < this.perRank; k++) out[k] = order[(this.rank + k * this.worldSize) % this.n];
    return out;
  }
}
