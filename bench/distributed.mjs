// Data-parallel training measured (`npm run bench:distributed`; needs Open MPI and the MPI addon):
//   - all-reduce between 2 ranks by message size: rg.distributed.allReduce on a tensor (its shape check, the read,
//     the communication thread, the write back) against MPI_Allreduce called from C on the same sizes
//     (bench/mpi/allreduce.c, built here with mpicc): seconds per call and GB/s (bytes reduced per second);
//   - W2 (MLP 784-1024-1024-10, a global batch of 256, SGD momentum) on 1 rank × 2 threads against 2 ranks × 1 thread
//     (128 rows each): s/epoch through fit, and through a hand-written loop with the buckets started during the
//     backward (ddp.forward) or after it (the module's forward), with the share of the step that waited for
//     communication once the backward was done (DistributedDataParallel's stats);
//   - the tiny GPT (W4) on 2 ranks × 1 thread in buckets of 0.25 MB, the buckets started during the backward or after it:
//     ms per step and the share that waited for communication (what overlap hides, and what it costs on shared cores);
//   - on paper: W2 and the tiny GPT (W4) at 8 and 64 ranks on a 25 Gbit/s network, from the step times measured here
//     and a ring all-reduce model (see `project` below).
// The configurations alternate, --rounds times, and the medians are printed with the CPU model and written to
// bench/results/distributed-<cpu>.json. Never compare figures across machines.
//   node bench/distributed.mjs [--rounds 3] [--epochs 3]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as rg from 'retrograd';
import { buildModel, median, resultsDir, tokenBatches, trainGpt, WORKLOADS } from './workloads.mjs';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, epochs: { type: 'string', default: '3' }, role: { type: 'string' } } });
const here = new URL('.', import.meta.url).pathname;
const SIZES = [4 << 10, 64 << 10, 1 << 20, 8 << 20, 64 << 20];
const W2 = WORKLOADS.W2;

if (values.role === 'allreduce') await allReduceRole();
else if (values.role === 'w2') await w2Role(Number(values.epochs));
else if (values.role === 'gpt') await gptRole();
else await main();

/**
 * Under mpirun: the tiny GPT (W4, a global batch of 32 sequences, each rank its share) through a hand-written loop with
 * DistributedDataParallel in buckets of 0.25 MB (8 of them), so that there is a backward to overlap: ms per step and
 * the share of it that waited for communication, with the buckets started during the backward and after it,
 * alternating.
 */
async function gptRole() {
  const { rank, worldSize } = await rg.distributed.init();
  const { tinyGpt } = await import('../examples/text.mjs');
  const w = WORKLOADS.W4, { vocab, contextLength: T } = w.gpt, rows = w.batchSize / worldSize;
  rg.manualSeed(1);
  const model = tinyGpt(rg, w.gpt);
  const ddp = new rg.DistributedDataParallel(model, { bucketMB: 0.25 });
  await ddp.broadcastParameters();
  const opt = new rg.AdamW(model.parameters(), { lr: w.optimizer.lr });
  const data = tokenBatches(w, 4, rg.mulberry32(4)).map(({ x, y }) => [
    rg.tensor(x.subarray(rank * rows * T, (rank + 1) * rows * T), [rows, T]),
    rg.tensor(y.subarray(rank * rows * T, (rank + 1) * rows * T), [rows * T]),
  ]);
  const run = async (overlap, steps) => {
    const before = ddp.stats;
    const t0 = performance.now();
    let last;
    for (let s = 0; s < steps; s++) {
      const [x, y] = data[s % data.length];
      opt.zeroGrad();
      last?.dispose();
      last = rg.F.crossEntropy((overlap ? ddp : model).forward(x).reshape([rows * T, vocab]), y);
      last.backward();
      await ddp.syncGradients();
      opt.step();
    }
    await last.data();
    const ms = performance.now() - t0, after = ddp.stats;
    return { stepMs: ms / steps, exposedShare: (after.exposedMs - before.exposedMs) / ms, overlapped: after.overlapped - before.overlapped, buckets: after.buckets - before.buckets };
  };
  await run(true, 5); // untimed (and the first step learns the writes)
  const out = { buckets: ddp.buckets.length, overlapped: [], after: [] };
  for (let r = 0; r < 3; r++) {
    out.overlapped.push(await run(true, 15));
    out.after.push(await run(false, 15));
  }
  if (rank === 0) console.log(JSON.stringify(out));
}

