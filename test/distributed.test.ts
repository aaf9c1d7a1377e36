// rg.distributed on Open MPI: the collectives and data-parallel training run under `mpirun --oversubscribe` with 2
// and 4 ranks on this 2-core machine (as root, --allow-run-as-root). Values are checked against what they must be by
// hand; data-parallel training against one process on the whole batch; a failing rank must stop the others within a
// bounded time. Without a launcher, the world is this one process.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { findTool, requireBuiltDist, requireOrSkip, rg, root } from './helpers.js';

const mpirun = findTool(['mpirun']);
const addon = join(root, 'build-mpi', 'Release', 'retrograd_mpi.node');
const notBuilt = join(root, 'build-mpi', 'not-built.txt');
const ready = requireOrSkip('Open MPI and the MPI addon', mpirun !== undefined && existsSync(addon),
  !mpirun ? 'mpirun not found (apt-get install openmpi-bin libopenmpi-dev, then npm rebuild)' : `${addon} is missing${existsSync(notBuilt) ? ` (${spawnSync('cat', [notBuilt], { encoding: 'utf8' }).stdout.trim()})` : ''}`);

/** Runs a script under mpirun; each rank's results come back as a file (test/distributed/report.mjs). */
function launch(n: number, script: string, timeout = 120_000): { status: number | null; ranks: Record<string, unknown>[]; stdout: string; stderr: string; seconds: number } {
  const t0 = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'retrograd-mpi-'));
  try {
    const r = spawnSync(mpirun!, ['--allow-run-as-root', '--oversubscribe', '-np', String(n), '-x', `RG_RANK_OUT=${dir}`, process.execPath, join(root, 'test', 'distributed', script)], { cwd: root, encoding: 'utf8', timeout });
    const ranks = Array.from({ length: n }, (_, k) => join(dir, `${k}.json`)).filter((f) => existsSync(f)).map((f) => JSON.parse(readFileSync(f, 'utf8')) as Record<string, unknown>);
    return { status: r.status, ranks, stdout: r.stdout, stderr: r.stderr, seconds: (performance.now() - t0) / 1000 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.runIf(ready)('collectives under mpirun', () => {
  beforeAll(requireBuiltDist);
  for (const n of [2, 4]) {
    it(`${n} ranks: allReduce (sum, mean), broadcast, allGather, barrier and their errors`, () => {
      const { status, ranks, stderr } = launch(n, 'collectives.mjs');
      expect(status, stderr).toBe(0);
      expect(ranks.map((r) => r.rank)).toEqual(Array.from({ length: n }, (_, i) => i));
      const S = (n * (n + 1)) / 2;
      for (const r of ranks) {
        expect(r).toMatchObject({
          worldSize: n,
          before: 'distributed.allReduce: call await rg.distributed.init() first',
          sum: [S, 2 * S, 3 * S],
          mean: [(n + 1) / 2, -(n + 1) / 2],
          broadcast: [(n - 1) * 10, (n - 1) * 10 + 1],
          gather: { shape: [n, 2], values: Array.from({ length: n }, (_, k) => [k, k + 0.5]).flat() },
          int: 'TypeError: distributed.allReduce: tensors must be float, got an int32 tensor [1]',
          op: "RangeError: distributed.allReduce: op must be 'sum' or 'mean', got the string 'max'",
          root: `RangeError: distributed.broadcast: root must be a rank in 0…${n - 1}, got number ${n}`,
          large: true,
        });
        expect(r.mismatch).toBe(`RetrogradError: distributed.allReduce: the ranks passed tensors of different shapes: ${Array.from({ length: n }, (_, k) => `rank ${k} ${k === 0 ? '[2, 3]' : '[3, 2]'}`).join(', ')}`);
        expect(r.afterMismatch).toEqual([2 * S + 1]);
        expect(r.reference).toEqual([(n + 1) / 2, 1]);
        expect(r.referenceMismatch).toBe(`RetrogradError: distributed.allReduce: the ranks passed tensors of different shapes: ${Array.from({ length: n }, (_, k) => `rank ${k} ${k === 0 ? '[4]' : '[2, 2]'}`).join(', ')}`);
      }
    }, 120_000);

    it(`${n} ranks: data-parallel training equals one process on the whole batch (MLP, CNN), bit for bit from run to run`, () => {
      const first = launch(n, 'ddp.mjs'), second = launch(n, 'ddp.mjs');
      expect(first.status, first.stderr).toBe(0);
      expect(second.status, second.stderr).toBe(0);
      type Run = { digest: number; overlapDigest: number; worstRelative: number; stats: { buckets: number; syncs: number; started: number; overlapped: number } };
      for (const model of ['mlp', 'cnn', 'twice']) {
        const digests = first.ranks.map((r) => (r[model] as Run).digest);
        expect(new Set(digests).size, `${model}: the ranks' weights differ`).toBe(1);
        expect((second.ranks[0][model] as Run).digest).toBe(digests[0]);
        expect((first.ranks[0][model] as Run).worstRelative).toBeLessThan(1e-6);
        // buckets started during the backward: the same bits; every bucket of every step but the first overlapped
        for (const r of first.ranks) {
          const run = r[model] as Run;
          expect(run.overlapDigest, `${model}: overlapped buckets changed the weights`).toBe(digests[0]);
          expect(run.stats.syncs).toBe(6);
          expect(run.stats.started).toBe(6 * run.stats.buckets);
          expect(run.stats.overlapped).toBe(5 * run.stats.buckets);
          expect(run.stats.buckets).toBeGreaterThan(2);
        }
      }
      const reference = first.ranks.map((r) => r.reference as { after: number; overlapped: number; overlappedBuckets: number });
      expect(new Set(reference.flatMap((x) => [x.after, x.overlapped])).size, 'reference backend: overlap or ranks changed the weights').toBe(1);
      expect(reference[0].overlappedBuckets).toBe(5 * (first.ranks[0].mlp as Run).stats.buckets);
      for (const r of first.ranks) expect((r.noOverlap as { overlapped: number }).overlapped, 'overlap: false').toBe(0);
      for (const r of first.ranks) expect(r.unnoticed, 'a gradient written without a notice: its bucket waits for syncGradients').toBe(true);
      for (const r of first.ranks) expect(r.buffers, "BatchNorm's running statistics: rank 0's with broadcastBuffers, each rank's own without").toEqual({ broadcast: true, own: false });
      const acc = first.ranks.map((r) => r.accumulation as { same: boolean; digest: number; overlapped: number; buckets: number });
      expect(acc.every((a) => a.same), 'two backwards per sync: overlap changed the weights').toBe(true);
      expect(new Set(acc.map((a) => a.digest)).size).toBe(1);
      expect(acc[0].overlapped).toBe(3 * acc[0].buckets);
      for (const r of first.ranks) {
        expect(r.overrun).toMatch(/^RetrogradError: DistributedDataParallel: the gradient of '2\.weight' was written 2 times in this step, 1 in the first, after its bucket had been read; every step must build the same graph/);
        expect(r.after).toBe('accepted');
      }
      expect(first.ranks[0].buckets).toBe(3);
      // the sampler: the same permutation dealt out, shards that cover the data, a new order each epoch
      const { perRank, all } = first.ranks[0].sampler as { perRank: number; all: number[] };
      expect(perRank).toBe(Math.ceil(10 / n));
      expect(new Set(all)).toEqual(new Set(Array.from({ length: 10 }, (_, i) => i)));
      expect(all.length).toBe(perRank * n);
      const epoch1 = first.ranks.flatMap((r) => (r.sampler as { epoch1: number[] }).epoch1);
      expect(new Set(epoch1).size).toBe(10);
      expect(epoch1).not.toEqual(all);
    }, 240_000);
  }

  for (const n of [2, 4]) {
    it(`${n} ranks: fit(…, { distributed: true }) equals one process's fit on the whole batch, progress from rank 0 only`, () => {
      const r = launch(n, 'fit.mjs', 180_000);
      expect(r.status, r.stderr).toBe(0);
      const ranks = r.ranks as any[];
      expect(ranks.length).toBe(n);
      // verbose 2 on every rank, but only rank 0 prints: 4 fits × 3 epochs
      expect(r.stdout.match(/^epoch \d\/3 - /gm)?.length).toBe(12);
      for (const key of ['mlp', 'mlp-shuffled', 'cnn', 'cnn-shuffled']) {
        expect(new Set(ranks.map((x) => x[key].digest)).size, `${key}: the ranks' weights differ`).toBe(1);
        expect(new Set(ranks.map((x) => JSON.stringify([x[key].loss, x[key].valLoss, x[key].evaluated]))).size, `${key}: the ranks' Histories or evaluations differ`).toBe(1);
      }
      for (const x of ranks) {
        expect(x.mlp.loaderDigest, 'a DataLoader with a DistributedSampler trains as the tensor data does').toBe(x.mlp.digest);
        expect(x.mlp.loaderLoss).toEqual(x.mlp.loss);
        expect(x.mlp.streamDigest, "each rank's shard of a stream trains as the sampler's shards do").toBe(x.mlp.digest);
        expect(x.mlp.streamLoss).toEqual(x.mlp.loss);
        expect(x.streamRefused).toBe(`fit: distributed: true with a stream needs this rank's share of it: new rg.DataLoader(stream.shard(), { batchSize }) (every rank reads the stream and keeps one sample in ${n})`);
      }
      for (const key of ['mlp', 'cnn']) {
        expect(ranks[0][key].worstRelative).toBeLessThan(1e-6);
        ranks[0][key].loss.forEach((v: number, i: number) => expect(v).toBeCloseTo(ranks[0][key].singleLoss[i], 6));
        // validation and evaluate: each rank its share, the sums of all: the whole data's figures
        ranks[0][key].valLoss.forEach((v: number, i: number) => expect(v).toBeCloseTo(ranks[0][key].singleValLoss[i], 5));
        expect(ranks[0][key].valAccuracy).toEqual(ranks[0][key].singleValAccuracy);
        expect(ranks[0][key].evaluated.loss).toBeCloseTo(ranks[0][key].singleEvaluated.loss, 5);
        expect(ranks[0][key].evaluated.accuracy).toBe(ranks[0][key].singleEvaluated.accuracy);
      }
    }, 240_000);
  }

  it('the example trains the CNN on 2 ranks, with output from rank 0 only', () => {
    const r = spawnSync(mpirun!, ['--allow-run-as-root', '--oversubscribe', '-np', '2', process.execPath, join(root, 'examples', 'ddp-mnist.mjs'), '--quick'], { cwd: root, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.match(/^data-parallel CNN on 1024 digits: 2 ranks, 32 rows each per step \(64 in all\), 16 steps per epoch$/gm)?.length).toBe(1);
    expect(r.stdout.match(/^epoch 1\/1: loss /gm)?.length).toBe(1);
    expect(Number(/test accuracy: ([\d.]+)%/.exec(r.stdout)?.[1])).toBeGreaterThan(50);
  }, 120_000);

  it('a rank that fails stops the others within a bounded time, saying which', () => {
    const { status, stderr, ranks, seconds } = launch(2, 'fail.mjs', 60_000);
    expect(status).not.toBe(0);
    expect(status).not.toBe(null); // not our timeout: mpirun ended the job
    expect(ranks).toEqual([]);
    expect(stderr).toMatch(/rank 1 fails on purpose/);
    expect(stderr).toMatch(/exited with non-zero status|returned\s+a non-zero exit code/);
    expect(seconds).toBeLessThan(30);
  }, 90_000);
});

describe('without a launcher', () => {
  it('the world is this process: rank 0 of 1, collectives are the identity', async () => {
    expect(rg.distributed.launcherWorld({})).toBeUndefined();
    expect(rg.distributed.launcherWorld({ OMPI_COMM_WORLD_RANK: '2', OMPI_COMM_WORLD_SIZE: '4' })).toEqual({ rank: 2, size: 4, launcher: 'Open MPI' });
    const { rank, worldSize } = await rg.distributed.init();
    expect([rank, worldSize]).toEqual([0, 1]);
    const t = rg.tensor([1, 2], [2]);
    expect([...(await rg.distributed.allReduce(t, 'mean')).toArray('float32')]).toEqual([1, 2]);
    const g = await rg.distributed.allGather(t);
    expect(g.shape).toEqual([1, 2]);
    await rg.distributed.barrier();
    const model = new rg.Linear(2, 1);
    const ddp = new rg.DistributedDataParallel(model);
    await ddp.broadcastParameters();
    await ddp.syncGradients();
    expect(() => new rg.DistributedDataParallel({} as never)).toThrow(/DistributedDataParallel: expected a Module/);
    expect(() => new rg.DistributedDataParallel(model, { bucketMB: 0 })).toThrow(/bucketMB/);
    expect(() => new rg.DistributedDataParallel(model, { overlap: 'no' as never })).toThrow("DistributedDataParallel: overlap must be a boolean, got the string 'no'");
    expect(() => new rg.DistributedDataParallel(model, { broadcastBuffers: 1 as never })).toThrow(/broadcastBuffers must be a boolean/);
    expect(new rg.DistributedDataParallel(model).buckets.length).toBe(1);
    // a stream's shards: every third sample from the rank's position, the last incomplete group dropped
    const stream = new rg.IterableDataset(function* () {
      for (let i = 0; i < 8; i++) yield { x: [i], y: i };
    }, { transform: (s) => ({ x: [s.x[0] * 10], y: s.y }) });
    for (const [rank, want] of [[0, [0, 3]], [1, [1, 4]], [2, [2, 5]]] as const) {
      const got: number[] = [];
      for await (const s of stream.shard({ rank, worldSize: 3 })) got.push(s.x[0]);
      expect(got).toEqual(want.map((v) => v * 10));
    }
    expect(stream.shard().sharding).toEqual({ rank: 0, worldSize: 1 });
    expect(() => stream.shard({ rank: 3, worldSize: 3 })).toThrow(/IterableDataset.shard: invalid rank 3/);
    const s = new rg.DistributedSampler(7, { seed: 1, rank: 1, worldSize: 3 });
    expect(s.perRank).toBe(3);
    expect(s.indices(0).length).toBe(3);
    expect(new rg.DistributedSampler(7, { shuffle: false, rank: 1, worldSize: 3 }).indices()).toEqual(Int32Array.of(1, 4, 0));
    await expect(rg.distributed.allReduce(rg.tensor(Int32Array.of(1), [1]))).rejects.toThrow(/tensors must be float/);
    // fit with distributed: true in a world of one is an ordinary fit; with a DataLoader, an error saying what to do
    model.compile({ optimizer: new rg.SGD(model.parameters(), { lr: 0.1 }), loss: new rg.MSELoss() });
    const h = await model.fit(rg.randn([8, 2]), rg.randn([8, 1]), { epochs: 2, verbose: 0, distributed: true });
    expect(h.epoch).toEqual([0, 1]);
    const loader = new rg.DataLoader(new rg.Dataset([{ x: [1, 2], y: [1] }]));
    await expect(model.fit(loader, { distributed: true, verbose: 0 })).rejects.toThrow(/distributed: true with a DataLoader needs one whose sampler is an rg\.DistributedSampler/);
    const sharded = new rg.DataLoader(new rg.Dataset([{ x: [1, 2], y: [1] }, { x: [3, 4], y: [2] }]), { batchSize: 1, sampler: new rg.DistributedSampler(2, { shuffle: false }) });
    expect((await model.fit(sharded, { distributed: true, verbose: 0, epochs: 2 })).epoch).toEqual([0, 1]);
    await expect(model.fit(rg.randn([8, 2]), rg.randn([8, 1]), { distributed: 'yes' as never })).rejects.toThrow("fit: distributed must be a boolean, got the string 'yes'");
  });
});
