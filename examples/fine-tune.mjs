// Fine-tuning: train a digit classifier on the digits 0–4, save it, load it back, freeze its first layer
// (the pixel features) and train the rest, with a new head, on the digits 5–9.
//   node examples/fine-tune.mjs [--quick]
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as rg from 'retrograd';

const quick = process.argv.includes('--quick');
rg.manualSeed(7);
const { xTrain, yTrain, xTest, yTest } = rg.mnistSplit();

/** The rows whose label is in [lo, hi], labels shifted to start at 0. */
function subset(x, y, lo, hi) {
  const rows = [...y.keys()].filter((i) => y[i] >= lo && y[i] <= hi);
  const xs = new Float32Array(rows.length * 784), ys = new Int32Array(rows.length);
  rows.forEach((r, i) => { xs.set(x.subarray(r * 784, (r + 1) * 784), i * 784); ys[i] = y[r] - lo; });
  return [rg.tensor(xs, [rows.length, 784]), rg.tensor(ys, [rows.length])];
}

// 1. A base model on the digits 0–4.
const [xa, ya] = subset(xTrain, yTrain, 0, 4);
const base = new rg.Sequential([new rg.Linear(784, 256), new rg.ReLU(), new rg.Linear(256, 64), new rg.ReLU(), new rg.Linear(64, 5)]);
base.compile({ optimizer: new rg.Adam(base.parameters()), loss: new rg.CrossEntropyLoss(), metrics: ['accuracy'] });
await base.fit(xa, ya, { epochs: quick ? 2 : 5, batchSize: 64, verbose: 0 });
const path = join(mkdtempSync(join(tmpdir(), 'retrograd-')), 'digits-0-4.safetensors');
await rg.save(base, path);
console.log(`base model (digits 0–4) saved to ${path}`);

// 2. Load it, freeze the first layer, put a new head for the digits 5–9 on top.
const loaded = await rg.load(path, rg.Sequential); // checked, and typed as a Sequential
const features = loaded.layers.slice(0, -1);
for (const p of features[0].parameters()) p.requiresGrad = false;
const model = new rg.Sequential([...features, new rg.Linear(64, 5)]);
const [xb, yb] = subset(xTrain, yTrain, 5, 9);
const [xbt, ybt] = subset(xTest, yTest, 5, 9);
model.compile({ optimizer: new rg.Adam(model.parameters(), { lr: 3e-3 }), loss: new rg.CrossEntropyLoss(), metrics: ['accuracy'] });
const frozenBefore = features[0].parameters()[0].value.toArray();
await model.fit(xb, yb, { epochs: quick ? 4 : 8, batchSize: 64, verbose: quick ? 0 : 1 });
const frozenAfter = features[0].parameters()[0].value.toArray();
const unchanged = frozenBefore.every((v, i) => v === frozenAfter[i]);
const { accuracy } = await model.evaluate(xbt, ybt);
console.log(`frozen layer unchanged: ${unchanged}`);
console.log(`fine-tuned head, digits 5–9 test accuracy: ${(100 * accuracy).toFixed(2)}%`);
