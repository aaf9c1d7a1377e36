// MultiheadAttention's general form and the transformer modules against PyTorch 1.13 (test/golden/transformer.json,
// written by test/golden/make_transformer_golden.py): PyTorch's state dicts loaded into retrograd's modules, then the
// outputs, the attention weights and the gradients of a weighted sum of them with respect to the inputs and every
// parameter; the state-dict keys and shapes of every module kind; a small Transformer trained 20 steps with Adam from
// PyTorch's initial weights (the loss of every step and the final weights). On the reference and native CPU backends.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { MultiheadAttention } from '../lib/nn/attention.js';
import { Transformer, TransformerDecoder, TransformerDecoderLayer, TransformerEncoder, TransformerEncoderLayer, type TransformerLayerOptions } from '../lib/nn/transformer.js';
import { compare, describeComparison, requireCpu, rg, TOL } from './helpers.js';

interface Rec { shape: number[]; data: number[] }
interface MaskRec { kind: 'bool' | 'float'; shape: number[]; data: (number | null)[] }
interface MhaCase {
  name: string; E: number; H: number; options: { batchFirst: boolean; bias: boolean }; same: 'self' | 'kv' | 'none';
  state: Record<string, Rec>; inputs: Record<string, Rec>; keyPaddingMask: MaskRec | null; attnMask: MaskRec | null;
  needWeights: boolean; averageAttnWeights: boolean; causal: boolean; output: Rec; weights: Rec | null;
  lossWeights: number[][]; loss: number; grads: Record<string, number[]>;
}
type Kind = 'encoderLayer' | 'decoderLayer' | 'encoder' | 'decoder' | 'transformer';
interface LayerCase {
  name: string; kind: Kind; dModel: number; nhead: number; numLayers: number; options: TransformerLayerOptions;
  state: Record<string, Rec>; inputs: Record<string, Rec>; masks: Record<string, MaskRec>; output: Rec;
  lossWeights: number[][]; loss: number; grads: Record<string, number[]>;
}
interface Golden {
  mha: MhaCase[];
  layers: LayerCase[];
  keys: Record<string, [string, number[]][]>;
  training: {
    dModel: number; nhead: number; dimFeedforward: number; B: number; S: number; T: number; lr: number; keyPaddingMask: MaskRec;
    initial: Record<string, Rec>; losses: number[]; final: Record<string, Rec>;
  };
}

const golden = JSON.parse(readFileSync(new URL('./golden/transformer.json', import.meta.url), 'utf8')) as Golden;
const cpuAvailable = requireCpu();
const backends: ('reference' | 'cpu')[] = cpuAvailable ? ['reference', 'cpu'] : ['reference'];
afterEach(() => rg.setBackend(cpuAvailable ? 'cpu' : 'reference'));

/**
 * Tolerances against PyTorch (normwise, and per element at twice that: lib/check/numerics.ts), float32 on both sides
 * summed in other orders, as the policy's reductions and trajectories (TOL). Measured maxima over every case on both
 * backends, the larger of the normwise error and half the per-element one, in brackets: outputs 2e-5 [2.8e-7],
 * weights 2e-5 [7.7e-8], the weighted-sum losses 2e-5 [5.6e-6: a sum that cancels], gradients 2e-5 [2.3e-6], 20 Adam
 * steps 1e-4 [losses 1.1e-7, final weights 3.1e-7].
 */
const TOL_OUT = TOL.reduction, TOL_GRAD = TOL.reduction, TOL_TRAIN = TOL.trajectory;

