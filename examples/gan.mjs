// A DCGAN on the MNIST digits: a generator of transposed convolutions turns noise into 28×28 digits, a convolutional
// discriminator learns to tell them from real ones (BCE with logits, Adam β1 0.5, the learning rate held for the first
// half of the epochs and decayed linearly to zero over the second, as pix2pix and CycleGAN train), each trained through
// the other with loss.backward(). With --conditional, both also see the digit's class (an embedding joins the noise,
// and a second channel the image): the generator draws the digit asked of it. With --clusters K, self-conditioned
// (Liu et al., "Diverse Image Generation via Self-Conditioned GANs", 2020): no label is used; k-means groups the
// training digits' pixels into K clusters, the pair is conditioned on the cluster instead of the class, and the
// generator draws a cluster in proportion to its size, then a digit of it. The quality is measured, not eyeballed:
// the main job's CNN (`retrograd mnist --model cnn`, trained first and saved under examples/out/, or loaded from
// there) labels 1,000 generated digits (conditional: 100 asked of each class); a good generator makes digits it is
// sure of (confidence ≥ 0.9) in every class. Writes a grid of samples to examples/out/gan-samples.png (conditional:
// gan-conditional-samples.png, a column per class; self-conditioned: gan-self-conditioned-samples.png). Its PyTorch
// twin is examples/twins/gan.py (same weights, batches and noise).
//   npm run example:gan -- [--conditional | --clusters 200] [--epochs 30 (conditional: 50)] [--quick] [--out dir]
//   (pictures and models go to --out, default examples/out)
// --quick trains 30 steps and judges with a CNN trained for one epoch on 2,000 digits (the test suite runs it).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as rg from 'retrograd';
import { digits, initDeterministic, kMeans, seconds, takeRows, trainEpochs, writeImageGrid } from './apps/common.mjs';
import { appModels } from './apps/models.mjs';
import { appSteps } from './apps/steps.mjs';

const { values: opts } = parseArgs({ options: { epochs: { type: 'string' }, quick: { type: 'boolean', default: false }, conditional: { type: 'boolean', default: false }, clusters: { type: 'string' }, out: { type: 'string' } } });
const quick = opts.quick, conditional = opts.conditional, clusters = Number(opts.clusters ?? 0);
if (!Number.isInteger(clusters) || clusters < 0 || (clusters > 0 && conditional)) {
  console.error(`example:gan: --clusters takes a whole number of clusters, without --conditional; got '${opts.clusters}'`);
  process.exit(2);
}
const classes = conditional ? 10 : clusters;
const epochs = Number(opts.epochs ?? (quick ? 1 : conditional ? 50 : 30));
const batchSize = 64, nz = 64, width = 32;
const out = opts.out ?? join(import.meta.dirname, 'out');
mkdirSync(out, { recursive: true });

// ---- the judge: the main job's CNN ----
const judgeFile = join(out, quick ? 'mnist-cnn-quick.safetensors' : 'mnist-cnn.safetensors');
if (!existsSync(judgeFile)) {
  console.log(`training the judge (the main job's CNN) into ${judgeFile}`);
  const cli = join(import.meta.dirname, '..', 'dist', 'cli.js');
  const args = quick ? ['--epochs', '1', '--train', '2000'] : ['--epochs', '6'];
  execFileSync(process.execPath, [cli, 'mnist', '--model', 'cnn', ...args, '--save', judgeFile], { stdio: ['ignore', 'inherit', 'inherit'] });
}
const judge = (await rg.load(judgeFile)).eval();

