// The recurrent and attention layers (RNN, LSTM, GRU, MultiheadAttention, TransformerBlock, PositionalEmbedding),
// four ways: backward against central differences in float64 (rg.gradCheck on the reference backend), including
// the gradients that flow into the initial state and out of the final state; the native CPU backend against the
// reference on the same weights and data, with awkward sizes; bad input, with the messages; and the bookkeeping
// (state-dict names, save/load, no tensor left behind, a step of a tiny GPT in fit-free training code).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { empty } from '../lib/tensor.js';
import { expectNoTensorGrowth, neverRises, randomArray, relError, requireCpu, rg, rng, TOL } from './helpers.js';

const cpuAvailable = requireCpu();

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
function input(shape: number[], seed: number, scale = 1): rg.Tensor {
  return rg.tensor(randomArray(size(shape), rng(seed), scale), shape);
}
const dir = mkdtempSync(join(tmpdir(), 'retrograd-rnn-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => rg.setBackend(cpuAvailable ? 'cpu' : 'reference'));

type Make = () => rg.Module;
/** [label, constructor, input shape]: small sizes for the float64 gradient checks. */
const LAYERS: [string, Make, number[]][] = [
  ['RNN tanh', () => new rg.RNN(3, 4), [5, 2, 3]],
  ['RNN relu, batchFirst', () => new rg.RNN(3, 4, { nonlinearity: 'relu', batchFirst: true }), [2, 5, 3]],
  ['LSTM', () => new rg.LSTM(3, 4), [5, 2, 3]],
  ['LSTM, 2 layers, batchFirst', () => new rg.LSTM(3, 4, { numLayers: 2, batchFirst: true }), [3, 4, 3]],
  ['LSTM unbatched, no bias', () => new rg.LSTM(2, 3, { bias: false }), [4, 2]],
  ['GRU', () => new rg.GRU(3, 4), [5, 2, 3]],
  ['GRU, 2 layers, batchFirst', () => new rg.GRU(2, 3, { numLayers: 2, batchFirst: true }), [2, 6, 2]],
  ['MultiheadAttention', () => new rg.MultiheadAttention(6, 2), [2, 4, 6]],
  ['MultiheadAttention causal', () => new rg.MultiheadAttention(6, 3, { causal: true }), [2, 5, 6]],
  ['TransformerBlock causal', () => new rg.TransformerBlock(4, 2, { causal: true, mlpRatio: 2 }), [2, 3, 4]],
  ['PositionalEmbedding', () => new rg.PositionalEmbedding(7, 3), [2, 5, 3]],
];

/** Every parameter drawn afresh in [−1, 1) (zero biases would hide their gradients' uses). */
function randomize(m: rg.Module, seed: number): void {
  const draw = rng(seed);
  for (const p of m.parameters()) p.value.assign(Array.from({ length: p.value.size }, () => 2 * draw() - 1));
}

/** Runs `layer` from an initial state given as its input: forward(h0) = layer(x) started from h0 (LSTM: c0 fixed). */
class FromInitialState extends rg.Module {
  constructor(
    readonly layer: rg.RNN | rg.LSTM | rg.GRU,
    x: rg.Tensor,
    private readonly c0: rg.Tensor | null,
  ) {
    super();
    this.registerModule('layer', layer);
    this.registerBuffer('x', x);
    if (c0) this.registerBuffer('c0', c0);
  }
  forward(h0: rg.Tensor): rg.Tensor {
    const c0 = this.c0 ? this.getBuffer('c0') : null;
    this.layer.initialState = c0 ? [h0, c0] : h0;
    return this.layer.forward(this.getBuffer('x'));
  }
  override backward(dy: rg.Tensor): rg.Tensor {
    this.layer.backward(dy);
    const g = this.layer.initialStateGrad!;
    return Array.isArray(g) ? g[0] : (g as rg.Tensor);
  }
}

/** The final state as the output: forward(x) = h_N (or, `cell`, an LSTM's c_N); its gradient enters through lastStateGrad. */
class ToFinalState extends rg.Module {
  constructor(
    readonly layer: rg.RNN | rg.LSTM | rg.GRU,
    private readonly cell = false,
  ) {
    super();
    this.registerModule('layer', layer);
  }
  private yShape: readonly number[] = [];
  forward(x: rg.Tensor): rg.Tensor {
    this.yShape = this.layer.forward(x).shape;
    const s = this.layer.lastState!;
    return Array.isArray(s) ? s[this.cell ? 1 : 0] : (s as rg.Tensor);
  }
  override backward(dy: rg.Tensor): rg.Tensor {
    const s = this.layer.lastState!;
    if (Array.isArray(s)) {
      const zero = empty(dy.backend, dy.shape);
      this.layer.lastStateGrad = this.cell ? [zero, dy] : [dy, zero];
    } else this.layer.lastStateGrad = dy;
    return this.layer.backward(empty(dy.backend, this.yShape));
  }
}

describe('gradient checks (central differences, float64 reference)', () => {
  LAYERS.forEach(([name, make, shape], i) => {
    it(name, () => {
      rg.setBackend('reference');
      rg.manualSeed(300 + i);
      const m = make();
      randomize(m, 310 + i);
      const r = rg.gradCheck(m, input(shape, 320 + i));
      expect(r.maxRelError, JSON.stringify(r.errors)).toBeLessThan(TOL.gradcheck);
      expect(Object.keys(r.errors).sort()).toEqual(['input', ...m.namedParameters().map(([n]) => n)].sort());
    });
  });

  const stateCases: [string, () => rg.RNN | rg.LSTM | rg.GRU, boolean][] = [
    ['RNN', () => new rg.RNN(3, 4, { numLayers: 2 }), false],
    ['LSTM', () => new rg.LSTM(3, 4, { numLayers: 2 }), true],
    ['GRU', () => new rg.GRU(3, 4), false],
  ];
  stateCases.forEach(([name, make, lstm], i) => {
    it(`${name}: the gradient reaching the initial state, and the one leaving from the final state`, () => {
      rg.setBackend('reference');
      rg.manualSeed(330 + i);
      const layer = make();
      randomize(layer, 340 + i);
      const L = layer.numLayers;
      const x = input([4, 2, 3], 350 + i);
      const c0 = lstm ? input([L, 2, 4], 360 + i) : null;
      const fromInit = rg.gradCheck(new FromInitialState(layer, x, c0), input([L, 2, 4], 370 + i));
      expect(fromInit.maxRelError, JSON.stringify(fromInit.errors)).toBeLessThan(TOL.gradcheck);
      layer.initialState = null;
      const toFinal = rg.gradCheck(new ToFinalState(layer), input([4, 2, 3], 380 + i));
      expect(toFinal.maxRelError, JSON.stringify(toFinal.errors)).toBeLessThan(TOL.gradcheck);
      if (lstm) {
        const cell = rg.gradCheck(new ToFinalState(layer, true), input([4, 2, 3], 390 + i));
        expect(cell.maxRelError, JSON.stringify(cell.errors)).toBeLessThan(TOL.gradcheck);
      }
    });
  });
});

describe.skipIf(!cpuAvailable)('native CPU against the reference', () => {

  /** Builds the layer on both backends with the same weights, runs forward and backward on each, compares all. */
  function compare(make: Make, shape: number[], seed: number, setup?: (m: rg.Module, backend: string) => void): void {
    rg.setBackend('reference');
    rg.manualSeed(seed);
    const ref = make();
    randomize(ref, seed + 1);
    const weights = Object.fromEntries(Object.entries(ref.stateDict()).map(([k, t]) => [k, t.toArray() as Float32Array]));
    const xData = randomArray(size(shape), rng(seed + 2));
    const results: Record<string, Float32Array>[] = [];
    for (const backend of ['reference', 'cpu']) {
      rg.setBackend(backend as 'cpu');
      const m = backend === 'reference' ? ref : make();
      if (backend === 'cpu') m.loadStateDict(weights);
      setup?.(m, backend);
      const y = m.forward(rg.tensor(xData, shape));
      const dy = rg.tensor(randomArray(y.size, rng(seed + 3)), y.shape);
      const dx = m.backward(dy);
      const out: Record<string, Float32Array> = { y: y.toArray() as Float32Array, dx: dx.toArray() as Float32Array };
      for (const [n, p] of m.namedParameters()) out[`grad ${n}`] = p.grad.toArray() as Float32Array;
      if (m instanceof rg.RNN || m instanceof rg.LSTM || m instanceof rg.GRU) {
        const last = m.lastState!;
        (Array.isArray(last) ? last : [last]).forEach((t, k) => (out[`lastState ${k}`] = t.toArray() as Float32Array));
        const g = m.initialStateGrad;
        if (g) (Array.isArray(g) ? g : [g]).forEach((t, k) => (out[`initialStateGrad ${k}`] = t.toArray() as Float32Array));
      }
      results.push(out);
    }
    const [want, got] = results;
    expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
    for (const key of Object.keys(want)) expect(relError(got[key], want[key]), key).toBeLessThan(TOL.reduction);
  }

  const cases: [string, Make, number[]][] = [
    ['RNN tanh [T 1, B 1]', () => new rg.RNN(1, 1), [1, 1, 1]],
    ['RNN relu, 3 layers', () => new rg.RNN(5, 17, { nonlinearity: 'relu', numLayers: 3 }), [7, 3, 5]],
    ['LSTM [T 33, B 5, H 17]', () => new rg.LSTM(3, 17), [33, 5, 3]],
    ['LSTM batchFirst, 2 layers, wide', () => new rg.LSTM(20, 130, { batchFirst: true, numLayers: 2 }), [4, 9, 20]],
    ['LSTM unbatched', () => new rg.LSTM(4, 8), [6, 4]],
    ['GRU batchFirst [B 16, T 12, H 64]', () => new rg.GRU(10, 64, { batchFirst: true }), [16, 12, 10]],
    ['GRU 2 layers, no bias', () => new rg.GRU(3, 5, { numLayers: 2, bias: false }), [9, 2, 3]],
    ['MultiheadAttention [2, 17, 12], 3 heads', () => new rg.MultiheadAttention(12, 3), [2, 17, 12]],
    ['MultiheadAttention causal, 1 position', () => new rg.MultiheadAttention(8, 2, { causal: true }), [3, 1, 8]],
    ['MultiheadAttention causal [4, 64, 64], 4 heads', () => new rg.MultiheadAttention(64, 4, { causal: true }), [4, 64, 64]],
    ['TransformerBlock causal [3, 20, 32]', () => new rg.TransformerBlock(32, 4, { causal: true }), [3, 20, 32]],
    ['PositionalEmbedding [3, 9, 5] of 16', () => new rg.PositionalEmbedding(16, 5), [3, 9, 5]],
  ];
  cases.forEach(([name, make, shape], i) => it(name, () => compare(make, shape, 400 + 10 * i)));

  it('LSTM and GRU from an initial state, with a gradient into the final state', () => {
    for (const [i, make] of [() => new rg.LSTM(3, 6, { numLayers: 2 }), () => new rg.GRU(3, 6, { numLayers: 2, batchFirst: true })].entries()) {
      compare(make, i === 0 ? [5, 4, 3] : [4, 5, 3], 600 + i * 10, (m) => {
        const r = m as rg.LSTM | rg.GRU;
        const state = () => input([2, 4, 6], 700 + i);
        r.initialState = r instanceof rg.LSTM ? [state(), input([2, 4, 6], 710 + i)] : state();
        // the final state's gradient is set after the forward, so it is wrapped around forward here
        const forward = r.forward.bind(r);
        r.forward = (x: rg.Tensor) => {
          const y = forward(x);
          r.lastStateGrad = r instanceof rg.LSTM ? [input([2, 4, 6], 720 + i), input([2, 4, 6], 730 + i)] : input([2, 4, 6], 720 + i);
          return y;
        };
      });
    }
  });
});

describe('bad input', () => {
  it('names the layer, what it expected and what came', () => {
    rg.setBackend('reference');
    const lstm = new rg.LSTM(3, 4);
    expect(() => lstm.forward(input([5, 2, 4], 1))).toThrow(/LSTM\(3, 4\): input must be \[T, B, 3\] \(or unbatched \[T, 3\]\), got \[5, 2, 4\]/);
    expect(() => lstm.forward(input([5, 2, 3, 1], 1))).toThrow(RangeError);
    expect(() => lstm.forward(rg.tensor(Int32Array.of(1, 2, 3), [1, 1, 3]))).toThrow(/must be a float32 tensor/);
    lstm.initialState = input([1, 3, 4], 2) as never;
    expect(() => lstm.forward(input([5, 2, 3], 1))).toThrow(/initialState must be \[h, c\] for an LSTM/);
    lstm.initialState = [input([1, 3, 4], 2), input([1, 2, 4], 3)];
    expect(() => lstm.forward(input([5, 2, 3], 1))).toThrow(/LSTM\(3, 4\): initialState\[0\] \(h\) must be \[1, 2, 4\], got \[1, 3, 4\]/);
    lstm.initialState = null;
    const y = lstm.forward(input([5, 2, 3], 1));
    expect(() => lstm.backward(input([5, 2, 5], 1))).toThrow(/gradient has shape \[5, 2, 5\], expected the output shape \[5, 2, 4\]/);
    expect(y.shape).toEqual([5, 2, 4]);
    expect(() => new rg.GRU(3, 0)).toThrow(/GRU.*hiddenSize/);
    expect(() => new rg.RNN(3, 4, { nonlinearity: 'sigmoid' as never })).toThrow(/nonlinearity must be 'tanh' or 'relu'/);
    expect(() => new rg.LSTM(3, 4, { batchfirst: true } as never)).toThrow(/batchfirst.*batchFirst/);
    expect(() => new rg.MultiheadAttention(10, 3)).toThrow(/embedDim \(10\) must be divisible by numHeads \(3\)/);
    const mha = new rg.MultiheadAttention(8, 2);
    expect(() => mha.forward(input([2, 3, 6], 1))).toThrow(/MultiheadAttention\(8, 2\): input must be \[B, T, 8\], got \[2, 3, 6\]/);
    const block = new rg.TransformerBlock(8, 2, { causal: true });
    expect(() => block.forward(input([2, 3, 4], 1))).toThrow(/TransformerBlock\(8, 2, causal\): input must be \[B, T, 8\], got \[2, 3, 4\]/);
    expect(() => new rg.TransformerBlock(8, 3)).toThrow(/embedDim \(8\) must be divisible by numHeads \(3\)/);
    expect(() => new rg.TransformerBlock(8, 2, { mlpratio: 2 } as never)).toThrow(/mlpratio.*mlpRatio/);
    const gru = new rg.GRU(3, 4, { numLayers: 2 });
    gru.forward(input([5, 2, 3], 1));
    gru.lastStateGrad = input([1, 2, 4], 1);
    expect(() => gru.backward(input([5, 2, 4], 1))).toThrow(/GRU\(3, 4, numLayers=2\): lastStateGrad must be \[2, 2, 4\], got \[1, 2, 4\]/);
    const pos = new rg.PositionalEmbedding(4, 3);
    expect(() => pos.forward(input([1, 5, 3], 1))).toThrow(/5 positions, more than maxLen 4/);
    // a failed call changed nothing: the next valid one works
    expect(lstm.forward(input([5, 2, 3], 1)).shape).toEqual([5, 2, 4]);
    expect(mha.forward(input([2, 3, 8], 1)).shape).toEqual([2, 3, 8]);
  });
});

describe('bookkeeping', () => {
  it("PyTorch's state-dict names and shapes", () => {
    rg.setBackend('reference');
    const shapes = (m: rg.Module) => Object.fromEntries(Object.entries(m.stateDict()).map(([k, t]) => [k, [...t.shape]]));
    expect(shapes(new rg.LSTM(3, 5, { numLayers: 2 }))).toEqual({
      weight_ih_l0: [20, 3], weight_hh_l0: [20, 5], bias_ih_l0: [20], bias_hh_l0: [20],
      weight_ih_l1: [20, 5], weight_hh_l1: [20, 5], bias_ih_l1: [20], bias_hh_l1: [20],
    });
    expect(shapes(new rg.GRU(3, 5, { bias: false }))).toEqual({ weight_ih_l0: [15, 3], weight_hh_l0: [15, 5] });
    expect(shapes(new rg.MultiheadAttention(8, 2))).toEqual({ in_proj_weight: [24, 8], in_proj_bias: [24], 'out_proj.weight': [8, 8], 'out_proj.bias': [8] });
    expect(Object.keys(shapes(new rg.TransformerBlock(8, 2)))).toEqual([
      'ln1.weight', 'ln1.bias', 'attn.in_proj_weight', 'attn.in_proj_bias', 'attn.out_proj.weight', 'attn.out_proj.bias',
      'ln2.weight', 'ln2.bias', 'mlp.0.weight', 'mlp.0.bias', 'mlp.2.weight', 'mlp.2.bias',
    ]);
  });

  it('initialisation as PyTorch: U(−1/√H, 1/√H) for recurrent weights, zero attention biases', () => {
    rg.setBackend('reference');
    rg.manualSeed(5);
    const gru = new rg.GRU(4, 25);
    for (const p of gru.parameters()) {
      const v = p.value.toArray();
      expect(Math.max(...v.map(Math.abs))).toBeLessThanOrEqual(1 / 5);
      expect(Math.max(...v.map(Math.abs))).toBeGreaterThan(0.15);
    }
    const mha = new rg.MultiheadAttention(8, 2);
    expect([...mha.inProjBias!.value.toArray()].every((v) => v === 0)).toBe(true);
    expect([...mha.outProj.bias!.value.toArray()].every((v) => v === 0)).toBe(true);
  });

  it('a tiny GPT saves and loads (architecture and weights) and gives the same logits', async () => {
    rg.setBackend(cpuAvailable ? 'cpu' : 'reference');
    rg.manualSeed(9);
    const gpt = new rg.Sequential([
      new rg.Embedding(11, 8), new rg.PositionalEmbedding(6, 8), new rg.TransformerBlock(8, 2, { causal: true }),
      new rg.LayerNorm(8), new rg.Linear(8, 11),
    ]);
    const ids = rg.tensor(Int32Array.from({ length: 12 }, (_, i) => (i * 7) % 11), [2, 6]);
    const want = gpt.forward(ids).toArray();
    await rg.save(gpt, join(dir, 'gpt.safetensors'));
    const loaded = await rg.load(join(dir, 'gpt.safetensors'));
    expect(relError(loaded.forward(ids).toArray(), want)).toBeLessThan(1e-6);
    const lstm = new rg.LSTM(3, 4, { numLayers: 2, batchFirst: true });
    await rg.save(lstm, join(dir, 'lstm.safetensors'));
    const back = (await rg.load(join(dir, 'lstm.safetensors'))) as rg.LSTM;
    expect(back).toBeInstanceOf(rg.LSTM);
    expect([back.numLayers, back.batchFirst]).toEqual([2, true]);
    const x = input([2, 3, 3], 4);
    expect(relError(back.forward(x).toArray(), lstm.forward(x).toArray())).toBeLessThan(1e-6);
  });

  for (const backend of ['reference', ...(cpuAvailable ? ['cpu'] : [])]) {
    it(`${backend}: forward and backward leave no tensor behind, also when the last state starts the next batch`, () => {
      rg.setBackend(backend as 'cpu');
      expectNoTensorGrowth(new rg.LSTM(3, 4, { numLayers: 2, batchFirst: true }), input([2, 5, 3], 1), 'LSTM');
      expectNoTensorGrowth(new rg.GRU(3, 4), input([5, 2, 3], 1), 'GRU');
      expectNoTensorGrowth(new rg.TransformerBlock(8, 2, { causal: true }), input([2, 5, 8], 1), 'TransformerBlock');
      const lstm = new rg.LSTM(3, 4);
      const x = input([5, 2, 3], 2);
      const counts: number[] = [];
      for (let i = 0; i < 4; i++) {
        lstm.initialState = lstm.lastState; // truncated BPTT: carry the state, not its gradient
        const y = lstm.forward(x);
        const dy = rg.zeros(y.shape);
        lstm.backward(dy).dispose();
        y.dispose();
        dy.dispose();
        x.toArray();
        counts.push(rg.memory().tensors);
      }
      // the carried state is the caller's from then on, so the count settles after the first step
      expect(neverRises(counts.slice(1)), counts.join(', ')).toBeUndefined();
    });
  }
});

describe('a tiny GPT trained step by step', () => {
  const V = 11, B = 3, T = 6;
  const E = 8;
  /** examples/text.mjs's tinyGpt at toy size: embeddings, 2 causal blocks, LayerNorm, the head. */
  const tinyGpt = () =>
    new rg.Sequential([
      new rg.Embedding(V, E), new rg.PositionalEmbedding(8, E), new rg.TransformerBlock(E, 2, { causal: true, mlpRatio: 2 }),
      new rg.TransformerBlock(E, 2, { causal: true, mlpRatio: 2 }), new rg.LayerNorm(E), new rg.Linear(E, V),
    ]);
  /** Batches of a repeating pattern (each next token is determined by the one before), so the loss can fall. */
  const batch = (i: number) => {
    const x = Int32Array.from({ length: B * T }, (_, k) => (3 * (Math.floor(k / T) + i) + 2 * (k % T)) % V);
    const y = x.map((v) => (v + 2) % V);
    return { x: rg.tensor(x, [B, T]), y: rg.tensor(y, [B * T]) };
  };
  /** `steps` AdamW steps from the weights `init` (null: the model's own), on the current backend. */
  function train(steps: number, init: Record<string, Float32Array> | null, reuse = false) {
    rg.manualSeed(11);
    const model = tinyGpt();
    if (init) model.loadStateDict(init);
    if (reuse) model.reuseOutputs();
    const lossFn = new rg.CrossEntropyLoss().reuseOutputs(reuse);
    const opt = new rg.AdamW(model.parameters(), { lr: 1e-2 });
    const losses: number[] = [];
    const counts: number[] = [];
    for (let i = 0; i < steps; i++) {
      const { x, y } = batch(i);
      const loss = lossFn.forward(model.forward(x).reshape([-1, V]), y);
      opt.zeroGrad();
      model.backward(lossFn.backward().reshape([B, T, V]));
      rg.clipGradNorm(model.parameters(), 1);
      opt.step();
      losses.push(loss.item());
      x.dispose(), y.dispose();
      counts.push(rg.memory().tensors);
    }
    const weights = Object.fromEntries(Object.entries(model.stateDict()).map(([k, t]) => [k, t.toArray() as Float32Array]));
    return { losses, weights, counts };
  }

  it.skipIf(!cpuAvailable)('native CPU follows the reference for 8 steps (losses and every weight)', () => {
    rg.setBackend('reference');
    rg.manualSeed(11);
    const init = Object.fromEntries(Object.entries(tinyGpt().stateDict()).map(([k, t]) => [k, t.toArray() as Float32Array]));
    const ref = train(8, init);
    rg.setBackend('cpu');
    const nat = train(8, init);
    expect(relError(Float32Array.from(nat.losses), ref.losses), `${nat.losses} vs ${ref.losses}`).toBeLessThan(TOL.reduction);
    // The key bias's gradient is 0 in exact arithmetic (it adds q·b_k to every score of a query, which the softmax
    // cancels), so each backend's is rounding noise, and Adam's normalised step turns noise into ±lr: its values
    // differ by design (as in PyTorch). The q and v blocks of in_proj_bias are compared.
    const qv = (a: Float32Array) => Float32Array.from([...a.subarray(0, E), ...a.subarray(2 * E)]);
    for (const key of Object.keys(ref.weights)) {
      const [got, want] = key.endsWith('in_proj_bias') ? [qv(nat.weights[key]), qv(ref.weights[key])] : [nat.weights[key], ref.weights[key]];
      expect(relError(got, want), key).toBeLessThan(TOL.reduction);
    }
  });

  for (const backend of ['reference', ...(cpuAvailable ? ['cpu'] : [])]) {
    it(`${backend}: the loss falls, and with reuseOutputs the same steps give the same losses and allocate nothing`, () => {
      rg.setBackend(backend as 'cpu');
      const fresh = train(30, null);
      expect(fresh.losses.at(-1)!).toBeLessThan(0.3 * fresh.losses[0]);
      const reused = train(30, null, true);
      expect(relError(Float32Array.from(reused.losses), fresh.losses)).toBeLessThan(1e-6);
      expect(neverRises(reused.counts.slice(2)), reused.counts.join(', ')).toBeUndefined();
    });
  }
});
