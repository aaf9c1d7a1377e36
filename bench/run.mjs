// retrograd's benchmark harness: `npm run bench`. In ONE run, on the same data and models, it measures
// retrograd (cpu through fit and through a hand-written loop, and the reference backend) against PyTorch CPU
// (Debian's python3-torch, in three thread/BLAS configurations), OpenBLAS's sgemm (through numpy) and TensorFlow.js
// (tfjs-backend-cpu and -wasm):
//   GEMM GFLOP/s at n = 64…2048 and at the shapes the workloads multiply; W1, W2 (MLPs) and W3 (CNN) seconds per
//   epoch with test accuracy; W4 (tiny GPT) training tokens/s with its loss; batch-1 latency.
// The runners are interleaved: each round measures every runner once, in turn (A B C … A B C …), for --rounds rounds
// (5 by default), so that a slow minute of a shared machine lands on all of them. Each figure is the median of the
// rounds, printed with its minimum and maximum. The runners tens of times slower than retrograd (the reference backend,
// TensorFlow.js) are measured in the first round only, and the table says so. The CPU's model, its vector features
// and its measured FMA peak head the table; the issue's goals are printed last, each as held or not.
// Prints the table and writes JSON to bench/results/. A peer that is missing is reported as missing, never dropped.
//   node bench/run.mjs [--rounds 5] [--budget 30] [--skip torch,tfjs,reference] [--only W3,latency,gemm]
// --only measures just the listed parts (workloads W1 W2 W3 W4, 'latency', 'gemm', 'apps' — bench/apps.mjs):
// `--only W3 --skip tfjs,reference` times the CNN for retrograd cpu and the PyTorch configurations alone.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as rg from 'retrograd';
import { backendByName } from '../dist/backend.js';
import {
  buildModel, exportSplit, GEMM_SHAPES, GEMM_SIZES, medianSeconds, peerFailure, resultsDir, shapeKey, spread, timeEpochs, trainGpt, WORKLOADS,
} from './workloads.mjs';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string' }, repeats: { type: 'string' }, budget: { type: 'string', default: '30' }, skip: { type: 'string', default: '' }, only: { type: 'string' },
  },
});
const rounds = Number(values.rounds ?? values.repeats ?? 5), budget = Number(values.budget); // --repeats: the former name
if (!(Number.isInteger(rounds) && rounds >= 1)) {
  console.error(`bench/run.mjs: --rounds takes a positive integer; got '${values.rounds ?? values.repeats}'`);
  process.exit(1);
}
const skip = new Set(values.skip.split(',').filter(Boolean));
const parts = [...Object.keys(WORKLOADS), 'latency', 'gemm', 'apps'];
const only = values.only === undefined ? new Set(parts) : new Set(values.only.split(',').map((s) => s.trim()).filter(Boolean));
const unknown = [...only].find((p) => !parts.includes(p));
if (unknown !== undefined || only.size === 0) {
  console.error(`bench/run.mjs: --only takes a list of ${parts.join(', ')}; got '${values.only}'`);
  process.exit(1);
}
const workloadNames = Object.keys(WORKLOADS).filter((n) => only.has(n));
const mnistNames = workloadNames.filter((n) => !WORKLOADS[n].gpt), gptNames = workloadNames.filter((n) => WORKLOADS[n].gpt);
const latency = only.has('latency'), gemmWanted = only.has('gemm');
const partial = skip.size > 0 || only.size < parts.length;
const here = new URL('.', import.meta.url).pathname;
const log = (...a) => console.error('[bench]', ...a);
const GEMM_SECONDS = 0.5; // per size and round

const split = rg.mnistSplit();
const dataDir = mkdtempSync(join(os.tmpdir(), 'retrograd-bench-'));
exportSplit(split, dataDir);