const tensorOf = (r: Rec) => rg.tensor(Float32Array.from(r.data), r.shape);
const leafOf = (r: Rec) => rg.tensor(Float32Array.from(r.data), r.shape, { requiresGrad: true });
/** A golden mask: bool → int32 (PyTorch's bool mask), float → float32 with −∞ for null. */
function maskOf(m: MaskRec | null | undefined): rg.Tensor | undefined {
  if (!m) return undefined;
  if (m.kind === 'bool') return rg.tensor(Int32Array.from(m.data as number[]), m.shape);
  return rg.tensor(Float32Array.from(m.data, (v) => (v === null ? -Infinity : v)), m.shape);
}
function load(m: rg.Module, state: Record<string, Rec>): void {
  m.loadStateDict(Object.fromEntries(Object.entries(state).map(([k, r]) => [k, tensorOf(r)])));
}
/** null when got matches want within tol, else what differs. */
function differs(what: string, got: ArrayLike<number> | undefined, want: ArrayLike<number>, tol: number): string | null {
  if (!got) return `${what}: no value`;
  const c = compare(got, want, tol);
  return c.ok ? null : `${what}: ${describeComparison(c, got, want)}`;
}
/** Σ outputs[i] ⊙ weights[i]. */
function weightedLoss(outputs: rg.Tensor[], weights: number[][]): rg.Tensor {
  return outputs.map((o, i) => o.mul(rg.tensor(Float32Array.from(weights[i]), o.shape)).sum()).reduce((a, b) => a.add(b));
}
function firstProblem(...checks: (string | null)[]): string | null {
  return checks.find((c) => c !== null) ?? null;
}

function runMha(c: MhaCase, form: 'golden' | 'isCausal' | 'arrays' = 'golden'): string | null {
  const m = new MultiheadAttention(c.E, c.H, c.options);
  load(m, c.state);
  const q = leafOf(c.inputs.query);
  const k = c.same === 'self' ? q : leafOf(c.inputs.key);
  const v = c.same === 'none' ? leafOf(c.inputs.value) : k;
  const toArrays = (r: MaskRec): boolean[][] => {
    const [rows, cols] = r.shape.length === 2 ? r.shape : [1, r.shape[0]];
    const b = Array.from({ length: rows }, (_, i) => r.data.slice(i * cols, (i + 1) * cols).map((x) => x === 1));
    return r.shape.length === 2 ? b : (b[0] as never);
  };
  const keyPaddingMask = form === 'arrays' && c.keyPaddingMask?.kind === 'bool' ? toArrays(c.keyPaddingMask) : maskOf(c.keyPaddingMask);
  const attnMask = form === 'isCausal' ? undefined : form === 'arrays' && c.attnMask?.kind === 'bool' && c.attnMask.shape.length === 2 ? toArrays(c.attnMask) : maskOf(c.attnMask);
  const [out, weights] = m.forward(q, k, v, {
    keyPaddingMask, attnMask, needWeights: c.needWeights, averageAttnWeights: c.averageAttnWeights, isCausal: form === 'isCausal' ? true : undefined,
  });
  const shapes = firstProblem(
    out.shape.join() === c.output.shape.join() ? null : `output shape [${out.shape}], PyTorch [${c.output.shape}]`,
    (weights?.shape.join() ?? null) === (c.weights?.shape.join() ?? null) ? null : `weights shape [${weights?.shape}], PyTorch [${c.weights?.shape}]`,
  );
  if (shapes) return shapes;
  const loss = weightedLoss(weights ? [out, weights] : [out], c.lossWeights);
  loss.backward();
  const inputs: Record<string, rg.Tensor> = { query: q, ...(c.same !== 'self' ? { key: k } : {}), ...(c.same === 'none' ? { value: v } : {}) };
  return firstProblem(
    differs('output', out.toArray(), c.output.data, TOL_OUT),
    c.weights ? differs('weights', weights?.toArray(), c.weights.data, TOL_OUT) : null,
    differs('loss', [loss.item()], [c.loss], TOL_OUT),
    ...Object.entries(inputs).map(([n, t]) => differs(`d${n}`, t.grad?.toArray(), c.grads[n], TOL_GRAD)),
    ...m.namedParameters().map(([n, p]) => differs(`d ${n}`, p.grad.toArray(), c.grads[n], TOL_GRAD)),
    Object.keys(c.grads).length === Object.keys(inputs).length + m.namedParameters().length ? null : `gradients of ${Object.keys(c.grads)} in the golden file`,
  );
}

