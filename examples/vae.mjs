// A convolutional variational autoencoder on the MNIST digits: the encoder gives the mean and log-variance of q(z | x),
// a sample z = μ + σ·ε (the reparameterisation trick, so the gradient reaches μ and σ) is decoded into Bernoulli
// logits, and the loss is the negative ELBO — the reconstruction's cross-entropy summed over pixels plus KL(q ‖ N(0, I))
// — in nats per digit. Reports the held-out negative ELBO on the 2,000 test digits and writes pictures of
// reconstructions (originals above, reconstructions below) and of samples from the prior to examples/out/.
// Its PyTorch twin is examples/twins/vae.py (same weights, batches and noise); --compare runs it after this one.
//   npm run example:vae -- [--epochs 10] [--quick] [--compare] [--out dir]  (default examples/out)
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as rg from 'retrograd';
import { digits, initDeterministic, seconds, takeRows, trainEpochs, writeImageGrid } from './apps/common.mjs';
import { appModels } from './apps/models.mjs';
import { appSteps } from './apps/steps.mjs';
import { compareWithTwin } from './apps/twin.mjs';

const { values: opts } = parseArgs({ options: { epochs: { type: 'string' }, quick: { type: 'boolean', default: false }, out: { type: 'string' }, compare: { type: 'boolean', default: false } } });
const quick = opts.quick;
const epochs = Number(opts.epochs ?? (quick ? 1 : 10));
const batchSize = 64, latent = 16, width = 32;
const out = opts.out ?? join(import.meta.dirname, 'out');
mkdirSync(out, { recursive: true });

const data = digits(rg);
const nTrain = quick ? 1024 : data.nTrain;
const { VAE, negativeElbo } = appModels(rg);
const { vaeStep, noise } = appSteps(rg);
const model = initDeterministic(rg, new VAE({ latent, width }), 4);
const opt = new rg.Adam(model.parameters(), { lr: 1e-3 });
const steps = Math.floor(nTrain / batchSize);
console.log(`convolutional VAE (latent ${latent}, ${model.parameters().reduce((a, p) => a + p.value.size, 0)} parameters) on ${nTrain} MNIST digits; backend ${rg.getBackend()}`);
console.log(`Adam lr 1e-3; batch ${batchSize}, ${epochs} epoch${epochs > 1 ? 's' : ''}`);

/** The negative ELBO per digit on the 2,000 test digits (one sample of z per digit, noise seed 3), in nats. */
function heldOut() {
  let sum = 0;
  rg.noGrad(() => {
    for (let i = 0; i < data.nTest; i += 500) {
      const n = Math.min(500, data.nTest - i);
      const x = rg.tensor(data.xTest.subarray(i * 784, (i + n) * 784), [n, 1, 28, 28]);
      sum += negativeElbo(model.forward(x, noise([n, latent], 3 + i)), x).item() * n;
    }
  });
  return sum / data.nTest;
}

const t0 = performance.now();
trainEpochs({
  epochs, steps, n: nTrain,
  step(s, order, epoch) {
    const x = rg.tensor(takeRows(data.xTrain, 784, order, s * batchSize, batchSize), [batchSize, 1, 28, 28]);
    return vaeStep(model, opt, negativeElbo, x, noise([batchSize, latent], 1_000_000 * (epoch + 1) + s)).item();
  },
  after: (epoch, loss) => console.log(`epoch ${epoch + 1}: training negative ELBO ${loss.toFixed(2)} nats/digit (${seconds(t0)} s)`),
});
const elbo = heldOut();
console.log(`held-out negative ELBO: ${elbo.toFixed(3)} nats per digit on ${data.nTest} test digits, after ${epochs} epoch${epochs > 1 ? 's' : ''}, ${seconds(t0)} s`);

// ---- pictures ----
rg.noGrad(() => {
  const x = rg.tensor(data.xTest.subarray(0, 10 * 784), [10, 1, 28, 28]);
  const { mu } = model.encode(x);
  const recon = model.decode(mu).sigmoid();
  const both = new Float32Array(20 * 784);
  both.set(x.toArray());
  both.set(recon.toArray(), 10 * 784);
  writeImageGrid(join(out, 'vae-reconstructions.png'), both, 2, 10);
  writeImageGrid(join(out, 'vae-samples.png'), model.decode(noise([100, latent], 11)).sigmoid().toArray(), 10, 10);
});
console.log(`wrote ${join(out, 'vae-reconstructions.png')} and ${join(out, 'vae-samples.png')}`);

if (opts.compare) {
  compareWithTwin('vae.py', [...(opts.epochs ? ['--epochs', String(epochs)] : []), ...(quick ? ['--quick'] : [])], {
    pattern: /held-out negative ELBO: ([\d.]+)/, ours: elbo, what: 'held-out negative ELBO (nats/digit)', goal: (o, t) => Math.abs(o - t) / t <= 0.02, goalText: 'within 2%',
  });
}
