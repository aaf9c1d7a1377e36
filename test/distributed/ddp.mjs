// Run by test/distributed.test.ts under `mpirun -np N`: K steps of data-parallel training with a per-rank batch of B/N
// rows must give the weights of one process training on the whole batch of B (checked on rank 0, which also runs the
// single-process training), for an MLP, a CNN and a module written with tensor operations that uses a layer and a
// parameter twice; the same bits whether the buckets are averaged after the backward (the module's forward) or started
// during it (ddp.forward); a step that writes a gradient more often than the first is refused; and the
// DistributedSampler's shards. One JSON line per rank.
import * as rg from '../../dist/index.js';
import { report } from './report.mjs';

const { rank, worldSize } = await rg.distributed.init();
const B = 24, K = 6;

function data(n, features, seed) {
  const r = rg.mulberry32(seed);
  return { x: Float32Array.from({ length: n * features }, () => r() * 2 - 1), y: Int32Array.from({ length: n }, () => Math.floor(r() * 3)) };
}
const rows = (a, per, from, count) => a.subarray(from * per, (from + count) * per);

/** A layer applied twice and a bare parameter used twice: several writes into one gradient per backward. */
class Twice extends rg.Module {
  constructor() {
    super();
    this.inner = new rg.Linear(10, 10);
    this.scale = new rg.Parameter(rg.full([10], 0.5));
    this.head = new rg.Linear(10, 3);
  }
  forward(x) {
    const h = this.inner.forward(x).tanh().mul(this.scale);
    return this.head.forward(this.inner.forward(h).tanh().mul(this.scale));
  }
}

async function trainRun(make, shape, { distributed, overlap = false, stats }) {
  rg.manualSeed(distributed ? 100 + rank : 100); // different initial weights per rank: broadcastParameters must fix that
  const model = make();
  const ddp = new rg.DistributedDataParallel(model, { bucketMB: 0.0002 }); // tiny buckets (210 bytes): several collectives a step
  if (distributed) await ddp.broadcastParameters();
  if (!distributed) { rg.manualSeed(100 + 0); const m0 = make(); model.loadStateDict(m0.stateDict()); }
  const opt = new rg.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
  const per = shape.reduce((a, b) => a * b, 1);
  const { x, y } = data(B * K, per, 7);
  const b = distributed ? B / worldSize : B;
  for (let s = 0; s < K; s++) {
    const from = s * B + (distributed ? rank * b : 0);
    const xb = rg.tensor(rows(x, per, from, b), [b, ...shape]), yb = rg.tensor(y.subarray(from, from + b), [b]);
    opt.zeroGrad();
    rg.F.crossEntropy((overlap ? ddp : model).forward(xb), yb).backward();
    if (distributed) await ddp.syncGradients();
    opt.step();
  }
  if (stats) Object.assign(stats, ddp.stats, { buckets: ddp.buckets.length, syncs: ddp.stats.syncs, started: ddp.stats.buckets });
  return Object.fromEntries(Object.entries(model.stateDict()).map(([k, t]) => [k, t.toArray('float32')]));
}