function buildLayer(c: LayerCase): rg.Module {
  const o = { ...c.options, dropout: 0 };
  switch (c.kind) {
    case 'encoderLayer': return new TransformerEncoderLayer(c.dModel, c.nhead, o);
    case 'decoderLayer': return new TransformerDecoderLayer(c.dModel, c.nhead, o);
    case 'encoder': return new TransformerEncoder(new TransformerEncoderLayer(c.dModel, c.nhead, o), c.numLayers, { norm: new rg.LayerNorm(c.dModel) });
    case 'decoder': return new TransformerDecoder(new TransformerDecoderLayer(c.dModel, c.nhead, o), c.numLayers, { norm: new rg.LayerNorm(c.dModel) });
    case 'transformer': return new Transformer({ dModel: c.dModel, nhead: c.nhead, numEncoderLayers: c.numLayers, numDecoderLayers: c.numLayers, ...o });
  }
}

function runLayer(c: LayerCase): string | null {
  const m = buildLayer(c);
  load(m, c.state);
  const inputs = Object.fromEntries(Object.entries(c.inputs).map(([n, r]) => [n, leafOf(r)]));
  const masks = Object.fromEntries(Object.entries(c.masks).map(([n, r]) => [n, maskOf(r)]));
  const out: rg.Tensor =
    c.kind === 'encoderLayer' || c.kind === 'encoder' ? m.forward(inputs.src, masks)
      : c.kind === 'transformer' ? m.forward(inputs.src, inputs.tgt, masks)
        : m.forward(inputs.tgt, inputs.memory, masks);
  if (out.shape.join() !== c.output.shape.join()) return `output shape [${out.shape}], PyTorch [${c.output.shape}]`;
  const loss = weightedLoss([out], c.lossWeights);
  loss.backward();
  const params = m.namedParameters();
  return firstProblem(
    differs('output', out.toArray(), c.output.data, TOL_OUT),
    differs('loss', [loss.item()], [c.loss], TOL_OUT),
    ...Object.entries(inputs).map(([n, t]) => differs(`d${n}`, t.grad?.toArray(), c.grads[n], TOL_GRAD)),
    ...params.map(([n, p]) => differs(`d ${n}`, p.grad.toArray(), c.grads[n], TOL_GRAD)),
    Object.keys(c.grads).length === Object.keys(inputs).length + params.length ? null : `gradients of ${Object.keys(c.grads)} in the golden file`,
  );
}

describe.each(backends)('MultiheadAttention against PyTorch (%s)', (backend) => {
  it.each(golden.mha.map((c) => [c.name, c] as const))('%s', (_, c) => {
    rg.setBackend(backend);
    expect(runMha(c)).toBeNull();
  });
  it('isCausal gives what the square subsequent mask gives', () => {
    rg.setBackend(backend);
    const cases = golden.mha.filter((c) => c.causal);
    expect(cases.length).toBe(2);
    for (const c of cases) expect(runMha(c, 'isCausal'), c.name).toBeNull();
  });
  it('masks given as arrays of booleans act as the int32 ones', () => {
    rg.setBackend(backend);
    const cases = golden.mha.filter((c) => c.keyPaddingMask?.kind === 'bool' || (c.attnMask?.kind === 'bool' && c.attnMask.shape.length === 2));
    expect(cases.length).toBeGreaterThanOrEqual(3);
    for (const c of cases) expect(runMha(c, 'arrays'), c.name).toBeNull();
  });
  it('a result that differs is reported', () => {
    rg.setBackend(backend);
    const c = golden.mha[1];
    const off = { ...c, output: { ...c.output, data: c.output.data.map((v, i) => (i === 3 ? v + 0.01 : v)) } };
    expect(runMha(off)).toMatch(/^output: /);
  });
});

describe.each(backends)('transformer modules against PyTorch (%s)', (backend) => {
  it.each(golden.layers.map((c) => [c.name, c] as const))('%s', (_, c) => {
    rg.setBackend(backend);
    expect(runLayer(c)).toBeNull();
  });
});

