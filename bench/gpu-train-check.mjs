#!/usr/bin/env node
// Training checks of the CUDA backend (bench/gpu-check.sh runs it; run with --expose-gc for exact memory figures):
//   1. W1 (784-256-128-10, Adam 1e-3, batch 64) learns 10 Gaussian blobs in 784-d (8,000 training samples) in 2
//      epochs: test accuracy on 2,000 more must be > 90%; device bytes in use after epoch 1 and after epoch 2
//      must be the same (no growth per epoch).
//   2. 20 steps of a small MLP (32-64-64-10, batch 64), of a small CNN with every convolutional layer, of an LSTM and a
//      GRU, and of a causal transformer block, on cuda
//      and on cpu from the same initial weights and data:
//      SGD with momentum must agree to a relative difference < 1e-3 (max |Δw| / max |w| per tensor); Adam's
//      figure is printed for information (its normalised step amplifies rounding in near-zero gradients).
// Exit status 1 when a check fails.
//   node --expose-gc bench/gpu-train-check.mjs [--backend cuda] [--against cpu]
import { parseArgs } from 'node:util';
import * as rg from '../dist/index.js';
import { buildModel } from './workloads.mjs';
// the library's seeded generator (mulberry32), so that every run and every backend sees the same data
import { mulberry32 as rng } from '../dist/data/split.js';

