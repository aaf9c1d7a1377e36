// PyTorch golden values (test/golden/torch.json, written by test/golden/make_golden.py with PyTorch 1.13):
// optimizer trajectories for every option, loss values and gradients, layer outputs and gradients (Linear,
// activations, Conv2d, pooling, batch normalisation with its running statistics in training and eval, LayerNorm,
// Embedding), the recurrent layers (RNN tanh and ReLU, LSTM, GRU: output, final state, and the backward of gradients
// on the output and on the final state, down to dx, every parameter and the initial state), MultiheadAttention with
// and without a causal mask, a pre-norm TransformerBlock, a small CNN trained a few steps, and state-dict names — on
// every backend.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { probeCuda } from '../lib/backends/cuda.js';
import { compare, describeComparison, requireCpu, rg, TOL } from './helpers.js';

interface Golden {
  nParam: number;
  steps: number;
  optim: { optimizer: 'SGD' | 'Adam' | 'AdamW' | 'RMSprop' | 'Adagrad' | 'Adamax' | 'Adadelta' | 'NAdam' | 'RAdam'; options: Record<string, unknown>; trajectory: number[][] }[];
  losses: { loss: string; pred: number[]; target: number[]; shape: number[]; value: number; grad: number[] }[];
  clip: { maxNorm?: number; normType?: number | 'inf'; total?: number; clipValue?: number; grads: number[][] }[];
  layers: { layer: string; args?: number[]; x?: number[]; xShape?: number[]; weight?: number[]; bias?: number[]; y?: number[]; dy?: number[]; dx?: number[]; dweight?: number[]; dbias?: number[]; stateDictKeys?: string[] }[];
  conv: {
    name: string; inChannels: number; outChannels: number; kernelSize: [number, number]; stride: [number, number]; padding: [number, number];
    dilation: [number, number]; useBias: boolean; xShape: number[]; x: number[]; weight: number[]; bias?: number[]; yShape: number[]; y: number[];
    dy: number[]; dx: number[]; dweight: number[]; dbias?: number[]; stateDictKeys: string[];
  }[];
  pool: {
    layer: 'MaxPool2d' | 'AvgPool2d' | 'AdaptiveAvgPool2d' | 'GlobalAvgPool2d'; kernelSize?: [number, number]; stride?: [number, number];
    padding?: [number, number]; countIncludePad?: boolean; xShape: number[]; x: number[]; yShape: number[]; y: number[]; dy: number[]; dx: number[];
  }[];
  batchnorm: {
    layer: 'BatchNorm1d' | 'BatchNorm2d'; numFeatures: number; momentum: number | null; eps: number; affine: boolean; xShape: number[];
    x1: number[]; x2: number[]; x3: number[]; dy: number[]; dyEval: number[]; weight?: number[]; bias?: number[];
    y1: number[]; dx1: number[]; dweight1?: number[]; dbias1?: number[]; runningMean1: number[]; runningVar1: number[];
    runningMean2: number[]; runningVar2: number[]; numBatchesTracked: number;
    yEval: number[]; dxEval: number[]; dweightEval?: number[]; dbiasEval?: number[]; stateDictKeys: string[];
  }[];
  layernorm: {
    normalizedShape: number[]; eps: number; affine: boolean; xShape: number[]; x: number[]; y: number[]; dy: number[]; dx: number[];
    weight?: number[]; bias?: number[]; dweight?: number[]; dbias?: number[]; stateDictKeys: string[];
  }[];
  embedding: {
    numEmbeddings: number; embeddingDim: number; indexShape: number[]; index: number[]; weight: number[]; yShape: number[]; y: number[];
    dy: number[]; dweight: number[]; stateDictKeys: string[];
  }[];
  rnn: {
    mode: 'RNN' | 'LSTM' | 'GRU'; nonlinearity?: 'tanh' | 'relu'; inputSize: number; hiddenSize: number; numLayers: number; batchFirst: boolean;
    xShape: number[]; x: number[]; stateShape: number[]; state: Record<string, number[]>; y: number[]; yShape: number[]; hN: number[]; cN?: number[];
    h0?: number[]; c0?: number[]; dy: number[]; dhN: number[]; dcN?: number[]; dx: number[]; grads: Record<string, number[]>;
    dh0?: number[]; dc0?: number[]; stateDictKeys: string[];
  }[];
  attention: {
    embedDim: number; numHeads: number; causal: boolean; xShape: number[]; x: number[]; state: Record<string, number[]>; y: number[]; dy: number[];
    dx: number[]; grads: Record<string, number[]>; stateDictKeys: string[];
  }[];
  transformer: {
    embedDim: number; numHeads: number; mlpRatio: number; causal: boolean; xShape: number[]; x: number[]; state: Record<string, number[]>;
    y: number[]; dy: number[]; dx: number[]; grads: Record<string, number[]>; stateDictKeys: string[];
  };
  cnn: { lr: number; momentum: number; xShape: number[]; x: number[]; target: number[]; initial: Record<string, number[]>; losses: number[]; final: Record<string, number[] | number> };
}
const seqAt = (a: number, b: number) => (i: number) => Math.sin(a * i + b) * 3;
const golden = JSON.parse(readFileSync(new URL('./golden/torch.json', import.meta.url), 'utf8')) as Golden;

