// retrograd's benchmark harness: `npm run bench`. In ONE run, on the same data and models, it measures
// retrograd (cpu and reference backends) against PyTorch CPU (Debian's python3-torch, in three thread/BLAS
// configurations), OpenBLAS's sgemm (through numpy) and TensorFlow.js (tfjs-backend-cpu and -wasm):
//   GEMM GFLOP/s at n = 64…2048; W1, W2 (MLPs) and W3 (CNN) seconds per epoch (median) with test accuracy;
//   W4 (tiny GPT) training tokens/s (median step) with its loss; batch-1 latency.
// Prints a table of ratios measured in this run and writes JSON to bench/results/.
// A peer that is missing is reported as missing, never dropped silently.
//   node bench/run.mjs [--repeats 3] [--budget 30] [--skip torch,tfjs,reference] [--only W3,latency,gemm]
// --only measures just the listed parts (workloads W1 W2 W3 W4, 'latency', 'gemm', 'apps' — bench/apps.mjs): `--only W3 --skip tfjs,reference`
// times the CNN for retrograd cpu and the PyTorch configurations alone.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as rg from 'retrograd';
import { backendByName } from '../dist/backend.js';
import { buildModel, exportSplit, GEMM_SIZES, medianSeconds, peerFailure, resultsDir, timeEpochs, trainGpt, WORKLOADS } from './workloads.mjs';

const { values } = parseArgs({
  options: { repeats: { type: 'string', default: '3' }, budget: { type: 'string', default: '30' }, skip: { type: 'string', default: '' }, only: { type: 'string' } },
});
const repeats = Number(values.repeats), budget = Number(values.budget);
const skip = new Set(values.skip.split(',').filter(Boolean));
const parts = [...Object.keys(WORKLOADS), 'latency', 'gemm', 'apps'];
const only = values.only === undefined ? new Set(parts) : new Set(values.only.split(',').map((s) => s.trim()).filter(Boolean));
const unknown = [...only].find((p) => !parts.includes(p));
if (unknown !== undefined || only.size === 0) {
  console.error(`bench/run.mjs: --only takes a list of ${parts.join(', ')}; got '${values.only}'`);
  process.exit(1);
}
const workloadNames = Object.keys(WORKLOADS).filter((n) => only.has(n));
const partial = skip.size > 0 || only.size < parts.length;
const here = new URL('.', import.meta.url).pathname;
const log = (...a) => console.error('[bench]', ...a);

const split = rg.mnistSplit();
const dataDir = mkdtempSync(join(os.tmpdir(), 'retrograd-bench-'));
exportSplit(split, dataDir);

// ---- retrograd, in this process ----
async function retrograd(backend, gemmSizes) {
  rg.setBackend(backend);
  const out = { backend, detail: rg.backends().find((b) => b.name === backend).detail, workloads: {} };
  const nTrain = split.yTrain.length;
  const y = rg.tensor(split.yTrain, [nTrain]), yt = rg.tensor(split.yTest, [split.yTest.length]);
  for (const name of workloadNames) {
    const w = WORKLOADS[name];
    if (w.gpt) {
      const r = await trainGpt(rg, w, { budget });
      out.workloads[name] = r;
      log(`retrograd ${backend} ${name}: ${r.tokensPerSecond.toFixed(0)} tokens/s (${(1000 * r.secondsPerStep).toFixed(1)} ms/step, median of ${r.samples}), loss ${r.firstLoss.toFixed(3)} → ${r.loss.toFixed(3)}`);
      continue;
    }
    const sample = w.cnn ? [1, 28, 28] : [784]; // the CNN sees each digit as a 1×28×28 image
    const x = rg.tensor(split.xTrain, [nTrain, ...sample]), xt = rg.tensor(split.xTest, [split.yTest.length, ...sample]);
    rg.manualSeed(1);
    const model = buildModel(rg, w);
    const o = w.optimizer;
    const optimizer = o.name === 'adam' ? new rg.Adam(model.parameters(), { lr: o.lr }) : new rg.SGD(model.parameters(), { lr: o.lr, momentum: o.momentum });
    model.compile({ optimizer, loss: new rg.CrossEntropyLoss(), metrics: ['accuracy'] });
    const batches = Math.ceil(nTrain / w.batchSize);
    const subsets = new Map();
    const epoch = async (limit) => {
      let xs = x, ys = y;
      if (limit < batches) {
        const n = limit * w.batchSize;
        if (!subsets.has(n)) subsets.set(n, [rg.tensor(split.xTrain.subarray(0, n * 784), [n, ...sample]), rg.tensor(split.yTrain.subarray(0, n), [n])]);
        [xs, ys] = subsets.get(n);
      }
      await model.fit(xs, ys, { epochs: 1, batchSize: w.batchSize, verbose: 0 });
    };
    const r = await timeEpochs({ epoch, batches, repeats, budget });
    r.accuracy = r.estimated ? null : (await model.evaluate(xt, yt)).accuracy;
    out.workloads[name] = r;
    log(`retrograd ${backend} ${name}: ${r.seconds.toFixed(3)} s/epoch${r.estimated ? ` (estimated ${r.estimated})` : ''}`);
  }
  if (only.has('latency')) {
    rg.manualSeed(1);
    const model = buildModel(rg, WORKLOADS.W1).eval();
    const one = rg.tensor(split.xTest.subarray(0, 784), [1, 784]);
    out.latency_us = 1e6 * medianSeconds(() => model.forward(one).toArray(), { minRuns: 50, ms: 2000, maxRuns: 5000, warmup: 200 });
  }
  if (!only.has('gemm')) return out;
  out.gemm = {};
  const b = backendByName(backend);
  for (const n of gemmSizes) {
    const data = Float32Array.from({ length: n * n }, (_, i) => Math.sin(i));
    const A = b.fromHost(data), B = b.fromHost(data.reverse()), C = b.alloc('float32', n * n);
    const seconds = medianSeconds(() => { b.k.matmul(C, A, B, n, n, n, false, false, 1, 0); b.sync(); });
    out.gemm[n] = (2 * n ** 3) / seconds / 1e9;
    if (seconds > 2) break;
  }
  return out;
}

