// A tiny GPT trained on a plain-text file, character by character: token and learned position embeddings, causal
// pre-norm transformer blocks (multi-head self-attention and a GELU MLP, each with its residual), a final LayerNorm
// and the projection to the vocabulary. The [B, T, V] logits are reshaped to [B·T, V] for the cross-entropy, as
// PyTorch code does; generation feeds the last `contextLength` characters and samples the next with a temperature.
//   npm run example:gpt -- [file] [--epochs 8] [--layers 2] [--temperature 0.7] [--quick]
// The file defaults to the GPL's text, present on every Debian and Ubuntu system. Losses are in nats per character.
import * as rg from 'retrograd';
import { DEFAULT_TEXT, loadText, progress, sampleIndex, tinyGpt, windowBatches } from './text.mjs';

const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const quick = args.includes('--quick');
const file = args.find((a, i) => !a.startsWith('--') && !(i > 0 && args[i - 1].startsWith('--') && args[i - 1] !== '--quick')) ?? DEFAULT_TEXT;
const epochs = option('--epochs', quick ? 2 : 8);
const temperature = option('--temperature', 0.7);
const numLayers = option('--layers', 2);
const stepsPerEpoch = quick ? 20 : 150;
const config = { contextLength: 64, embedDim: 128, numHeads: 4, numLayers, mlpRatio: 4 };
const batchSize = 32, T = config.contextLength;

rg.manualSeed(2);
const random = rg.mulberry32(2);
const { ids, chars, unigramEntropy } = loadText(file);
const V = chars.length;
const split = Math.floor(ids.length * 0.9);
const [train, valid] = [ids.subarray(0, split), ids.subarray(split)];
console.log(`${file}: ${ids.length} characters, ${V} distinct; unigram entropy ${unigramEntropy.toFixed(3)} nats/char`);

// reuseOutputs: each step writes into the last step's buffers (the loop keeps nothing), so a step allocates nothing
const model = tinyGpt(rg, { vocab: V, ...config }).reuseOutputs();
const params = model.parameters();
const count = params.reduce((a, p) => a + p.value.size, 0);
console.log(`backend ${rg.getBackend()}; GPT: ${numLayers} blocks, width ${config.embedDim}, ${config.numHeads} heads, context ${T}; ${count} parameters`);
const opt = new rg.AdamW(params, { lr: 2e-3, weightDecay: 0.01 });
const sched = new rg.OneCycleLR(opt, 2e-3, { totalSteps: epochs * stepsPerEpoch, pctStart: 0.1 });
const lossFn = new rg.CrossEntropyLoss().reuseOutputs();

/** Mean loss over windows of the held-out text (no gradient). */
function validLoss() {
  let sum = 0, n = 0;
  for (const { x, y } of windowBatches(valid, { batchSize, seqLen: T, batches: 4, random: rg.mulberry32(99) })) {
    const xt = rg.tensor(x, [batchSize, T]), yt = rg.tensor(y, [batchSize * T]);
    sum += lossFn.forward(model.forward(xt).reshape([-1, V]), yt).item();
    n++;
    xt.dispose(), yt.dispose();
  }
  return sum / n;
}

/** `length` characters continuing `prompt`; each step sees the last `contextLength` characters. */
function sample(prompt, length) {
  const index = new Map(chars.map((c, i) => [c, i]));
  const context = Array.from(prompt, (c) => index.get(c) ?? 0);
  for (let i = 0; i < length; i++) {
    const window = context.slice(-T);
    const logits = model.forward(rg.tensor(Int32Array.from(window), [1, window.length])).toArray();
    context.push(sampleIndex(logits.subarray((window.length - 1) * V), temperature, random));
  }
  return context.map((i) => chars[i]).join('');
}

const started = performance.now();
for (let epoch = 1; epoch <= epochs; epoch++) {
  let sum = 0, step = 0;
  for (const { x, y } of windowBatches(train, { batchSize, seqLen: T, batches: stepsPerEpoch, random })) {
    const xt = rg.tensor(x, [batchSize, T]), yt = rg.tensor(y, [batchSize * T]);
    const loss = lossFn.forward(model.forward(xt).reshape([-1, V]), yt);
    opt.zeroGrad();
    model.backward(lossFn.backward().reshape([batchSize, T, V]));
    rg.clipGradNorm(params, 1.0);
    opt.step();
    sched.step();
    sum += loss.item();
    progress(`epoch ${epoch}/${epochs}`, ++step, stepsPerEpoch, sum / step);
    xt.dispose(), yt.dispose();
  }
  const seconds = (performance.now() - started) / 1000;
  const tokens = epoch * stepsPerEpoch * batchSize * T;
  console.log(`epoch ${epoch}/${epochs}  train loss ${(sum / step).toFixed(3)}  valid loss ${validLoss().toFixed(3)}  (${seconds.toFixed(0)} s, ${(tokens / seconds).toFixed(0)} tokens/s)`);
}
console.log(`\nunigram entropy ${unigramEntropy.toFixed(3)} nats/char; final valid loss ${validLoss().toFixed(3)}`);
console.log(`sample (temperature ${temperature}):\n${sample('This License ', quick ? 120 : 400)}`);