// The same deterministic inputs as make_golden.py.
const initParam = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(0.37 * i + 0.2));
const gradAt = (n: number, t: number) => Float32Array.from({ length: n }, (_, i) => (t % 2 === 0 ? 2 : 0.5) * Math.cos(0.71 * i + 1.3 * t));

function camel(options: Record<string, unknown>): Record<string, unknown> {
  const map: Record<string, string> = { weight_decay: 'weightDecay', lr_decay: 'lrDecay', initial_accumulator_value: 'initialAccumulatorValue', momentum_decay: 'momentumDecay' };
  return Object.fromEntries(Object.entries(options).map(([k, v]) => [map[k] ?? k, v]));
}

/** A golden state dict as loadStateDict takes it (Float32Array values). */
const f32Dict = (sd: Record<string, number[]>) => Object.fromEntries(Object.entries(sd).map(([k, v]) => [k, Float32Array.from(v)]));

/** Every parameter's gradient against PyTorch's, by state-dict name (the names must be the same set). */
function expectParamGrads(m: rg.Module, want: Record<string, number[]>): void {
  const named = m.namedParameters();
  expect(named.map(([n]) => n).sort()).toEqual(Object.keys(want).sort());
  expectClose(Object.fromEntries(named.map(([n, p]) => [`grad ${n}`, [p.grad.toArray(), want[n]]])));
}

const cuda = probeCuda();
if (!cuda.available) console.warn(`PyTorch golden values: skipping the cuda backend: ${cuda.reason}`);
const backendNames = [...(['reference'] as const), ...(requireCpu() ? (['cpu'] as const) : []), ...(cuda.available ? (['cuda'] as const) : [])];

/** Asserts each named array is within the tolerance of PyTorch's (normwise and per element), naming the first that is not. */
function expectClose(pairs: Record<string, [ArrayLike<number>, ArrayLike<number>]>, tol: number = TOL.reduction): void {
  for (const [name, [got, want]] of Object.entries(pairs)) {
    const c = compare(got, want, tol);
    expect(c.ok, `${name}: ${describeComparison(c, got, want)}`).toBe(true);
  }
}

/** Activations are elementwise: held to the elementwise bound, the others (Linear, Softmax) to the reduction one. */
const layerTol = (layer: string) => (['Linear', 'Softmax'].includes(layer) ? TOL.reduction : TOL.elementwise);

describe('the golden check of GELU', () => {
  it("rejects PyTorch's tanh approximation of GELU (the erf form is the contract)", () => {
    const c = golden.layers.find((l) => l.layer === 'GELU')!;
    const tanhGelu = c.x!.map((x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))));
    const erfGelu = compare(Float32Array.from(c.y!), c.y!, layerTol('GELU'));
    expect(erfGelu.ok).toBe(true);
    const r = compare(tanhGelu, c.y!, layerTol('GELU'));
    expect(r.ok, describeComparison(r, tanhGelu, c.y!)).toBe(false);
    expect(r.elementError / (2 * r.tol)).toBeGreaterThan(10); // by a wide margin, not by rounding
  });
});

