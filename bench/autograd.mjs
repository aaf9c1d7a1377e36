// Models written op by op, against PyTorch eager with its own autograd, in one run (`npm run bench:autograd`):
//   W1 op by op: the MLP 784-256-128-10 as x.matmul(w1.t()).add(b1).relu()…, F.crossEntropy, loss.backward(), Adam,
//     batch 64: milliseconds per step;
//   the per-op cost: a chain of 1,000 elementwise ops on 16 floats with autograd on, forward + backward, µs per op
//   (median of 15 runs after 30 untimed ones, for both runners: V8 compiles the hot paths over the first tens).
// retrograd and PyTorch runs alternate (repeated --rounds times) so that a noisy machine slows both alike; the
// medians and their ratio are printed with the CPU model, and written to bench/results/autograd-<cpu>.json.
//   node bench/autograd.mjs [--rounds 3] [--steps 125] [--skip torch]
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as rg from 'retrograd';
import { exportSplit, median } from './workloads.mjs';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, steps: { type: 'string', default: '125' }, skip: { type: 'string', default: '' } } });
const rounds = Number(values.rounds), steps = Number(values.steps);
const skipTorch = values.skip.split(',').includes('torch');
const here = new URL('.', import.meta.url).pathname;
const log = (...a) => console.error('[bench:autograd]', ...a);

const split = rg.mnistSplit();
const dataDir = mkdtempSync(join(os.tmpdir(), 'retrograd-autograd-'));
exportSplit(split, dataDir);

/** W1 op by op: returns seconds per step (median of `repeats` runs of `steps` steps). */
async function w1(backend, repeats = 1) {
  rg.setBackend(backend);
  rg.manualSeed(1);
  const n = split.yTrain.length;
  const x = rg.tensor(split.xTrain, [n, 784]), y = rg.tensor(split.yTrain, [n]);
  const sizes = [784, 256, 128, 10];
  const params = [];
  for (let i = 0; i < 3; i++) {
    const bound = 1 / Math.sqrt(sizes[i]);
    params.push(new rg.Parameter(rg.rand([sizes[i + 1], sizes[i]]).mul(2 * bound).sub(bound)));
    params.push(new rg.Parameter(rg.rand([sizes[i + 1]]).mul(2 * bound).sub(bound)));
  }
  const [w1, b1, w2, b2, w3, b3] = params;
  const opt = new rg.Adam(params, { lr: 1e-3 });
  const rows = [];
  for (let s = 0; s < Math.floor(n / 64); s++) rows.push([x.narrow(0, s * 64, 64), y.narrow(0, s * 64, 64)]);
  let loss;
  const run = (count) => {
    for (let s = 0; s < count; s++) {
      const [xb, yb] = rows[s % rows.length];
      const h1 = xb.matmul(w1.t()).add(b1).relu();
      const h2 = h1.matmul(w2.t()).add(b2).relu();
      const logits = h2.matmul(w3.t()).add(b3);
      loss = rg.F.crossEntropy(logits, yb);
      opt.zeroGrad();
      loss.backward();
      opt.step();
    }
    return loss.item();
  };
  run(5);
  const times = [];
  for (let r = 0; r < repeats; r++) {
    const t = performance.now();
    run(steps);
    times.push((performance.now() - t) / 1000 / steps);
  }
  return { secondsPerStep: median(times), loss: loss.item() };
}

/** Runs of the chain before timing, and runs timed (their median is reported; PyTorch's the same). */
const CHAIN_WARMUP = 30, CHAIN_RUNS = 15;
/** The chain of 1,000 small elementwise ops, forward + backward: µs per op. */
function chain(backend, ops = 1000, size = 16) {
  rg.setBackend(backend);
  const once = () => {
    const x = rg.randn([size], { requiresGrad: true });
    let h = x;
    for (let i = 0; i < ops / 4; i++) h = h.mul(1.0001).add(0.001).sigmoid().mul(h);
    h.sum().backward();
    return x.grad.sum().item();
  };
  // V8 compiles the hot paths over the first tens of runs: the steady state is what a training loop sees
  for (let i = 0; i < CHAIN_WARMUP; i++) once();
  const times = [];
  for (let r = 0; r < CHAIN_RUNS; r++) {
    const t = performance.now();
    once();
    times.push(performance.now() - t);
  }
  return { microsecondsPerOp: (1000 * median(times)) / ops };
}

