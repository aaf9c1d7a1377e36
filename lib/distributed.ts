// rg.distributed: collectives between processes started by an MPI launcher (`mpirun -np 4 node train.mjs`), on the
// optional MPI addon (native/mpi/, built at install where mpicxx is found). `await rg.distributed.init()` reads the
// launcher's environment; without a launcher the world is this one process, every collective is the identity, and
// no addon is needed. Collectives run on the addon's communication thread, in the order they were asked for, after
// the tensor's queued kernels (its data is read asynchronously): the event loop stays free. Tensors are float; every
// collective first checks that all ranks passed the same shape, so a mismatch is an error on every rank, naming the
// shapes, rather than a hang or silently mixed data.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { packageRoot } from './backends/cpu.js';
import { permutation as seededPermutation } from './data/split.js';
import { checkNumber, checkOptions, describe, RetrogradError } from './errors.js';
import { Module, type Parameter } from './nn/module.js';
import { fromHost, Tensor } from './tensor.js';

interface MpiAddon {
  init(): Promise<{ rank: number; size: number; threadLevel: number }>;
  barrier(): Promise<void>;
  allReduce(values: Float32Array, mean: boolean): Promise<Float32Array>;
  broadcast(values: Float32Array, root: number): Promise<Float32Array>;
  allGather<T extends Float32Array | Int32Array>(values: T): Promise<T>;
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
      addon = loadAddon();
      const w = await addon.init();
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
    throw new RangeError(`distributed.${where}: the ranks passed tensors of different shapes: ${shapes.map((s, r) => `rank ${r} ${show(s)}`).join(', ')}`);
  }
}

/** Sums (or averages, 'mean') `tensor` elementwise over every rank, in place; resolves to the tensor. */
async function allReduce(tensor: Tensor, op: 'sum' | 'mean' = 'sum'): Promise<Tensor> {
  const w = joined('allReduce');
  const t = floatTensor('allReduce', tensor);
  if (op !== 'sum' && op !== 'mean') throw new RangeError(`distributed.allReduce: op must be 'sum' or 'mean', got ${describe(op)}`);
  if (w.size === 1) return t;
  await sameShape('allReduce', t);
  t.assign(await addon!.allReduce(await t.data('float32'), op === 'mean'));
  return t;
}

/** Copies `root`'s `tensor` into every rank's `tensor`, in place; resolves to the tensor. */
async function broadcast(tensor: Tensor, root = 0): Promise<Tensor> {
  const w = joined('broadcast');
  const t = floatTensor('broadcast', tensor);
  if (!Number.isSafeInteger(root) || root < 0 || root >= w.size) throw new RangeError(`distributed.broadcast: root must be a rank in 0…${w.size - 1}, got ${describe(root)}`);
  if (w.size === 1) return t;
  await sameShape('broadcast', t);
  t.assign(await addon!.broadcast(await t.data('float32'), root));
  return t;
}

/** Every rank's `tensor`, stacked along a new first dimension in rank order: [worldSize, …shape]. */
async function allGather(tensor: Tensor): Promise<Tensor> {
  const w = joined('allGather');
  const t = floatTensor('allGather', tensor);
  if (w.size > 1) await sameShape('allGather', t);
  const mine = await t.data('float32');
  const all = w.size === 1 ? Float32Array.from(mine) : await addon!.allGather(mine);
  return fromHost(t.backend, all, [w.size, ...t.shape]);
}

/** Waits until every rank has reached it. */
async function barrier(): Promise<void> {
  const w = joined('barrier');
  if (w.size > 1) await addon!.barrier();
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
  /** Gradients are averaged in buckets of about this many megabytes, one collective each (default 25, PyTorch's). */
  bucketMB?: number;
}

/**
 * Data-parallel training across the ranks of `rg.distributed`, PyTorch's DistributedDataParallel for a hand-written
 * loop: every rank builds the same model, `await ddp.broadcastParameters()` gives them rank 0's weights, and after
 * each `loss.backward()`, `await ddp.syncGradients()` averages every gradient over the ranks (in buckets of
 * `bucketMB`, last parameters first, as the backward produces them) before `optimizer.step()`. With each rank on a
 * disjoint shard of a batch of B rows (B/N each), the step equals one process's step on the whole batch.
 * `forward` is the module's. In a world of one, both calls return at once.
 */
export class DistributedDataParallel {
  /** The buckets of parameters, each averaged by one collective. */
  readonly buckets: Parameter[][];

  /** Groups the module's trainable parameters into buckets; no collective runs until broadcastParameters/syncGradients. */
  constructor(
    /** The model, the same on every rank. */
    readonly module: Module,
    options: DistributedDataParallelOptions = {},
  ) {
    if (!(module instanceof Module)) throw new TypeError(`DistributedDataParallel: expected a Module, got ${describe(module)}`);
    checkOptions('DistributedDataParallel', options, ['bucketMB']);
    const bucketMB = checkNumber('DistributedDataParallel', 'bucketMB', options.bucketMB ?? 25, { min: 0, minExclusive: true });
    const limit = bucketMB * 2 ** 20;
    this.buckets = [];
    let bucket: Parameter[] = [], bytes = 0;
    for (const p of [...module.parameters()].reverse()) {
      if (!p.requiresGrad) continue;
      if (bucket.length && bytes + 4 * p.value.size > limit) {
        this.buckets.push(bucket);
        bucket = [];
        bytes = 0;
      }
      bucket.push(p);
      bytes += 4 * p.value.size;
    }
    if (bucket.length) this.buckets.push(bucket);
  }

  /** The module's forward. */
  forward(...args: unknown[]): Tensor {
    return (this.module.forward as (...a: unknown[]) => Tensor)(...args);
  }

  /** Copies rank `root`'s parameters and float buffers (BatchNorm's running statistics) to every rank. */
  async broadcastParameters(root = 0): Promise<void> {
    joined('broadcastParameters');
    for (const t of Object.values(this.module.stateDict())) if (t.dtype !== 'int32') await broadcast(t, root);
  }

  /**
   * Averages every trainable parameter's gradient over the ranks, in place (a gradient nothing wrote since zeroGrad
   * counts as zeros). Every rank must call it at the same point of its loop.
   */
  async syncGradients(): Promise<void> {
    const w = joined('syncGradients');
    if (w.size === 1) return;
    // Every bucket's read is queued at once; the collectives are then submitted strictly in bucket order (the same on
    // every rank: MPI matches collectives by order), each as soon as its bucket is read, so a later bucket is read
    // while an earlier one is being reduced.
    const reads = this.buckets.map((bucket) => Promise.all(bucket.map((p) => p.grad.data('float32'))));
    const reduced: Promise<Float32Array>[] = [];
    for (const read of reads) {
      const parts = await read;
      const flat = new Float32Array(parts.reduce((n, a) => n + a.length, 0));
      let at = 0;
      for (const a of parts) { flat.set(a, at); at += a.length; }
      reduced.push(addon!.allReduce(flat, true));
    }
    for (const [b, bucket] of this.buckets.entries()) {
      const mean = await reduced[b];
      let at = 0;
      for (const p of bucket) {
        p.grad.assign(mean.subarray(at, at + p.value.size));
        at += p.value.size;
      }
    }
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
