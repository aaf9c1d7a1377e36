// The benchmark harness, first workload: seconds per MNIST training epoch for each retrograd backend, on
// the main job's 8,000-digit split. W1 = MLP 784-256-128-10, batch 64, Adam 1e-3. Prints a table of ratios
// measured in this run and writes JSON to bench/results/.
//   npm run bench                 (after npm install)
//   node bench/mnist-epoch.mjs --repeats 5 --reference-epochs 1
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import * as rg from 'retrograd';

const { values } = parseArgs({ options: { repeats: { type: 'string', default: '3' }, 'reference-epochs': { type: 'string', default: '1' } } });
const repeats = Number(values.repeats);

const { xTrain, yTrain, xTest, yTest } = rg.mnistSplit();

async function timeEpochs(backend, epochs) {
  rg.setBackend(backend);
  rg.manualSeed(1);
  const x = rg.tensor(xTrain, [yTrain.length, 784]), y = rg.tensor(yTrain, [yTrain.length]);
  const xt = rg.tensor(xTest, [yTest.length, 784]), yt = rg.tensor(yTest, [yTest.length]);
  const model = new rg.Sequential([new rg.Linear(784, 256), new rg.ReLU(), new rg.Linear(256, 128), new rg.ReLU(), new rg.Linear(128, 10)]);
  model.compile({ optimizer: new rg.Adam(model.parameters(), { lr: 1e-3 }), loss: new rg.CrossEntropyLoss(), metrics: ['accuracy'] });
  const times = [];
  for (let e = 0; e < epochs; e++) {
    const t = performance.now();
    await model.fit(x, y, { epochs: 1, batchSize: 64, verbose: 0 });
    times.push((performance.now() - t) / 1000);
  }
  const { accuracy } = await model.evaluate(xt, yt);
  times.sort((a, b) => a - b);
  return { backend, epochs, median: times[Math.floor(times.length / 2)], min: times[0], accuracy };
}

const rows = [];
const available = rg.backends().filter((b) => b.available).map((b) => b.name);
for (const b of rg.backends()) if (!b.available) console.log(`${b.name}: not measured (${b.reason?.split('\n')[0]})`);
if (available.includes('cpu')) rows.push(await timeEpochs('cpu', repeats));
rows.push(await timeEpochs('reference', Number(values['reference-epochs'])));

const base = rows.find((r) => r.backend === 'cpu') ?? rows[0];
console.log(`\nW1: MLP 784-256-128-10, batch 64, Adam 1e-3, one epoch of 8,000 MNIST digits (${os.cpus()[0].model}, ${os.cpus().length} CPUs)`);
console.log('backend     epochs  s/epoch (median)  vs cpu   test acc');
for (const r of rows)
  console.log(`${r.backend.padEnd(11)} ${String(r.epochs).padStart(6)}  ${r.median.toFixed(3).padStart(16)}  ${(r.median / base.median).toFixed(2).padStart(5)}×  ${(100 * r.accuracy).toFixed(2)}%`);
console.log('(vs cpu: how many times longer than the cpu backend; peers join this table with the fast-CPU work)');

mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
const file = new URL(`./results/mnist-epoch-${os.hostname()}.json`, import.meta.url);
writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), cpu: os.cpus()[0].model, threads: os.cpus().length, workload: 'W1', rows }, null, 2));
console.log(`results: ${file.pathname}`);
