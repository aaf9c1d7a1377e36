// A tiny GPT trained on a plain-text file, character by character: token and learned position embeddings, causal
// pre-norm transformer blocks (multi-head self-attention and a GELU MLP, each with its residual), a final LayerNorm
// and the projection to the vocabulary. The [B, T, V] logits are reshaped to [B·T, V] for the cross-entropy, as
// PyTorch code does; generation runs one character per step through a key/value cache (rg.KVCache: each step attends
// to the cached keys and values of the characters before it) and samples the next with a temperature.
//   npm run example:gpt -- [file] [--epochs 8] [--layers 2] [--temperature 0.7] [--quick]
// The text defaults to the licences under /usr/share/common-licenses, present on every Debian and Ubuntu system
// (a folder reads all its files); every tenth block of 2,048 characters is held out for the validation loss. Losses are in nats per character.
import { parseArgs } from 'node:util';
import * as rg from 'retrograd';
import { DEFAULT_TEXT, generate, loadText, sampleIndex, splitText, tinyGpt, trainOnText } from './text.mjs';

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    epochs: { type: 'string' }, layers: { type: 'string', default: '2' }, temperature: { type: 'string', default: '0.7' },
    quick: { type: 'boolean', default: false },
  },
});
const quick = opts.quick;
const file = positionals[0] ?? DEFAULT_TEXT;
const epochs = Number(opts.epochs ?? (quick ? 2 : 8));
const temperature = Number(opts.temperature);
const numLayers = Number(opts.layers);
const stepsPerEpoch = quick ? 20 : 150;
const config = { contextLength: 64, embedDim: 128, numHeads: 4, numLayers, mlpRatio: 4 };
const batchSize = 32, T = config.contextLength;

rg.manualSeed(2);
const random = rg.mulberry32(2);
const { ids, chars, unigramEntropy, files } = loadText(file);
const V = chars.length;
const { train, valid } = splitText(ids);
console.log(`${file}${files > 1 ? ` (${files} files)` : ''}: ${ids.length} characters, ${V} distinct; unigram entropy ${unigramEntropy.toFixed(3)} nats/char`);

// reuseOutputs: each step writes into the last step's buffers (the loop keeps nothing), so a step allocates nothing
const model = tinyGpt(rg, { vocab: V, ...config }).reuseOutputs();
const params = model.parameters();
const count = params.reduce((a, p) => a + p.value.size, 0);
console.log(`backend ${rg.getBackend()}; GPT: ${numLayers} blocks, width ${config.embedDim}, ${config.numHeads} heads, context ${T}; ${count} parameters`);
const opt = new rg.AdamW(params, { lr: 2e-3, weightDecay: 0.01 });
const sched = new rg.OneCycleLR(opt, 2e-3, { totalSteps: epochs * stepsPerEpoch, pctStart: 0.1 });
const lossFn = new rg.CrossEntropyLoss().reuseOutputs();

/** `length` characters continuing `prompt`, one step each through a key/value cache (text.mjs's generate). */
function sample(prompt, length) {
  const index = new Map(chars.map((c, i) => [c, i]));
  const ids = generate(rg, model, {
    prompt: Array.from(prompt, (c) => index.get(c) ?? 0), length, contextLength: T,
    pick: (logits) => sampleIndex(logits, temperature, random),
  });
  return ids.map((i) => chars[i]).join('');
}

trainOnText(rg, {
  train, valid, batchSize, seqLen: T, epochs, stepsPerEpoch, random, opt, sched, unigramEntropy,
  logits: (x) => model.forward(x).reshape([-1, V]),
  forwardBackward: (x, y) => {
    const loss = lossFn.forward(model.forward(x).reshape([-1, V]), y);
    // backpropagation through the head, the blocks (attention, MLP, their residuals) and both embeddings
    model.backward(lossFn.backward().reshape([batchSize, T, V]));
    return loss;
  },
});
const started = performance.now(), length = quick ? 120 : 400;
const text = sample('This License ', length);
const rate = length / ((performance.now() - started) / 1000);
console.log(`sample (temperature ${temperature}):\n${text}`);
console.log(`(${length} characters, one step each through the key/value cache: ${rate.toFixed(0)} characters/s)`);