/** Under mpirun: rg.distributed.allReduce timed on every size, as the C program times MPI_Allreduce. */
async function allReduceRole() {
  const { rank } = await rg.distributed.init();
  const out = [];
  for (const bytes of SIZES) {
    const t = rg.full([bytes / 4], rank + 1);
    const reps = Math.max(5, Math.min(1000, Math.floor(4e8 / bytes)));
    for (let w = 0; w < 3; w++) await rg.distributed.allReduce(t);
    await rg.distributed.barrier();
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) await rg.distributed.allReduce(t);
    const mine = (performance.now() - t0) / 1000 / reps;
    const slowest = (await rg.distributed.allReduce(rg.tensor([mine], [1]))).toArray('float32')[0]; // (summed: ≤ 2 × the slowest)
    out.push({ bytes, reps, seconds: Math.max(mine, slowest - mine) });
    t.dispose();
  }
  if (rank === 0) console.log(JSON.stringify(out));
}

/** One W2 configuration (a world of one, or this rank of mpirun's): s/epoch through fit and through hand-written loops. */
async function w2Role(epochs) {
  const { rank, worldSize } = await rg.distributed.init();
  const split = rg.mnistSplit();
  const n = split.yTrain.length, rows = W2.batchSize / worldSize;
  const x = rg.tensor(split.xTrain, [n, 784]), y = rg.tensor(split.yTrain, [n]);
  const result = { rank, worldSize, threads: rg.backends().find((b) => b.name === 'cpu')?.detail.threads, rowsPerRank: rows };
  // through fit: the same seed and data on every rank, each its shard
  {
    rg.manualSeed(1);
    const model = buildModel(rg, W2);
    model.compile({ optimizer: new rg.SGD(model.parameters(), { lr: W2.optimizer.lr, momentum: W2.optimizer.momentum }), loss: new rg.CrossEntropyLoss() });
    await model.fit(x, y, { epochs: 1, batchSize: rows, verbose: 0, distributed: true }); // untimed
    const times = [];
    for (let e = 0; e < epochs; e++) {
      const t0 = performance.now();
      await model.fit(x, y, { epochs: 1, batchSize: rows, verbose: 0, distributed: true });
      times.push((performance.now() - t0) / 1000);
    }
    result.fit = median(times);
  }
  // hand-written loops: ddp.forward (buckets started during the backward) or the module's forward (after it)
  for (const overlap of worldSize > 1 ? [true, false] : [true]) {
    rg.manualSeed(1);
    const model = buildModel(rg, W2);
    const ddp = new rg.DistributedDataParallel(model);
    await ddp.broadcastParameters();
    const opt = new rg.SGD(model.parameters(), { lr: W2.optimizer.lr, momentum: W2.optimizer.momentum });
    const sampler = new rg.DistributedSampler(n, { seed: 7 });
    const steps = Math.floor(sampler.perRank / rows);
    const epoch = async (e) => {
      const mine = rg.tensor(sampler.indices(e), [sampler.perRank]);
      let last;
      for (let s = 0; s < steps; s++) {
        const idx = mine.narrow(0, s * rows, rows);
        const xb = x.indexSelect(0, idx), yb = y.indexSelect(0, idx);
        opt.zeroGrad();
        last?.dispose();
        last = rg.F.crossEntropy((overlap ? ddp : model).forward(xb), yb);
        last.backward();
        await ddp.syncGradients();
        opt.step();
        rg.noGrad(() => [xb, yb, idx].forEach((t) => t.dispose()));
      }
      const loss = (await last.data())[0];
      mine.dispose();
      return loss;
    };
    await epoch(0); // untimed
    const before = { ...ddp.stats };
    const times = [];
    for (let e = 1; e <= epochs; e++) {
      const t0 = performance.now();
      await epoch(e);
      times.push((performance.now() - t0) / 1000);
    }
    const total = times.reduce((a, b) => a + b, 0) * 1000;
    const s = ddp.stats;
    result[overlap ? 'overlapped' : 'after'] = {
      seconds: median(times),
      stepMs: total / (epochs * steps),
      exposedShare: (s.exposedMs - before.exposedMs) / total,
      communicationShare: (s.communicationMs - before.communicationMs) / total,
      bucketsOverlapped: s.overlapped - before.overlapped,
      buckets: s.buckets - before.buckets,
    };
  }
  if (worldSize === 1) {
    // the compute of one step for the projections: W2 at its batch of 256 (above), the tiny GPT at its batch of 32
    const gpt = await trainGpt(rg, WORKLOADS.W4, { budget: 20, seconds: 4 });
    result.gptStepSeconds = gpt.secondsPerStep;
  }
  if (rank === 0) console.log(JSON.stringify(result));
}