// ---- the machine ----
function cpuFlags() {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => /^(flags|Features)\s*:/.test(l)) ?? '';
    return line.split(':')[1].trim().split(/\s+/).filter((f) => /^(avx|fma|f16c|amx|sse4_2|asimd|sve)/.test(f));
  } catch {
    return [];
  }
}
/** The measured float32 FMA peak (bench/peers/fma_peak.cc, built here with g++), or why there is none. */
function fmaPeak() {
  const exe = join(mkdtempSync(join(os.tmpdir(), 'retrograd-peak-')), 'fma_peak');
  const build = spawnSync('g++', ['-O2', '-pthread', join(here, 'peers/fma_peak.cc'), '-o', exe], { encoding: 'utf8' });
  if (build.error || build.status !== 0) return { missing: `fma_peak.cc not built: ${build.error ? build.error.message : build.stderr.trim().split('\n')[0]}` };
  const r = spawnSync(exe, [String(os.cpus().length)], { encoding: 'utf8' });
  try {
    return JSON.parse(r.stdout.trim());
  } catch {
    return { missing: `fma_peak: ${peerFailure(r.stderr, r.status)}` };
  }
}

// ---- retrograd, in this process ----
const optimizerFor = (w, model) =>
  w.optimizer.name === 'adam' ? new rg.Adam(model.parameters(), { lr: w.optimizer.lr }) : new rg.SGD(model.parameters(), { lr: w.optimizer.lr, momentum: w.optimizer.momentum });
const sampleShape = (w) => (w.cnn ? [1, 28, 28] : [784]); // the CNN sees each digit as a 1×28×28 image

/** The first n training digits (all when n covers them), as [x, y] tensors on the current backend, memoised. */
const subsets = new Map();
function firstDigits(n, w, backend) {
  const key = `${n}/${w.cnn ? 'cnn' : 'mlp'}/${backend}`;
  if (!subsets.has(key)) subsets.set(key, [rg.tensor(split.xTrain.subarray(0, n * 784), [n, ...sampleShape(w)]), rg.tensor(split.yTrain.subarray(0, n), [n])]);
  return subsets.get(key);
}

/** One round of retrograd on `backend`: the workloads through fit, the batch-1 latency, the GEMMs. With `names`, only
 * those workloads and no latency. */
async function retrograd(backend, { gemm, names = workloadNames, latency: lat = latency }) {
  rg.setBackend(backend);
  const out = { backend, detail: rg.backends().find((b) => b.name === backend).detail, workloads: {} };
  const nTrain = split.yTrain.length;
  const yt = rg.tensor(split.yTest, [split.yTest.length]);
  for (const name of names) {
    const w = WORKLOADS[name];
    if (w.gpt) {
      out.workloads[name] = await trainGpt(rg, w, { budget });
      continue;
    }
    const xt = rg.tensor(split.xTest, [split.yTest.length, ...sampleShape(w)]);
    rg.manualSeed(1);
    const model = buildModel(rg, w);
    model.compile({ optimizer: optimizerFor(w, model), loss: new rg.CrossEntropyLoss(), metrics: ['accuracy'] });
    const batches = Math.ceil(nTrain / w.batchSize);
    const epoch = async (limit) => {
      const [xs, ys] = firstDigits(Math.min(nTrain, limit * w.batchSize), w, backend);
      await model.fit(xs, ys, { epochs: 1, batchSize: w.batchSize, verbose: 0 });
    };
    const r = await timeEpochs({ epoch, batches, repeats: 1, budget });
    r.accuracy = r.estimated ? null : (await model.evaluate(xt, yt)).accuracy;
    out.workloads[name] = r;
  }
  if (lat) {
    rg.manualSeed(1);
    const model = buildModel(rg, WORKLOADS.W1).eval();
    const one = rg.tensor(split.xTest.subarray(0, 784), [1, 784]);
    // under noGrad, as PyTorch's peer runs its forward under torch.no_grad(): inference records no graph
    out.latency_us = 1e6 * rg.noGrad(() => medianSeconds(() => model.forward(one).toArray(), { minRuns: 50, ms: 1000, maxRuns: 5000, warmup: 200 }));
  }
  if (!gemm) return out;
  const b = backendByName(backend);
  const time = (M, N, K, op) => {
    const A = b.fromHost(Float32Array.from({ length: M * K }, (_, i) => Math.sin(i)));
    const B = b.fromHost(Float32Array.from({ length: K * N }, (_, i) => Math.cos(i)));
    const C = b.alloc('float32', M * N);
    const seconds = medianSeconds(() => { b.k.matmul(C, A, B, M, N, K, op[0] === 'T', op[1] === 'T', 1, 0); b.sync(); }, { ms: 1000 * GEMM_SECONDS, warmup: 3 });
    return { gflops: (2 * M * N * K) / seconds / 1e9, seconds };
  };
  out.gemm = {};
  for (const n of gemm.sizes) {
    const r = time(n, n, n, 'NN');
    out.gemm[n] = r.gflops;
    if (r.seconds > 2) break;
  }
  if (gemm.shapes) {
    out.shapes = {};
    for (const s of GEMM_SHAPES) out.shapes[shapeKey(s)] = time(s[1], s[2], s[3], s[4]).gflops;
  }
  return out;
}

