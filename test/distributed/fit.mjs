// Run under mpirun by test/distributed.test.ts: fit(…, { distributed: true }) with a batch of B/N per rank for 3 epochs
// must reach the weights of one process's fit with batch B (checked on rank 0, which also runs that fit), for an MLP
// and a CNN, shuffled and not; the History is the whole data's, the same on every rank; only rank 0 prints. Each rank
// writes its results to $RG_RANK_OUT/<rank>.json.
import * as rg from '../../dist/index.js';
import { report } from './report.mjs';

const { rank, worldSize } = await rg.distributed.init();
const B = 24, N = 96;
const r = rg.mulberry32(5);
const make = {
  mlp: [() => new rg.Sequential([new rg.Linear(10, 16), new rg.Tanh(), new rg.Linear(16, 3)]), [10]],
  cnn: [() => new rg.Sequential([new rg.Conv2d(1, 4, 3, { padding: 1 }), new rg.ReLU(), new rg.MaxPool2d(2), new rg.Flatten(), new rg.Linear(4 * 4 * 4, 3)]), [1, 8, 8]],
};
/** The weights' exact bits, folded into one number. */
const digest = (weights) => weights.reduce((h, a) => new Int32Array(a.buffer, a.byteOffset, a.length).reduce((g, v) => (Math.imul(g, 31) + v) | 0, h), 7);
const out = { rank, worldSize };
for (const [name, [build, shape]] of Object.entries(make)) {
  const per = shape.reduce((a, b) => a * b, 1);
  const x = Float32Array.from({ length: N * per }, () => r() * 2 - 1), y = Int32Array.from({ length: N }, () => Math.floor(r() * 3));
  for (const shuffle of [false, true]) {
    const run = async (dist) => {
      rg.manualSeed(dist ? 200 + rank : 200); // the ranks start apart: fit must broadcast rank 0's weights
      const model = build();
      if (!dist) { rg.manualSeed(200); model.loadStateDict(build().stateDict()); }
      model.compile({ optimizer: new rg.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 }), loss: new rg.CrossEntropyLoss(), metrics: ['accuracy'] });
      rg.manualSeed(7); // the shuffles: rank 0's seed is the one the sampler uses
      const history = await model.fit(rg.tensor(x, [N, ...shape]), rg.tensor(y, [N]), { epochs: 3, batchSize: dist ? B / worldSize : B, shuffle, verbose: dist ? 2 : 0, distributed: dist, validationData: [rg.tensor(x.subarray(0, 37 * per), [37, ...shape]), rg.tensor(y.subarray(0, 37), [37])] });
      // evaluate: each rank its share of 37 rows (unequal shares), the sums of all
      const evaluated = await model.evaluate(rg.tensor(x, [N, ...shape]), rg.tensor(y, [N]), { distributed: dist, batchSize: 10 });
      return { weights: Object.values(model.stateDict()).map((t) => t.toArray('float32')), history: history.history, evaluated };
    };
    const d = await run(true);
    const key = `${name}${shuffle ? '-shuffled' : ''}`;
    out[key] = { digest: digest(d.weights), loss: d.history.loss, valLoss: d.history.val_loss, valAccuracy: d.history.val_accuracy, evaluated: d.evaluated };
    if (rank === 0 && !shuffle) {
      const single = await run(false);
      let worst = 0;
      single.weights.forEach((a, k) => {
        let d2 = 0, a2 = 0;
        for (let i = 0; i < a.length; i++) { d2 += (a[i] - d.weights[k][i]) ** 2; a2 += a[i] ** 2; }
        worst = Math.max(worst, Math.sqrt(d2 / Math.max(a2, 1e-30)));
      });
      out[key].worstRelative = worst;
      out[key].singleLoss = single.history.loss;
      out[key].singleValLoss = single.history.val_loss;
      out[key].singleValAccuracy = single.history.val_accuracy;
      out[key].singleEvaluated = single.evaluated;
    }
  }
}
// the same distributed fit from a DataLoader whose sampler is a DistributedSampler: the same batches, the same weights
{
  const [build, shape] = make.mlp;
  const per = shape.reduce((a, b) => a * b, 1);
  const r2 = rg.mulberry32(5);
  const x = Float32Array.from({ length: N * per }, () => r2() * 2 - 1), y = Int32Array.from({ length: N }, () => Math.floor(r2() * 3));
  rg.manualSeed(200 + rank);
  const model = build();
  model.compile({ optimizer: new rg.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 }), loss: new rg.CrossEntropyLoss(), metrics: ['accuracy'] });
  const loader = new rg.DataLoader(rg.Dataset.fromArrays(x, y, N), { batchSize: B / worldSize, sampler: new rg.DistributedSampler(N, { shuffle: false }) });
  const history = await model.fit(loader, { epochs: 3, verbose: 0, distributed: true });
  const weights = Object.values(model.stateDict()).map((t) => t.toArray('float32'));
  out.mlp.loaderDigest = digest(weights);
  out.mlp.loaderLoss = history.history.loss;
  // a stream (IterableDataset) and each rank's shard of it: every N-th sample from the rank's position, the order the
  // sampler above deals out, so the same weights; two samples more than a whole number of groups are dropped
  rg.manualSeed(200 + rank);
  const streamed = build();
  streamed.compile({ optimizer: new rg.SGD(streamed.parameters(), { lr: 0.1, momentum: 0.9 }), loss: new rg.CrossEntropyLoss(), metrics: ['accuracy'] });
  const extra = worldSize > 1 ? worldSize - 1 : 0;
  const stream = new rg.IterableDataset(function* () {
    for (let i = 0; i < N + extra; i++) yield { x: x.subarray((i % N) * per, (i % N + 1) * per), y: y[i % N] };
  });
  const h = await streamed.fit(new rg.DataLoader(stream.shard(), { batchSize: B / worldSize }), { epochs: 3, verbose: 0, distributed: true });
  out.mlp.streamDigest = digest(Object.values(streamed.stateDict()).map((t) => t.toArray('float32')));
  out.mlp.streamLoss = h.history.loss;
  out.streamRefused = await streamed.fit(new rg.DataLoader(stream, { batchSize: 4 }), { verbose: 0, distributed: true }).then(() => 'accepted', (e) => e.message);
}
report(rank, out);
