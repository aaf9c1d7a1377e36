// Data-parallel training on the MNIST digits across processes: `mpirun -np 2 node examples/ddp-mnist.mjs` (as root add
// --allow-run-as-root; more ranks than cores: --oversubscribe; across machines: --hostfile hosts). Every rank builds the
// same CNN, takes rank 0's weights, trains on its own shard of each epoch (rg.DistributedSampler) with a batch of
// 64 / worldSize rows, and averages the gradients with the others during every backward (rg.DistributedDataParallel),
// so the ranks together take the steps of one process with batch 64. Rank 0 reports the progress and the test
// accuracy. Without mpirun it runs as a world of one.
//   mpirun -np 2 node examples/ddp-mnist.mjs [--epochs 3] [--quick]
import { parseArgs } from 'node:util';
import * as rg from 'retrograd';

const { values: opts } = parseArgs({ options: { epochs: { type: 'string' }, quick: { type: 'boolean', default: false } } });
const { rank, worldSize } = await rg.distributed.init();
const say = (...a) => { if (rank === 0) console.log(...a); };
const epochs = Number(opts.epochs ?? (opts.quick ? 1 : 3)), global = 64;
if (global % worldSize !== 0) throw new RangeError(`ddp-mnist: the batch of ${global} must split evenly over ${worldSize} ranks`);
const batch = global / worldSize;

const { xTrain, yTrain, xTest, yTest } = rg.mnistSplit(opts.quick ? 1024 : 8000, opts.quick ? 500 : 2000);
const n = yTrain.length;
rg.manualSeed(1 + rank); // different on each rank on purpose: broadcastParameters gives every rank rank 0's weights
const model = new rg.Sequential([
  new rg.Conv2d(1, 16, 5, { padding: 2 }), new rg.ReLU(), new rg.MaxPool2d(2),
  new rg.Conv2d(16, 32, 5, { padding: 2 }), new rg.ReLU(), new rg.MaxPool2d(2),
  new rg.Flatten(), new rg.Linear(32 * 7 * 7, 10),
]);
const ddp = new rg.DistributedDataParallel(model);
await ddp.broadcastParameters();
const opt = new rg.Adam(model.parameters(), { lr: 1e-3 });
const sampler = new rg.DistributedSampler(n, { seed: 7 });
const steps = Math.floor(sampler.perRank / batch);
say(`data-parallel CNN on ${n} digits: ${worldSize} rank${worldSize > 1 ? 's' : ''}, ${batch} rows each per step (${global} in all), ${steps} steps per epoch`);

const t0 = performance.now();
for (let epoch = 0; epoch < epochs; epoch++) {
  const mine = sampler.indices(epoch);
  let sum = 0;
  for (let s = 0; s < steps; s++) {
    const x = rg.tensor(rg.takeRows(xTrain, 784, mine, s * batch, batch), [batch, 1, 28, 28]);
    const y = rg.tensor(rg.takeRows(yTrain, 1, mine, s * batch, batch), [batch]);
    opt.zeroGrad();
    const loss = rg.F.crossEntropy(ddp.forward(x), y);
    loss.backward();
    await ddp.syncGradients();
    opt.step();
    sum += loss.item();
  }
  // the epoch's mean loss over every rank's batches
  const mean = (await rg.distributed.allReduce(rg.tensor([sum / steps], [1]), 'mean')).item();
  say(`epoch ${epoch + 1}/${epochs}: loss ${mean.toFixed(4)} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
}
if (rank === 0) {
  model.eval();
  const logits = rg.noGrad(() => model.forward(rg.tensor(xTest, [yTest.length, 1, 28, 28]))).toArray('float32');
  let right = 0;
  for (let i = 0; i < yTest.length; i++) {
    let best = 0;
    for (let c = 1; c < 10; c++) if (logits[i * 10 + c] > logits[i * 10 + best]) best = c;
    if (best === yTest[i]) right++;
  }
  console.log(`test accuracy: ${((100 * right) / yTest.length).toFixed(2)}%`);
}
await rg.distributed.barrier();