/**
 * One round of W1–W3 on the cpu backend through a hand-written loop, written as PyTorch's peer writes its own
 * (bench/peers/torch_cpu.py): a permutation per epoch, the batch gathered by index, zeroGrad, forward, loss,
 * backward, step; nothing read back but the last loss.
 */
async function retrogradLoop() {
  rg.setBackend('cpu');
  const out = { workloads: {} };
  const nTrain = split.yTrain.length;
  for (const name of mnistNames) {
    const w = WORKLOADS[name], bs = w.batchSize;
    const [x, y] = firstDigits(nTrain, w, 'cpu');
    rg.manualSeed(1);
    const model = buildModel(rg, w);
    const optimizer = optimizerFor(w, model), lossFn = new rg.CrossEntropyLoss();
    const batches = Math.ceil(nTrain / bs);
    const random = rg.mulberry32(1);
    const epoch = async (limit) => {
      model.train();
      const perm = Int32Array.from({ length: nTrain }, (_, i) => i);
      for (let i = nTrain - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [perm[i], perm[j]] = [perm[j], perm[i]];
      }
      let loss;
      for (let i = 0; i < limit; i++) {
        const idx = rg.tensor(perm.subarray(i * bs, Math.min(nTrain, (i + 1) * bs)), [Math.min(bs, nTrain - i * bs)]);
        optimizer.zeroGrad();
        loss = lossFn.forward(model.forward(x.indexSelect(0, idx)), y.indexSelect(0, idx));
        loss.backward();
        optimizer.step();
      }
      await loss.data();
    };
    out.workloads[name] = await timeEpochs({ epoch, batches, repeats: 1, budget });
  }
  return out;
}

// ---- peers, in child processes ----
function child(label, cmd, args, env) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, timeout: 900_000, maxBuffer: 1 << 24 });
  if (r.error) return { missing: `${label}: ${r.error.code === 'ENOENT' ? `${cmd} not found` : r.error.message}` };
  const line = r.stdout.trim().split('\n').pop();
  try {
    return JSON.parse(line);
  } catch {
    return { missing: `${label}: ${peerFailure(r.stderr, r.status)}` };
  }
}

const python = '/usr/bin/python3';
const baseEnv = { ...process.env };
delete baseEnv.OPENBLAS_CORETYPE;
delete baseEnv.OPENBLAS_L2_SIZE;
let blas = 'unknown';
try {
  blas = readlinkSync('/etc/alternatives/libblas.so.3-x86_64-linux-gnu');
} catch {}
const openblas = /openblas/.test(blas);
const torchConfigs = [
  ['torch (OpenBLAS SkylakeX, 1 BLAS thread, 2 torch threads)', { OPENBLAS_CORETYPE: 'SkylakeX', OPENBLAS_NUM_THREADS: '1' }, ['--threads', '2']],
  ['torch (OpenBLAS SkylakeX, 2 BLAS threads)', { OPENBLAS_CORETYPE: 'SkylakeX', OPENBLAS_NUM_THREADS: '2' }, []],
  ['torch (Debian defaults)', {}, []],
];
// PyTorch's CPU tensors come from glibc's malloc. With its default thresholds, blocks above the (adaptive) mmap
// threshold are mapped and unmapped at every step, and the pages are faulted in again: W4 alone ran 3.5× slower that way
// (12.7k against 44.2k tokens/s), and a process that had freed large blocks before (W1–W3 in the same process) did not.
// So W4 runs in a process of its own for each configuration (what a user's script gets), and once more with the
// thresholds raised (PyTorch's best case).
const MALLOC_RAISED = { MALLOC_MMAP_THRESHOLD_: String(2 ** 32), MALLOC_TRIM_THRESHOLD_: String(2 ** 32) };
const TORCH_BEST_W4 = 'torch (1 BLAS + 2 torch threads, malloc thresholds raised)';
const OPENBLAS = 'OpenBLAS sgemm (numpy, SkylakeX, 2 threads)';

