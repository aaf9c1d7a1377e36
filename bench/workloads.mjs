// The benchmark workloads, defined once for every runner (retrograd here, the peers in bench/peers/).
//   W1: MLP 784-256-128-10, ReLU, batch 64, Adam lr 1e-3
//   W2: MLP 784-1024-1024-10, ReLU, batch 256, SGD lr 0.05 momentum 0.9
//   W3: CNN conv(1→32, 5×5, pad 2)-ReLU-maxpool 2-conv(32→64, 5×5, pad 2)-ReLU-maxpool 2-Linear(64·7·7→10),
//       input [N, 1, 28, 28], batch 64, Adam lr 1e-3 (the main job's `--model cnn`)
//   W4: tiny GPT (examples/text.mjs's tinyGpt): vocab 96, context 64, embedding 128, 4 heads, 2 pre-norm causal
//       blocks, MLP ratio 4; batch 32 sequences of 64 random tokens with next-token targets, AdamW lr 3e-4 (weight
//       decay 0.01), cross-entropy over the [B·T, vocab] logits
// W1–W3 train on the main job's MNIST split (8,000 training digits) and report test accuracy on its 2,000; W4 is
// timed per training step (tokens/s = B·T / median step) and reports its loss after the timed steps.
// An MLP workload has `sizes`; a convolutional one has `cnn` (channels, kernel, padding, pool, classes); the
// language model has `gpt` (tinyGpt's options).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tinyGpt } from '../examples/text.mjs';

export const WORKLOADS = {
  W1: { sizes: [784, 256, 128, 10], batchSize: 64, optimizer: { name: 'adam', lr: 1e-3 } },
  W2: { sizes: [784, 1024, 1024, 10], batchSize: 256, optimizer: { name: 'sgd', lr: 0.05, momentum: 0.9 } },
  W3: { cnn: { channels: [1, 32, 64], kernel: 5, padding: 2, pool: 2, classes: 10 }, batchSize: 64, optimizer: { name: 'adam', lr: 1e-3 } },
  W4: { gpt: { vocab: 96, contextLength: 64, embedDim: 128, numHeads: 4, numLayers: 2, mlpRatio: 4 }, batchSize: 32, optimizer: { name: 'adamw', lr: 3e-4 } },
};

/** The input features of the CNN's last Linear layer: channels × (28 / pool^convs)² (64·7·7 = 3136 for W3). */
export function cnnFlatSize(cnn) {
  const side = 28 / cnn.pool ** (cnn.channels.length - 1);
  return cnn.channels.at(-1) * side * side;
}

export const GEMM_SIZES = [64, 128, 256, 512, 1024, 2048];

/**
 * The products the workloads run, as [label, M, N, K, op]: op 'NT' is C = A·Bᵀ (a Linear's forward, B its [out, in]
 * weight), 'NN' C = A·B (its input gradient), 'TN' C = Aᵀ·B (its weight gradient). W3's is one image's convolution
 * product (OC × OH·OW × C·KH·KW, the column matrix in the role of B).
 * @type {[label: string, M: number, N: number, K: number, op: 'NN' | 'NT' | 'TN'][]}
 */
export const GEMM_SHAPES = [
  ['W1 fc1 forward', 64, 256, 784, 'NT'],
  ['W1 fc2 input grad', 64, 256, 128, 'NN'],
  ['W1 fc1 weight grad', 256, 784, 64, 'TN'],
  ['W2 fc1 forward', 256, 1024, 784, 'NT'],
  ['W2 fc2 forward', 256, 1024, 1024, 'NT'],
  ['W2 fc2 input grad', 256, 1024, 1024, 'NN'],
  ['W2 fc2 weight grad', 1024, 1024, 256, 'TN'],
  ['W3 conv2 product', 64, 196, 800, 'NN'],
  ['W4 qkv forward', 2048, 384, 128, 'NT'],
  ['W4 mlp down input grad', 2048, 512, 128, 'NN'],
  ['W4 mlp up weight grad', 512, 128, 2048, 'TN'],
];
/**
 * A GEMM shape's key in results files: "M×N×K op".
 * @param {[string, number, number, number, string]} shape
 */
export const shapeKey = ([, M, N, K, op]) => `${M}×${N}×${K} ${op}`;

/** { median, min, max, samples } of a list of numbers (null when it is empty). */
export function spread(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x));
  return v.length ? { median: median(v), min: Math.min(...v), max: Math.max(...v), samples: v } : null;
}

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

/**
 * `count` batches of W4's data from `random` (a generator in [0, 1)): per sequence T + 1 uniform token ids, x the
 * first T and y the next token at every position. Int32Array x [B·T] and y [B·T]. bench/peers/torch_*.py draw theirs
 * with torch's generator: only the speed is compared.
 */
