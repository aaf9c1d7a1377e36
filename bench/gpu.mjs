#!/usr/bin/env node
// retrograd's GPU benchmark: retrograd on its 'cuda' backend against PyTorch (bench/peers/torch_gpu.py) on the
// same card in the same run.
//   W1, W2 (bench/workloads.mjs): seconds per epoch over N = 8,000 samples, the data on the GPU, shuffled each
//     epoch; a warm-up epoch, then the median of several; milliseconds per step. Matrix products in exact float32.
//   W4 (bench/workloads.mjs, the tiny GPT): training tokens/s on random tokens held on the GPU, a plain loop (no fit);
//     warm-up, then the median of >= 20 samples of 10 steps between two reads of the loss; ms per step, the loss.
//   GEMM n×n×n (default 1024, 2048, 4096, 8192): the backend's matmul kernel itself, exact float32 and, after
//     rg.setMatmulPrecision('tf32'), TF32; each checked first against a float64 host product (all four
//     transpose cases and alpha/beta, outputs poisoned with NaN), then timed: median of >= 20 samples of
//     several calls between two syncs.
// Data: the raw files exportSplit writes (--data DIR), or the main job's MNIST split (--mnist), else synthetic
// uniform [0, 1) pixels and uniform labels from a fixed seed. PyTorch gets the same options and the same files.
// Prints the side-by-side table LAST and writes everything to <out>/gpu-<card>.json (and the table to
// <out>/gpu-table.txt). A part that fails is reported and the others still run; the exit status is 1 if any did.
//   node bench/gpu.mjs [--out DIR] [--data DIR | --mnist] [--epochs 5] [--quick] [--gemm 1024,4096] [--no-torch]
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as rg from '../dist/index.js';
// The GEMM table times the backend's kernel itself, as bench/run.mjs does: the public API has no raw matmul.
import { backendByName } from '../dist/backend.js';
// the library's seeded generator (mulberry32), so that every run trains on the same synthetic data
import { mulberry32 as rng } from '../dist/data/split.js';
import { buildModel, exportSplit, median, trainGpt, WORKLOADS } from './workloads.mjs';

const here = new URL('.', import.meta.url).pathname;
const { values: opt } = parseArgs({
  options: {
    out: { type: 'string', default: join(here, 'results') },
    data: { type: 'string' },
    mnist: { type: 'boolean', default: false },
    n: { type: 'string', default: '8000' },
    epochs: { type: 'string', default: '5' },
    budget: { type: 'string', default: '30' },
    quick: { type: 'boolean', default: false },
    gemm: { type: 'string' },
    reps: { type: 'string', default: '30' },
    'no-torch': { type: 'boolean', default: false },
    python: { type: 'string', default: 'python3' },
    'torch-timeout': { type: 'string', default: '240' },
    backend: { type: 'string', default: 'cuda' }, // another one only to try this script without a GPU
  },
});
const N = Number(opt.n), budget = Number(opt.budget);
const epochs = opt.quick ? Math.min(3, Number(opt.epochs)) : Number(opt.epochs);
const gemmSizes = (opt.gemm ?? (opt.quick ? '4096' : '1024,2048,4096,8192')).split(',').filter(Boolean).map(Number);
const reps = Math.max(20, Number(opt.reps));
const backendName = opt.backend;
const log = (...a) => console.error('[gpu]', ...a);
const errText = (e) => (e instanceof Error ? `${e.name}${e.code ? ` ${e.code}` : ''}: ${e.message}` : String(e));
const errors = {};
function fail(part, e) {
  errors[part] = errText(e);
  console.error(`[gpu] ${part} FAILED: ${errors[part]}`);
}