/** A peer's arguments for workloads `names`, with or without the GEMM sizes and the batch-1 latency: one round. */
const argsFor = (names, { gemm, latency: lat }) => [
  '--data', dataDir, '--repeats', '1', '--budget', String(budget), '--workloads', names.join(','),
  '--gemm', gemm ? GEMM_SIZES.join(',') : '', ...(lat ? [] : ['--no-latency']),
];
const w4Args = argsFor(['W4'], { gemm: false, latency: false });
const otherNames = workloadNames.filter((w) => w !== 'W4');
const otherArgs = argsFor(otherNames, { gemm: gemmWanted, latency });
const torchOthers = otherNames.length > 0 || gemmWanted || latency;

// The runners of one round, in order: [label, function returning one round's result, first round only].
const runners = [
  ['retrograd cpu', () => retrograd('cpu', { gemm: gemmWanted && { sizes: GEMM_SIZES, shapes: true } })],
];
if (mnistNames.length) runners.push(['retrograd cpu (hand-written loop)', () => retrogradLoop()]);
// Mixed precision (rg.autocast('bfloat16')) on W2 and W4, where the CPU has AVX512-BF16: against float32 above.
const BF16_RUNNER = 'retrograd cpu, rg.autocast bfloat16';
const bf16Names = workloadNames.filter((n) => n === 'W2' || n === 'W4');
const bf16Products = rg.backends().find((b) => b.name === 'cpu')?.detail.bf16Products;
if (bf16Names.length && bf16Products === 'avx512bf16')
  runners.push([BF16_RUNNER, () => rg.autocast('bfloat16', () => retrograd('cpu', { gemm: false, names: bf16Names, latency: false }))]);
if (!skip.has('reference')) runners.push(['retrograd reference', () => retrograd('reference', { gemm: gemmWanted && { sizes: [64, 128, 256] } }), true]);
if (!skip.has('torch')) {
  const torch = (label, args, extra, env) => child(label, python, [join(here, 'peers/torch_cpu.py'), ...args, ...extra, '--gemm-seconds', String(GEMM_SECONDS)], { ...baseEnv, ...env });
  for (const [label, env, extra] of torchConfigs) {
    runners.push([label, () => {
      const r = torchOthers ? torch(label, otherArgs, extra, env) : { workloads: {} };
      if (gptNames.length && !r.missing) {
        const w4 = torch(`${label} W4`, w4Args, extra, env);
        if (w4.missing) r.missingW4 = w4.missing;
        else r.workloads = { ...r.workloads, ...w4.workloads };
      }
      return r;
    }]);
  }
  if (gptNames.length) {
    const [label, env, extra] = torchConfigs[0];
    runners.push([TORCH_BEST_W4, () => torch(`${label} W4, malloc thresholds raised`, w4Args, extra, { ...env, ...MALLOC_RAISED })]);
  }
  if (gemmWanted) {
    const shapes = GEMM_SHAPES.map(([, M, N, K, op]) => `${M},${N},${K},${op}`).join(';');
    runners.push([OPENBLAS, () => child('OpenBLAS', python, [join(here, 'peers/openblas_gemm.py'), GEMM_SIZES.join(','), '--shapes', shapes, '--seconds', String(GEMM_SECONDS)],
      { ...baseEnv, OPENBLAS_CORETYPE: 'SkylakeX', OPENBLAS_NUM_THREADS: '2' })]);
  }
}
if (!skip.has('tfjs')) {
  for (const backend of ['cpu', 'wasm']) {
    const args = [join(here, 'peers/tfjs.mjs'), '--backend', backend, ...argsFor(workloadNames, { gemm: gemmWanted, latency })];
    runners.push([`tfjs ${backend}`, () => child(`tfjs ${backend}`, process.execPath, args, process.env), true]);
  }
}

