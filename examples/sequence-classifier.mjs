// Backpropagation through time learning a long dependency: each sequence starts with one of 4 symbols, its class,
// followed by `length` − 1 steps of blanks and noise symbols. The classifier reads the LSTM's final state h_T
// (PyTorch's `h_n[-1]`), so the only way to the answer is to carry the first symbol across every step, and the only
// training signal reaches step 1 through T − 1 steps of the chain rule. Chance is 25%.
//   npm run example:sequence -- [--length 100] [--epochs 8] [--lr 1e-3] [--noise 0.2] [--forget-bias 3]
//                                 [--cell lstm|gru|rnn] [--quick]
// `--forget-bias 0` (PyTorch's initialisation) stays at chance from about 30 steps on: the first input fades as
// σ(0)^T and so does its gradient. `--cell gru` learns too (its update gate gets the same bias); `--cell rnn` (a
// plain tanh RNN, no gate to bias) does not learn at these lengths.
import { parseArgs } from 'node:util';
import * as rg from 'retrograd';
import { epochBar } from './text.mjs';

const { values: opts } = parseArgs({
  options: {
    length: { type: 'string', default: '100' }, epochs: { type: 'string' }, lr: { type: 'string', default: '1e-3' },
    noise: { type: 'string', default: '0.2' }, 'forget-bias': { type: 'string', default: '3' }, cell: { type: 'string', default: 'lstm' },
    quick: { type: 'boolean', default: false },
  },
});
const quick = opts.quick;
const length = Number(opts.length);
const epochs = Number(opts.epochs ?? (quick ? 2 : 8));
const cell = opts.cell;
const noise = Number(opts.noise);
const [symbols, classes, hidden, batchSize, stepsPerEpoch] = [8, 4, 64, 64, quick ? 30 : 60];

rg.manualSeed(3);
const random = rg.mulberry32(3);

/** A batch: one-hot symbols x [B, length, symbols] (batch first) and labels y [B], the first symbol's class. */
function batch(B) {
  const x = new Float32Array(B * length * symbols), y = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    y[b] = Math.floor(random() * classes);
    x[b * length * symbols + y[b]] = 1; // the first symbol names the class
    for (let t = 1; t < length; t++) {
      // then blanks, with a noise symbol (one of the other four) at a fifth of the steps
      if (random() < noise) x[(b * length + t) * symbols + classes + Math.floor(random() * (symbols - classes))] = 1;
    }
  }
  return { x: rg.tensor(x, [B, length, symbols]), y: rg.tensor(y, [B]) };
}

const Cell = { lstm: rg.LSTM, gru: rg.GRU, rnn: rg.RNN }[cell];
if (!Cell) throw new RangeError(`--cell must be lstm, gru or rnn, got ${cell}`);
const rnn = new Cell(symbols, hidden, { batchFirst: true });
if (cell !== 'rnn') {
  // A positive forget-gate bias (Gers et al.; Jozefowicz et al.): the cell starts out keeping its contents. With
  // PyTorch's default (about 0) a cell keeps σ(0)^T = 2^−T of its first input after T steps and no gradient
  // reaches the first symbol; with 3 it keeps 0.95^T (8% after 50 steps). The GRU's counterpart is its update gate z
  // (h = (1 − z)·n + z·h'): the second block in both layouts (LSTM i f g o, GRU r z n).
  const bias = Object.fromEntries(rnn.namedParameters()).bias_hh_l0.value;
  bias.assign(bias.toArray().fill(Number(opts['forget-bias']), hidden, 2 * hidden));
}
const head = new rg.Linear(hidden, classes);
const params = [...rnn.parameters(), ...head.parameters()];
const opt = new rg.Adam(params, { lr: Number(opts.lr) });
const lossFn = new rg.CrossEntropyLoss();
const zeros = rg.zeros([batchSize, length, hidden]); // the output sequence's gradient: the loss reads only h_T
const noCellGrad = rg.zeros([1, batchSize, hidden]); // the LSTM's final c does not enter the loss
console.log(`${cell.toUpperCase()}(${symbols}, ${hidden}) over ${length} steps, backend ${rg.getBackend()}; chance accuracy ${(100 / classes).toFixed(0)}%`);

/** h_T of the last layer: the final state's h ([numLayers, B, H] → [B, H]; for the LSTM the first of [h, c]). */
function finalHidden() {
  const s = rnn.lastState;
  return (Array.isArray(s) ? s[0] : s).reshape([-1, hidden]);
}

function evaluate() {
  const { x, y } = batch(512);
  rnn.forward(x);
  const logits = head.forward(finalHidden()).toArray(), labels = y.toArray();
  let right = 0;
  for (let b = 0; b < labels.length; b++) {
    const row = logits.subarray(b * classes, (b + 1) * classes);
    if (row.indexOf(Math.max(...row)) === labels[b]) right++;
  }
  x.dispose(), y.dispose();
  return right / labels.length;
}

for (let epoch = 1; epoch <= epochs; epoch++) {
  let sum = 0;
  const bar = epochBar(`epoch ${epoch}/${epochs}`, stepsPerEpoch);
  for (let step = 1; step <= stepsPerEpoch; step++) {
    const { x, y } = batch(batchSize);
    rnn.forward(x);
    const loss = lossFn.forward(head.forward(finalHidden()), y);
    opt.zeroGrad();
    // dL/dh_T enters the recurrent layer as the gradient of its final state; BPTT carries it back to step 1
    const dh = head.backward(lossFn.backward()).reshape([1, batchSize, hidden]);
    rnn.lastStateGrad = cell === 'lstm' ? [dh, noCellGrad] : dh;
    rnn.backward(zeros);
    rg.clipGradNorm(params, 1.0);
    opt.step();
    sum += loss.item();
    bar.update(step, sum / step);
    x.dispose(), y.dispose();
  }
  bar.stop();
  console.log(`epoch ${epoch}/${epochs}  loss ${(sum / stepsPerEpoch).toFixed(3)}  accuracy ${(100 * evaluate()).toFixed(1)}%`);
}