// ---- data ----
function readRaw(file, Type) {
  const buf = readFileSync(file);
  return new Type(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}
function loadRaw(dir, n) {
  const x = readRaw(join(dir, 'xTrain.f32'), Float32Array), y = readRaw(join(dir, 'yTrain.i32'), Int32Array);
  if (x.length !== y.length * 784) throw new RangeError(`${dir}: xTrain.f32 holds ${x.length} floats, expected ${y.length}×784`);
  const m = Math.min(n, y.length);
  const data = { x: x.subarray(0, m * 784), y: y.subarray(0, m), n: m, source: `${dir} (first ${m} of ${y.length})` };
  if (existsSync(join(dir, 'xTest.f32')) && existsSync(join(dir, 'yTest.i32'))) {
    data.xt = readRaw(join(dir, 'xTest.f32'), Float32Array);
    data.yt = readRaw(join(dir, 'yTest.i32'), Int32Array);
  }
  return data;
}
function synthetic(n, seed) {
  const r = rng(seed);
  const x = Float32Array.from({ length: n * 784 }, r), y = Int32Array.from({ length: n }, () => Math.floor(10 * r()));
  return { x, y, n, source: `synthetic: uniform [0,1) pixels, uniform labels, seed ${seed}` };
}
/** Standard normal samples (Box–Muller). */
function randn(count, seed) {
  const r = rng(seed), out = new Float32Array(count);
  for (let i = 0; i < count; i += 2) {
    const u = 1 - r(), v = r(), m = Math.sqrt(-2 * Math.log(u));
    out[i] = m * Math.cos(2 * Math.PI * v);
    if (i + 1 < count) out[i + 1] = m * Math.sin(2 * Math.PI * v);
  }
  return out;
}

// ---- retrograd: W1, W2 (MLPs), W3 (the CNN) ----
async function train(name, data) {
  const w = WORKLOADS[name];
  rg.manualSeed(1);
  const model = buildModel(rg, w);
  const sample = w.cnn ? [1, 28, 28] : [784];
  const o = w.optimizer;
  const optimizer = o.name === 'adam' ? new rg.Adam(model.parameters(), { lr: o.lr }) : new rg.SGD(model.parameters(), { lr: o.lr, momentum: o.momentum });
  model.compile({ optimizer, loss: new rg.CrossEntropyLoss(), metrics: ['accuracy'] });
  const x = rg.tensor(data.x, [data.n, ...sample]), y = rg.tensor(data.y, [data.n]);
  const last = model.parameters().at(-1).value;
  const steps = Math.ceil(data.n / w.batchSize);
  let loss;
  const epoch = async () => {
    const t = performance.now();
    const h = await model.fit(x, y, { epochs: 1, batchSize: w.batchSize, shuffle: true, verbose: 0 });
    await last.data(); // everything queued by the epoch (the last optimizer step too) has run
    loss = h.history.loss[0];
    return (performance.now() - t) / 1000;
  };
  const warmupSeconds = await epoch();
  const times = [];
  while (times.length < epochs && (times.length === 0 || times.reduce((a, b) => a + b, 0) < budget)) times.push(await epoch());
  const seconds = median(times);
  const r = { seconds, msPerStep: (1000 * seconds) / steps, steps, batchSize: w.batchSize, epochs: times, warmupSeconds, lastEpochLoss: loss };
  if (data.xt) {
    const xt = rg.tensor(data.xt, [data.yt.length, ...sample]), yt = rg.tensor(data.yt, [data.yt.length]);
    r.testAccuracy = (await model.evaluate(xt, yt)).accuracy;
    xt.dispose();
    yt.dispose();
  }
  x.dispose();
  y.dispose();
  log(`retrograd ${name}: ${seconds.toFixed(4)} s/epoch, ${r.msPerStep.toFixed(3)} ms/step over ${times.length} epochs (warm-up ${warmupSeconds.toFixed(3)} s)`);
  return r;
}

// ---- retrograd: W4 (the tiny GPT) ----
const GPT_GROUP = 10; // steps between two reads of the loss: no host sync per step (bench/peers/torch_gpu.py: the same)
async function trainGptTimed(name) {
  const r = await trainGpt(rg, WORKLOADS[name], { budget, group: GPT_GROUP, seconds: opt.quick ? 2 : 4 });
  r.msPerStep = 1000 * r.secondsPerStep;
  log(`retrograd ${name}: ${r.tokensPerSecond.toFixed(0)} tokens/s, ${r.msPerStep.toFixed(3)} ms/step over ${r.samples}×${GPT_GROUP} steps, loss ${r.firstLoss.toFixed(3)} → ${r.loss.toFixed(3)}`);
  return r;
}

// ---- retrograd: GEMM ----
/** Normwise relative errors of the backend's matmul against float64 on the host, 257×129×300 (odd sizes). */
function checkMatmul(b) {
  const M = 257, N = 129, K = 300;
  const cases = [[false, false, 1, 0], [true, false, 1, 0], [false, true, 1, 0], [true, true, 1, 0], [false, false, 0.5, 2]];
  const a = randn(M * K, 11), bm = randn(K * N, 12), c0 = randn(M * N, 13);
  const out = {};
  for (const [ta, tb, alpha, beta] of cases) {
    const ref = new Float64Array(M * N);
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += (ta ? a[k * M + i] : a[i * K + k]) * (tb ? bm[j * K + k] : bm[k * N + j]);
        ref[i * N + j] = alpha * s + beta * c0[i * N + j];
      }
    const A = b.fromHost(a), B = b.fromHost(bm);
    const C = b.fromHost(beta === 0 ? new Float32Array(M * N).fill(NaN) : c0); // beta 0 must ignore what is there
    b.k.matmul(C, A, B, M, N, K, ta, tb, alpha, beta);
    const got = b.read(C);
    let num = 0, den = 0;
    for (let i = 0; i < M * N; i++) {
      num += (got[i] - ref[i]) ** 2;
      den += ref[i] ** 2;
    }
    for (const buf of [A, B, C]) b.dispose(buf);
    const e = Math.sqrt(num / den);
    out[`${ta ? 'T' : 'N'}${tb ? 'T' : 'N'} alpha=${alpha} beta=${beta}`] = Number.isFinite(e) ? e : String(e);
  }
  return out;
}