export function tokenBatches(w, count, random) {
  const { vocab, contextLength: T } = w.gpt, B = w.batchSize;
  return Array.from({ length: count }, () => {
    const x = new Int32Array(B * T), y = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      let prev = Math.floor(vocab * random());
      for (let t = 0; t < T; t++) {
        const next = Math.floor(vocab * random());
        x[b * T + t] = prev;
        y[b * T + t] = next;
        prev = next;
      }
    }
    return { x, y };
  });
}

/**
 * Seconds per training step, for W4. `step()` queues one step and returns its loss; `read(loss)` waits for
 * everything queued and returns the number. A sample is `group` steps then one read (1 on the CPU, where each step
 * ends in a read as in fit; more on a GPU, which is not synchronised every step). `warmup` samples first (fewer once
 * they take a quarter of the budget), then at least `minSamples` and more until `seconds` have passed (`maxSamples`
 * at most), all within `budget`: a runner that needs seconds per step (the reference backend, 9 s on W4) gets fewer
 * samples, one at least. bench/peers/torch_cpu.py and torch_gpu.py mirror this.
 */
export async function timeSteps({ step, read, group = 1, warmup = 3, minSamples = 20, seconds = 5, maxSamples = 1000, budget = 30 }) {
  const sample = async () => {
    let loss;
    for (let i = 0; i < group; i++) loss = step();
    return read(loss);
  };
  const tw = performance.now();
  const firstLoss = await sample();
  for (let i = 1; i < warmup && (performance.now() - tw) / 1000 < budget / 4; i++) await sample();
  const times = [];
  let loss, spent = 0;
  while (times.length === 0 || (times.length < minSamples ? spent < budget : spent < Math.min(seconds, budget) && times.length < maxSamples)) {
    const t = performance.now();
    loss = await sample();
    const s = (performance.now() - t) / 1000;
    times.push(s / group);
    spent += s;
  }
  return { secondsPerStep: median(times), samples: times.length, stepsPerSample: group, firstLoss, loss };
}

/**
 * Workload W4 on the library module `rg` and its current backend: tinyGpt, AdamW, cross-entropy over the
 * [B·T, vocab] logits, in a plain loop (no fit) over 8 batches of random tokens held on the backend. Returns
 * tokensPerSecond (B·T / the median step) with timeSteps' figures; `group`: steps between two reads.
 */
export async function trainGpt(rg, w, { budget = 30, group = 1, seconds } = {}) {
  const { vocab, contextLength: T } = w.gpt, B = w.batchSize;
  rg.manualSeed(1);
  // a hand-written loop that keeps no step's outputs: the layers and the loss reuse their buffers, as inside fit
  const model = tinyGpt(rg, w.gpt).reuseOutputs();
  const optimizer = new rg.AdamW(model.parameters(), { lr: w.optimizer.lr });
  const loss = new rg.CrossEntropyLoss().reuseOutputs();
  const data = tokenBatches(w, 8, rg.mulberry32(4)).map(({ x, y }) => [rg.tensor(x, [B, T]), rg.tensor(y, [B * T])]);
  let i = 0;
  const step = () => {
    const [x, y] = data[i++ % data.length];
    const logits = model.forward(x);
    const l = loss.forward(logits.reshape([B * T, vocab]), y);
    model.zeroGrad();
    model.backward(loss.backward().reshape([B, T, vocab]));
    optimizer.step();
    return l;
  };
  try {
    const r = await timeSteps({ step, read: async (l) => (await l.data())[0], group, budget, ...(seconds ? { seconds } : {}) });
    return { tokensPerSecond: (B * T) / r.secondsPerStep, tokensPerStep: B * T, ...r };
  } finally {
    for (const t of data.flat()) t.dispose();
  }
}

/**
 * Why a peer's child process gave no result, from its stderr: the error line itself (not the runtime's trailing
 * "Node.js v20…" banner or a traceback's last frame), with missing packages named as such.
 */
export function peerFailure(stderr, status) {
  const lines = String(stderr ?? '').split('\n').map((l) => l.trim()).filter(Boolean);
  for (const l of lines) {
    const pkg = /Cannot find (?:package|module) '([^']+)'/.exec(l) ?? /No module named '([^']+)'/.exec(l);
    if (pkg) return `${pkg[1]} is not installed`;
  }
  const error = lines.find((l) => /^(\w*Error|\w+Exception|error)\b[:\s]/.test(l)) ?? lines.find((l) => /Error: /.test(l));
  return (error ?? (status === null ? 'killed (time limit)' : `exit ${status}${lines.length ? `: ${lines[lines.length - 1]}` : ''}`)).slice(0, 200);
}

/**
 * Where results files go: bench/results/ in the source repository; the current directory's retrograd-bench/
 * when the bench runs from an installed package (never inside node_modules).
 */
export function resultsDir(here) {
  return here.split(/[\\/]/).includes('node_modules') ? join(process.cwd(), 'retrograd-bench') : join(here, 'results');
}