function run(cmd, args, env = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${(r.stderr || r.stdout).trim().split('\n').slice(-5).join(' | ')}`);
  return r.stdout.trim().split('\n').filter((l) => l.startsWith('{') || l.startsWith('['));
}

/**
 * Step time at N ranks from the compute of one step measured here (each rank keeps the workload's batch) and a ring
 * all-reduce per bucket of gradients: 2(N − 1)/N × bytes / bandwidth + 2(N − 1) × latency. Without overlap the
 * buckets' times add to the step. With overlap, the backward (taken as 2/3 of the step) produces the gradients in
 * bucket order at a steady rate by bytes (last layers first), each bucket's all-reduce starts once it is complete and
 * the one before has finished, and only what runs past the backward's end shows: for a model whose largest gradient
 * comes last (an MLP's first layer), that is most of it.
 */
function project(stepSeconds, buckets, ranks, { gbitPerSecond = 25, latency = 20e-6 } = {}) {
  const bandwidth = (gbitPerSecond * 1e9) / 8, total = buckets.reduce((a, b) => a + b, 0), backward = (2 / 3) * stepSeconds;
  const ring = (bytes) => (2 * (ranks - 1) / ranks) * (bytes / bandwidth) + 2 * (ranks - 1) * latency;
  const comm = buckets.reduce((a, b) => a + ring(b), 0);
  let produced = 0, free = 0;
  for (const b of buckets) {
    produced += b;
    free = Math.max(free, (produced / total) * backward) + ring(b);
  }
  const after = stepSeconds + comm, overlapped = stepSeconds + Math.max(0, free - backward);
  return { ranks, communicationMs: comm * 1e3, stepMsAfter: after * 1e3, stepMsOverlapped: overlapped * 1e3, efficiencyAfter: stepSeconds / after, efficiencyOverlapped: stepSeconds / overlapped };
}

/** The byte sizes of DistributedDataParallel's buckets for a model, in the order they are reduced. */
function bucketBytes(model) {
  return new rg.DistributedDataParallel(model).buckets.map((b) => b.reduce((a, p) => a + 4 * p.value.size, 0));
}

async function main() {
  const mpirun = spawnSync('sh', ['-c', 'command -v mpirun'], { encoding: 'utf8' }).stdout.trim();
  const mpicc = spawnSync('sh', ['-c', 'command -v mpicc'], { encoding: 'utf8' }).stdout.trim();
  const addon = join(here, '..', 'build-mpi', 'Release', 'retrograd_mpi.node');
  if (!mpirun || !mpicc || !existsSync(addon)) {
    console.error(`bench:distributed needs Open MPI (mpirun, mpicc: apt-get install openmpi-bin libopenmpi-dev) and the MPI addon (npm rebuild); missing: ${[!mpirun && 'mpirun', !mpicc && 'mpicc', !existsSync(addon) && addon].filter(Boolean).join(', ')}`);
    process.exit(1);
  }
  const rounds = Number(values.rounds), epochs = values.epochs;
  const log = (...a) => console.error('[bench:distributed]', ...a);
  const exe = join(mkdtempSync(join(os.tmpdir(), 'retrograd-allreduce-')), 'allreduce');
  run(mpicc, ['-O2', join(here, 'mpi', 'allreduce.c'), '-o', exe]);
  const mpi = ['--allow-run-as-root', '--oversubscribe', '-np', '2'];
  const self = join(here, 'distributed.mjs');
  const c = [], ours = [], single = [], two = [], gpt = [];
  for (let r = 0; r < rounds; r++) {
    log(`round ${r + 1}/${rounds}: all-reduce from C`);
    c.push(run(mpirun, [...mpi, exe, '1000', ...SIZES.map(String)]).map((l) => JSON.parse(l)));
    log(`round ${r + 1}/${rounds}: rg.distributed.allReduce`);
    ours.push(JSON.parse(run(mpirun, [...mpi, process.execPath, self, '--role', 'allreduce'])[0]));
    log(`round ${r + 1}/${rounds}: W2, 1 rank × 2 threads`);
    single.push(JSON.parse(run(process.execPath, [self, '--role', 'w2', '--epochs', epochs], { RETROGRAD_NUM_THREADS: '2' }).at(-1)));
    log(`round ${r + 1}/${rounds}: W2, 2 ranks × 1 thread`);
    two.push(JSON.parse(run(mpirun, [...mpi, '-x', 'RETROGRAD_NUM_THREADS=1', process.execPath, self, '--role', 'w2', '--epochs', epochs]).at(-1)));
    log(`round ${r + 1}/${rounds}: the tiny GPT, 2 ranks × 1 thread, buckets of 0.25 MB`);
    gpt.push(JSON.parse(run(mpirun, [...mpi, '-x', 'RETROGRAD_NUM_THREADS=1', process.execPath, self, '--role', 'gpt']).at(-1)));
  }
  const med = (list, f) => median(list.map(f));
  const allReduce = SIZES.map((bytes, i) => {
    const fromC = med(c, (r) => r[i].seconds), rgs = med(ours, (r) => r[i].seconds);
    return { bytes, cSeconds: fromC, retrogradSeconds: rgs, cGBps: bytes / fromC / 1e9, retrogradGBps: bytes / rgs / 1e9, retrogradShareOfC: fromC / rgs };
  });
  const w2 = {
    oneRankTwoThreads: { fit: med(single, (r) => r.fit), loop: med(single, (r) => r.overlapped.seconds), stepMs: med(single, (r) => r.overlapped.stepMs) },
    twoRanksOneThread: {
      fit: med(two, (r) => r.fit),
      loopOverlapped: med(two, (r) => r.overlapped.seconds), loopAfter: med(two, (r) => r.after.seconds),
      exposedShareOverlapped: med(two, (r) => r.overlapped.exposedShare), exposedShareAfter: med(two, (r) => r.after.exposedShare),
      communicationShare: med(two, (r) => r.overlapped.communicationShare),
      bucketsOverlapped: two[0].overlapped.bucketsOverlapped, buckets: two[0].overlapped.buckets,
    },
  };
  const all = (mode, f) => median(gpt.flatMap((g) => g[mode].map(f)));
  const gptOverlap = {
    buckets: gpt[0].buckets,
    overlapped: { stepMs: all('overlapped', (x) => x.stepMs), exposedShare: all('overlapped', (x) => x.exposedShare) },
    after: { stepMs: all('after', (x) => x.stepMs), exposedShare: all('after', (x) => x.exposedShare) },
  };
  const w2Step = w2.oneRankTwoThreads.stepMs / 1e3, gptStep = med(single, (r) => r.gptStepSeconds);
  const { tinyGpt } = await import('../examples/text.mjs');
  const buckets = { W2: bucketBytes(buildModel(rg, W2)), W4: bucketBytes(tinyGpt(rg, WORKLOADS.W4.gpt)) };
  const projections = {
    assumptions: "25 Gbit/s links, 20 µs per message, a ring all-reduce per bucket of float32 gradients; each rank keeps the workload's batch (weak scaling); overlapped: buckets start as the backward (2/3 of the step) completes them",
    W2: [8, 64].map((n) => project(w2Step, buckets.W2, n)),
    W4: [8, 64].map((n) => project(gptStep, buckets.W4, n)),
    stepSeconds: { W2: w2Step, W4: gptStep },
    buckets,
  };
  const machine = { cpu: os.cpus()[0].model, cpus: os.cpus().length, node: process.version, mpi: spawnSync(mpirun, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0] };
  const results = { date: new Date().toISOString(), machine, rounds, allReduce, w2, gptOverlap, projections };
  const fmtBytes = (b) => (b >= 1 << 20 ? `${b >> 20} MB` : `${b >> 10} KB`);
  console.log(`\n${machine.cpu} (${machine.cpus} CPUs), ${machine.mpi}, medians of ${rounds} alternating rounds\n`);
  console.log('all-reduce, 2 ranks      | MPI_Allreduce from C | rg.distributed.allReduce | ours / C speed');
  for (const a of allReduce)
    console.log(`${fmtBytes(a.bytes).padEnd(24)} | ${(a.cSeconds * 1e6).toFixed(1).padStart(9)} µs ${a.cGBps.toFixed(2).padStart(5)} GB/s | ${(a.retrogradSeconds * 1e6).toFixed(1).padStart(10)} µs ${a.retrogradGBps.toFixed(2).padStart(6)} GB/s | ${a.retrogradShareOfC.toFixed(2)}`);
  const t = w2.twoRanksOneThread, o = w2.oneRankTwoThreads;
  console.log(`\nW2, global batch 256, s/epoch     | 1 rank × 2 threads | 2 ranks × 1 thread`);
  console.log(`fit                               | ${o.fit.toFixed(3).padStart(18)} | ${t.fit.toFixed(3).padStart(18)}`);
  console.log(`loop, buckets during the backward | ${o.loop.toFixed(3).padStart(18)} | ${t.loopOverlapped.toFixed(3).padStart(18)} (waited for communication ${(100 * t.exposedShareOverlapped).toFixed(1)}% of the time; ${t.bucketsOverlapped} of ${t.buckets} buckets started during the backward)`);
  console.log(`loop, buckets after the backward  | ${''.padStart(18)} | ${t.loopAfter.toFixed(3).padStart(18)} (waited ${(100 * t.exposedShareAfter).toFixed(1)}%)`);
  console.log(`communication thread busy ${(100 * t.communicationShare).toFixed(1)}% of the overlapped loop's time`);
  const g = gptOverlap;
  console.log(`\ntiny GPT, 2 ranks × 1 thread, ${g.buckets} buckets of ≤ 0.25 MB, ms/step (medians of ${rounds} × 3 runs of 15 steps):`);
  console.log(`buckets during the backward ${g.overlapped.stepMs.toFixed(1)} ms, waited for communication ${(100 * g.overlapped.exposedShare).toFixed(1)}% of the time`);
  console.log(`buckets after the backward  ${g.after.stepMs.toFixed(1)} ms, waited for communication ${(100 * g.after.exposedShare).toFixed(1)}% of the time`);
  console.log(`\non paper (${projections.assumptions}):`);
  for (const w of ['W2', 'W4'])
    for (const p of projections[w])
      console.log(`${w} at ${String(p.ranks).padStart(2)} ranks: compute ${(projections.stepSeconds[w] * 1e3).toFixed(1)} ms, all-reduce ${p.communicationMs.toFixed(1)} ms of ${(projections.buckets[w].reduce((a, b) => a + b, 0) / 1e6).toFixed(1)} MB in ${projections.buckets[w].length} buckets; step ${p.stepMsAfter.toFixed(1)} ms after / ${p.stepMsOverlapped.toFixed(1)} ms overlapped: ${(100 * p.efficiencyAfter).toFixed(0)}% / ${(100 * p.efficiencyOverlapped).toFixed(0)}% scaling efficiency`);
  const dir = resultsDir(here);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `distributed-${machine.cpu.replace(/[^A-Za-z0-9]+/g, '-').replace(/-+$/, '')}.json`);
  writeFileSync(file, JSON.stringify(results, null, 2));
  console.log(`\nwritten to ${file}`);
}
