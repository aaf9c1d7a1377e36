// MultiheadAttention's general form, the transformer modules and the KV cache, beyond the PyTorch golden values
// (test/transformer-golden.test.ts): gradients against central finite differences in float64 (the general path with
// every kind of mask, the fused path, the layers); the fused route and the general path agreeing; attention dropout on
// the graph; batchFirst false and bias false on the hand-written path; incremental decoding through a KVCache giving
// the full forward's tokens and logits (a decoder and a tiny GPT), leaving no tensor behind, and its misuse refused;
// bad input, with the messages.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { KVCache, MultiheadAttention, PositionalEmbedding, TransformerBlock, type AttentionForwardOptions } from '../lib/nn/attention.js';
import { Transformer, TransformerDecoder, TransformerDecoderLayer, TransformerEncoder, TransformerEncoderLayer } from '../lib/nn/transformer.js';
import { hasOwnBackward } from '../lib/nn/graph.js';
import { fromHost, type Tensor } from '../lib/tensor.js';
import { neverRises, randomArray, reference64Backend, relError, requireCpu, rg, rng, TOL } from './helpers.js';

const cpuAvailable = requireCpu();
const backends: ('reference' | 'cpu')[] = cpuAvailable ? ['reference', 'cpu'] : ['reference'];
afterEach(() => rg.setBackend(cpuAvailable ? 'cpu' : 'reference'));
const dir = mkdtempSync(join(tmpdir(), 'retrograd-transformer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const input = (shape: number[], seed: number, scale = 1) => rg.tensor(randomArray(size(shape), rng(seed), scale), shape);
/** Every parameter drawn afresh in [−0.5, 0.5) (zero biases would hide their gradients' uses). */
function randomize(m: rg.Module, seed: number): void {
  const draw = rng(seed);
  for (const p of m.parameters()) p.value.assign(Array.from({ length: p.value.size }, () => draw() - 0.5));
}
const b64 = reference64Backend;
const int32 = (data: number[], shape: number[], backend = rg.getBackend()) =>
  backend === 'reference64' ? fromHost(b64, Int32Array.from(data), shape) : rg.tensor(Int32Array.from(data), shape);
const causalFloat = (L: number, S: number) => Array.from({ length: L * S }, (_, k) => (k % S > Math.floor(k / S) ? -Infinity : 0));

// ---- float64 finite differences ----

/**
 * dL/dinput and dL/dparam of L = Σ_k outputs_k ⊙ r_k (r fixed and random) by the graph, against central differences,
 * in float64 on the reference backend: the normwise relative error of each tensor. `run` gets the inputs as float64
 * leaves (and builds its masks on that backend).
 */
function gradcheck(m: rg.Module, shapes: number[][], run: (xs: Tensor[]) => (Tensor | null)[], seed: number): Record<string, number> {
  return m.withStateOn(b64, () => {
    const r = rng(seed);
    const values = shapes.map((s) => Float64Array.from({ length: size(s) }, () => 2 * r() - 1));
    const xs = values.map((v, i) => fromHost(b64, v, shapes[i]).requiresGrad_());
    const outs = run(xs).filter((o): o is Tensor => o !== null);
    const weights = outs.map((o) => fromHost(b64, Float64Array.from({ length: o.size }, () => 2 * r() - 1), o.shape));
    const objective = (os: Tensor[]) => os.map((o, k) => o.mul(weights[k]).sum()).reduce((a, b) => a.add(b));
    objective(outs).backward();
    const value = () => rg.noGrad(() => (b64.read(objective(run(xs).filter((o): o is Tensor => o !== null)).buf) as Float64Array)[0]);
    const checks: [string, Float64Array, Float64Array][] = xs.map((x, i) => [`input ${i}`, x.buf as unknown as Float64Array, b64.read(x.grad!.buf) as Float64Array]);
    for (const [n, p] of m.namedParameters()) checks.push([n, p.value.buf as unknown as Float64Array, b64.read(p.grad.buf) as Float64Array]);
    const errors: Record<string, number> = {};
    for (const [name, v, analytic] of checks) {
      let diff = 0, na = 0, nn = 0;
      for (let j = 0; j < v.length; j++) {
        const x = v[j], h = 1e-6;
        v[j] = x + h;
        const up = value();
        v[j] = x - h;
        const down = value();
        v[j] = x;
        const numeric = (up - down) / (2 * h);
        diff += (analytic[j] - numeric) ** 2;
        na += analytic[j] ** 2;
        nn += numeric ** 2;
      }
      const scale = Math.max(Math.sqrt(na), Math.sqrt(nn));
      errors[name] = scale === 0 ? Math.sqrt(diff) : Math.sqrt(diff) / scale;
    }
    return errors;
  });
}
const worst = (e: Record<string, number>) => Math.max(...Object.values(e));

describe('gradients against central differences (float64, reference)', () => {
  type Case = [string, () => rg.Module, number[][], (m: rg.Module, xs: Tensor[]) => (Tensor | null)[]];
  const mha = (m: rg.Module) => m as MultiheadAttention;
  const cases: Case[] = [
    ['cross-attention, sequence first: bool key padding, float attnMask, weights per head', () => new MultiheadAttention(6, 2, { batchFirst: false }), [[3, 2, 6], [4, 2, 6]],
      (m, [q, kv]) => mha(m).forward(q, kv, kv, {
        keyPaddingMask: int32([0, 0, 1, 0, 0, 1, 0, 1], [2, 4], 'reference64'),
        attnMask: fromHost(b64, Float64Array.from({ length: 12 }, (_, k) => (k % 5 === 3 ? -Infinity : Math.sin(k))), [3, 4]),
        averageAttnWeights: false,
      })],
    ['self-attention: bool attnMask [B·H, L, S], isCausal, weights averaged', () => new MultiheadAttention(6, 3), [[2, 4, 6]],
      (m, [x]) => mha(m).forward(x, x, x, { attnMask: int32(Array.from({ length: 96 }, (_, k) => (k % 7 === 5 ? 1 : 0)), [6, 4, 4], 'reference64'), isCausal: true })],
    ['separate query, key and value, unbatched, float key padding, no bias', () => new MultiheadAttention(4, 2, { bias: false }), [[3, 4], [5, 4], [5, 4]],
      (m, [q, k, v]) => mha(m).forward(q, k, v, { keyPaddingMask: fromHost(b64, Float64Array.of(0, -0.5, -Infinity, 0.3, 0), [5]) })],
    ['self-attention without weights (the fused kernels on the graph)', () => new MultiheadAttention(6, 2, { causal: true }), [[2, 5, 6]],
      (m, [x]) => mha(m).forward(x, x, x, { needWeights: false })],
    ['boolean-array key padding on a cross-attention, batch first', () => new MultiheadAttention(4, 1), [[2, 2, 4], [2, 3, 4]],
      (m, [q, kv]) => mha(m).forward(q, kv, kv, { keyPaddingMask: [[false, true, false], [false, false, true]] })],
    ['TransformerEncoderLayer, post-norm, relu, key padding', () => new TransformerEncoderLayer(4, 2, { dimFeedforward: 5, dropout: 0 }), [[3, 2, 4]],
      (m, [x]) => [(m as TransformerEncoderLayer).forward(x, { srcKeyPaddingMask: int32([0, 0, 1, 0, 0, 0], [2, 3], 'reference64') })]],
    ['TransformerDecoderLayer, pre-norm, gelu, batch first, causal tgtMask, memory padding', () => new TransformerDecoderLayer(4, 2, { dimFeedforward: 6, dropout: 0, activation: 'gelu', normFirst: true, batchFirst: true }), [[2, 3, 4], [2, 4, 4]],
      (m, [t, mem]) => [(m as TransformerDecoderLayer).forward(t, mem, {
        tgtMask: fromHost(b64, Float64Array.from(causalFloat(3, 3)), [3, 3]), memoryKeyPaddingMask: int32([0, 1, 0, 0, 0, 0, 0, 1], [2, 4], 'reference64'),
      })]],
  ];
  cases.forEach(([name, make, shapes, run], i) => {
    it(name, () => {
      rg.setBackend('reference');
      rg.manualSeed(50 + i);
      const m = make();
      randomize(m, 60 + i);
      const errors = gradcheck(m, shapes, (xs) => run(m, xs), 70 + i);
      expect(Object.keys(errors).length).toBe(shapes.length + m.namedParameters().length);
      expect(worst(errors), JSON.stringify(errors)).toBeLessThan(TOL.gradcheck);
    });
  });

  it('the check itself fails on a wrong gradient', () => {
    rg.setBackend('reference');
    const m = new MultiheadAttention(4, 2);
    randomize(m, 80);
    // the output doubled where the graph does not see it: its gradient is half the numeric one
    const errors = gradcheck(m, [[2, 3, 4]], ([x]) => {
      const [y] = m.forward(x, x, x, { needWeights: false });
      return [y.add(rg.noGrad(() => y.mul(1)).detach())];
    }, 81);
    expect(worst(errors)).toBeGreaterThan(0.1);
  });
});

// ---- the forms of MultiheadAttention agree ----

describe.each(backends)('MultiheadAttention: one computation by every route (%s)', (backend) => {
  /** output and every gradient of Σ y ⊙ r, for y from `run`. */
  function outputsAndGrads(m: MultiheadAttention, x: Tensor, run: (x: Tensor) => Tensor): Float32Array[] {
    m.zeroGrad();
    const xl = x.detach().requiresGrad_();
    const y = run(xl);
    y.mul(input([...y.shape], 9)).sum().backward();
    return [y.toArray() as Float32Array, xl.grad!.toArray() as Float32Array, ...m.parameters().map((p) => p.grad.toArray() as Float32Array)];
  }

  for (const [label, options] of [['batch first', {}], ['sequence first, no bias, causal', { batchFirst: false, bias: false, causal: true }]] as const) {
    it(`${label}: forward(x), the fused route and the general path give the same output and gradients`, () => {
      rg.setBackend(backend);
      rg.manualSeed(3);
      const m = new MultiheadAttention(12, 3, options);
      randomize(m, 4);
      const x = input([5, 3, 12], 5);
      const fused = outputsAndGrads(m, x, (t) => m.forward(t));
      const route = outputsAndGrads(m, x, (t) => m.forward(t, t, t, { needWeights: false })[0]);
      const general = outputsAndGrads(m, x, (t) => m.forward(t, t, t)[0]);
      fused.forEach((want, i) => {
        expect(relError(route[i], want), `fused route ${i}`).toBeLessThan(TOL.reduction);
        expect(relError(general[i], want), `general ${i}`).toBeLessThan(TOL.reduction);
      });
      // the hand-written backward of forward(x) gives them too
      m.zeroGrad();
      const y = rg.noGrad(() => m.forward(x));
      const dx = m.backward(input([...y.shape], 9));
      expect(relError(y.toArray(), fused[0])).toBeLessThan(TOL.reduction);
      expect(relError(dx.toArray(), fused[1])).toBeLessThan(TOL.reduction);
      m.parameters().forEach((p, i) => expect(relError(p.grad.toArray(), fused[2 + i])).toBeLessThan(TOL.reduction));
    });
  }

  it('attention dropout: the graph in training (no hand-written backward), the fused kernels in eval', () => {
    rg.setBackend(backend);
    rg.manualSeed(7);
    const m = new MultiheadAttention(8, 2, { dropout: 0.5 });
    const plain = new MultiheadAttention(8, 2);
    plain.loadStateDict(m.stateDict());
    expect(hasOwnBackward(m)).toBe(false);
    expect(hasOwnBackward(plain)).toBe(true);
    expect(hasOwnBackward(new rg.Sequential([plain]))).toBe(true);
    expect(hasOwnBackward(new rg.Sequential([m]))).toBe(false);
    const x = input([2, 6, 8], 8);
    const draw = (seed: number) => {
      rg.manualSeed(seed);
      const xl = x.detach().requiresGrad_();
      const [y, w] = m.forward(xl, xl, xl, { averageAttnWeights: false });
      y.sum().backward();
      return { y: y.toArray(), w: w!.toArray(), dx: xl.grad!.toArray() };
    };
    const a = draw(1), b = draw(1), c = draw(2);
    expect(relError(a.y, b.y)).toBe(0); // the same seed draws the same mask
    expect(relError(a.y, c.y)).toBeGreaterThan(1e-3);
    // the weights returned are after dropout (PyTorch's): zeros, and the survivors scaled by 2
    const zeros = a.w.filter((v) => v === 0).length;
    expect(zeros / a.w.length).toBeGreaterThan(0.3);
    expect(zeros / a.w.length).toBeLessThan(0.7);
    expect(a.dx.every(Number.isFinite)).toBe(true);
    // forward(x) in training takes the same path
    const y = m.forward(x.detach().requiresGrad_());
    expect(y.gradFn).not.toBeNull();
    expect(() => m.backward(rg.zerosLike(y))).toThrow(/MultiheadAttention\(8, 2, dropout=0.5\): with attention dropout the layer runs on the autograd graph/);
    // eval: no dropout; output and gradients as the dropout-free layer's
    m.eval();
    for (const run of [(t: Tensor) => m.forward(t), (t: Tensor) => m.forward(t, t, t, { needWeights: false })[0]]) {
      m.zeroGrad();
      plain.zeroGrad();
      const x1 = x.detach().requiresGrad_(), x2 = x.detach().requiresGrad_();
      const y1 = run(x1), y2 = plain.forward(x2);
      y1.square().sum().backward();
      y2.square().sum().backward();
      expect(relError(y1.toArray(), y2.toArray())).toBeLessThan(1e-6);
      expect(relError(x1.grad!.toArray(), x2.grad!.toArray())).toBeLessThan(TOL.reduction);
      m.parameters().forEach((p, i) => expect(relError(p.grad.toArray(), plain.parameters()[i].grad.toArray())).toBeLessThan(TOL.reduction));
    }
  });

  it('fit trains models holding attention with dropout and transformer layers, on the graph', async () => {
    rg.setBackend(backend);
    rg.manualSeed(16);
    const models = [
      new rg.Sequential([new MultiheadAttention(8, 2, { dropout: 0.1 }), new rg.Linear(8, 8)]),
      new rg.Sequential([new TransformerEncoderLayer(8, 2, { dimFeedforward: 16, batchFirst: true, dropout: 0 }), new rg.Linear(8, 8)]),
    ];
    for (const model of models) {
      model.compile({ optimizer: new rg.Adam(model.parameters(), { lr: 1e-2 }), loss: new rg.MSELoss() });
      const x = input([16, 5, 8], 17), y = input([16, 5, 8], 18, 0.5);
      const history = await model.fit(x, y, { epochs: 8, batchSize: 8, verbose: 0, shuffle: false });
      const losses = history.history.loss;
      expect(losses.every(Number.isFinite)).toBe(true);
      expect(losses.at(-1)!).toBeLessThan(0.8 * losses[0]);
    }
  });

  it('batchFirst false and bias false on the hand-written path: rg.gradCheck in float64, and [T, B, E] is [B, T, E] transposed', () => {
    rg.setBackend(backend);
    rg.manualSeed(11);
    const seqFirst = new MultiheadAttention(6, 2, { batchFirst: false, bias: false, causal: true });
    randomize(seqFirst, 12);
    rg.setBackend('reference');
    const check = rg.gradCheck(seqFirst.to('reference'), input([4, 3, 6], 13));
    expect(check.maxRelError, JSON.stringify(check.errors)).toBeLessThan(TOL.gradcheck);
    expect(Object.keys(check.errors).sort()).toEqual(['in_proj_weight', 'input', 'out_proj.weight']);
    seqFirst.to(backend);
    rg.setBackend(backend);
    const batchFirst = new MultiheadAttention(6, 2, { bias: false, causal: true });
    batchFirst.loadStateDict(seqFirst.stateDict());
    const x = input([4, 3, 6], 14);
    const y = rg.noGrad(() => seqFirst.forward(x));
    const yb = rg.noGrad(() => batchFirst.forward(x.transpose(0, 1)));
    expect(relError(y.toArray(), yb.transpose(0, 1).toArray())).toBeLessThan(1e-6);
    const dy = input([4, 3, 6], 15);
    expect(relError(seqFirst.backward(dy).toArray(), batchFirst.backward(dy.transpose(0, 1)).transpose(0, 1).toArray())).toBeLessThan(1e-6);
  });

  it('saves and loads with its options (rg.save / rg.load)', async () => {
    rg.setBackend(backend);
    const m = new MultiheadAttention(6, 3, { bias: false, batchFirst: false, dropout: 0.25, causal: true });
    const path = join(dir, `mha-${backend}.safetensors`);
    await rg.save(m, path);
    const back = (await rg.load(path)) as MultiheadAttention;
    expect([back.inProjBias, back.batchFirst, back.dropout, back.causal]).toEqual([null, false, 0.25, true]);
    expect(Object.keys(back.stateDict())).toEqual(['in_proj_weight', 'out_proj.weight']);
    expect([...back.inProjWeight.value.toArray()]).toEqual([...m.inProjWeight.value.toArray()]);
  });
});

// ---- the layers' own behaviour ----

describe('transformer modules', () => {
  it('the stacks hold copies of the layer: equal weights, their own parameters; the layer itself is not registered', () => {
    rg.setBackend('reference');
    rg.manualSeed(21);
    const layer = new TransformerEncoderLayer(8, 2, { dimFeedforward: 16, normFirst: true, activation: 'gelu', batchFirst: true });
    layer.selfAttn.outProj.bias!.requiresGrad = false;
    const enc = new TransformerEncoder(layer, 3);
    const sd = layer.stateDict();
    for (let i = 0; i < 3; i++) {
      const copy = enc.layers.at(i) as TransformerEncoderLayer;
      expect(copy).not.toBe(layer);
      expect(copy.config).toEqual(layer.config);
      for (const [k, t] of Object.entries(copy.stateDict())) expect([...t.toArray()], k).toEqual([...sd[k].toArray()]);
      expect(copy.selfAttn.outProj.bias!.requiresGrad).toBe(false);
    }
    rg.noGrad(() => (enc.layers.at(0) as TransformerEncoderLayer).linear1.weight.value.fill_(3));
    expect((enc.layers.at(1) as TransformerEncoderLayer).linear1.weight.value.toArray()[0]).not.toBe(3);
    expect(enc.parameters().length).toBe(3 * layer.parameters().length);
    expect(enc.norm).toBeNull();
  });

  it("Transformer: PyTorch's defaults, xavier-uniform matrices, biases and norms as built", () => {
    rg.setBackend('reference');
    rg.manualSeed(22);
    const t = new Transformer({ dModel: 16, nhead: 4, numEncoderLayers: 1, numDecoderLayers: 2, dimFeedforward: 24 });
    const enc = (t.encoder as TransformerEncoder).layers.at(0) as TransformerEncoderLayer;
    expect(enc.config).toEqual({ dimFeedforward: 24, dropout: 0.1, activation: 'relu', layerNormEps: 1e-5, batchFirst: false, normFirst: false });
    for (const [name, p] of t.namedParameters()) {
      const v = p.value.toArray();
      const biggest = Math.max(...v.map(Math.abs));
      if (p.shape.length === 2) {
        const bound = Math.sqrt(6 / (p.shape[0] + p.shape[1]));
        expect(biggest, name).toBeLessThanOrEqual(bound);
        expect(biggest, name).toBeGreaterThan(0.8 * bound);
      } else if (name.includes('norm') && name.endsWith('weight')) expect([...new Set(v)], name).toEqual([1]);
      else if (name.endsWith('in_proj_bias') || name.endsWith('out_proj.bias') || name.includes('norm')) expect([...new Set(v)], name).toEqual([0]);
    }
    const big = new Transformer();
    expect([big.dModel, big.nhead, (big.encoder as TransformerEncoder).numLayers, (big.decoder as TransformerDecoder).numLayers]).toEqual([512, 8, 6, 6]);
    expect((big.encoder as TransformerEncoder).norm).toBeInstanceOf(rg.LayerNorm);
  });

  it('generateSquareSubsequentMask: 0 on and below the diagonal, −∞ above, float', () => {
    rg.setBackend('reference');
    const m = Transformer.generateSquareSubsequentMask(3);
    expect(m.dtype).toBe('float32');
    expect([...m.toArray()]).toEqual([0, -Infinity, -Infinity, 0, 0, -Infinity, 0, 0, 0]);
    expect(Transformer.generateSquareSubsequentMask(0).shape).toEqual([0, 0]);
  });

  it.each(backends)('an unbatched input is the batch of one (%s)', (backend) => {
    rg.setBackend(backend);
    rg.manualSeed(23);
    const dec = new TransformerDecoderLayer(6, 3, { dimFeedforward: 8, dropout: 0, batchFirst: true });
    const tgt = input([4, 6], 24), mem = input([5, 6], 25);
    const one = rg.noGrad(() => dec.forward(tgt, mem, { tgtMask: Transformer.generateSquareSubsequentMask(4), memoryKeyPaddingMask: [false, false, true, false, false] }));
    const batch = rg.noGrad(() => dec.forward(tgt.unsqueeze(0), mem.unsqueeze(0), { tgtMask: Transformer.generateSquareSubsequentMask(4), memoryKeyPaddingMask: [[false, false, true, false, false]] }));
    expect(one.shape).toEqual([4, 6]);
    expect(relError(one.toArray(), batch.toArray())).toBeLessThan(1e-6);
  });

  it('dropout in the layers is on in training and off in eval', () => {
    rg.setBackend('reference');
    rg.manualSeed(26);
    const layer = new TransformerEncoderLayer(8, 2, { dimFeedforward: 16, dropout: 0.3 });
    const x = input([3, 2, 8], 27);
    const a = layer.forward(x).toArray(), b = layer.forward(x).toArray();
    expect(relError(a, b)).toBeGreaterThan(1e-3);
    layer.eval();
    expect(relError(layer.forward(x).toArray(), layer.forward(x).toArray())).toBe(0);
  });

  it('PositionalEmbedding with an offset adds the later positions, and its gradient reaches those rows', () => {
    rg.setBackend('reference');
    rg.manualSeed(28);
    const pos = new PositionalEmbedding(6, 4);
    const x = input([2, 5, 4], 29);
    const full = rg.noGrad(() => pos.forward(x));
    const tail = pos.forward(x.slice(1, 3, 5), { offset: 3 });
    expect(relError(tail.toArray(), full.slice(1, 3, 5).toArray())).toBeLessThan(1e-7);
    pos.zeroGrad();
    tail.sum().backward();
    const g = pos.weight.grad.toArray();
    expect([...g.subarray(0, 12)].every((v) => v === 0)).toBe(true);
    expect([...g.subarray(12, 20)]).toEqual(Array(8).fill(2));
    expect([...g.subarray(20)].every((v) => v === 0)).toBe(true);
  });
});

// ---- incremental decoding ----

const argmaxRows = (logits: Float32Array | Int32Array, rows: number, V: number) =>
  Array.from({ length: rows }, (_, r) => {
    let best = 0;
    for (let j = 1; j < V; j++) if (logits[r * V + j] > logits[r * V + best]) best = j;
    return best;
  });

/** The last position's row of each batch element of [B, T, V]. */
function lastRows(t: Tensor): Float32Array {
  const [B, T, V] = t.shape;
  return t.select(1, T - 1).reshape([B, V]).toArray() as Float32Array;
}

describe.each(backends)('incremental decoding with a KVCache (%s)', (backend) => {
  const V = 13, E = 8, B = 2;

  /** A tiny GPT as examples/text.mjs builds it. */
  function gpt(seed: number): rg.Sequential {
    rg.manualSeed(seed);
    const m = new rg.Sequential([
      new rg.Embedding(V, E), new PositionalEmbedding(16, E),
      new TransformerBlock(E, 2, { causal: true, mlpRatio: 2 }), new TransformerBlock(E, 2, { causal: true, mlpRatio: 2 }),
      new rg.LayerNorm(E), new rg.Linear(E, V),
    ]);
    randomize(m, seed + 1);
    return m.eval();
  }
  /** One cached step: ids [B, L] after the cache's positions → logits [B, L, V] (the step's own tensors freed). */
  function gptStep(m: rg.Sequential, ids: Tensor, cache: KVCache): Tensor {
    const [emb, pos, ...rest] = m.layers;
    let h = (pos as PositionalEmbedding).forward(emb.forward(ids), { offset: cache.length });
    let fresh = true; // the positional embedding's and the blocks' outputs are new tensors, freed once used
    for (const layer of rest) {
      const next = layer instanceof TransformerBlock ? layer.forward(h, { cache }) : layer.forward(h);
      if (fresh) h.dispose();
      [h, fresh] = [next, layer instanceof TransformerBlock];
    }
    return h;
  }
  const ids = (rows: number[][]) => rg.tensor(Int32Array.from(rows.flat()), [rows.length, rows[0].length]);

  it('a tiny GPT: greedy tokens through the cache equal the full forward\'s, and the logits within float tolerance', () => {
    rg.setBackend(backend);
    const m = gpt(31);
    const prompt = [[1, 5, 2], [7, 7, 3]];
    const steps = 12;
    const full = rg.noGrad(() => {
      const seq = prompt.map((r) => [...r]);
      const logits: Float32Array[] = [];
      for (let s = 0; s < steps; s++) {
        const l = lastRows(m.forward(ids(seq)));
        logits.push(l);
        argmaxRows(l, B, V).forEach((t, b) => seq[b].push(t));
      }
      return { seq, logits };
    });
    const cached = rg.noGrad(() => {
      const cache = new KVCache();
      const seq = prompt.map((r) => [...r]);
      const logits: Float32Array[] = [];
      let next = prompt;
      for (let s = 0; s < steps; s++) {
        const l = lastRows(gptStep(m, ids(next), cache));
        logits.push(l);
        const tokens = argmaxRows(l, B, V);
        tokens.forEach((t, b) => seq[b].push(t));
        next = tokens.map((t) => [t]);
      }
      expect(cache.length).toBe(prompt[0].length + steps - 1);
      expect(cache.size).toBe(2);
      return { seq, logits };
    });
    expect(cached.seq).toEqual(full.seq);
    expect(new Set(full.seq[0].slice(3)).size).toBeGreaterThan(1); // not one token over and over
    cached.logits.forEach((l, s) => expect(relError(l, full.logits[s]), `step ${s}`).toBeLessThan(TOL.reduction));
  });

  it('a decoder (both norms, both layouts): prefill and single steps give the full forward\'s outputs; greedy tokens agree', () => {
    rg.setBackend(backend);
    for (const [normFirst, batchFirst] of [[false, false], [true, true]]) {
      rg.manualSeed(41);
      const S = 5, T = 7, d = 8;
      const layer = new TransformerDecoderLayer(d, 2, { dimFeedforward: 12, dropout: 0, normFirst, batchFirst });
      const dec = new TransformerDecoder(layer, 2, { norm: new rg.LayerNorm(d) });
      randomize(dec, 42);
      const seqShape = (n: number) => (batchFirst ? [B, n, d] : [n, B, d]);
      const memory = input(seqShape(S), 43), tgt = input(seqShape(T), 44);
      const memoryKeyPaddingMask = [[false, false, false, true, true], [false, true, false, false, false]];
      const timeDim = batchFirst ? 1 : 0;
      const want = rg.noGrad(() => dec.forward(tgt, memory, { tgtMask: Transformer.generateSquareSubsequentMask(T), memoryKeyPaddingMask }));
      const got = rg.noGrad(() => {
        const cache = new KVCache();
        const pieces = [dec.forward(tgt.narrow(timeDim, 0, 3), memory, { cache, memoryKeyPaddingMask })];
        for (let t = 3; t < T; t++) pieces.push(dec.forward(tgt.narrow(timeDim, t, 1), memory, { cache, memoryKeyPaddingMask }));
        expect(cache.length).toBe(T);
        expect(cache.size).toBe(4); // two layers, self- and cross-attention each
        return rg.cat(pieces, timeDim);
      });
      expect(relError(got.toArray(), want.toArray()), `normFirst ${normFirst}`).toBeLessThan(TOL.reduction);
    }
    // greedy decoding of a toy sequence-to-sequence model
    rg.manualSeed(45);
    const d = 8, S = 6;
    const emb = new rg.Embedding(V, d), pos = new PositionalEmbedding(12, d), head = new rg.Linear(d, V);
    const dec = new TransformerDecoder(new TransformerDecoderLayer(d, 4, { dimFeedforward: 16, dropout: 0, batchFirst: true }), 2);
    for (const [i, m] of [emb, pos, head, dec].entries()) randomize(m, 46 + i);
    const memory = input([B, S, d], 50);
    const decode = (cached: boolean) => rg.noGrad(() => {
      const seq = [[0], [0]];
      const cache = new KVCache();
      const logits: Float32Array[] = [];
      for (let s = 0; s < 9; s++) {
        const x = cached ? ids(seq.map((r) => [r[r.length - 1]])) : ids(seq);
        const h = cached ? pos.forward(emb.forward(x), { offset: cache.length }) : pos.forward(emb.forward(x));
        const n = x.shape[1];
        const y = dec.forward(h, memory, cached ? { cache } : { tgtMask: Transformer.generateSquareSubsequentMask(n) });
        const l = lastRows(head.forward(y));
        logits.push(l);
        argmaxRows(l, B, V).forEach((t, b) => seq[b].push(t));
      }
      return { seq, logits };
    });
    const full = decode(false), cached = decode(true);
    expect(cached.seq).toEqual(full.seq);
    cached.logits.forEach((l, s) => expect(relError(l, full.logits[s]), `step ${s}`).toBeLessThan(TOL.reduction));
  });

  it('a step allocates nothing that outlives it: the live tensors stay flat while the cache grows', () => {
    rg.setBackend(backend);
    const m = gpt(51).reuseOutputs(); // the built-in layers write into their buffers of the last step
    const counts: number[] = [];
    rg.noGrad(() => {
      const cache = new KVCache();
      let next = [[1, 2, 3], [4, 5, 6]];
      for (let s = 0; s < 10; s++) {
        const x = ids(next);
        const logits = gptStep(m, x, cache);
        const last = logits.select(1, logits.shape[1] - 1);
        const tokens = argmaxRows(last.toArray(), B, V);
        for (const t of [x, last]) t.dispose();
        next = tokens.map((t) => [t]);
        counts.push(rg.memory().tensors);
      }
      expect(cache.length).toBe(12);
      cache.reset();
      expect(cache.length).toBe(0);
    });
    expect(neverRises(counts.slice(1)), counts.join(', ')).toBeUndefined();
  });

  it('misuse is refused, naming the layer, what was expected and what came; the cache stays usable', () => {
    rg.setBackend(backend);
    const m = gpt(61);
    const block = m.layers[2] as TransformerBlock;
    const h = input([B, 1, E], 62);
    const cache = new KVCache();
    expect(() => block.forward(h, { cache })).toThrow(/TransformerBlock\(8, 2, causal\): a KVCache is for incremental decoding under rg\.noGrad/);
    expect(cache.size).toBe(0);
    rg.noGrad(() => {
      block.forward(input([B, 3, E], 63), { cache });
      expect(cache.length).toBe(3);
      // another batch size
      expect(() => block.forward(input([3, 1, E], 64), { cache })).toThrow(/MultiheadAttention\(8, 2, causal\): the KVCache holds a batch of 2, this step has 3; reset\(\) the cache/);
      // a layer stepped twice, the next one not at all
      const other = m.layers[3] as TransformerBlock;
      other.forward(input([B, 3, E], 65), { cache });
      block.forward(h, { cache });
      block.forward(h, { cache });
      expect(() => other.forward(h, { cache })).toThrow(/holds 3 positions of this layer and 5 of the first layer after this step of 1; each step must pass through every layer once/);
      cache.reset();
      expect(cache.length).toBe(0);
      expect(block.forward(h, { cache }).shape).toEqual([B, 1, E]);
      // a block that is not causal
      const open = new TransformerBlock(E, 2);
      expect(() => open.forward(h, { cache: new KVCache() })).toThrow(/TransformerBlock\(8, 2\): a KVCache needs causal self-attention/);
      // the options
      expect(() => block.forward(h, { cache: {} as KVCache })).toThrow(TypeError);
      expect(() => block.forward(h, { cahce: cache } as never)).toThrow(/unknown option 'cahce' \(did you mean 'cache'\?\)/);
      // PositionalEmbedding past its table
      const pos = m.layers[1] as PositionalEmbedding;
      expect(() => pos.forward(input([B, 4, E], 66), { offset: 14 })).toThrow(/PositionalEmbedding\(16, 8\): positions 14 to 17 \(offset 14 and 4 positions\) run past maxLen 16/);
      expect(() => pos.forward(h, { offset: -1 })).toThrow(RangeError);
      // cross-attention: another memory without a reset, three different tensors, self- and cross-attention mixed
      const mha = new MultiheadAttention(E, 2);
      const c2 = new KVCache();
      const mem = input([B, 5, E], 67);
      mha.forward(h, mem, mem, { cache: c2 });
      expect(() => mha.forward(h, input([B, 5, E], 68), input([B, 5, E], 68), { cache: c2 })).toThrow(TypeError);
      const mem2 = input([B, 5, E], 69);
      expect(() => mha.forward(h, mem2, mem2, { cache: c2 })).toThrow(/MultiheadAttention\(8, 2\): the KVCache holds this layer's keys and values of another memory tensor; reset\(\) the cache/);
      expect(() => mha.forward(h, h, h, { cache: c2 })).toThrow(/holds this layer's cross-attention memory, and this call is self-attention/);
      expect(() => mha.forward(h, mem, input([B, 5, E], 70), { cache: c2 })).toThrow(/a KVCache needs key and value to be the same tensor/);
      // a decoder's tgtMask with a cache covers the cached positions too
      const dec = new TransformerDecoderLayer(E, 2, { dimFeedforward: 8, dropout: 0, batchFirst: true });
      const c3 = new KVCache();
      dec.forward(input([B, 3, E], 71), mem, { cache: c3 });
      expect(() => dec.forward(h, mem, { cache: c3, tgtMask: Transformer.generateSquareSubsequentMask(4) })).toThrow(/attnMask must be \[L, S\] = \[1, 4\] or \[B·H, L, S\] = \[4, 1, 4\], got \[4, 4\]/);
      expect(c3.length).toBe(3); // the failed step left the cache as it was
      // a step that fails in the cross-attention, after the self-attention appended, changes nothing either
      expect(() => dec.forward(h, mem, { cache: c3, memoryKeyPaddingMask: [[false, true]] })).toThrow(/keyPaddingMask must be \[B, S\] = \[2, 5\], got \[1, 2\]/);
      expect(c3.length).toBe(3);
      expect(dec.forward(h, mem, { cache: c3, tgtMask: rg.zeros([1, 4]) }).shape).toEqual([B, 1, E]);
      expect(c3.length).toBe(4);
    });
    // tensors the cache holds, disposed by rg.tidy, are reported as such
    const c4 = new KVCache();
    rg.noGrad(() => rg.tidy(() => block.forward(h, { cache: c4 })));
    expect(() => rg.noGrad(() => block.forward(h, { cache: c4 }))).toThrow(/KVCache: the cached keys and values of MultiheadAttention\(8, 2, causal\) have been disposed \(by dispose\(\) or rg\.tidy\)/);
  });
});

// ---- bad input ----

describe('bad input: the layer, what it expected and what came', () => {
  it('MultiheadAttention', () => {
    rg.setBackend('reference');
    const m = new MultiheadAttention(8, 2);
    const q = input([2, 3, 8], 1), kv = input([2, 5, 8], 2);
    const call = (o: AttentionForwardOptions, ...args: unknown[]) => () => (m.forward as (...a: unknown[]) => unknown)(...(args.length ? args : [q, kv, kv]), o);
    expect(call({}, input([2, 3, 6], 3), kv, kv)).toThrow(/MultiheadAttention\(8, 2\): query must be \[B, L, E\] \(or unbatched \[L, E\]\) with E = 8, got \[2, 3, 6\]/);
    expect(call({}, q, input([3, 5, 8], 4), input([3, 5, 8], 4))).toThrow(/key must be \[B, S, E\] with E = 8 and the query's batch, for a query \[2, 3, 8\]; got \[3, 5, 8\]/);
    expect(call({}, q, kv, input([2, 4, 8], 5))).toThrow(/key \[2, 5, 8\] and value \[2, 4, 8\] must have one shape/);
    expect(call({}, q, 'keys', kv)).toThrow(/MultiheadAttention\(8, 2\): key must be a Tensor, got the string 'keys'/);
    expect(call({}, rg.tensor(Int32Array.from({ length: 48 }), [2, 3, 8]), kv, kv)).toThrow(/query must be a float32 tensor, got int32/);
    expect(call({ keyPaddingMask: int32([0, 0, 0, 0, 0, 0, 0, 0], [2, 4]) })).toThrow(/MultiheadAttention\(8, 2\): keyPaddingMask must be \[B, S\] = \[2, 5\], got \[2, 4\]/);
    expect(call({ attnMask: rg.zeros([3, 4]) })).toThrow(/attnMask must be \[L, S\] = \[3, 5\] or \[B·H, L, S\] = \[4, 3, 5\], got \[3, 4\]/);
    expect(call({ attnMask: [[1, 0]] as never })).toThrow(/attnMask given as arrays must be nested arrays of booleans of one shape/);
    expect(call({ keyPaddingMask: 'none' as never })).toThrow(/keyPaddingMask must be a Tensor \(int32: nonzero masks, as PyTorch's bool mask; float: added to the scores\) or nested arrays of booleans, got the string 'none'/);
    expect(call({ needWeight: false } as never)).toThrow(/MultiheadAttention\(8, 2\)\.forward: unknown option 'needWeight' \(did you mean 'needWeights'\?\)/);
    expect(call({ needWeights: 'no' as never })).toThrow(/option needWeights must be a boolean, got the string 'no'/);
    expect(call({ cache: new Map() as never })).toThrow(/option cache must be a KVCache, got an object \(Map\)/);
    expect(() => new MultiheadAttention(8, 2, { dropout: 1.5 })).toThrow(/MultiheadAttention: invalid dropout 1.5; expected >= 0 <= 1/);
    expect(() => new MultiheadAttention(8, 2, { bias: 'yes' as never })).toThrow(/option bias must be a boolean, got the string 'yes'/);
    expect(() => new MultiheadAttention(8, 2, { batchfirst: true } as never)).toThrow(/unknown option 'batchfirst' \(did you mean 'batchFirst'\?\)/);
    const seqFirst = new MultiheadAttention(8, 2, { batchFirst: false });
    expect(() => seqFirst.forward(input([3, 2, 6], 6))).toThrow(/MultiheadAttention\(8, 2, batchFirst=false\): input must be \[T, B, 8\], got \[3, 2, 6\]/);
    // a failed call changed nothing
    expect(m.forward(q, kv, kv)[0].shape).toEqual([2, 3, 8]);
  });

  it('the transformer modules', () => {
    rg.setBackend('reference');
    expect(() => new TransformerEncoderLayer(10, 3)).toThrow(/TransformerEncoderLayer: dModel \(10\) must be divisible by nhead \(3\)/);
    expect(() => new TransformerDecoderLayer(8, 2, { activation: 'tanh' as never })).toThrow(/TransformerDecoderLayer: activation must be 'relu' or 'gelu' \(or a function\), got 'tanh'/);
    expect(() => new TransformerEncoderLayer(8, 2, { activation: 5 as never })).toThrow(TypeError);
    expect(() => new TransformerEncoderLayer(8, 2, { dimFeedforward: 0 })).toThrow(/TransformerEncoderLayer: invalid dimFeedforward 0; expected an integer >= 1/);
    expect(() => new TransformerEncoderLayer(8, 2, { dropout: -0.1 })).toThrow(RangeError);
    expect(() => new TransformerEncoderLayer(8, 2, { normfirst: true } as never)).toThrow(/unknown option 'normfirst' \(did you mean 'normFirst'\?\)/);
    const enc = new TransformerEncoderLayer(8, 2, { dimFeedforward: 16 });
    expect(() => enc.forward(input([2, 3, 6], 1))).toThrow(/TransformerEncoderLayer\(8, 2, dimFeedforward=16\): src must be \[S, B, 8\] \(batchFirst false\) or unbatched \[S, 8\], got \[2, 3, 6\]/);
    expect(() => enc.forward(input([3, 2, 8], 1), { srcKeyPaddingMask: int32([0, 0], [2, 1]) })).toThrow(/keyPaddingMask must be \[B, S\] = \[2, 3\], got \[2, 1\]/);
    expect(() => enc.forward(input([3, 2, 8], 1), { mask: null } as never)).toThrow(/unknown option 'mask'/);
    const dec = new TransformerDecoderLayer(8, 2, { dimFeedforward: 16, batchFirst: true });
    expect(() => dec.forward(input([2, 3, 8], 1), input([3, 5, 8], 2))).toThrow(/TransformerDecoderLayer\(8, 2, dimFeedforward=16, batchFirst\): memory has a batch of 3 and tgt a batch of 2; they must agree/);
    expect(() => dec.forward(input([2, 3, 8], 1), 'memory' as never)).toThrow(/memory must be a Tensor, got the string 'memory'/);
    expect(() => new TransformerEncoder(dec as never, 2)).toThrow(/TransformerEncoder: the layer must be a TransformerEncoderLayer, got an object \(TransformerDecoderLayer\)/);
    expect(() => new TransformerDecoder(dec, 0)).toThrow(/TransformerDecoder: invalid numLayers 0; expected an integer >= 1/);
    expect(() => new TransformerDecoder(dec, 2, { norm: 'layer' as never })).toThrow(/option norm must be a Module \(a LayerNorm\) or null/);
    const t = new Transformer({ dModel: 8, nhead: 2, numEncoderLayers: 1, numDecoderLayers: 1, dimFeedforward: 16, batchFirst: true });
    expect(() => t.forward(input([2, 4, 8], 1), input([3, 4, 8], 2))).toThrow(/Transformer\(dModel=8, nhead=2\): src and tgt must have one batch size, got \[2, 4, 8\] and \[3, 4, 8\]/);
    expect(() => t.forward(input([2, 4, 8], 1), input([2, 4, 6], 2))).toThrow(/Transformer\(dModel=8, nhead=2\): tgt must be \[B, S, 8\] \(batchFirst true\)/);
    expect(() => new Transformer({ dModel: 8, nhead: 3 })).toThrow(/Transformer: dModel \(8\) must be divisible by nhead \(3\)/);
    expect(() => new Transformer({ numEncoderLayers: 0, dModel: 8, nhead: 2 })).toThrow(RangeError);
    expect(() => Transformer.generateSquareSubsequentMask(-1)).toThrow(/invalid n -1/);
    // the next valid call works
    expect(t.forward(input([2, 4, 8], 1), input([2, 3, 8], 2)).shape).toEqual([2, 3, 8]);
  });
});

describe('a Sequential of transformer blocks (the tiny GPT) on the autograd graph', () => {
  it.each(backends)('loss.backward() gives the gradients of its hand-written backward (%s)', (name) => {
    rg.setBackend(name);
    const make = () => {
      rg.manualSeed(12);
      return new rg.Sequential([new rg.Embedding(13, 8), new PositionalEmbedding(6, 8), new TransformerBlock(8, 2, { causal: true }), new TransformerBlock(8, 2, { causal: true }), new rg.LayerNorm(8), new rg.Linear(8, 13)]);
    };
    const x = rg.tensor(Int32Array.from({ length: 12 }, (_, i) => (i * 5) % 13), [2, 6]), y = rg.tensor(Int32Array.from({ length: 12 }, (_, i) => (i * 7 + 1) % 13), [12]);
    const byGraph = make();
    rg.F.crossEntropy(byGraph.forward(x).reshape([-1, 13]), y).backward();
    const byHand = make(), lossFn = new rg.CrossEntropyLoss();
    lossFn.forward(byHand.forward(x).reshape([-1, 13]), y);
    byHand.backward(lossFn.backward().reshape([2, 6, 13]));
    const hand = byHand.namedParameters();
    for (const [i, [key, p]] of byGraph.namedParameters().entries()) expect(relError(p.grad.toArray(), hand[i][1].grad.toArray()), key).toBeLessThan(1e-5);
  });
});
