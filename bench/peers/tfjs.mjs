// TensorFlow.js peer of retrograd's benchmark harness (bench/run.mjs runs it in a child process).
//   node bench/peers/tfjs.mjs --backend cpu|wasm --data DIR [--repeats 3] [--budget 30] [--gemm 64,128]
//                             [--workloads W1,W2,W3,W4] [--no-latency]
// cpu: tfjs-backend-cpu, the pure-JavaScript backend that @tensorflow/tfjs runs in Node without tfjs-node
// (which cannot install here: it downloads libtensorflow). wasm: tfjs-backend-wasm, single-threaded in Node.
// Same workloads as bench/workloads.mjs; the last layer carries a softmax because TF.js's
// sparseCategoricalCrossentropy takes probabilities (the same model as logits + cross-entropy). W3's images are
// channels-last [N, 28, 28, 1], TF.js's layout (with one input channel the same bytes as [N, 1, 28, 28]); its
// Flatten then orders the 64·7·7 features differently from PyTorch's, a permutation of the Linear's inputs.
// tfjs-backend-wasm has no Conv2DBackpropFilter kernel, so it cannot train W3: reported as not supported. W4 (the
// tiny GPT) is not written for TF.js (tfjs-layers has no multi-head attention layer): reported as not supported.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cnnFlatSize, GEMM_SIZES, medianSeconds, timeEpochs, WORKLOADS } from '../workloads.mjs';

const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'cpu' }, data: { type: 'string' }, repeats: { type: 'string', default: '3' },
    budget: { type: 'string', default: '30' }, gemm: { type: 'string', default: GEMM_SIZES.join(',') },
    workloads: { type: 'string', default: Object.keys(WORKLOADS).join(',') }, 'no-latency': { type: 'boolean', default: false },
  },
});
const tf = await import('@tensorflow/tfjs-core');
const tfl = await import('@tensorflow/tfjs-layers');
await import(values.backend === 'wasm' ? '@tensorflow/tfjs-backend-wasm' : '@tensorflow/tfjs-backend-cpu');
const quiet = console.warn;
console.warn = () => {};
await tf.setBackend(values.backend);
await tf.ready();
console.warn = quiet;

const read = (name, Type) => { const b = readFileSync(join(values.data, name)); return new Type(b.buffer, b.byteOffset, b.byteLength / 4); };
const meta = JSON.parse(readFileSync(join(values.data, 'meta.json'), 'utf8'));
const x = tf.tensor2d(read('xTrain.f32', Float32Array), [meta.nTrain, 784]);
const y = tf.tensor1d(Float32Array.from(read('yTrain.i32', Int32Array)));
const xt = tf.tensor2d(read('xTest.f32', Float32Array), [meta.nTest, 784]);
const yt = read('yTest.i32', Int32Array);

function mlp(sizes) {
  const layers = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    const last = i + 2 === sizes.length;
    layers.push(tfl.layers.dense({ units: sizes[i + 1], activation: last ? 'softmax' : 'relu', ...(i === 0 ? { inputShape: [sizes[0]] } : {}) }));
  }
  return tfl.sequential({ layers });
}

function cnn(c) {
  if (c.padding !== (c.kernel - 1) / 2) throw new Error(`tfjs peer: padding ${c.padding} is not 'same' for a ${c.kernel}×${c.kernel} kernel`);
  const layers = [];
  for (let i = 0; i + 1 < c.channels.length; i++) {
    const first = i === 0 ? { inputShape: [28, 28, c.channels[0]] } : {};
    layers.push(tfl.layers.conv2d({ filters: c.channels[i + 1], kernelSize: c.kernel, padding: 'same', activation: 'relu', ...first }));
    layers.push(tfl.layers.maxPooling2d({ poolSize: c.pool }));
  }
  const flatten = tfl.layers.flatten();
  layers.push(flatten, tfl.layers.dense({ units: c.classes, activation: 'softmax' }));
  const model = tfl.sequential({ layers });
  if (flatten.outputShape[1] !== cnnFlatSize(c)) throw new Error(`tfjs peer: the CNN flattens to ${flatten.outputShape[1]} features, not ${cnnFlatSize(c)}`);
  return model;
}

const out = { tfjs: tf.version_core, backend: tf.getBackend(), workloads: {} };
for (const name of values.workloads.split(',').filter(Boolean)) {
  const w = WORKLOADS[name];
  if (w.gpt) {
    out.workloads[name] = { unsupported: 'no multi-head attention layer in tfjs-layers: the TF.js peer has no tiny GPT' };
    continue;
  }
  if (w.cnn && !tf.getKernel('Conv2DBackpropFilter', tf.getBackend())) {
    out.workloads[name] = { unsupported: `no Conv2DBackpropFilter kernel in tfjs-backend-${values.backend}` };
    continue;
  }
  const sample = w.cnn ? [28, 28, 1] : [784];
  const xs0 = tf.reshape(x, [meta.nTrain, ...sample]), xt0 = tf.reshape(xt, [meta.nTest, ...sample]);
  const model = w.cnn ? cnn(w.cnn) : mlp(w.sizes);
  const o = w.optimizer;
  model.compile({ optimizer: o.name === 'adam' ? tf.train.adam(o.lr) : tf.train.momentum(o.lr, o.momentum), loss: 'sparseCategoricalCrossentropy' });
  const batches = Math.ceil(meta.nTrain / w.batchSize);
  const epoch = async (limit) => {
    const n = Math.min(meta.nTrain, limit * w.batchSize);
    const xs = n === meta.nTrain ? xs0 : tf.slice(xs0, 0, n);
    const ys = n === meta.nTrain ? y : tf.slice(y, [0], [n]);
    await model.fit(xs, ys, { epochs: 1, batchSize: w.batchSize, shuffle: true, verbose: 0 });
    if (xs !== xs0) tf.dispose([xs, ys]);
  };
  const r = await timeEpochs({ epoch, batches, repeats: Number(values.repeats), budget: Number(values.budget) });
  if (!r.estimated) {
    const pred = tf.tidy(() => tf.argMax(model.predict(xt0, { batchSize: 500 }), 1).dataSync());
    r.accuracy = pred.reduce((s, p, i) => s + (p === yt[i] ? 1 : 0), 0) / yt.length;
  } else r.accuracy = null;
  out.workloads[name] = r;
}

if (!values['no-latency']) {
  const model = mlp(WORKLOADS.W1.sizes);
  const one = tf.slice(xt, [0, 0], [1, 784]);
  out.latency_us = 1e6 * medianSeconds(() => tf.tidy(() => model.predict(one).dataSync()), { minRuns: 50, ms: 2000, maxRuns: 2000, warmup: 100 });
}

out.gemm = {};
for (const n of values.gemm.split(',').filter(Boolean).map(Number)) {
  const a = tf.randomNormal([n, n]), b = tf.randomNormal([n, n]);
  const seconds = medianSeconds(() => tf.tidy(() => tf.matMul(a, b).dataSync()), { maxRuns: 100 });
  out.gemm[n] = (2 * n ** 3) / seconds / 1e9;
  if (seconds > 3) break; // larger sizes would take minutes
}
console.log(JSON.stringify(out));