// ---- peers, in child processes ----
function child(label, cmd, args, env) {
  log(`${label}…`);
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

const results = { date: new Date().toISOString(), machine: { cpu: os.cpus()[0].model, cpus: os.cpus().length, node: process.version, blas }, runners: {} };
// What every peer measures: the selected workloads, the batch-1 latency and the GEMM sizes, or none of them.
/** A peer's arguments for workloads `names`, with or without the GEMM sizes and the batch-1 latency. */
const argsFor = (names, { gemm, latency }) => [
  '--data', dataDir, '--repeats', String(repeats), '--budget', String(budget), '--workloads', names.join(','),
  '--gemm', gemm ? GEMM_SIZES.join(',') : '', ...(latency ? [] : ['--no-latency']),
];
const peerArgs = argsFor(workloadNames, { gemm: only.has('gemm'), latency: only.has('latency') });
// W4 alone, as a script that trains only the tiny GPT runs it.
const w4Args = argsFor(['W4'], { gemm: false, latency: false });
const otherArgs = argsFor(workloadNames.filter((w) => w !== 'W4'), { gemm: only.has('gemm'), latency: only.has('latency') });
// PyTorch's CPU tensors come from glibc's malloc. With its default thresholds, blocks above the (adaptive) mmap
// threshold are mapped and unmapped at every step, and the pages are faulted in again: W4 alone ran 3.5× slower that way
// (12.7k against 44.2k tokens/s), and a process that had freed large blocks before (W1–W3 in the same process) did not.
// So W4 runs in a process of its own for each configuration (what a user's script gets), and once more with the
// thresholds raised (PyTorch's best case).
const MALLOC_RAISED = { MALLOC_MMAP_THRESHOLD_: String(2 ** 32), MALLOC_TRIM_THRESHOLD_: String(2 ** 32) };
results.runners['retrograd cpu'] = await retrograd('cpu', GEMM_SIZES);
if (!skip.has('reference')) results.runners['retrograd reference'] = await retrograd('reference', [64, 128, 256]);
if (!skip.has('torch')) {
  const torch = (label, args, extra, env) => child(label, python, [join(here, 'peers/torch_cpu.py'), ...args, ...extra], { ...baseEnv, ...env });
  const others = workloadNames.some((w) => w !== 'W4') || only.has('gemm') || only.has('latency');
  for (const [label, env, extra] of torchConfigs) {
    const r = others ? torch(label, otherArgs, extra, env) : { workloads: {} };
    if (workloadNames.includes('W4') && !r.missing) {
      const w4 = torch(`${label} W4`, w4Args, extra, env);
      if (w4.missing) r.missingW4 = w4.missing;
      else r.workloads = { ...r.workloads, ...w4.workloads };
    }
    results.runners[label] = r;
  }
  if (workloadNames.includes('W4')) {
    const [label, env, extra] = torchConfigs[0];
    results.runners['torch (1 BLAS + 2 torch threads, malloc thresholds raised)'] = torch(`${label} W4, malloc thresholds raised`, w4Args, extra, { ...env, ...MALLOC_RAISED });
  }
  if (only.has('gemm'))
    results.runners['OpenBLAS sgemm (numpy, SkylakeX, 2 threads)'] = { gemm: child('OpenBLAS', python, [join(here, 'peers/openblas_gemm.py'), GEMM_SIZES.join(',')], { ...baseEnv, OPENBLAS_CORETYPE: 'SkylakeX', OPENBLAS_NUM_THREADS: '2' }) };
}
if (!skip.has('tfjs')) {
  for (const backend of ['cpu', 'wasm'])
    results.runners[`tfjs ${backend}`] = child(`tfjs ${backend}`, process.execPath, [join(here, 'peers/tfjs.mjs'), '--backend', backend, ...peerArgs], process.env);
}
rmSync(dataDir, { recursive: true, force: true });

// ---- the table ----
const rgc = results.runners['retrograd cpu'];
const fmt = (v, d = 2) => (v === undefined || v === null ? '—' : typeof v === 'number' ? v.toFixed(d) : String(v));
const pad = (s, n) => String(s).padEnd(n);
const lines = [];
lines.push(`retrograd benchmark — ${results.machine.cpu}, ${results.machine.cpus} CPUs, Node ${process.version}, ${results.date.slice(0, 16)}`);
lines.push(`retrograd cpu: ${rgc.detail.isa}, ${rgc.detail.threads} threads; PyTorch BLAS: ${blas}${openblas ? '' : '  (reference BLAS: apt-get install libopenblas0-pthread for PyTorch at its real speed)'}`);
lines.push('');
const describe = {
  W1: 'W1 = MLP 784-256-128-10, batch 64, Adam',
  W2: 'W2 = MLP 784-1024-1024-10, batch 256, SGD momentum',
  W3: 'W3 = CNN conv 5×5 1→32, pool 2, conv 5×5 32→64, pool 2, Linear 3136→10, batch 64, Adam',
  W4: 'W4 = tiny GPT vocab 96, context 64, embedding 128, 4 heads, 2 blocks, MLP ×4, batch 32×64 tokens, AdamW',
};
const GOALS = { W4: 2 }; // W4's goal: at least 2× the tokens/s of PyTorch CPU
const latency = only.has('latency');
// W1–W3 are timed per epoch (s/ep, lower is faster), W4 per step (tokens/s, higher is faster)
const gptNames = workloadNames.filter((n) => WORKLOADS[n].gpt), mnistNames = workloadNames.filter((n) => !WORKLOADS[n].gpt);
const speed = (n, r) => (WORKLOADS[n].gpt ? r?.workloads?.[n]?.tokensPerSecond : r?.workloads?.[n]?.seconds && 1 / r.workloads[n].seconds);
if (workloadNames.length || latency) {
  const said = [];
  if (mnistNames.length) said.push(`${mnistNames.map((n) => describe[n]).join('; ')}. s/epoch on 8,000 MNIST digits (median), test accuracy on 2,000.`);
  if (gptNames.length) said.push(`${gptNames.map((n) => describe[n]).join('; ')}: training tokens/s (B·T / median step), loss after the timed steps (not compared).`);
  lines.push(said.join(' '));
  const compared = [...workloadNames, ...(latency ? ['latency'] : [])];
  const heads = workloadNames.map((n) => (WORKLOADS[n].gpt ? `${pad(`${n} tok/s`, 9)} ${pad('loss', 6)} ` : `${pad(`${n} s/ep`, 9)} ${pad('acc', 6)} `));
  lines.push(`${pad('runner', 58)} ${heads.join('')}${latency ? `${pad('1-row µs', 9)} ` : ''}rg faster: ${compared.join(' / ')}`);
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
      if (!w || w.unsupported) return `${pad(w ? 'n/s' : '—', 9)} ${pad('—', 6)} `;
      if (WORKLOADS[n].gpt) {
        const short = w.samples < 20; // the budget allowed fewer than 20 timed steps
        few ||= short;
        return `${pad(fmt(w.tokensPerSecond, 0) + (short ? '†' : ''), 9)} ${pad(fmt(w.loss, 3), 6)} `;
      }
      return `${pad(fmt(w.seconds, 3) + (w.estimated ? '*' : ''), 9)} ${pad(w.accuracy ? (100 * w.accuracy).toFixed(1) : '—', 6)} `;
    });
    const ratios = [...workloadNames.map((n) => ratio(speed(n, rgc), speed(n, r))), ...(latency ? [ratio(r.latency_us, rgc.latency_us)] : [])];
    lines.push(`${pad(label, 58)} ${cells.join('')}${latency ? `${pad(fmt(r.latency_us, 1), 9)} ` : ''}${label === 'retrograd cpu' ? '(baseline)' : ratios.join(' / ')}`);
  }
  if (mnistNames.length || !gptNames.length) lines.push('(* estimated from the first batches of an epoch: a full epoch would not fit the time budget)');
  if (few) lines.push('(† median of fewer than 20 steps: more would not fit the time budget)');
  for (const note of notes) lines.push(`(n/s ${note})`);
  const torchRuns = Object.entries(results.runners).filter(([l, r]) => l.startsWith('torch') && r.workloads);
  if (torchRuns.length) {
    const best = (pick) => Math.min(...torchRuns.map(([, r]) => pick(r)).filter((v) => v));
    results.summary = {};
    const said = [];
    for (const n of workloadNames) {
      const speedup = speed(n, rgc) / Math.max(...torchRuns.map(([, r]) => speed(n, r) || 0));
      results.summary[`${n.toLowerCase()}Speedup`] = speedup;
      said.push(speedup >= 1 ? `${n} ${speedup.toFixed(2)}× faster` : `${n} ${(1 / speedup).toFixed(2)}× slower`);
      if (GOALS[n]) said[said.length - 1] += ` (goal ≥ ${GOALS[n]}×: ${speedup >= GOALS[n] ? 'met' : 'not met'})`;
    }
    if (latency) {
      results.summary.latencyRatio = best((r) => r.latency_us) / rgc.latency_us;
      said.push(`batch-1 latency ${results.summary.latencyRatio.toFixed(2)}× lower`);
    }
    lines.push(`retrograd cpu against the fastest PyTorch configuration of this run: ${said.join(', ')}`);
    const plain = torchRuns.filter(([l]) => !l.includes('malloc'));
    if (gptNames.length && plain.length < torchRuns.length) {
      const speedup = speed('W4', rgc) / Math.max(...plain.map(([, r]) => speed('W4', r) || 0));
      results.summary.w4SpeedupDefaultMalloc = speedup;
      lines.push(`W4 against the fastest PyTorch configuration with glibc's default malloc thresholds (a script that trains only the GPT): ${speedup.toFixed(2)}× faster`);
    }
  }
  for (const [label, r] of torchRuns) if (r.missingW4) lines.push(`(${label}: W4 missing: ${r.missingW4})`);
}
if (only.has('gemm')) {
  lines.push('');
  lines.push(pad('GEMM GFLOP/s, n×n×n float32', 58) + GEMM_SIZES.map((n) => pad(n, 8)).join(''));
  for (const [label, r] of Object.entries(results.runners)) {
    const g = r.missing && !(workloadNames.length || latency) ? r : r.gemm; // missing peers are listed once
    if (!g) continue;
    if (g.missing) {
      lines.push(`${pad(label, 58)} missing: ${g.missing}`);
      continue;
    }
    lines.push(pad(label, 58) + GEMM_SIZES.map((n) => pad(fmt(g[n], 1), 8)).join(''));
  }
  const ob = results.runners['OpenBLAS sgemm (numpy, SkylakeX, 2 threads)']?.gemm;
  if (ob && !ob.missing) lines.push(pad('retrograd cpu / OpenBLAS', 58) + GEMM_SIZES.map((n) => pad(rgc.gemm[n] && ob[n] ? `${(rgc.gemm[n] / ob[n]).toFixed(2)}×` : '—', 8)).join(''));
}
console.log(lines.join('\n'));

mkdirSync(resultsDir(here), { recursive: true });
const file = join(resultsDir(here), `cpu-${os.cpus()[0].model.replace(/[^A-Za-z0-9]+/g, '-').replace(/-+$/, '')}${partial ? '-partial' : ''}.json`);
writeFileSync(file, JSON.stringify({ ...results, table: lines }, null, 2));
console.log(`\nresults: ${file}`);

// the application examples' steps against their PyTorch twins (bench/apps.mjs: its own table and results file)
if (only.has('apps')) {
  console.log('');
  const r = spawnSync(process.execPath, [join(here, 'apps.mjs'), '--rounds', String(repeats), ...(skip.has('torch') ? ['--skip', 'torch'] : [])], { stdio: 'inherit' });
  if (r.status !== 0) process.exitCode = r.status ?? 1;
}