const models = {
  mlp: [() => new rg.Sequential([new rg.Linear(10, 16), new rg.Tanh(), new rg.Linear(16, 3)]), [10]],
  cnn: [() => new rg.Sequential([new rg.Conv2d(1, 4, 3, { padding: 1 }), new rg.ReLU(), new rg.MaxPool2d(2), new rg.Flatten(), new rg.Linear(4 * 4 * 4, 3)]), [1, 8, 8]],
  twice: [() => new Twice(), [10]],
};
const out = { rank, worldSize, buckets: new rg.DistributedDataParallel(models.mlp[0](), { bucketMB: 0.0002 }).buckets.length };
for (const [name, [make, shape]] of Object.entries(models)) {
  const ddp = await trainRun(make, shape, { distributed: true });
  // the weights' exact bits: equal on every rank, and from run to run
  const digest = Object.values(ddp).reduce((h, a) => new Int32Array(a.buffer, a.byteOffset, a.length).reduce((g, v) => (Math.imul(g, 31) + v) | 0, h), 7);
  out[name] = { digest };
  // the same training with each bucket started during the backward
  const stats = {};
  const overlapped = await trainRun(make, shape, { distributed: true, overlap: true, stats });
  out[name].overlapDigest = Object.values(overlapped).reduce((h, a) => new Int32Array(a.buffer, a.byteOffset, a.length).reduce((g, v) => (Math.imul(g, 31) + v) | 0, h), 7);
  out[name].stats = { buckets: stats.buckets, syncs: stats.syncs, started: stats.started, overlapped: stats.overlapped };
  if (rank === 0) {
    const single = await trainRun(make, shape, { distributed: false });
    // normwise relative difference per tensor (the project's tolerance policy), the worst over the model's tensors
    let worst = 0;
    for (const [k, a] of Object.entries(single)) {
      let d2 = 0, a2 = 0;
      for (let i = 0; i < a.length; i++) { d2 += (a[i] - ddp[k][i]) ** 2; a2 += a[i] ** 2; }
      worst = Math.max(worst, Math.sqrt(d2 / Math.max(a2, 1e-30)));
    }
    out[name].worstRelative = worst;
  }
}
// the reference backend's path (gradients read, reduced from JavaScript, written back): the same bits with and without
// overlap, on every rank
{
  rg.setBackend('reference');
  const [make, shape] = models.mlp;
  const digest = (w) => Object.values(w).reduce((h, a) => new Int32Array(new Float32Array(a).buffer).reduce((g, v) => (Math.imul(g, 31) + v) | 0, h), 7);
  const stats = {};
  out.reference = { after: digest(await trainRun(make, shape, { distributed: true })), overlapped: digest(await trainRun(make, shape, { distributed: true, overlap: true, stats })), overlappedBuckets: stats.overlapped };
  rg.setBackend('cpu');
}
// BatchNorm's running statistics: each training forward through the DDP starts from rank 0's (broadcastBuffers, the
// default); without, each rank keeps its own (momentum 0: the forward itself leaves them as they are)
{
  const run = async (broadcastBuffers) => {
    rg.manualSeed(4);
    const model = new rg.Sequential([new rg.Linear(3, 4), new rg.BatchNorm1d(4, { momentum: 0 }), new rg.Linear(4, 2)]);
    const ddp = new rg.DistributedDataParallel(model, { broadcastBuffers });
    await ddp.broadcastParameters();
    const mean = model.namedBuffers().find(([n]) => n.endsWith('running_mean'))[1];
    mean.assign([rank, rank + 1, rank + 2, rank + 3]); // each rank its own statistics
    ddp.forward(rg.randn([4, 3])).sum().backward();
    await ddp.syncGradients();
    const rows = (await rg.distributed.allGather(mean)).toArray('float32');
    return Array.from({ length: worldSize }, (_, r) => rows.subarray(r * 4, r * 4 + 4).join()).every((x) => x === '0,1,2,3');
  };
  out.buffers = { broadcast: await run(true), own: await run(false) };
}
// gradient accumulation: two backwards per sync count together (learnt from the first step), overlapped or not
{
  const run = async (overlap) => {
    rg.manualSeed(9);
    const model = new rg.Sequential([new rg.Linear(6, 8), new rg.Tanh(), new rg.Linear(8, 2)]);
    const ddp = new rg.DistributedDataParallel(model, { bucketMB: 0.0001 });
    await ddp.broadcastParameters();
    const opt = new rg.SGD(model.parameters(), { lr: 0.1 });
    const r = rg.mulberry32(3 + rank);
    for (let step = 0; step < 4; step++) {
      opt.zeroGrad();
      for (let micro = 0; micro < 2; micro++) {
        const x = rg.tensor(Float32Array.from({ length: 12 }, () => r() - 0.5), [2, 6]);
        (overlap ? ddp : model).forward(x).square().mean().backward();
      }
      await ddp.syncGradients();
      opt.step();
    }
    const w = Object.values(model.stateDict()).map((t) => t.toArray('float32'));
    return { digest: w.reduce((h, a) => new Int32Array(a.buffer, a.byteOffset, a.length).reduce((g, v) => (Math.imul(g, 31) + v) | 0, h), 7), overlapped: ddp.stats.overlapped, buckets: ddp.buckets.length };
  };
  const after = await run(false), overlapped = await run(true);
  out.accumulation = { same: after.digest === overlapped.digest, digest: after.digest, overlapped: overlapped.overlapped, buckets: overlapped.buckets };
}
// a layer whose hand-written backward writes its gradient without a notice (assign): its bucket, and those after it,
// wait for syncGradients, so overlap gives the same bits as no overlap
{
  class Scale extends rg.Module {
    constructor() {
      super();
      this.w = new rg.Parameter(rg.full([4], 1.5));
    }
    forward(x) {
      this.x = x;
      return rg.noGrad(() => x.mul(this.w.value));
    }
    backward(dy) {
      rg.noGrad(() => this.w.grad.assign(this.w.grad.add(dy.mul(this.x).sum(0))));
      return rg.noGrad(() => dy.mul(this.w.value));
    }
  }
  const run = async (overlap) => {
    rg.manualSeed(8);
    const model = new rg.Sequential([new rg.Linear(3, 4), new Scale(), new rg.Linear(4, 2)]);
    const ddp = new rg.DistributedDataParallel(model, { bucketMB: 0.00001 });
    const opt = new rg.SGD(model.parameters(), { lr: 0.1 });
    const r = rg.mulberry32(11 + rank);
    for (let step = 0; step < 4; step++) {
      opt.zeroGrad();
      (overlap ? ddp : model).forward(rg.tensor(Float32Array.from({ length: 6 }, () => r() - 0.5), [2, 3])).square().sum().backward();
      await ddp.syncGradients();
      opt.step();
    }
    return Object.values(model.stateDict()).map((t) => [...t.toArray('float32')]).flat();
  };
  out.unnoticed = JSON.stringify(await run(true)) === JSON.stringify(await run(false));
}
// overlap: false starts every bucket in syncGradients, even after ddp.forward
{
  rg.manualSeed(6);
  const model = new rg.Sequential([new rg.Linear(3, 3), new rg.Linear(3, 1)]);
  const ddp = new rg.DistributedDataParallel(model, { bucketMB: 0.00001, overlap: false });
  for (let step = 0; step < 3; step++) {
    ddp.forward(rg.randn([2, 3])).sum().backward();
    await ddp.syncGradients();
  }
  out.noOverlap = { overlapped: ddp.stats.overlapped, buckets: ddp.stats.buckets };
}
// a step that writes a gradient twice where the first step wrote it once: refused on every rank, after the collectives
{
  rg.manualSeed(5);
  const model = new rg.Sequential([new rg.Linear(4, 4), new rg.Tanh(), new rg.Linear(4, 2)]);
  const ddp = new rg.DistributedDataParallel(model, { bucketMB: 0.00001 });
  const x = rg.randn([2, 4]);
  ddp.forward(x).sum().backward();
  await ddp.syncGradients();
  ddp.forward(x).sum().add(model.forward(x).sum()).backward();
  out.overrun = await ddp.syncGradients().then(() => 'accepted', (e) => `${e.name}: ${e.message}`);
  // the next step, as the first, is accepted again
  model.zeroGrad();
  ddp.forward(x).sum().backward();
  out.after = await ddp.syncGradients().then(() => 'accepted', (e) => `${e.name}: ${e.message}`);
}
// the sampler: disjoint shards that cover the data, the same permutation on every rank, a new one each epoch
const sampler = new rg.DistributedSampler(10, { seed: 3 });
const shards = await rg.distributed.allGather(rg.tensor(Float32Array.from(sampler.indices(0)), [sampler.perRank]));
out.sampler = { perRank: sampler.perRank, all: [...shards.toArray('float32')], epoch1: [...sampler.indices(1)] };
report(rank, out);