const machine = { cpu: os.cpus()[0].model, cpus: os.cpus().length, flags: cpuFlags(), node: process.version, blas, fmaPeak: fmaPeak() };
const samples = new Map(runners.map(([label]) => [label, []]));
for (let round = 0; round < rounds; round++) {
  for (const [label, run, once] of runners) {
    if (once && round > 0) continue;
    log(`round ${round + 1}/${rounds}: ${label}…`);
    samples.get(label).push(await run());
  }
}
rmSync(dataDir, { recursive: true, force: true });

/** One runner's rounds merged: every figure the median of the rounds, with its spread under `range`. */
function merge(list) {
  const missing = list.find((r) => r.missing);
  if (missing) return { missing: missing.missing, rounds: list.length };
  const out = { ...list[0], rounds: list.length, workloads: {}, range: {} };
  const keep = (key, values) => {
    const s = spread(values);
    if (!s) return undefined;
    out.range[key] = [s.min, s.max];
    return s.median;
  };
  for (const n of workloadNames) {
    const ws = list.map((r) => r.workloads?.[n]).filter(Boolean);
    if (!ws.length) continue;
    const w = { ...ws[ws.length - 1] };
    if (WORKLOADS[n].gpt) w.tokensPerSecond = keep(`${n} tokensPerSecond`, ws.map((x) => x.tokensPerSecond));
    else w.seconds = keep(`${n} seconds`, ws.map((x) => x.seconds));
    w.estimated = ws.find((x) => x.estimated)?.estimated ?? null;
    w.accuracy = ws.map((x) => x.accuracy).find((a) => a) ?? null;
    out.workloads[n] = w;
  }
  if (list.some((r) => r.latency_us !== undefined)) out.latency_us = keep('latency_us', list.map((r) => r.latency_us));
  for (const field of ['gemm', 'shapes']) {
    const all = list.map((r) => r[field]).filter(Boolean);
    if (!all.length) continue;
    out[field] = {};
    for (const k of Object.keys(all[0])) out[field][k] = keep(`${field} ${k}`, all.map((g) => g[k]));
  }
  const w4 = list.find((r) => r.missingW4);
  if (w4) out.missingW4 = w4.missingW4;
  return out;
}
const results = { date: new Date().toISOString(), machine, rounds, runners: {} };
for (const [label, list] of samples) results.runners[label] = merge(list);