/** `count` values of the pool from `start`, wrapping round (a subarray when they fit). */
function fromPool(pool, start, count) {
  start %= pool.length;
  if (start + count <= pool.length) return pool.subarray(start, start + count);
  const out = new Float32Array(count);
  for (let i = 0; i < count; ) {
    const part = pool.subarray(start, Math.min(pool.length, start + count - i));
    out.set(part, i);
    i += part.length;
    start = 0;
  }
  return out;
}

/** TFLOP/s of n×n×n, and the seconds of one call. */
function timeGemm(b, n, pool) {
  const A = b.fromHost(fromPool(pool, 0, n * n)), B = b.fromHost(fromPool(pool, n * n + 12345, n * n)), C = b.alloc('float32', n * n);
  try {
    const call = () => b.k.matmul(C, A, B, n, n, n, false, false, 1, 0);
    call();
    b.sync();
    let t = performance.now();
    call();
    b.sync();
    const once = (performance.now() - t) / 1000;
    // several calls between two syncs, so that the launch and the sync are spread out: >= ~10 ms a sample
    const inner = Math.max(1, Math.min(200, Math.ceil(0.01 / Math.max(once, 1e-6))));
    const samples = [];
    for (let r = 0; r < reps; r++) {
      t = performance.now();
      for (let i = 0; i < inner; i++) call();
      b.sync();
      samples.push((performance.now() - t) / 1000 / inner);
    }
    return { tflops: (2 * n ** 3) / median(samples) / 1e12, once };
  } finally {
    for (const buf of [A, B, C]) b.dispose(buf);
  }
}

function gemm(b) {
  const res = { fp32: {}, tf32: {}, relError: {}, ok: true };
  const maxN = Math.max(...gemmSizes);
  // never time on zeros; 2·4096² normal values at most (8192² would take seconds to draw), repeated beyond
  const pool = randn(2 * Math.min(maxN, 4096) ** 2, 5);
  for (const [mode, precision, tol] of [['fp32', 'highest', 1e-4], ['tf32', 'tf32', 1e-3]]) {
    rg.setMatmulPrecision(precision);
    try {
      const errs = checkMatmul(b);
      const worst = Math.max(...Object.values(errs).map((e) => (typeof e === 'number' ? e : Infinity)));
      res.relError[mode] = { worst, tolerance: tol, cases: errs };
      log(`matmul ${mode} check (257×129×300, 4 transposes, alpha/beta): worst normwise relative error ${worst.toExponential(2)} (must be < ${tol})`);
      if (!(worst < tol)) {
        res.ok = false;
        fail(`matmul ${mode} check`, new Error(`normwise relative error ${worst} >= ${tol}: ${JSON.stringify(errs)}`));
      }
      let prev; // [n, seconds of one call] of the last size timed
      for (const n of [...gemmSizes].sort((x, y) => x - y)) {
        // a slow kernel must not eat the run: skip a size whose samples would take over 15 s
        const projected = prev ? reps * prev[1] * (n / prev[0]) ** 3 : 0;
        if (projected > 15) {
          log(`retrograd GEMM ${n} ${mode}: skipped (about ${projected.toFixed(0)} s projected)`);
          res[mode][n] = `skipped: ${projected.toFixed(0)} s projected`;
          continue;
        }
        try {
          const { tflops, once } = timeGemm(b, n, pool);
          res[mode][n] = tflops;
          prev = [n, once];
          log(`retrograd GEMM ${n} ${mode}: ${tflops.toFixed(2)} TFLOP/s`);
        } catch (e) {
          fail(`GEMM ${n} ${mode}`, e);
        }
      }
    } finally {
      rg.setMatmulPrecision('highest');
    }
  }
  const fp32Err = res.relError.fp32?.worst, tf32Err = res.relError.tf32?.worst;
  // TF32 keeps 10 mantissa bits: its error at K = 300 is ~1e-4, float32's ~1e-7
  res.tf32Effective = tf32Err !== undefined && fp32Err !== undefined ? tf32Err > Math.max(1e-5, 10 * fp32Err) : null;
  if (res.tf32Effective === false) log('note: with setMatmulPrecision(\'tf32\') the kernel is as exact as in float32: TF32 seems not in effect');
  return res;
}