describe("PyTorch's state-dict keys and shapes, in its order", () => {
  const make: Record<string, () => rg.Module> = {
    'MultiheadAttention(8, 2)': () => new MultiheadAttention(8, 2),
    'MultiheadAttention(8, 2, bias false)': () => new MultiheadAttention(8, 2, { bias: false }),
    'TransformerEncoderLayer(8, 2, dimFeedforward 16)': () => new TransformerEncoderLayer(8, 2, { dimFeedforward: 16 }),
    'TransformerDecoderLayer(8, 2, dimFeedforward 16)': () => new TransformerDecoderLayer(8, 2, { dimFeedforward: 16 }),
    'TransformerEncoder(layer, 2, norm)': () => new TransformerEncoder(new TransformerEncoderLayer(8, 2, { dimFeedforward: 16 }), 2, { norm: new rg.LayerNorm(8) }),
    'TransformerDecoder(layer, 3)': () => new TransformerDecoder(new TransformerDecoderLayer(8, 2, { dimFeedforward: 16 }), 3),
    'Transformer(dModel 8, nhead 2, 2 + 1 layers, dimFeedforward 16)': () => new Transformer({ dModel: 8, nhead: 2, numEncoderLayers: 2, numDecoderLayers: 1, dimFeedforward: 16 }),
  };
  it('every module kind of the golden file is built here', () => {
    expect(Object.keys(golden.keys).sort()).toEqual(Object.keys(make).sort());
  });
  it.each(Object.entries(golden.keys))('%s', (name, want) => {
    rg.setBackend('reference');
    const got = Object.entries(make[name]().stateDict()).map(([k, t]) => [k, [...t.shape]]);
    expect(got).toEqual(want);
  });
});

describe.each(backends)('a small Transformer trained 20 steps with Adam from PyTorch\'s weights (%s)', (backend) => {
  it('the same loss at every step and the same final weights', () => {
    rg.setBackend(backend);
    const g = golden.training;
    const m = new Transformer({ dModel: g.dModel, nhead: g.nhead, numEncoderLayers: 1, numDecoderLayers: 1, dimFeedforward: g.dimFeedforward, dropout: 0, batchFirst: true });
    load(m, g.initial);
    const opt = new rg.Adam(m.parameters(), { lr: g.lr });
    const tgtMask = Transformer.generateSquareSubsequentMask(g.T);
    const srcKeyPaddingMask = maskOf(g.keyPaddingMask);
    const data = (shape: number[], seed: number, scale = 1.4) =>
      rg.tensor(Float32Array.from({ length: shape.reduce((a, d) => a * d, 1) }, (_, i) => Math.sin(1.7 * i + 0.9 * seed + 0.3) * scale), shape);
    const { B, S, T, dModel: d } = g;
    const losses: number[] = [];
    for (let s = 0; s < 20; s++) {
      opt.zeroGrad();
      const out = m.forward(data([B, S, d], 1000 + s), data([B, T, d], 1100 + s), { tgtMask, srcKeyPaddingMask });
      const loss = out.sub(data([B, T, d], 1200 + s, 1)).square().mean();
      loss.backward();
      opt.step();
      losses.push(loss.item());
    }
    expect(differs('losses', losses, g.losses, TOL_TRAIN)).toBeNull();
    expect(losses[19]).toBeLessThan(0.8 * losses[0]);
    // The key block of in_proj_bias has a gradient of 0 in exact arithmetic (it adds one constant to every score of a
    // query, which the softmax cancels): rounding noise on both sides, which Adam's normalised step turns into ±lr.
    // Its values differ by design; the query and value blocks are compared.
    const E = g.dModel;
    const qv = (a: ArrayLike<number>) => [...Array.from(a).slice(0, E), ...Array.from(a).slice(2 * E)];
    const sd = m.stateDict();
    expect(Object.keys(sd).sort()).toEqual(Object.keys(g.final).sort());
    for (const [k, r] of Object.entries(g.final)) {
      const [got, want] = k.endsWith('in_proj_bias') ? [qv(sd[k].toArray()), qv(r.data)] : [sd[k].toArray(), r.data];
      expect(differs(k, got, want, TOL_TRAIN)).toBeNull();
    }
  });
});
