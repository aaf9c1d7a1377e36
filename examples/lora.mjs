// LoRA fine-tuning of the tiny GPT. The GPT (examples/text.mjs: token and position embeddings, causal transformer
// blocks, a final LayerNorm and the head) is pretrained on one text — the GNU licences (GPL, LGPL, GFDL) — and saved.
// Then it is loaded back, frozen, and low-rank adapters (rank 8) on its attention (the in- and out-projections) and MLP
// weights learn another text: the other licences under /usr/share/common-licenses (Apache, Artistic, BSD, CC0, MPL),
// present on every Debian system. Reports the fraction of the weights that train, the held-out loss on the new text of
// the base model and of the adapted one, folds the adapters into the weights (rg.mergeLoRA) and saves the merged model,
// which loads as a plain GPT and scores as the adapted one did.
//   npm run example:lora -- [--pretrain-epochs 6] [--epochs 3] [--rank 8] [--quick] [--out dir]  (default examples/out)
// --quick: a few steps of each (the test suite runs it). Losses are in nats per character.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as rg from 'retrograd';
import { generate, sampleIndex, splitText, tinyGpt, trainOnText, windowBatches } from './text.mjs';

const { values: opts } = parseArgs({
  options: {
    'pretrain-epochs': { type: 'string' }, epochs: { type: 'string' }, rank: { type: 'string', default: '8' }, quick: { type: 'boolean', default: false }, out: { type: 'string' },
  },
});
const quick = opts.quick;
const pretrainEpochs = Number(opts['pretrain-epochs'] ?? (quick ? 1 : 6)), epochs = Number(opts.epochs ?? (quick ? 1 : 3));
const rank = Number(opts.rank);
const stepsPerEpoch = quick ? 15 : 150;
const config = { contextLength: 64, embedDim: 128, numHeads: 4, numLayers: 2, mlpRatio: 4 };
const batchSize = 32, T = config.contextLength;
const out = opts.out ?? join(import.meta.dirname, 'out');
mkdirSync(out, { recursive: true });

// ---- the two texts, over one character set ----
const LICENCES = '/usr/share/common-licenses';
const read = (names) => names.map((n) => readFileSync(join(LICENCES, n), 'utf8')).join('\n\n');
const base = read(['GPL-1', 'GPL-2', 'GPL-3', 'LGPL-2', 'LGPL-2.1', 'LGPL-3', 'GFDL-1.2', 'GFDL-1.3']);
const other = read(['Apache-2.0', 'Artistic', 'BSD', 'CC0-1.0', 'MPL-1.1', 'MPL-2.0']);
const chars = [...new Set(base + other)].sort();
const index = new Map(chars.map((c, i) => [c, i]));
const ids = (text) => Int32Array.from(text, (c) => index.get(c));
const V = chars.length;
const baseSplit = splitText(ids(base)), otherSplit = splitText(ids(other));
const entropy = (a) => {
  const counts = new Float64Array(V);
  for (const id of a) counts[id]++;
  return -counts.reduce((s, n) => (n ? s + (n / a.length) * Math.log(n / a.length) : s), 0);
};
console.log(`pretraining text: the GNU licences, ${base.length} characters; fine-tuning text: Apache, Artistic, BSD, CC0, MPL, ${other.length} characters; ${V} distinct`);

rg.manualSeed(3);
const random = rg.mulberry32(3);
const lossFn = new rg.CrossEntropyLoss();
const forwardBackward = (model) => (x, y) => {
  const loss = lossFn.forward(model.forward(x).reshape([-1, V]), y);
  loss.backward();
  return loss;
};
/** The held-out loss on a text's every tenth block (16 fixed batches). */
function heldOut(model, valid) {
  return rg.noGrad(() => {
    let sum = 0;
    for (const { x, y } of windowBatches(valid, { batchSize, seqLen: T, batches: 16, random: rg.mulberry32(7) }))
      sum += lossFn.forward(model.forward(rg.tensor(x, [batchSize, T])).reshape([-1, V]), rg.tensor(y, [batchSize * T])).item();
    return sum / 16;
  });
}
const train = (model, params, split, nEpochs, lr) => {
  const opt = new rg.AdamW(params, { lr, weightDecay: 0.01 });
  const sched = new rg.OneCycleLR(opt, lr, { totalSteps: nEpochs * stepsPerEpoch, pctStart: 0.1 });
  return trainOnText(rg, {
    train: split.train, valid: split.valid, batchSize, seqLen: T, epochs: nEpochs, stepsPerEpoch, random, opt, sched,
    unigramEntropy: entropy(split.train), logits: (x) => model.forward(x).reshape([-1, V]), forwardBackward: forwardBackward(model),
  });
};

// ---- 1. pretrain and save ----
console.log(`\n1. pretraining the tiny GPT (${config.numLayers} blocks, width ${config.embedDim}) on the GNU licences`);
const pretrained = tinyGpt(rg, { vocab: V, ...config });
train(pretrained, pretrained.parameters(), baseSplit, pretrainEpochs, 2e-3);
const baseFile = join(out, 'gpt-base.safetensors');
await rg.save(pretrained, baseFile);
console.log(`saved ${baseFile}`);

// ---- 2. load, add adapters, fine-tune them only ----
const model = await rg.load(baseFile);
const baseLoss = heldOut(model, otherSplit.valid), baseOwn = heldOut(model, baseSplit.valid);
const lora = rg.addLoRA(model, { rank, alpha: 2 * rank, targets: ['attn', 'mlp'] });
console.log(`\n2. LoRA rank ${rank} on ${lora.adapters.size} weights (${[...lora.adapters.keys()].join(', ')})`);
console.log(`trainable: ${lora.trainable} of ${lora.total} numbers (${((100 * lora.trainable) / lora.total).toFixed(2)}%); the base weights are frozen`);
train(model, [...lora.adapters.values()].flatMap((a) => a.parameters()), otherSplit, epochs, 2e-3);
const adaptedLoss = heldOut(model, otherSplit.valid);

// ---- 3. merge and save ----
rg.mergeLoRA(model);
const mergedFile = join(out, 'gpt-lora-merged.safetensors');
await rg.save(model, mergedFile);
const merged = await rg.load(mergedFile);
const mergedLoss = heldOut(merged, otherSplit.valid), mergedOwn = heldOut(merged, baseSplit.valid);
console.log(`\nheld-out loss on the new text (nats/char): base model ${baseLoss.toFixed(3)}, adapted ${adaptedLoss.toFixed(3)}, merged and reloaded ${mergedLoss.toFixed(3)}`);
console.log(`held-out loss on the pretraining text: base model ${baseOwn.toFixed(3)}, merged ${mergedOwn.toFixed(3)}`);
console.log(`saved the merged model (${Object.keys(merged.stateDict()).length} tensors, the base model's keys) to ${mergedFile}`);
const prompt = Array.from('Licensor ', (c) => index.get(c));
const text = generate(rg, merged, { prompt, length: quick ? 80 : 300, contextLength: T, pick: (l) => sampleIndex(l, 0.7, random) });
console.log(`sample of the merged model (temperature 0.7):\n${text.map((i) => chars[i]).join('')}`);