// ---- PyTorch, in a child process ----
function torchPeer(args) {
  return new Promise((done) => {
    const script = join(here, 'peers', 'torch_gpu.py');
    log(`${opt.python} ${script} ${args.join(' ')}`);
    const child = spawn(opt.python, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 1000 * Number(opt['torch-timeout']));
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => {
      err += d;
      process.stderr.write(d);
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      done({ error: e.code === 'ENOENT' ? `${opt.python} not found` : errText(e) });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      try {
        done(JSON.parse(out.trim().split('\n').pop()));
      } catch {
        const last = err.trim().split('\n').pop();
        done({ error: `${signal ? `killed by ${signal}` : `exit ${code}`}${last ? `: ${last.slice(0, 300)}` : ''}` });
      }
    });
  });
}

function cardName() {
  try {
    const name = execFileSync('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader'], { encoding: 'utf8', timeout: 20_000, stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0].trim();
    if (name) return name;
  } catch {}
  const d = rg.backends().find((b) => b.name === 'cuda')?.detail ?? {};
  return String(d.device ?? d.name ?? d.deviceName ?? 'unknown GPU');
}

// ---- the run ----
const results = { date: new Date().toISOString(), node: process.version, host: os.hostname(), options: { n: N, epochs, budget, gemm: gemmSizes, reps, quick: opt.quick } };
results.card = cardName();
let dataDir = opt.data ? resolve(opt.data) : undefined, tmpDir;
if (!dataDir && opt.mnist) {
  try {
    tmpDir = mkdtempSync(join(os.tmpdir(), 'retrograd-gpu-'));
    exportSplit(rg.mnistSplit(), tmpDir);
    dataDir = tmpDir;
  } catch (e) {
    results.dataNote = `MNIST unavailable, synthetic data instead: ${errText(e)}`; // a note: the timings still hold
    log(results.dataNote);
  }
}
let data;
try {
  data = dataDir ? loadRaw(dataDir, N) : synthetic(N, 2024);
  results.data = data.source;
  log(`data: ${data.source}`);
} catch (e) {
  fail('data', e);
}

const mine = { workloads: {} };
results.retrograd = mine;
mine.backend = rg.backends().find((b) => b.name === backendName);
let cuda;
try {
  rg.setBackend(backendName);
  cuda = backendByName(backendName);
  mine.backend = rg.backends().find((b) => b.name === backendName);
  log(`retrograd ${backendName}: ${JSON.stringify(mine.backend.detail)}`);
} catch (e) {
  fail(`retrograd ${backendName} backend`, e);
}
if (cuda) {
  for (const name of Object.keys(WORKLOADS)) {
    if (!data && !WORKLOADS[name].gpt) continue; // W4 trains on random tokens of its own
    try {
      mine.workloads[name] = WORKLOADS[name].gpt ? await trainGptTimed(name) : await train(name, data);
    } catch (e) {
      fail(`retrograd ${name}`, e);
    }
  }
  try {
    mine.gemm = gemm(cuda);
  } catch (e) {
    fail('retrograd GEMM', e);
  }
  try {
    mine.memory = rg.memory();
  } catch {}
}

if (!opt['no-torch']) {
  const args = ['--n', String(N), '--epochs', String(epochs), '--budget', String(budget), '--gemm', gemmSizes.join(','), '--reps', String(reps)];
  if (dataDir) args.push('--data', dataDir);
  results.torch = await torchPeer(args);
  if (results.torch.error) fail('PyTorch', results.torch.error);
  for (const [part, e] of Object.entries(results.torch.errors ?? {})) errors[`PyTorch ${part}`] = e;
}
if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
results.errors = errors;