// ---- the table ----
const rgc = results.runners['retrograd cpu'];
const fmt = (v, d = 2) => (v === undefined || v === null ? '—' : typeof v === 'number' ? v.toFixed(d) : String(v));
const pad = (s, n) => String(s).padEnd(n);
const withRange = (r, key, v, d) => {
  const range = r.range?.[key];
  return range && r.rounds > 1 ? `${fmt(v, d)} [${fmt(range[0], d)}–${fmt(range[1], d)}]` : fmt(v, d);
};
const lines = [];
const peak = machine.fmaPeak;
lines.push(`retrograd benchmark — ${machine.cpu}, ${machine.cpus} CPUs, Node ${process.version}, ${results.date.slice(0, 16)}`);
lines.push(`CPU features: ${machine.flags.join(' ') || 'unknown'}`);
lines.push(`measured FMA peak (float32, ${peak.isa ?? '—'}): ${peak.missing ?? `${fmt(peak.oneThread, 0)} GFLOP/s on one thread, ${fmt(peak.allThreads, 0)} on ${peak.threads}`}`);
lines.push(`retrograd cpu: ${rgc.detail?.isa}, ${rgc.detail?.threads} threads; PyTorch BLAS: ${blas}${openblas ? '' : '  (reference BLAS: apt-get install libopenblas0-pthread for PyTorch at its real speed)'}`);
lines.push(`${rounds} interleaved round${rounds > 1 ? 's' : ''}: each figure is the median, [min–max] of the rounds.`);
lines.push('');
const describe = {
  W1: 'W1 = MLP 784-256-128-10, batch 64, Adam',
  W2: 'W2 = MLP 784-1024-1024-10, batch 256, SGD momentum',
  W3: 'W3 = CNN conv 5×5 1→32, pool 2, conv 5×5 32→64, pool 2, Linear 3136→10, batch 64, Adam',
  W4: 'W4 = tiny GPT vocab 96, context 64, embedding 128, 4 heads, 2 blocks, MLP ×4, batch 32×64 tokens, AdamW',
};
// W1–W3 are timed per epoch (s/ep, lower is faster), W4 per step (tokens/s, higher is faster)
const speed = (n, r) => (WORKLOADS[n].gpt ? r?.workloads?.[n]?.tokensPerSecond : r?.workloads?.[n]?.seconds && 1 / r.workloads[n].seconds);
const goals = []; // [what, measured, goal, held]
const goal = (what, measured, target, unit = '×') => {
  if (typeof measured !== 'number' || !Number.isFinite(measured)) return goals.push(`${pad(what, 64)} not measured (goal ≥ ${target}${unit})`);
  goals.push(`${pad(what, 64)} ${measured.toFixed(2)}${unit} (goal ≥ ${target}${unit}): ${measured >= target ? 'held' : 'NOT held'}`);
};
if (workloadNames.length || latency) {
  const said = [];
  if (mnistNames.length) said.push(`${mnistNames.map((n) => describe[n]).join('; ')}. s/epoch on 8,000 MNIST digits, test accuracy on 2,000.`);
  if (gptNames.length) said.push(`${gptNames.map((n) => describe[n]).join('; ')}: training tokens/s (B·T / the median step), loss after the timed steps (not compared).`);
  lines.push(said.join(' '));
  const compared = [...workloadNames, ...(latency ? ['latency'] : [])];
  const cw = rounds > 1 ? 22 : 9;
  const heads = workloadNames.map((n) => (WORKLOADS[n].gpt ? `${pad(`${n} tok/s`, cw)} ${pad('loss', 6)} ` : `${pad(`${n} s/ep`, cw)} ${pad('acc', 6)} `));
  lines.push(`${pad('runner', 58)} ${heads.join('')}${latency ? `${pad('1-row µs', cw)} ` : ''}rg faster: ${compared.join(' / ')}`);
  const notes = [];
  const ratio = (a, b) => (a && b ? `${(a / b).toFixed(2)}×` : '—');
  let few = false;
  for (const [label, r] of Object.entries(results.runners)) {
    if (!r.workloads && !r.missing) continue;
    if (r.missing) {
      lines.push(`${pad(label, 58)} missing: ${r.missing}`);
      continue;
    }
    const cells = workloadNames.map((n) => {
      const w = r.workloads[n];
      if (w?.unsupported) notes.push(`${label} ${n}: not supported: ${w.unsupported}`);
      if (!w || w.unsupported) return `${pad(w ? 'n/s' : '—', cw)} ${pad('—', 6)} `;
      if (WORKLOADS[n].gpt) {
        const short = w.samples < 20; // the budget allowed fewer than 20 timed steps
        few ||= short;
        return `${pad(withRange(r, `${n} tokensPerSecond`, w.tokensPerSecond, 0) + (short ? '†' : ''), cw)} ${pad(fmt(w.loss, 3), 6)} `;
      }
      return `${pad(withRange(r, `${n} seconds`, w.seconds, 3) + (w.estimated ? '*' : ''), cw)} ${pad(w.accuracy ? (100 * w.accuracy).toFixed(1) : '—', 6)} `;
    });
    const ratios = [...workloadNames.map((n) => ratio(speed(n, rgc), speed(n, r))), ...(latency ? [ratio(r.latency_us, rgc.latency_us)] : [])];
    const once = r.rounds === 1 && rounds > 1 ? '  (1 round)' : '';
    lines.push(`${pad(label, 58)} ${cells.join('')}${latency ? `${pad(r.latency_us === undefined ? '—' : withRange(r, 'latency_us', r.latency_us, 1), cw)} ` : ''}${label === 'retrograd cpu' ? '(baseline)' : ratios.join(' / ')}${once}`);
  }
  if (Object.values(results.runners).some((r) => Object.values(r.workloads ?? {}).some((w) => w.estimated)))
    lines.push('(* estimated from the first batches of an epoch: a full epoch would not fit the time budget)');
  if (few) lines.push('(† median of fewer than 20 steps: more would not fit the time budget)');
  for (const note of notes) lines.push(`(n/s ${note})`);
  const torchRuns = Object.entries(results.runners).filter(([l, r]) => l.startsWith('torch') && r.workloads);
  if (torchRuns.length) {
    results.summary = {};
    const loop = results.runners['retrograd cpu (hand-written loop)'];
    const GOALS = { W1: 3, W2: 1.3, W3: 1.5, W4: 2 };
    for (const n of workloadNames) {
      // W4's goal is against PyTorch at its best malloc settings; W1–W3 against the fastest configuration
      const best = Math.max(...torchRuns.map(([, r]) => speed(n, r) || 0));
      const speedup = speed(n, rgc) / best;
      results.summary[`${n.toLowerCase()}Speedup`] = speedup;
      goal(WORKLOADS[n].gpt ? `${n} (a hand-written loop) against PyTorch at its best malloc settings` : `${n} through fit against the fastest PyTorch`, speedup, GOALS[n]);
      if (loop?.workloads?.[n]) {
        results.summary[`${n.toLowerCase()}LoopSpeedup`] = speed(n, loop) / best;
        goal(`${n} through a hand-written loop against the fastest PyTorch`, speed(n, loop) / best, GOALS[n]);
      }
    }
    const plain = torchRuns.filter(([l]) => !l.includes('malloc'));
    if (gptNames.length && plain.length < torchRuns.length) {
      const speedup = speed('W4', rgc) / Math.max(...plain.map(([, r]) => speed('W4', r) || 0));
      results.summary.w4SpeedupDefaultMalloc = speedup;
      lines.push(`W4 against the fastest PyTorch configuration with glibc's default malloc thresholds (a script that trains only the GPT): ${speedup.toFixed(2)}× faster`);
    }
    if (latency) {
      results.summary.latencyRatio = Math.min(...torchRuns.map(([, r]) => r.latency_us).filter((v) => v)) / rgc.latency_us;
      goal('batch-1 latency, times lower than the fastest PyTorch', results.summary.latencyRatio, 2);
    }
  }
  for (const [label, r] of Object.entries(results.runners)) if (r.missingW4) lines.push(`(${label}: W4 missing: ${r.missingW4})`);
  // mixed precision against retrograd's own float32, PyTorch or not
  const b16 = results.runners[BF16_RUNNER];
  for (const n of bf16Names) {
    if (!b16?.workloads?.[n]) continue;
    results.summary ??= {};
    results.summary[`${n.toLowerCase()}Bf16Speedup`] = speed(n, b16) / speed(n, rgc);
    goal(`${n} under rg.autocast('bfloat16') against retrograd's float32`, speed(n, b16) / speed(n, rgc), 1.5);
  }
  if (bf16Names.length && bf16Products !== 'avx512bf16') lines.push('(rg.autocast: not measured, this CPU has no AVX512-BF16: products stay float32)');
}
if (gemmWanted) {
  lines.push('');
  const gw = rounds > 1 ? 22 : 8;
  lines.push(pad('GEMM GFLOP/s, n×n×n float32', 58) + GEMM_SIZES.map((n) => pad(n, gw)).join(''));
  for (const [label, r] of Object.entries(results.runners)) {
    const g = r.missing && !(workloadNames.length || latency) ? r : r.gemm; // missing peers are listed once
    if (!g) continue;
    if (g.missing) {
      lines.push(`${pad(label, 58)} missing: ${g.missing}`);
      continue;
    }
    lines.push(pad(label, 58) + GEMM_SIZES.map((n) => pad(g[n] === undefined ? '—' : withRange(r, `gemm ${n}`, g[n], 1), gw)).join(''));
  }
  const ob = results.runners[OPENBLAS];
  if (ob?.gemm) {
    lines.push(pad('retrograd cpu / OpenBLAS', 58) + GEMM_SIZES.map((n) => pad(rgc.gemm[n] && ob.gemm[n] ? `${(rgc.gemm[n] / ob.gemm[n]).toFixed(2)}×` : '—', gw)).join(''));
    for (const n of GEMM_SIZES) goal(`GEMM ${n}×${n}×${n} against OpenBLAS`, rgc.gemm[n] / ob.gemm[n], n >= 256 ? 1 : 0.8);
  }
  if (rgc.shapes) {
    lines.push('');
    lines.push(`${pad('GEMM GFLOP/s at the workloads\' shapes (M×N×K op)', 58)} ${pad('retrograd cpu', gw)} ${pad('OpenBLAS', gw)} rg / OpenBLAS`);
    for (const s of GEMM_SHAPES) {
      const key = shapeKey(s), mine = rgc.shapes[key], theirs = ob?.shapes?.[key];
      lines.push(`${pad(`${s[0]}: ${key}`, 58)} ${pad(withRange(rgc, `shapes ${key}`, mine, 1), gw)} ${pad(theirs === undefined ? '—' : withRange(ob, `shapes ${key}`, theirs, 1), gw)} ${mine && theirs ? `${(mine / theirs).toFixed(2)}×` : '—'}`);
      if (theirs) goal(`GEMM ${key} (${s[0]}) against OpenBLAS`, mine / theirs, 1);
    }
  }
  // W2's products against the measured GEMM peak: its arithmetic per epoch over its time (the first layer's input
  // gradient is not computed)
  const w2 = rgc.workloads?.W2;
  if (w2?.seconds && !w2.estimated && rgc.gemm) {
    const sizes = WORKLOADS.W2.sizes;
    let perSample = 0;
    for (let i = 0; i + 1 < sizes.length; i++) perSample += 2 * sizes[i] * sizes[i + 1] * (i === 0 ? 2 : 3);
    const gflops = (perSample * split.yTrain.length) / w2.seconds / 1e9;
    const gemmPeak = Math.max(...Object.values(rgc.gemm).filter((v) => v));
    results.summary = { ...results.summary, w2Gflops: gflops, w2OfGemmPeak: gflops / gemmPeak };
    lines.push(`W2 through fit: ${gflops.toFixed(0)} GFLOP/s, ${(100 * gflops / gemmPeak).toFixed(0)}% of retrograd's best GEMM in this run (${gemmPeak.toFixed(0)})`);
    goal('W2 arithmetic rate, % of the measured GEMM peak', (100 * gflops) / gemmPeak, 80, '%');
  }
}
if (goals.length) {
  lines.push('');
  lines.push('Goals (bench/run.mjs), measured in this run:');
  lines.push(...goals);
}
console.log(lines.join('\n'));

mkdirSync(resultsDir(here), { recursive: true });
const file = join(resultsDir(here), `cpu-${machine.cpu.replace(/[^A-Za-z0-9]+/g, '-').replace(/-+$/, '')}${partial ? '-partial' : ''}.json`);
writeFileSync(file, JSON.stringify({ ...results, table: lines }, null, 2));
console.log(`\nresults: ${file}`);

// the application examples' steps against their PyTorch twins (bench/apps.mjs: its own table and results file)
if (only.has('apps')) {
  console.log('');
  const r = spawnSync(process.execPath, [join(here, 'apps.mjs'), '--rounds', String(rounds), ...(skip.has('torch') ? ['--skip', 'torch'] : [])], { stdio: 'inherit' });
  if (r.status !== 0) process.exitCode = r.status ?? 1;
}
