// The application examples' models (examples/apps/models.mjs) trained 20 steps against their PyTorch twins
// (examples/twins/, golden losses in test/golden/apps.json from test/golden/make_apps_golden.py): the same
// deterministic initial weights, the same MNIST batches, the same optimisers, the loss of every step equal — on the
// reference and the native CPU backends.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { digits, initDeterministic, kMeans, permutation, takeRows } from '../examples/apps/common.mjs';
import { appModels } from '../examples/apps/models.mjs';
import { appSteps } from '../examples/apps/steps.mjs';
import { dateExamples, vocabularies } from '../examples/apps/dates.mjs';
import { requireCpu, rg } from './helpers.js';

const cpuAvailable = requireCpu();
const backends: ('reference' | 'cpu')[] = cpuAvailable ? ['reference', 'cpu'] : ['reference'];
afterEach(() => rg.setBackend(cpuAvailable ? 'cpu' : 'reference'));

interface AppsGolden {
  steps: number;
  batch: number;
  orderSeed: number;
  resnet: { losses: number[] };
  gan: { lossD: number[]; lossG: number[] };
  conditionalGan: { lossD: number[]; lossG: number[] };
  vae: { losses: number[] };
  translate: { losses: number[]; seed: number };
  kMeans: { n: number; k: number; assign: number[] };
}
const golden = JSON.parse(readFileSync(new URL('./golden/apps.json', import.meta.url), 'utf8')) as AppsGolden;
const { steps: STEPS, batch: BATCH } = golden;
const data = digits(rg);
const order = permutation(data.nTrain, golden.orderSeed);
const batch = (s: number) => ({
  x: rg.tensor(takeRows(data.xTrain, 784, order, s * BATCH, BATCH), [BATCH, 1, 28, 28]),
  y: rg.tensor(takeRows(data.yTrain, 1, order, s * BATCH, BATCH), [BATCH]),
});

/** null when every loss is within rtol (relative to max(1, |PyTorch's|)), else the first that differs. */
function compareLosses(ours: number[], theirs: number[], rtol: number | ((step: number) => number), what: string): string | null {
  if (ours.length !== theirs.length) return `${what}: ${ours.length} steps, PyTorch ${theirs.length}`;
  for (let i = 0; i < ours.length; i++)
    if (!(Math.abs(ours[i] - theirs[i]) <= (typeof rtol === 'number' ? rtol : rtol(i)) * Math.max(1, Math.abs(theirs[i])))) return `${what} at step ${i}: ${ours[i]}, PyTorch ${theirs[i]}`;
  return null;
}

describe.each(backends)('application models trained 20 steps against PyTorch (%s)', (name) => {
  const M = appModels(rg);
  const { classifierStep, ganStep, vaeStep, translateStep, noise } = appSteps(rg);

  it('ResNet (BatchNorm, strided shortcut), SGD with momentum and one-cycle', () => {
    rg.setBackend(name);
    const model = initDeterministic(rg, new M.ResNet({ width: 8 }), 1);
    const opt = new rg.SGD(model.parameters(), { lr: 0.02, momentum: 0.9, weightDecay: 5e-4 });
    const sched = new rg.OneCycleLR(opt, 0.02, { totalSteps: STEPS });
    const losses: number[] = [];
    for (let s = 0; s < STEPS; s++) {
      const { x, y } = batch(s);
      losses.push(classifierStep(model, opt, x, y).item());
      sched.step();
    }
    expect(compareLosses(losses, golden.resnet.losses, 2e-4, 'loss')).toBeNull();
  });

  it.each([
    ['DCGAN (ConvTranspose2d generator, discriminator), Adam β1 0.5', 0],
    ['conditional DCGAN (class embeddings joining the noise and the image)', 10],
  ])('%s', (_, classes) => {
    rg.setBackend(name);
    const G = initDeterministic(rg, new M.Generator({ nz: 16, width: 8, classes }), 2), D = initDeterministic(rg, new M.Discriminator({ width: 8, classes }), 3);
    const optG = new rg.Adam(G.parameters(), { lr: 2e-4, betas: [0.5, 0.999] }), optD = new rg.Adam(D.parameters(), { lr: 2e-4, betas: [0.5, 0.999] });
    const lossD: number[] = [], lossG: number[] = [];
    for (let s = 0; s < STEPS; s++) {
      const { x, y } = batch(s);
      const labels = classes ? { real: y, fake: rg.tensor(Int32Array.from({ length: BATCH }, (_, i) => (3 * i + s) % 10), [BATCH]) } : undefined;
      const r = ganStep(G, D, optG, optD, x.mul(2).sub(1), noise([BATCH, 16], 1000 + s), labels);
      lossD.push(r.lossD.item());
      lossG.push(r.lossG.item());
    }
    const want = classes ? golden.conditionalGan : golden.gan;
    // The conditional pair amplifies float32 rounding from its sixth step on: PyTorch's own losses on 1 and on 2
    // threads part by up to 1.3e-3 (relative) by the 20th step, against 1e-6 over the first five. So its first five
    // steps are held to 2e-4 like every other model's, the rest to 5e-3.
    const rtol = classes ? (step: number) => (step < 5 ? 2e-4 : 5e-3) : 2e-4;
    expect(compareLosses(lossD, want.lossD, rtol, 'discriminator loss') ?? compareLosses(lossG, want.lossG, rtol, 'generator loss')).toBeNull();
  });

  it('k-means for the self-conditioned DCGAN: the clusters of its twin', () => {
    rg.setBackend(name);
    const { n, k, assign } = golden.kMeans;
    expect(Array.from(kMeans(rg, data.xTrain.subarray(0, n * 784), n, 784, k))).toEqual(assign);
  });

  it('convolutional VAE (reparameterisation, KL term), Adam', () => {
    rg.setBackend(name);
    const model = initDeterministic(rg, new M.VAE({ latent: 4, width: 8 }), 4);
    const opt = new rg.Adam(model.parameters(), { lr: 1e-3 });
    const losses: number[] = [];
    for (let s = 0; s < STEPS; s++) losses.push(vaeStep(model, opt, M.negativeElbo, batch(s).x, noise([BATCH, 4], 2000 + s)).item());
    expect(compareLosses(losses, golden.vae.losses, 2e-4, 'negative ELBO')).toBeNull();
  });

  it('encoder–decoder transformer (cross-attention, key padding mask, causal decoder), Adam', () => {
    rg.setBackend(name);
    const ex = dateExamples(STEPS * BATCH, golden.translate.seed), v = vocabularies();
    const model = initDeterministic(rg, new M.Translator({ srcVocab: v.source.length, tgtVocab: v.target.length, dModel: 32, nhead: 4, layers: 2, dimFeedforward: 64 }), 5);
    const opt = new rg.Adam(model.parameters(), { lr: 1e-3 });
    const losses: number[] = [];
    for (let s = 0; s < STEPS; s++) {
      const src = rg.tensor(ex.src.subarray(s * BATCH * ex.srcLen, (s + 1) * BATCH * ex.srcLen), [BATCH, ex.srcLen]);
      const tgt = rg.tensor(ex.tgt.subarray(s * BATCH * 12, (s + 1) * BATCH * 12), [BATCH, 12]);
      losses.push(translateStep(model, opt, M.translationLoss, src, tgt).item());
    }
    expect(compareLosses(losses, golden.translate.losses, 2e-4, 'loss')).toBeNull();
  });
});
