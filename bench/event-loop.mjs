// Event-loop responsiveness while training and serving (perf_hooks.monitorEventLoopDelay, 1 ms resolution):
// retrograd's fit on W2 (784-1024-1024-10, batch 256) and predictAsync serving batches of 64, against
// TensorFlow.js (tfjs-backend-cpu, which computes on the JavaScript thread) fitting the same model.
//   node bench/event-loop.mjs        (goal: p99 below 10 ms while retrograd trains)
import { monitorEventLoopDelay } from 'node:perf_hooks';
import * as rg from 'retrograd';

const { xTrain, yTrain } = rg.mnistSplit();
const ms = (ns) => (ns / 1e6).toFixed(2);

async function measure(label, work) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  // a timer that must keep firing, like a server's sockets
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  h.enable();
  const t = performance.now();
  await work();
  const seconds = (performance.now() - t) / 1000;
  h.disable();
  clearInterval(timer);
  console.log(`${label.padEnd(52)} ${seconds.toFixed(1).padStart(6)} s   p50 ${ms(h.percentile(50)).padStart(7)} ms   p99 ${ms(h.percentile(99)).padStart(8)} ms   max ${ms(h.max).padStart(8)} ms   5-ms timer fired ${ticks}×`);
  return { label, seconds, p50: h.percentile(50) / 1e6, p99: h.percentile(99) / 1e6, max: h.max / 1e6 };
}

const mlp = () => new rg.Sequential([new rg.Linear(784, 1024), new rg.ReLU(), new rg.Linear(1024, 1024), new rg.ReLU(), new rg.Linear(1024, 10)]);
const results = [];
rg.setBackend('cpu');
rg.manualSeed(1);
const x = rg.tensor(xTrain, [yTrain.length, 784]), y = rg.tensor(yTrain, [yTrain.length]);
const model = mlp();
model.compile({ optimizer: new rg.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 }), loss: new rg.CrossEntropyLoss() });
results.push(await measure('retrograd cpu: fit W2, 2 epochs', () => model.fit(x, y, { epochs: 2, batchSize: 256, verbose: 0 })));
const server = mlp();
const batch = rg.tensor(xTrain.subarray(0, 64 * 784), [64, 784]);
results.push(await measure('retrograd cpu: predictAsync, 500 batches of 64', async () => { for (let i = 0; i < 500; i++) await server.predictAsync(batch); }));

try {
  const tf = await import('@tensorflow/tfjs-core');
  const tfl = await import('@tensorflow/tfjs-layers');
  await import('@tensorflow/tfjs-backend-cpu');
  const warn = console.warn;
  console.warn = () => {};
  await tf.setBackend('cpu');
  console.warn = warn;
  const tm = tfl.sequential({ layers: [tfl.layers.dense({ inputShape: [784], units: 1024, activation: 'relu' }), tfl.layers.dense({ units: 1024, activation: 'relu' }), tfl.layers.dense({ units: 10, activation: 'softmax' })] });
  tm.compile({ optimizer: tf.train.momentum(0.05, 0.9), loss: 'sparseCategoricalCrossentropy' });
  const n = 4 * 256;
  const tx = tf.tensor2d(xTrain.subarray(0, n * 784), [n, 784]), ty = tf.tensor1d(Float32Array.from(yTrain.subarray(0, n)));
  results.push(await measure('TensorFlow.js cpu: fit W2, 4 batches', () => tm.fit(tx, ty, { epochs: 1, batchSize: 256, verbose: 0 })));
} catch (e) {
  console.log(`TensorFlow.js: missing (${e.message.split('\n')[0]})`);
}
const fitRun = results[0];
console.log(`\nretrograd fit W2: p99 event-loop delay ${fitRun.p99.toFixed(2)} ms (goal < 10 ms): ${fitRun.p99 < 10 ? 'met' : 'not met'}`);
