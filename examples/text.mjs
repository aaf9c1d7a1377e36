// Shared by the text examples (char-lstm.mjs, tiny-gpt.mjs) and bench W4: a character vocabulary over a plain-text
// file, batches of windows for next-character prediction, a tiny GPT, and sampling with a temperature.
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import cliProgress from 'cli-progress';
import { join } from 'node:path';

/** Texts present on every Debian and Ubuntu system: the licences (GPL, LGPL, Apache, MPL, …), about 240 kB. */
export const DEFAULT_TEXT = '/usr/share/common-licenses';

/**
 * A plain-text file, or every regular file of a folder in name order (links skipped), as token ids over its own
 * character set (sorted), with the entropy of the characters' frequencies.
 */
export function loadText(path = DEFAULT_TEXT) {
  const files = lstatSync(path).isDirectory()
    ? readdirSync(path).sort().map((f) => join(path, f)).filter((f) => lstatSync(f).isFile())
    : [path];
  const text = files.map((f) => readFileSync(f, 'utf8')).join('\n\n');
  const chars = [...new Set(text)].sort();
  const index = new Map(chars.map((c, i) => [c, i]));
  const ids = Int32Array.from(text, (c) => index.get(c));
  const counts = new Float64Array(chars.length);
  for (const id of ids) counts[id]++;
  let unigramEntropy = 0; // nats per character: the loss of a model that knows only the frequencies
  for (const n of counts) if (n > 0) unigramEntropy -= (n / ids.length) * Math.log(n / ids.length);
  return { text, chars, ids, unigramEntropy, files: files.length };
}

/** Training and held-out text: every tenth block of 2,048 characters is held out, so both sample the whole text. */
export function splitText(ids, block = 2048) {
  const train = [], valid = [];
  for (let i = 0; i * block < ids.length; i++) (i % 10 === 9 ? valid : train).push(...ids.subarray(i * block, (i + 1) * block));
  return { train: Int32Array.from(train), valid: Int32Array.from(valid) };
}

/**
 * One epoch of next-character batches: windows of `seqLen` + 1 characters from random starts (`random`: a
 * generator in [0, 1)), `x` the first seqLen of each, `y` the next character at every position. Yields int32 arrays
 * [batchSize · seqLen] for x and y.
 */
export function* windowBatches(ids, { batchSize, seqLen, batches, random }) {
  for (let n = 0; n < batches; n++) {
    const x = new Int32Array(batchSize * seqLen), y = new Int32Array(batchSize * seqLen);
    for (let b = 0; b < batchSize; b++) {
      const start = Math.floor(random() * (ids.length - seqLen - 1));
      x.set(ids.subarray(start, start + seqLen), b * seqLen);
      y.set(ids.subarray(start + 1, start + seqLen + 1), b * seqLen);
    }
    yield { x, y };
  }
}

/**
 * A tiny GPT as one Sequential: token embedding, learned positions, `numLayers` pre-norm causal transformer blocks,
 * a final LayerNorm and the projection back to the vocabulary. Input int32 [B, T], output logits [B, T, vocab].
 */
export function tinyGpt(rg, { vocab, contextLength, embedDim, numHeads, numLayers, mlpRatio = 4 }) {
  const blocks = Array.from({ length: numLayers }, () => new rg.TransformerBlock(embedDim, numHeads, { causal: true, mlpRatio }));
  return new rg.Sequential([
    new rg.Embedding(vocab, embedDim), new rg.PositionalEmbedding(contextLength, embedDim), ...blocks,
    new rg.LayerNorm(embedDim), new rg.Linear(embedDim, vocab),
  ]);
}

/** An index drawn from softmax(logits / temperature) (`random` in [0, 1)); temperature 0 takes the most likely. */
export function sampleIndex(logits, temperature, random) {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  if (temperature <= 0) return best;
  const p = Float64Array.from(logits, (v) => Math.exp((v - logits[best]) / temperature));
  let u = random() * p.reduce((a, v) => a + v, 0);
  for (let i = 0; i < p.length; i++) if ((u -= p[i]) <= 0) return i;
  return p.length - 1;
}

/**
 * An epoch's progress bar on a terminal (cli-progress, as fit draws it): `update(step, loss)`, then `stop()`. Nothing
 * is drawn when the output is not a terminal.
 */
export function epochBar(label, steps) {
  if (!process.stdout.isTTY) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    { format: `${label} {bar} {value}/{total} | loss {loss} | eta {eta_formatted}`, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(steps, 0, { loss: '-' });
  return { update: (step, loss) => bar.update(step, { loss: loss.toFixed(3) }), stop: () => bar.stop() };
}

/**
 * The training loop of the text examples: `epochs` × `stepsPerEpoch` steps on random windows of `train`. Each step
 * zeroes the gradients, runs `forwardBackward(x, y)` (x int32 [B, T], y int32 [B·T]; it returns the loss tensor after
 * backpropagating it), clips the gradients' global norm to 1 and steps the optimizer and the schedule. Progress on a
 * terminal and one line per epoch with the held-out loss, `logits(x)` ([B·T, V]) scored on four fixed batches of
 * `valid`; then the final held-out loss against the unigram entropy. Returns that loss.
 */
export function trainOnText(rg, { train, valid, batchSize, seqLen, epochs, stepsPerEpoch, random, opt, sched, forwardBackward, logits, unigramEntropy }) {
  const params = opt.params;
  const lossFn = new rg.CrossEntropyLoss();
  const batches = (ids, n, r) =>
    Array.from(windowBatches(ids, { batchSize, seqLen, batches: n, random: r }), ({ x, y }) => ({
      x: rg.tensor(x, [batchSize, seqLen]), y: rg.tensor(y, [batchSize * seqLen]),
    }));
  const held = batches(valid, 4, rg.mulberry32(99));
  const validLoss = () => held.reduce((s, { x, y }) => s + lossFn.forward(logits(x), y).item(), 0) / held.length;
  const started = performance.now();
  for (let epoch = 1; epoch <= epochs; epoch++) {
    let sum = 0;
    const bar = epochBar(`epoch ${epoch}/${epochs}`, stepsPerEpoch);
    for (let i = 1; i <= stepsPerEpoch; i++) {
      const [{ x, y }] = batches(train, 1, random);
      opt.zeroGrad();
      const loss = forwardBackward(x, y);
      rg.clipGradNorm(params, 1.0);
      opt.step();
      sched.step();
      sum += loss.item();
      bar.update(i, sum / i);
      x.dispose(), y.dispose();
    }
    bar.stop();
    const seconds = (performance.now() - started) / 1000, tokens = epoch * stepsPerEpoch * batchSize * seqLen;
    console.log(`epoch ${epoch}/${epochs}  train loss ${(sum / stepsPerEpoch).toFixed(3)}  valid loss ${validLoss().toFixed(3)}  ` +
      `(${seconds.toFixed(0)} s, ${(tokens / seconds).toFixed(0)} tokens/s)`);
  }
  const final = validLoss();
  for (const { x, y } of held) x.dispose(), y.dispose();
  console.log(`\nunigram entropy ${unigramEntropy.toFixed(3)} nats/char; final valid loss ${final.toFixed(3)}`);
  return final;
}