function torch(part, threads) {
  const r = spawnSync('/usr/bin/python3', [join(here, 'peers/torch_autograd.py'), '--data', dataDir, '--part', part, '--steps', String(steps), '--repeats', part === 'chain' ? String(CHAIN_RUNS) : '1', '--warmup', String(CHAIN_WARMUP), ...(threads ? ['--threads', String(threads)] : [])], { encoding: 'utf8', env: { ...process.env, OPENBLAS_CORETYPE: 'SkylakeX', OPENBLAS_NUM_THREADS: '1' } });
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop());
  } catch {
    return { missing: (r.stderr || r.error?.message || '').trim().split('\n').pop() };
  }
}

const results = { date: new Date().toISOString(), machine: { cpu: os.cpus()[0].model, cpus: os.cpus().length, node: process.version }, rounds: [] };
for (let round = 0; round < rounds; round++) {
  const row = { retrograd: await w1('cpu'), chain: chain('cpu') };
  log(`round ${round + 1}: retrograd W1 op by op ${(1000 * row.retrograd.secondsPerStep).toFixed(2)} ms/step, chain ${row.chain.microsecondsPerOp.toFixed(2)} µs/op`);
  if (!skipTorch) {
    row.torch = { '1 thread': torch('w1', 1), '2 threads': torch('w1', 2) };
    row.torchChain = { '1 thread': torch('chain', 1), '2 threads': torch('chain', 2) };
    log(`round ${round + 1}: PyTorch W1 ${Object.entries(row.torch).map(([k, v]) => `${k} ${v.missing ?? (1000 * v.secondsPerStep).toFixed(2) + ' ms/step'}`).join(', ')}; chain ${Object.entries(row.torchChain).map(([k, v]) => `${k} ${v.missing ?? v.microsecondsPerOp.toFixed(2) + ' µs/op'}`).join(', ')}`);
  }
  results.rounds.push(row);
}

const med = (f) => median(results.rounds.map(f).filter((v) => Number.isFinite(v)));
const ours = med((r) => r.retrograd.secondsPerStep), oursChain = med((r) => r.chain.microsecondsPerOp);
results.summary = { retrogradMsPerStep: 1000 * ours, retrogradMicrosecondsPerOp: oursChain };
console.log(`\nretrograd op-level benchmarks, ${results.machine.cpu} (${results.machine.cpus} CPUs), median of ${rounds} alternating rounds`);
console.log(`W1 op by op (batch 64, Adam): retrograd cpu ${(1000 * ours).toFixed(2)} ms/step`);
console.log(`chain of 1,000 elementwise ops (16 floats, forward + backward): retrograd ${oursChain.toFixed(2)} µs/op`);
if (!skipTorch) {
  for (const k of ['1 thread', '2 threads']) {
    const t = med((r) => r.torch[k]?.secondsPerStep), tc = med((r) => r.torchChain[k]?.microsecondsPerOp);
    results.summary[`torch ${k}`] = { msPerStep: 1000 * t, microsecondsPerOp: tc, w1Faster: t / ours, perOpRatio: tc / oursChain };
    console.log(`  PyTorch eager, ${k}: W1 ${(1000 * t).toFixed(2)} ms/step → retrograd ${(t / ours).toFixed(2)}× faster; chain ${tc.toFixed(2)} µs/op → retrograd's per-op cost ${(oursChain / tc).toFixed(2)}× PyTorch's`);
  }
}
mkdirSync(join(here, 'results'), { recursive: true });
const file = join(here, 'results', `autograd-${results.machine.cpu.replace(/[^A-Za-z0-9]+/g, '-').replace(/-+$/, '')}.json`);
writeFileSync(file, JSON.stringify(results, null, 2));
console.log(`written to ${file}`);