for (const backend of backendNames) {
  describe(`PyTorch golden values on ${backend}`, () => {
    for (const c of golden.optim) {
      it(`${c.optimizer} ${JSON.stringify(c.options)}: ${c.trajectory.length} steps`, () => {
        rg.setBackend(backend);
        const p = new rg.Parameter(rg.tensor(initParam(golden.nParam), [golden.nParam]));
        const Ctor = { SGD: rg.SGD, Adam: rg.Adam, AdamW: rg.AdamW, RMSprop: rg.RMSprop, Adagrad: rg.Adagrad, Adamax: rg.Adamax, Adadelta: rg.Adadelta, NAdam: rg.NAdam, RAdam: rg.RAdam }[c.optimizer];
        const opt = new Ctor([p], camel(c.options) as never);
        for (let t = 0; t < c.trajectory.length; t++) {
          p.grad.assign(gradAt(golden.nParam, t));
          opt.step();
          expectClose({ [`step ${t + 1}`]: [p.value.toArray(), c.trajectory[t]] }, TOL.elementwise);
        }
      });
    }

    for (const c of golden.losses) {
      it(`${c.loss} on [${c.shape.join(', ')}]: value and gradient`, () => {
        rg.setBackend(backend);
        const makers: Record<string, () => rg.Loss> = {
          MSELoss: () => new rg.MSELoss(), CrossEntropyLoss: () => new rg.CrossEntropyLoss(), BCEWithLogitsLoss: () => new rg.BCEWithLogitsLoss(),
          BCELoss: () => new rg.BCELoss(), L1Loss: () => new rg.L1Loss(), HuberLoss: () => new rg.HuberLoss(),
          'HuberLoss delta 2.5': () => new rg.HuberLoss({ delta: 2.5 }),
        };
        const loss = makers[c.loss]();
        const pred = rg.tensor(c.pred, c.shape);
        const target = c.loss === 'CrossEntropyLoss'
          ? rg.tensor(Int32Array.from(c.target), [c.shape[0], ...c.shape.slice(2)])
          : rg.tensor(c.target, c.shape);
        const value = loss.forward(pred, target).item();
        expect(Math.abs(value - c.value) / Math.max(1, Math.abs(c.value))).toBeLessThan(TOL.reduction);
        expectClose({ grad: [loss.backward().toArray(), c.grad] });
      });
    }

    for (const c of golden.layers.filter((l) => l.x)) {
      it(`${c.layer}: forward and backward`, () => {
        rg.setBackend(backend);
        let layer: rg.Module;
        if (c.layer === 'Linear') {
          const lin = new rg.Linear(c.args![0], c.args![1]);
          lin.loadStateDict({ weight: Float32Array.from(c.weight!), bias: Float32Array.from(c.bias!) });
          layer = lin;
        } else {
          const Ctor = { ReLU: rg.ReLU, LeakyReLU: rg.LeakyReLU, Sigmoid: rg.Sigmoid, Tanh: rg.Tanh, GELU: rg.GELU, Softmax: rg.Softmax }[c.layer]!;
          layer = new Ctor(...((c.args ?? []) as []));
        }
        const y = layer.forward(rg.tensor(c.x!, c.xShape!));
        const dx = layer.backward(rg.tensor(c.dy!, y.shape as number[]));
        expectClose({ y: [y.toArray(), c.y!], dx: [dx.toArray(), c.dx!] }, layerTol(c.layer));
        if (layer instanceof rg.Linear) {
          expectClose({ dweight: [layer.weight.grad.toArray(), c.dweight!], dbias: [layer.bias!.grad.toArray(), c.dbias!] });
          expect(Object.keys(layer.stateDict())).toEqual(c.stateDictKeys);
        }
      });
    }

    for (const c of golden.conv) {
      it(`Conv2d(${c.inChannels}→${c.outChannels}) ${c.name}: forward, dx, dweight${c.useBias ? ', dbias' : ''}`, () => {
        rg.setBackend(backend);
        const conv = new rg.Conv2d(c.inChannels, c.outChannels, c.kernelSize, { stride: c.stride, padding: c.padding, dilation: c.dilation, bias: c.useBias });
        expect(Object.keys(conv.stateDict())).toEqual(c.stateDictKeys);
        conv.loadStateDict(c.useBias ? { weight: Float32Array.from(c.weight), bias: Float32Array.from(c.bias!) } : { weight: Float32Array.from(c.weight) });
        const y = conv.forward(rg.tensor(c.x, c.xShape));
        expect(y.shape).toEqual(c.yShape);
        const dx = conv.backward(rg.tensor(c.dy, c.yShape));
        expectClose({ y: [y.toArray(), c.y], dx: [dx.toArray(), c.dx], dweight: [conv.weight.grad.toArray(), c.dweight] });
        if (c.useBias) expectClose({ dbias: [conv.bias!.grad.toArray(), c.dbias!] });
      });
    }

    for (const c of golden.pool) {
      const opts = c.kernelSize ? ` k=${c.kernelSize.join('×')} s=${c.stride!.join('×')} p=${c.padding!.join('×')}` : '';
      const cip = c.countIncludePad === undefined ? '' : ` countIncludePad=${c.countIncludePad}`;
      it(`${c.layer}${opts}${cip} on [${c.xShape.join(', ')}]: forward and dx`, () => {
        rg.setBackend(backend);
        const layer = c.layer === 'MaxPool2d' ? new rg.MaxPool2d(c.kernelSize!, { stride: c.stride, padding: c.padding })
          : c.layer === 'AvgPool2d' ? new rg.AvgPool2d(c.kernelSize!, { stride: c.stride, padding: c.padding, countIncludePad: c.countIncludePad })
          : c.layer === 'AdaptiveAvgPool2d' ? new rg.AdaptiveAvgPool2d(1)
          : new rg.GlobalAvgPool2d();
        const y = layer.forward(rg.tensor(c.x, c.xShape));
        expect(y.shape).toEqual(c.yShape);
        const dx = layer.backward(rg.tensor(c.dy, c.yShape));
        expectClose({ y: [y.toArray(), c.y], dx: [dx.toArray(), c.dx] });
      });
    }

    for (const c of golden.batchnorm) {
      const name = `${c.layer}(${c.numFeatures}, momentum ${c.momentum}, eps ${c.eps}${c.affine ? '' : ', affine false'}) on [${c.xShape.join(', ')}]`;
      it(`${name}: training forward and backward, running statistics after two forwards, eval forward and backward`, () => {
        rg.setBackend(backend);
        const Ctor = c.layer === 'BatchNorm1d' ? rg.BatchNorm1d : rg.BatchNorm2d;
        const bn = new Ctor(c.numFeatures, { momentum: c.momentum, eps: c.eps, affine: c.affine });
        expect(Object.keys(bn.stateDict())).toEqual(c.stateDictKeys);
        if (c.affine) {
          bn.weight!.value.assign(c.weight!);
          bn.bias!.value.assign(c.bias!);
        }
        const sd = bn.stateDict();
        // training: batch statistics, and the first update of the running ones
        const y1 = bn.forward(rg.tensor(c.x1, c.xShape));
        const dx1 = bn.backward(rg.tensor(c.dy, c.xShape));
        expectClose({ y1: [y1.toArray(), c.y1], dx1: [dx1.toArray(), c.dx1], runningMean1: [sd.running_mean.toArray(), c.runningMean1], runningVar1: [sd.running_var.toArray(), c.runningVar1] });
        if (c.affine) expectClose({ dweight1: [bn.weight!.grad.toArray(), c.dweight1!], dbias1: [bn.bias!.grad.toArray(), c.dbias1!] });
        bn.forward(rg.tensor(c.x2, c.xShape));
        expectClose({ runningMean2: [sd.running_mean.toArray(), c.runningMean2], runningVar2: [sd.running_var.toArray(), c.runningVar2] });
        expect(sd.num_batches_tracked.item()).toBe(c.numBatchesTracked);
        // eval: the running statistics, in the forward and the backward
        bn.eval();
        bn.zeroGrad();
        const yEval = bn.forward(rg.tensor(c.x3, c.xShape));
        const dxEval = bn.backward(rg.tensor(c.dyEval, c.xShape));
        expectClose({ yEval: [yEval.toArray(), c.yEval], dxEval: [dxEval.toArray(), c.dxEval] });
        if (c.affine) expectClose({ dweightEval: [bn.weight!.grad.toArray(), c.dweightEval!], dbiasEval: [bn.bias!.grad.toArray(), c.dbiasEval!] });
      });
    }

    for (const c of golden.layernorm) {
      it(`LayerNorm([${c.normalizedShape.join(', ')}], eps ${c.eps}${c.affine ? '' : ', elementwiseAffine false'}) on [${c.xShape.join(', ')}]: forward, dx${c.affine ? ', dweight, dbias' : ''}`, () => {
        rg.setBackend(backend);
        const ln = new rg.LayerNorm(c.normalizedShape, { eps: c.eps, elementwiseAffine: c.affine });
        expect(Object.keys(ln.stateDict())).toEqual(c.stateDictKeys);
        if (c.affine) ln.loadStateDict({ weight: Float32Array.from(c.weight!), bias: Float32Array.from(c.bias!) });
        const y = ln.forward(rg.tensor(c.x, c.xShape));
        expect(y.shape).toEqual(c.xShape);
        const dx = ln.backward(rg.tensor(c.dy, c.xShape));
        expectClose({ y: [y.toArray(), c.y], dx: [dx.toArray(), c.dx] });
        if (c.affine) expectClose({ dweight: [ln.weight!.grad.toArray(), c.dweight!], dbias: [ln.bias!.grad.toArray(), c.dbias!] });
      });
    }

    for (const c of golden.embedding) {
      it(`Embedding(${c.numEmbeddings}, ${c.embeddingDim}) on indices [${c.indexShape.join(', ')}] with repeats: forward and dweight`, () => {
        rg.setBackend(backend);
        const emb = new rg.Embedding(c.numEmbeddings, c.embeddingDim);
        expect(Object.keys(emb.stateDict())).toEqual(c.stateDictKeys);
        emb.loadStateDict({ weight: Float32Array.from(c.weight) });
        const y = emb.forward(rg.tensor(Int32Array.from(c.index), c.indexShape));
        expect(y.shape).toEqual(c.yShape);
        emb.backward(rg.tensor(c.dy, c.yShape));
        expectClose({ y: [y.toArray(), c.y], dweight: [emb.weight.grad.toArray(), c.dweight] });
      });
    }

    for (const c of golden.rnn) {
      const init = c.h0 ? 'given initial state' : 'zero initial state';
      const name = `${c.mode}${c.nonlinearity ? ` ${c.nonlinearity}` : ''}(${c.inputSize}, ${c.hiddenSize}, numLayers ${c.numLayers}${c.batchFirst ? ', batchFirst' : ''}) on [${c.xShape.join(', ')}], ${init}`;
      it(`${name}: output, final state, dx, parameter and initial-state gradients`, () => {
        rg.setBackend(backend);
        const opts = { numLayers: c.numLayers, batchFirst: c.batchFirst };
        const layer = c.mode === 'LSTM' ? new rg.LSTM(c.inputSize, c.hiddenSize, opts)
          : c.mode === 'GRU' ? new rg.GRU(c.inputSize, c.hiddenSize, opts)
          : new rg.RNN(c.inputSize, c.hiddenSize, { ...opts, nonlinearity: c.nonlinearity });
        expect(Object.keys(layer.stateDict())).toEqual(c.stateDictKeys);
        layer.loadStateDict(f32Dict(c.state));
        const lstm = c.mode === 'LSTM';
        if (c.h0) layer.initialState = lstm ? [rg.tensor(c.h0, c.stateShape), rg.tensor(c.c0!, c.stateShape)] : rg.tensor(c.h0, c.stateShape);
        const y = layer.forward(rg.tensor(c.x, c.xShape));
        expect(y.shape).toEqual(c.yShape);
        const last = layer.lastState!;
        const [hN, cN] = lstm ? (last as readonly [rg.Tensor, rg.Tensor]) : [last as rg.Tensor, null];
        expectClose({ y: [y.toArray(), c.y], hN: [hN.toArray(), c.hN] });
        if (lstm) expectClose({ cN: [cN!.toArray(), c.cN!] });
        const dhN = rg.tensor(c.dhN, c.stateShape);
        layer.lastStateGrad = lstm ? [dhN, rg.tensor(c.dcN!, c.stateShape)] : dhN;
        const dx = layer.backward(rg.tensor(c.dy, c.yShape));
        expectClose({ dx: [dx.toArray(), c.dx] });
        expectParamGrads(layer, c.grads);
        const g = layer.initialStateGrad;
        if (!c.h0) expect(g).toBeNull();
        else if (lstm) {
          const [dh0, dc0] = g as readonly [rg.Tensor, rg.Tensor];
          expectClose({ dh0: [dh0.toArray(), c.dh0!], dc0: [dc0.toArray(), c.dc0!] });
        } else expectClose({ dh0: [(g as rg.Tensor).toArray(), c.dh0!] });
      });
    }

    /** A layer built by `make` with PyTorch's weights `c.state`: forward, backward and every parameter gradient. */
    const attentionCase = (label: string, c: (typeof golden.attention)[number], make: () => rg.Module) =>
      it(`${label} on [${c.xShape.join(', ')}]: output, dx, parameter gradients`, () => {
        rg.setBackend(backend);
        const layer = make();
        expect(Object.keys(layer.stateDict())).toEqual(c.stateDictKeys);
        layer.loadStateDict(f32Dict(c.state));
        const y = layer.forward(rg.tensor(c.x, c.xShape));
        expect(y.shape).toEqual(c.xShape);
        const dx = layer.backward(rg.tensor(c.dy, c.xShape));
        expectClose({ y: [y.toArray(), c.y], dx: [dx.toArray(), c.dx] });
        expectParamGrads(layer, c.grads);
      });
    for (const c of golden.attention)
      attentionCase(`MultiheadAttention(${c.embedDim}, ${c.numHeads}${c.causal ? ', causal' : ''}) self-attention`, c, () => new rg.MultiheadAttention(c.embedDim, c.numHeads, { causal: c.causal }));
    {
      const c = golden.transformer;
      attentionCase(`TransformerBlock(${c.embedDim}, ${c.numHeads}, causal, mlpRatio ${c.mlpRatio})`, c, () => new rg.TransformerBlock(c.embedDim, c.numHeads, { causal: c.causal, mlpRatio: c.mlpRatio }));
    }

    it(`Conv2d-BatchNorm2d-ReLU-MaxPool2d-Flatten-Linear: ${golden.cnn.losses.length} steps of SGD with momentum, losses and final state`, () => {
      rg.setBackend(backend);
      const c = golden.cnn;
      const model = new rg.Sequential([
        new rg.Conv2d(2, 4, 3, { padding: 1 }), new rg.BatchNorm2d(4), new rg.ReLU(), new rg.MaxPool2d(2), new rg.Flatten(), new rg.Linear(36, 3),
      ]);
      const sd = model.stateDict();
      expect(Object.keys(sd)).toEqual(Object.keys(c.final));
      for (const [key, values] of Object.entries(c.initial)) sd[key].assign(values);
      const opt = new rg.SGD(model.parameters(), { lr: c.lr, momentum: c.momentum });
      const lossFn = new rg.CrossEntropyLoss();
      const x = rg.tensor(c.x, c.xShape), target = rg.tensor(Int32Array.from(c.target), [c.target.length]);
      c.losses.forEach((want, t) => {
        opt.zeroGrad();
        const loss = lossFn.forward(model.forward(x), target).item();
        expect(Math.abs(loss - want) / Math.max(1, Math.abs(want)), `loss at step ${t + 1}`).toBeLessThan(TOL.reduction);
        model.backward(lossFn.backward());
        opt.step();
      });
      for (const [key, want] of Object.entries(c.final)) {
        if (typeof want === 'number') expect(sd[key].item(), key).toBe(want);
        else expectClose({ [key]: [sd[key].toArray(), want] });
      }
    });

    for (const c of golden.clip) {
      it(`clip ${c.clipValue !== undefined ? `value ${c.clipValue}` : `norm ${c.maxNorm} (${c.normType})`}`, () => {
        rg.setBackend(backend);
        const shapes = [[5], [2, 3]].slice(0, c.grads.length);
        const ps = shapes.map((s, i) => {
          const p = new rg.Parameter(rg.zeros(s));
          p.grad.assign(c.grads[i].map((_, j) => [seqAt(0.3, 0.2), seqAt(0.8, 1.1)][i](j)));
          return p;
        });
        if (c.clipValue !== undefined) rg.clipGradValue(ps, c.clipValue);
        else expect(rg.clipGradNorm(ps, c.maxNorm!, { normType: c.normType === 'inf' ? Infinity : 2 })).toBeCloseTo(c.total!, 4);
        ps.forEach((p, i) => expectClose({ [`grad ${i}`]: [p.grad.toArray(), c.grads[i]] }, TOL.elementwise));
      });
    }

    it('Sequential state-dict names match PyTorch (modules without parameters count)', () => {
      rg.setBackend(backend);
      const m = new rg.Sequential([new rg.Linear(4, 3), new rg.ReLU(), new rg.Linear(3, 2)]);
      expect(Object.keys(m.stateDict())).toEqual(golden.layers.find((l) => l.layer === 'SequentialKeys')!.stateDictKeys);
      expect(m.namedParameters().map(([n]) => n)).toEqual(['0.weight', '0.bias', '2.weight', '2.bias']);
    });
  });
}
