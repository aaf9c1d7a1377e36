// The benchmark workloads, defined once for every runner (retrograd here, the peers in bench/peers/).
//   W1: MLP 784-256-128-10, ReLU, batch 64, Adam lr 1e-3
//   W2: MLP 784-1024-1024-10, ReLU, batch 256, SGD lr 0.05 momentum 0.9
//   W3: CNN conv(1→32, 5×5, pad 2)-ReLU-maxpool 2-conv(32→64, 5×5, pad 2)-ReLU-maxpool 2-Linear(64·7·7→10),
//       input [N, 1, 28, 28], batch 64, Adam lr 1e-3 (the main job's `--model cnn`)
// All train on the main job's MNIST split (8,000 training digits) and report test accuracy on its 2,000.
// An MLP workload has `sizes`; a convolutional one has `cnn` (channels, kernel, padding, pool, classes).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const WORKLOADS = {
  W1: { sizes: [784, 256, 128, 10], batchSize: 64, optimizer: { name: 'adam', lr: 1e-3 } },
  W2: { sizes: [784, 1024, 1024, 10], batchSize: 256, optimizer: { name: 'sgd', lr: 0.05, momentum: 0.9 } },
  W3: { cnn: { channels: [1, 32, 64], kernel: 5, padding: 2, pool: 2, classes: 10 }, batchSize: 64, optimizer: { name: 'adam', lr: 1e-3 } },
};

/** The input features of the CNN's last Linear layer: channels × (28 / pool^convs)² (64·7·7 = 3136 for W3). */
export function cnnFlatSize(cnn) {
  const side = 28 / cnn.pool ** (cnn.channels.length - 1);
  return cnn.channels.at(-1) * side * side;
}

export const GEMM_SIZES = [64, 128, 256, 512, 1024, 2048];

/** Writes the MNIST split as raw little-endian arrays for the peers: xTrain.f32, yTrain.i32, xTest.f32, yTest.i32. */
export function exportSplit(split, dir) {
  mkdirSync(dir, { recursive: true });
  for (const [name, arr] of Object.entries(split)) writeFileSync(join(dir, `${name}.${arr instanceof Int32Array ? 'i32' : 'f32'}`), arr);
  writeFileSync(join(dir, 'meta.json'), JSON.stringify({ nTrain: split.yTrain.length, nTest: split.yTest.length, pixels: 784 }));
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * Runs `epoch(limitBatches)` — one training epoch, or only its first `limitBatches` batches — `repeats`
 * times within `budget` seconds. When one epoch would not fit in the budget, it times a few batches and
 * scales to the full epoch (marked estimated). A runner that needs seconds for a single batch (the reference
 * backend and TF.js's CPU backend on W3: 9 s and 80 s here) is timed on one batch after one warm-up
 * batch, so that the estimate itself stays near the budget. bench/peers/torch_cpu.py mirrors this.
 */
export async function timeEpochs({ epoch, batches, repeats, budget }) {
  const probeBatches = Math.min(batches, 6);
  const tw = performance.now();
  await epoch(1);
  const first = (performance.now() - tw) / 1000;
  if (first * probeBatches > budget) {
    const t1 = performance.now();
    await epoch(1);
    return { seconds: ((performance.now() - t1) / 1000) * batches, runs: 1, estimated: `from 1 of ${batches} batches` };
  }
  const t0 = performance.now();
  await epoch(probeBatches);
  const probe = (performance.now() - t0) / 1000;
  const projected = (probe * batches) / probeBatches;
  if (projected > budget) {
    const t1 = performance.now();
    await epoch(probeBatches);
    const s = (((performance.now() - t1) / 1000) * batches) / probeBatches;
    return { seconds: s, runs: 1, estimated: `from ${probeBatches} of ${batches} batches` };
  }
  const times = [];
  for (let r = 0; r < repeats && (r === 0 || times.reduce((a, b) => a + b, 0) < budget); r++) {
    const t = performance.now();
    await epoch(batches);
    times.push((performance.now() - t) / 1000);
  }
  return { seconds: median(times), runs: times.length, estimated: null };
}

/** Median seconds of `call()` after one warm-up call: at least `minRuns` runs, then more while under `ms` and `maxRuns`. */
export function medianSeconds(call, { minRuns = 3, ms = 1500, maxRuns = 300, warmup = 1 } = {}) {
  for (let i = 0; i < warmup; i++) call();
  const times = [];
  const start = performance.now();
  while (times.length < minRuns || (performance.now() - start < ms && times.length < maxRuns)) {
    const t = process.hrtime.bigint();
    call();
    times.push(Number(process.hrtime.bigint() - t) / 1e9);
  }
  return median(times);
}

/** The retrograd model of workload `w` (an MLP, or the CNN), built with the library module `rg`. */
export function buildModel(rg, w) {
  const layers = [];
  if (w.cnn) {
    const c = w.cnn;
    for (let i = 0; i + 1 < c.channels.length; i++)
      layers.push(new rg.Conv2d(c.channels[i], c.channels[i + 1], c.kernel, { padding: c.padding }), new rg.ReLU(), new rg.MaxPool2d(c.pool));
    layers.push(new rg.Flatten(), new rg.Linear(cnnFlatSize(c), c.classes));
  } else {
    for (let i = 0; i + 1 < w.sizes.length; i++) {
      layers.push(new rg.Linear(w.sizes[i], w.sizes[i + 1]));
      if (i + 2 < w.sizes.length) layers.push(new rg.ReLU());
    }
  }
  return new rg.Sequential(layers);
}
