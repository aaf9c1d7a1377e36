// Memory soak: 10,000 training steps, 100,000 predict calls of one row and 5,000 of random sizes (1–1,000
// rows, as a server's requests come), and 10,000 steps of a residual MLP written with operations in a hand-written
// loop that never calls dispose() (its tensors go with the garbage collector, their storage to the allocator's
// cache); the process's RSS and rg.memory() must stay flat. Prints the samples and a verdict (exit code 1 when
// memory grows).
//   node bench/soak.mjs [--steps 10000] [--predicts 100000] [--varying 5000] [--graph 10000]
import { parseArgs } from 'node:util';
import * as rg from 'retrograd';

const { values } = parseArgs({
  options: {
    steps: { type: 'string', default: '10000' }, predicts: { type: 'string', default: '100000' }, varying: { type: 'string', default: '5000' },
    graph: { type: 'string', default: '10000' },
  },
});
const steps = Number(values.steps), predicts = Number(values.predicts), varying = Number(values.varying), graphSteps = Number(values.graph);
const mb = (b) => (b / 2 ** 20).toFixed(1);

rg.setBackend('cpu');
rg.manualSeed(1);
const model = new rg.Sequential([new rg.Linear(64, 128), new rg.ReLU(), new rg.Dropout(0.1), new rg.Linear(128, 10)]);
model.compile({ optimizer: new rg.Adam(model.parameters()), loss: new rg.CrossEntropyLoss(), metrics: ['accuracy'] });
const x = rg.randn([1024, 64]), y = rg.tensor(Int32Array.from({ length: 1024 }, (_, i) => i % 10), [1024]);

const samples = [];
// Each sample after a full collection (node --expose-gc): what is measured is memory held, not garbage not yet
// collected (the JavaScript heap alone swung RSS by several MB between samples). Not in the graph phase, whose point
// is that the collections V8 runs by itself free what a loop without dispose() leaves behind.
const sample = (phase, done) => {
  if (phase !== 'graph') globalThis.gc?.();
  const m = rg.memory();
  samples.push({ phase, done, rss: process.memoryUsage().rss, tensors: m.tensors, bytes: m.bytes });
};
const perEpoch = 1024 / 32;
for (let done = 0; done < steps; done += perEpoch * 10) {
  await model.fit(x, y, { epochs: 10, batchSize: 32, verbose: 0 });
  sample('train', done + perEpoch * 10);
}
const one = rg.tensor(new Float32Array(64), [1, 64]);
// As a server does, yield to the event loop between requests now and then: Node-API runs the finalizers of
// collected wrapper objects there (a synchronous loop of 100,000 calls would only defer them).
for (let done = 0; done < predicts; done += 10000) {
  for (let i = 0; i < 10000; i++) {
    model.predict(one).dispose();
    if (i % 1000 === 999) await new Promise((r) => setImmediate(r));
  }
  sample('predict', done + 10000);
}
// Every batch size is new to the layers' output buffers: they must keep only the few most recent.
const random = rg.mulberry32(7);
const rows = new Float32Array(1000 * 64).map(() => random() * 2 - 1);
const varyingStep = Math.max(1, Math.floor(varying / 10));
// Warm-up: every batch size once, so that the host storage cache has met each of its size classes (about a hundred
// here, carved from huge-page chunks that grow RSS 2 MB at a time); growth after that would be a leak, not the cache
// filling up as random sizes first appear.
for (let n = 1; n <= 1000; n++) {
  const batch = rg.tensor(rows.subarray(0, n * 64), [n, 64]);
  model.predict(batch).dispose();
  batch.dispose();
}
for (let done = 0; done < varying; done += varyingStep) {
  for (let i = 0; i < varyingStep; i++) {
    const n = 1 + Math.floor(random() * 1000);
    const batch = rg.tensor(rows.subarray(0, n * 64), [n, 64]);
    model.predict(batch).dispose();
    batch.dispose();
    if (i % 100 === 99) await new Promise((r) => setImmediate(r));
  }
  one.toArray(); // a read: the frees queued so far have run
  sample('varying', done + varyingStep);
}

// A residual MLP written with operations, trained in a hand-written loop; nothing is disposed by hand.
class Residual extends rg.Module {
  fc1 = new rg.Linear(64, 64);
  fc2 = new rg.Linear(64, 64);
  head = new rg.Linear(64, 10);
  forward(input) {
    return this.head.forward(input.add(this.fc2.forward(this.fc1.forward(input).relu())).relu());
  }
}
const net = new Residual();
const opt = new rg.Adam(net.parameters(), { lr: 1e-3 });
const xb = rg.randn([32, 64]), yb = rg.tensor(Int32Array.from({ length: 32 }, (_, i) => i % 10), [32]);
const graphStep = Math.max(1, Math.floor(graphSteps / 10));
for (let done = 0; done < graphSteps; done += graphStep) {
  for (let i = 0; i < graphStep; i++) {
    opt.zeroGrad();
    const loss = rg.F.crossEntropy(net.forward(xb), yb);
    loss.backward();
    opt.step();
    if (i % 100 === 99) loss.item(); // never yields: a storage is released inside the collection that finds it dead
  }
  // with --expose-gc, a collection before each sample makes the count the live tensors, not the collector's timing
  xb.toArray();
  globalThis.gc?.();
  await new Promise((r) => setImmediate(r));
  xb.toArray();
  sample('graph', done + graphStep);
}

for (const s of samples.filter((_, i) => i % Math.max(1, Math.floor(samples.length / 12)) === 0 || _ === samples.at(-1)))
  console.log(`${s.phase.padEnd(8)} ${String(s.done).padStart(7)}   rss ${mb(s.rss).padStart(7)} MB   tensors ${String(s.tensors).padStart(5)}   native ${mb(s.bytes)} MB`);
// Flat: after warm-up (the first quarter of each phase), RSS within 16 MB and the tensor count unchanged.
let ok = true;
for (const phase of ['train', 'predict', 'varying', 'graph']) {
  const ss = samples.filter((s) => s.phase === phase);
  if (!ss.length) continue; // a phase asked for 0 calls
  const tail = ss.slice(Math.floor(ss.length / 4));
  const rssGrowth = tail.at(-1).rss - tail[0].rss;
  const tensorGrowth = tail.at(-1).tensors - tail[0].tensors;
  // the graph phase's tensors are freed by the garbage collector, so their count rises and falls: flat there means
  // no higher after warm-up than twice the warm-up's peak
  const warmPeak = Math.max(...ss.slice(0, Math.max(1, Math.floor(ss.length / 4))).map((s) => s.tensors));
  const bounded = phase === 'graph' ? Math.max(...tail.map((s) => s.tensors)) <= 2 * warmPeak + 100 : tensorGrowth <= 0;
  const flat = rssGrowth < 16 * 2 ** 20 && bounded;
  ok &&= flat;
  console.log(`${phase}: RSS ${rssGrowth >= 0 ? '+' : ''}${mb(rssGrowth)} MB, tensors ${tensorGrowth >= 0 ? '+' : ''}${tensorGrowth} after warm-up → ${flat ? 'flat' : 'GROWING'}`);
}
console.log(ok ? 'verdict: memory stays flat' : 'verdict: memory grows');
process.exitCode = ok ? 0 : 1;