const { values: opt } = parseArgs({ options: { backend: { type: 'string', default: 'cuda' }, against: { type: 'string', default: 'cpu' } } });
const device = opt.backend;
const failures = [];
const check = (ok, what) => {
  console.log(`${ok ? 'PASS' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
};

/** Box–Muller. */
function normal(r) {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}
/** n points of `classes` Gaussian blobs in d dimensions: centres N(0, scale²), unit noise. */
function blobs(n, d, classes, scale, seed) {
  const r = rng(seed);
  const centres = Float32Array.from({ length: classes * d }, () => scale * normal(r));
  const x = new Float32Array(n * d), y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = (y[i] = Math.floor(r() * classes));
    for (let j = 0; j < d; j++) x[i * d + j] = centres[c * d + j] + normal(r);
  }
  return { x, y, n, d };
}
function split(all, nTrain) {
  const { x, y, d } = all;
  return [
    { x: x.subarray(0, nTrain * d), y: y.subarray(0, nTrain), n: nTrain, d },
    { x: x.subarray(nTrain * d), y: y.subarray(nTrain), n: all.n - nTrain, d },
  ];
}
const mlp = (sizes) => buildModel(rg, { sizes });
const mib = (b) => `${(b / 2 ** 20).toFixed(2)} MiB`;

// ---- 1. W1 on blobs: accuracy and memory per epoch ----
async function w1Blobs() {
  rg.setBackend(device);
  // centres 0.15·N(0,1) in 784-d: ~5.9 apart, so about 98% is reachable and 90% is a real bar
  const [train, test] = split(blobs(10000, 784, 10, 0.15, 42), 8000);
  rg.manualSeed(1);
  const model = mlp([784, 256, 128, 10]);
  model.compile({ optimizer: new rg.Adam(model.parameters(), { lr: 1e-3 }), loss: new rg.CrossEntropyLoss(), metrics: ['accuracy'] });
  const x = rg.tensor(train.x, [train.n, 784]), y = rg.tensor(train.y, [train.n]);
  const xt = rg.tensor(test.x, [test.n, 784]), yt = rg.tensor(test.y, [test.n]);
  const last = model.parameters().at(-1).value;
  const after = [];
  for (let epoch = 1; epoch <= 2; epoch++) {
    const t = performance.now();
    const h = await model.fit(x, y, { epochs: 1, batchSize: 64, shuffle: true, verbose: 0 });
    await last.data();
    globalThis.gc?.();
    await new Promise((r) => setImmediate(r)); // let finalizers run
    const m = rg.memory();
    after.push(m);
    console.log(`epoch ${epoch}: loss ${h.history.loss[0].toFixed(4)}, train accuracy ${(100 * h.history.accuracy[0]).toFixed(2)}%, ${((performance.now() - t) / 1000).toFixed(3)} s; memory: deviceBytesInUse ${m.deviceBytesInUse} (${mib(m.deviceBytesInUse)}), deviceBytesCached ${mib(m.deviceBytesCached)}, tensors ${m.tensors}, bytes ${m.bytes}`);
  }
  const acc = (await model.evaluate(xt, yt)).accuracy;
  check(acc > 0.9, `W1 on 10 Gaussian blobs (784-d, 8,000 samples), 2 epochs on ${device}: test accuracy ${(100 * acc).toFixed(2)}% (must be > 90%)`);
  const [m1, m2] = after;
  // a leak of one batch's activations per step would add megabytes per epoch; allow allocator rounding only
  const grow = m2.deviceBytesInUse - m1.deviceBytesInUse;
  check(grow <= 256 * 1024, `device memory in use after epoch 1 ${m1.deviceBytesInUse} B, after epoch 2 ${m2.deviceBytesInUse} B (growth ${grow} B, must be <= 256 KiB)`);
  if (m1.deviceBytesInUse === 0 && m2.deviceBytesInUse === 0) console.log(`note: rg.memory().deviceBytesInUse is 0: the ${device} backend reports no device memory`);
  check(m2.tensors <= m1.tensors, `live tensors after epoch 1 ${m1.tensors}, after epoch 2 ${m2.tensors} (must not grow)`);
  for (const t of [x, y, xt, yt]) t.dispose();
}

// ---- 2. the same 20 steps on two backends ----
// A small CNN with every convolutional layer: input [N, 1, 16, 16].
const cnn = () =>
  new rg.Sequential([
    new rg.Conv2d(1, 8, 3, { padding: 1 }), new rg.BatchNorm2d(8), new rg.ReLU(), new rg.MaxPool2d(2),
    new rg.Conv2d(8, 16, 3, { stride: 2, padding: 1, dilation: 1 }), new rg.ReLU(), new rg.AvgPool2d(2), new rg.Flatten(), new rg.Linear(64, 10),
  ]);
// Sequence models on [N, 4, 8] (the same 32 features as 4 steps of 8): an LSTM then a GRU, and a causal transformer block.
const recurrent = () =>
  new rg.Sequential([new rg.LSTM(8, 16, { batchFirst: true }), new rg.GRU(16, 16, { batchFirst: true }), new rg.Flatten(), new rg.Linear(64, 10)]);
const transformer = () =>
  new rg.Sequential([new rg.Linear(8, 16), new rg.TransformerBlock(16, 2, { causal: true }), new rg.Flatten(), new rg.Linear(64, 10)]);
const MODELS = {
  recurrent: { build: recurrent, d: 32, shape: (n) => [n, 4, 8], label: 'LSTM(8, 16) → GRU(16, 16) → Linear' },
  transformer: { build: transformer, d: 32, shape: (n) => [n, 4, 8], label: 'Linear → causal TransformerBlock(16, 2 heads) → Linear' },
  mlp: { build: () => mlp([32, 64, 64, 10]), d: 32, shape: (n) => [n, 32], label: 'MLP 32-64-64-10' },
  cnn: { build: cnn, d: 256, shape: (n) => [n, 1, 16, 16], label: 'CNN conv-batchnorm-maxpool-conv(stride 2)-avgpool-linear' },
};

async function twentySteps(backend, kind, init, data, optimizerName) {
  rg.setBackend(backend);
  const model = MODELS[kind].build();
  model.loadStateDict(init);
  const optimizer = optimizerName === 'adam' ? new rg.Adam(model.parameters(), { lr: 1e-3 }) : new rg.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
  model.compile({ optimizer, loss: new rg.CrossEntropyLoss() });
  const x = rg.tensor(data.x, MODELS[kind].shape(data.n)), y = rg.tensor(data.y, [data.n]);
  const h = await model.fit(x, y, { epochs: 1, batchSize: 64, shuffle: false, verbose: 0 }); // 1,280 rows: 20 steps
  const w = Object.fromEntries(Object.entries(model.stateDict()).map(([k, t]) => [k, t.toArray()]));
  x.dispose();
  y.dispose();
  return { w, loss: h.history.loss[0] };
}

async function crossBackend(kind) {
  const data = blobs(20 * 64, MODELS[kind].d, 10, 1, 7);
  let against = opt.against;
  try {
    rg.setBackend(against);
  } catch (e) {
    console.log(`note: backend '${against}' unavailable (${e.message}); comparing against 'reference'`);
    against = 'reference';
    rg.setBackend(against);
  }
  rg.manualSeed(7);
  const init = Object.fromEntries(Object.entries(MODELS[kind].build().stateDict()).map(([k, t]) => [k, t.toArray()]));
  for (const name of ['sgd', 'adam']) {
    const a = await twentySteps(device, kind, init, data, name), b = await twentySteps(against, kind, init, data, name);
    let worst = 0, where = '';
    for (const [k, wb] of Object.entries(b.w)) {
      const wa = a.w[k];
      let diff = 0, scale = 0;
      for (let i = 0; i < wb.length; i++) {
        diff = Math.max(diff, Math.abs(wa[i] - wb[i]));
        scale = Math.max(scale, Math.abs(wb[i]));
      }
      const rel = Number.isFinite(diff) ? diff / (scale || 1) : Infinity;
      if (!(rel <= worst)) [worst, where] = [rel, k];
    }
    const what = `20 steps of ${MODELS[kind].label} with ${name === 'sgd' ? 'SGD momentum 0.9' : 'Adam'} on ${device} vs ${against}: max relative weight difference ${worst.toExponential(2)} (at ${where}); mean loss ${a.loss.toFixed(6)} vs ${b.loss.toFixed(6)}`;
    if (name === 'sgd') check(worst < 1e-3, `${what} (must be < 1e-3)`);
    else console.log(`INFO ${what}`);
  }
}

const parts = [['W1 blobs', w1Blobs], ...['mlp', 'cnn', 'recurrent', 'transformer'].map((kind) => [`cross-backend steps, ${kind}`, () => crossBackend(kind)])];
for (const [label, part] of parts) {
  try {
    await part();
  } catch (e) {
    check(false, `${label}: ${e instanceof Error ? `${e.name}${e.code ? ` ${e.code}` : ''}: ${e.message}` : String(e)}`);
  }
}
console.log(failures.length ? `gpu-train-check: ${failures.length} FAILED` : 'gpu-train-check: all passed');
process.exitCode = failures.length ? 1 : 0;