// ---- the GAN ----
const data = digits(rg);
// self-conditioned: each training digit's cluster, and clusters drawn as often as the training digits fall in them
let clusterOf, drawClusters;
if (clusters) {
  const t = performance.now();
  clusterOf = kMeans(rg, data.xTrain, data.nTrain, 784, clusters);
  const counts = Array.from({ length: clusters }, () => new Array(10).fill(0));
  clusterOf.forEach((c, i) => counts[c][data.yTrain[i]]++);
  const purity = counts.reduce((a, c) => a + Math.max(...c), 0) / data.nTrain;
  console.log(`k-means: ${clusters} clusters of the training digits' pixels in ${seconds(t)} s (the labels only report their purity: ${(100 * purity).toFixed(1)}%)`);
  drawClusters = (n, seed) => {
    const r = rg.mulberry32(seed);
    return rg.tensor(Int32Array.from({ length: n }, () => clusterOf[Math.floor(r() * data.nTrain)]), [n]);
  };
}
const { Generator, Discriminator } = appModels(rg);
const { ganStep, noise } = appSteps(rg);
const G = initDeterministic(rg, new Generator({ nz, width, classes }), 2), D = initDeterministic(rg, new Discriminator({ width, classes }), 3);
const count = (m) => m.parameters().reduce((a, p) => a + p.value.size, 0);
const lr = 2e-4;
const optG = new rg.Adam(G.parameters(), { lr, betas: [0.5, 0.999] });
const optD = new rg.Adam(D.parameters(), { lr, betas: [0.5, 0.999] });
const steps = quick ? 30 : Math.floor(data.nTrain / batchSize);
const hold = Math.floor(epochs / 2);
const lrOf = (epoch) => (epoch < hold ? lr : lr * (1 - (epoch - hold) / (epochs - hold)));
console.log(`${conditional ? 'conditional ' : clusters ? 'self-conditioned ' : ''}DCGAN on ${data.nTrain} MNIST digits; backend ${rg.getBackend()}; generator ${count(G)} parameters, discriminator ${count(D)}`);
console.log(`Adam lr ${lr} (decayed linearly to 0 after epoch ${hold}), β (0.5, 0.999); batch ${batchSize}, ${epochs} epoch${epochs > 1 ? 's' : ''} of ${steps} steps`);

const t0 = performance.now();
let sumD = 0;
trainEpochs({
  epochs, steps, n: data.nTrain,
  step(s, order, epoch) {
    if (s === 0) optG.lr = optD.lr = lrOf(epoch);
    const x = rg.tensor(takeRows(data.xTrain, 784, order, s * batchSize, batchSize), [batchSize, 1, 28, 28]);
    // conditional: the real digits' classes, and for the generated ones every class in turn; self-conditioned: the real
    // digits' clusters, and clusters drawn as the training digits fall in them
    const labels = conditional
      ? { real: rg.tensor(takeRows(data.yTrain, 1, order, s * batchSize, batchSize), [batchSize]), fake: rg.tensor(Int32Array.from({ length: batchSize }, (_, i) => (i * 7 + s + epoch) % 10), [batchSize]) }
      : clusters
        ? { real: rg.tensor(takeRows(clusterOf, 1, order, s * batchSize, batchSize), [batchSize]), fake: drawClusters(batchSize, 1_000_003 * (epoch + 1) + s) }
        : undefined;
    const { lossD, lossG } = ganStep(G, D, optG, optD, x.mul(2).sub(1), noise([batchSize, nz], 1_000_000 * (epoch + 1) + s), labels);
    sumD += lossD.item();
    return lossG.item();
  },
  after(epoch, lossG) {
    console.log(`epoch ${epoch + 1}: discriminator loss ${(sumD / steps).toFixed(3)}, generator loss ${lossG.toFixed(3)} (${seconds(t0)} s)`);
    sumD = 0;
  },
});

// ---- 1,000 digits, judged ----
G.eval();
const n = 1000;
// conditional: digit i asked to be of class i mod 10 (the grid's columns)
const asked = conditional ? rg.tensor(Int32Array.from({ length: n }, (_, i) => i % 10), [n]) : clusters ? drawClusters(n, 9) : undefined;
const images = rg.noGrad(() => G.forward(noise([n, nz], 7), asked).add(1).div(2)); // [−1, 1] → the judge's [0, 1]
const probs = rg.noGrad(() => judge.forward(images).softmax(1)).toArray();
const perClass = new Array(10).fill(0);
let confident = 0, agree = 0;
for (let i = 0; i < n; i++) {
  let best = 0;
  for (let c = 1; c < 10; c++) if (probs[i * 10 + c] > probs[i * 10 + best]) best = c;
  perClass[best]++;
  if (probs[i * 10 + best] >= 0.9) confident++;
  if (best === i % 10) agree++;
}
const grid = join(out, conditional ? 'gan-conditional-samples.png' : clusters ? 'gan-self-conditioned-samples.png' : 'gan-samples.png');
writeImageGrid(grid, images.toArray(), 10, 10);
const share = perClass.map((c) => c / n);
console.log(`the judge labels ${n} generated digits: ${(100 * confident / n).toFixed(1)}% with confidence ≥ 0.9; per class ${share.map((s, c) => `${c}: ${(100 * s).toFixed(1)}%`).join(', ')}`);
if (conditional) console.log(`the judge's label is the class asked for ${(100 * agree / n).toFixed(1)}% of them`);
const ok = confident / n >= 0.9 && share.every((s) => s >= 0.05 && s <= 0.2);
console.log(`goal (≥ 90% confident, every class 5–20%): ${ok ? 'met' : 'not met'}; trained in ${seconds(t0)} s`);
console.log(`wrote ${grid}`);
