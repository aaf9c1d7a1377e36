// A character-level language model: Embedding → LSTM → Linear, trained by backpropagation through time to predict
// each next character of a plain-text file, then sampled one character at a time with a temperature, carrying the
// LSTM's state from step to step (`initialState = lastState`).
//   npm run example:char-lstm -- [file] [--epochs 8] [--temperature 0.7] [--quick]
// The text defaults to the licences under /usr/share/common-licenses, present on every Debian and Ubuntu system
// (a folder reads all its files); every tenth block of 2,048 characters is held out for the validation loss. The loss is in nats per
// character; the unigram entropy printed first is what a model that knows only the characters' frequencies gets.
import { parseArgs } from 'node:util';
import * as rg from 'retrograd';
import { DEFAULT_TEXT, loadText, sampleIndex, splitText, trainOnText } from './text.mjs';

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: { epochs: { type: 'string' }, temperature: { type: 'string', default: '0.7' }, quick: { type: 'boolean', default: false } },
});
const quick = opts.quick;
const file = positionals[0] ?? DEFAULT_TEXT;
const epochs = Number(opts.epochs ?? (quick ? 2 : 8));
const temperature = Number(opts.temperature);
const stepsPerEpoch = quick ? 20 : 120;
const [batchSize, seqLen, embedDim, hidden] = [32, 64, 64, 256];

rg.manualSeed(1);
const random = rg.mulberry32(1);
const { ids, chars, unigramEntropy, files } = loadText(file);
const { train, valid } = splitText(ids);
console.log(`${file}${files > 1 ? ` (${files} files)` : ''}: ${ids.length} characters, ${chars.length} distinct; unigram entropy ${unigramEntropy.toFixed(3)} nats/char`);
console.log(`backend ${rg.getBackend()}; Embedding(${chars.length}, ${embedDim}) → LSTM(${embedDim}, ${hidden}) → Linear(${hidden}, ${chars.length})`);

const embed = new rg.Embedding(chars.length, embedDim);
const lstm = new rg.LSTM(embedDim, hidden, { batchFirst: true });
const head = new rg.Linear(hidden, chars.length);
const layers = [embed, lstm, head];
// each step writes into the last step's buffers (the loop keeps nothing), so a step allocates nothing
for (const l of layers) l.reuseOutputs();
const params = layers.flatMap((l) => l.parameters());
const opt = new rg.Adam(params, { lr: 3e-3 });
const sched = new rg.CosineAnnealingLR(opt, epochs * stepsPerEpoch, { etaMin: 3e-4 });
const lossFn = new rg.CrossEntropyLoss().reuseOutputs();

/** Logits [B·T, V] for int32 ids [B, T], through the three layers. */
function forward(x) {
  return head.forward(lstm.forward(embed.forward(x))).reshape([-1, chars.length]);
}

/** `length` characters continuing `prompt`, one at a time: the state carries the context. */
function sample(prompt, length) {
  const index = new Map(chars.map((c, i) => [c, i]));
  const out = [...prompt];
  lstm.initialState = null;
  let logits = forward(rg.tensor(Int32Array.from(prompt, (c) => index.get(c) ?? 0), [1, prompt.length]));
  for (let i = 0; i < length; i++) {
    const last = logits.toArray().subarray((logits.shape[0] - 1) * chars.length);
    const next = sampleIndex(last, temperature, random);
    out.push(chars[next]);
    lstm.initialState = lstm.lastState;
    logits = forward(rg.tensor(Int32Array.of(next), [1, 1]));
  }
  lstm.initialState = null;
  return out.join('');
}

trainOnText(rg, {
  train, valid, batchSize, seqLen, epochs, stepsPerEpoch, random, opt, sched, unigramEntropy, logits: forward,
  forwardBackward: (x, y) => {
    const loss = lossFn.forward(forward(x), y);
    // backpropagation: the loss's gradient through the head, then through time in the LSTM, then into the embedding
    embed.backward(lstm.backward(head.backward(lossFn.backward().reshape([batchSize, seqLen, chars.length]))));
    return loss;
  },
});
console.log(`sample (temperature ${temperature}):\n${sample('This License ', quick ? 120 : 400)}`);