// ---- the table, LAST ----
const th = results.torch ?? {};
const rows = [
  ['W1 s/epoch', mine.workloads.W1?.seconds, th.workloads?.W1?.seconds, 'time', 4],
  ['W2 s/epoch', mine.workloads.W2?.seconds, th.workloads?.W2?.seconds, 'time', 4],
  ['W1 ms/step', mine.workloads.W1?.msPerStep, th.workloads?.W1?.msPerStep, 'time', 3],
  ['W2 ms/step', mine.workloads.W2?.msPerStep, th.workloads?.W2?.msPerStep, 'time', 3],
  ['W3 (CNN) s/epoch', mine.workloads.W3?.seconds, th.workloads?.W3?.seconds, 'time', 4],
  ['W3 (CNN) ms/step', mine.workloads.W3?.msPerStep, th.workloads?.W3?.msPerStep, 'time', 3],
  ['W4 (GPT) tokens/s', mine.workloads.W4?.tokensPerSecond, th.workloads?.W4?.tokensPerSecond, 'rate', 0],
  ['W4 (GPT) ms/step', mine.workloads.W4?.msPerStep, th.workloads?.W4?.msPerStep, 'time', 3],
  ['GEMM 4096 fp32 TFLOP/s', mine.gemm?.fp32?.[4096], th.gemm?.fp32?.['4096'], 'rate', 2],
  ['GEMM 4096 tf32 TFLOP/s', mine.gemm?.tf32?.[4096], th.gemm?.tf32?.['4096'], 'rate', 2],
];
for (const n of gemmSizes.filter((s) => s !== 4096))
  for (const mode of ['fp32', 'tf32']) rows.push([`GEMM ${n} ${mode} TFLOP/s`, mine.gemm?.[mode]?.[n], th.gemm?.[mode]?.[String(n)], 'rate', 2]);
const fmt = (v, d) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(d) : '—');
const pad = (s, n) => String(s).padEnd(n);
const lines = [];
lines.push(`== retrograd ${backendName} vs PyTorch ${th.torch ?? '(missing)'} on ${results.card}, ${results.date.slice(0, 16)}; data: ${results.data ?? 'none'}`);
lines.push(`${pad('', 26)}${pad('retrograd', 12)}${pad('PyTorch', 12)}ratio (>1: retrograd faster)`);
results.table = [];
for (const [label, r, t, kind, d] of rows) {
  const ratio = typeof r === 'number' && typeof t === 'number' && r > 0 && t > 0 ? (kind === 'time' ? t / r : r / t) : undefined;
  results.table.push({ label, retrograd: r ?? null, torch: t ?? null, ratio: ratio ?? null });
  lines.push(`${pad(label, 26)}${pad(fmt(r, d), 12)}${pad(fmt(t, d), 12)}${ratio === undefined ? '—' : `${ratio.toFixed(2)}×`}`);
}
const acc = (w) => (typeof w?.testAccuracy === 'number' ? `${(100 * w.testAccuracy).toFixed(1)}%` : null);
if (acc(mine.workloads.W1) || acc(th.workloads?.W1))
  lines.push(`test accuracy after the runs: W1 ${acc(mine.workloads.W1) ?? '—'} / ${acc(th.workloads?.W1) ?? '—'}, W2 ${acc(mine.workloads.W2) ?? '—'} / ${acc(th.workloads?.W2) ?? '—'} (retrograd / PyTorch)`);
if (typeof mine.workloads.W4?.loss === 'number' || typeof th.workloads?.W4?.loss === 'number')
  lines.push(`W4 loss after the timed steps: ${fmt(mine.workloads.W4?.loss, 3)} / ${fmt(th.workloads?.W4?.loss, 3)} (retrograd / PyTorch; random tokens: ln 96 = 4.564)`);
if (mine.gemm?.relError)
  lines.push(`matmul check, worst normwise relative error: fp32 ${fmt(mine.gemm.relError.fp32?.worst, 9)}, tf32 ${fmt(mine.gemm.relError.tf32?.worst, 9)}${mine.gemm.tf32Effective === false ? ' (TF32 NOT in effect)' : ''}`);
for (const [part, e] of Object.entries(errors)) lines.push(`FAILED ${part}: ${e.split('\n')[0].slice(0, 200)}`);

const file = join(resolve(opt.out), `gpu-${results.card.replace(/^NVIDIA\s+/i, '').replace(/[^A-Za-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'unknown'}.json`);
try {
  mkdirSync(resolve(opt.out), { recursive: true });
  writeFileSync(file, JSON.stringify({ ...results, lines }, null, 2));
  writeFileSync(join(resolve(opt.out), 'gpu-table.txt'), `${lines.join('\n')}\n`);
  lines.push(`results: ${file}`);
} catch (e) {
  lines.push(`FAILED writing ${file}: ${errText(e)}`);
}
console.log(lines.join('\n'));
process.exitCode = Object.keys(errors).length ? 1 : 0;
