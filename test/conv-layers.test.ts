// The convolutional-network layers (Conv2d, MaxPool2d, AvgPool2d, GlobalAvgPool2d, AdaptiveAvgPool2d, BatchNorm1d,
// BatchNorm2d): backward against central differences (rg.gradCheck, float64 reference), forward against plain loops
// written here, running statistics, state dicts and save/load, bad-input errors, a small CNN that learns, and a
// training step that allocates nothing. Everything but the gradient checks runs on each backend that has the
// convolution kernels: the reference always, the native CPU backend once its addon carries them.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { expectNoTensorGrowth, randomArray, relError, requireCpu, rg, rng, TOL } from './helpers.js';

const backendNames: ('reference' | 'cpu')[] = ['reference', ...(requireCpu() ? (['cpu'] as const) : [])];

const dir = mkdtempSync(join(tmpdir(), 'retrograd-conv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function input(shape: number[], seed: number, scale = 1): rg.Tensor {
  return rg.tensor(randomArray(size(shape), rng(seed), scale), shape);
}

// ---- plain loops: what each layer must compute ----

type P2 = [number, number];
function conv2dLoop(x: ArrayLike<number>, [B, C, H, W]: number[], w: ArrayLike<number>, bias: ArrayLike<number> | null, OC: number, [KH, KW]: P2, [SH, SW]: P2, [PH, PW]: P2, [DH, DW]: P2) {
  const OH = Math.floor((H + 2 * PH - DH * (KH - 1) - 1) / SH) + 1, OW = Math.floor((W + 2 * PW - DW * (KW - 1) - 1) / SW) + 1;
  const out = new Float64Array(B * OC * OH * OW);
  for (let b = 0; b < B; b++)
    for (let o = 0; o < OC; o++)
      for (let oh = 0; oh < OH; oh++)
        for (let ow = 0; ow < OW; ow++) {
          let s = bias ? bias[o] : 0;
          for (let c = 0; c < C; c++)
            for (let i = 0; i < KH; i++)
              for (let j = 0; j < KW; j++) {
                const h = oh * SH - PH + i * DH, v = ow * SW - PW + j * DW;
                if (h >= 0 && h < H && v >= 0 && v < W) s += x[((b * C + c) * H + h) * W + v] * w[((o * C + c) * KH + i) * KW + j];
              }
          out[((b * OC + o) * OH + oh) * OW + ow] = s;
        }
  return { out, shape: [B, OC, OH, OW] };
}

function poolLoop(kind: 'max' | 'avg', x: ArrayLike<number>, [B, C, H, W]: number[], [KH, KW]: P2, [SH, SW]: P2, [PH, PW]: P2, countIncludePad = true) {
  const OH = Math.floor((H + 2 * PH - KH) / SH) + 1, OW = Math.floor((W + 2 * PW - KW) / SW) + 1;
  const out = new Float64Array(B * C * OH * OW);
  for (let p = 0; p < B * C; p++)
    for (let oh = 0; oh < OH; oh++)
      for (let ow = 0; ow < OW; ow++) {
        let m = -Infinity, s = 0, n = 0;
        for (let i = 0; i < KH; i++)
          for (let j = 0; j < KW; j++) {
            const h = oh * SH - PH + i, v = ow * SW - PW + j;
            if (h < 0 || h >= H || v < 0 || v >= W) continue;
            const e = x[(p * H + h) * W + v];
            m = Math.max(m, e);
            s += e;
            n++;
          }
        out[(p * OH + oh) * OW + ow] = kind === 'max' ? m : s / (countIncludePad ? KH * KW : n);
      }
  return { out, shape: [B, C, OH, OW] };
}

/** Per-channel mean, biased and unbiased variance of x [B, C, R]. */
function channelStats(x: ArrayLike<number>, B: number, C: number, R: number) {
  const mean: number[] = [], varB: number[] = [], varU: number[] = [];
  const n = B * R;
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let b = 0; b < B; b++) for (let r = 0; r < R; r++) s += x[(b * C + c) * R + r];
    const m = s / n;
    let q = 0;
    for (let b = 0; b < B; b++) for (let r = 0; r < R; r++) q += (x[(b * C + c) * R + r] - m) ** 2;
    mean.push(m);
    varB.push(q / n);
    varU.push(q / (n - 1));
  }
  return { mean, varB, varU };
}

function normLoop(x: ArrayLike<number>, B: number, C: number, R: number, mean: number[], variance: number[], eps: number, w: ArrayLike<number>, bias: ArrayLike<number>) {
  const out = new Float64Array(B * C * R);
  for (let b = 0; b < B; b++)
    for (let c = 0; c < C; c++)
      for (let r = 0; r < R; r++) {
        const i = (b * C + c) * R + r;
        out[i] = ((x[i] - mean[c]) / Math.sqrt(variance[c] + eps)) * w[c] + bias[c];
      }
  return out;
}

// ---- gradients: gradCheck runs in float64 on the reference backend whatever the current one is ----

describe('conv layers: backward against central differences (rg.gradCheck, float64)', () => {
  beforeEach(() => rg.setBackend('reference'));
  const cases: [string, () => rg.Module, number[]][] = [
    ['Conv2d stride 2, padding 1', () => new rg.Conv2d(2, 3, 3, { stride: 2, padding: 1 }), [2, 2, 7, 6]],
    ['Conv2d dilation [2, 1], padding [2, 0], kernel 3×2', () => new rg.Conv2d(2, 3, [3, 2], { dilation: [2, 1], padding: [2, 0] }), [2, 2, 7, 5]],
    ['Conv2d stride [2, 3], padding 1, dilation 2', () => new rg.Conv2d(3, 2, 3, { stride: [2, 3], padding: 1, dilation: 2 }), [2, 3, 9, 10]],
    ['Conv2d one channel, batch 1', () => new rg.Conv2d(1, 1, 3), [1, 1, 5, 5]],
    ['Conv2d 1×1 without bias', () => new rg.Conv2d(3, 4, 1, { bias: false }), [2, 3, 4, 3]],
    ['MaxPool2d 2', () => new rg.MaxPool2d(2), [2, 3, 6, 5]],
    ['MaxPool2d 3, stride 2, padding 1 (overlapping windows)', () => new rg.MaxPool2d(3, { stride: 2, padding: 1 }), [2, 2, 7, 7]],
    ['AvgPool2d 3, stride 2, padding 1, countIncludePad', () => new rg.AvgPool2d(3, { stride: 2, padding: 1 }), [2, 2, 7, 6]],
    ['AvgPool2d 3, stride 2, padding 1, countIncludePad false', () => new rg.AvgPool2d(3, { stride: 2, padding: 1, countIncludePad: false }), [2, 2, 7, 6]],
    ['AvgPool2d [2, 3], stride 1', () => new rg.AvgPool2d([2, 3], { stride: 1 }), [1, 2, 4, 5]],
    ['GlobalAvgPool2d', () => new rg.GlobalAvgPool2d(), [2, 3, 4, 5]],
    ['AdaptiveAvgPool2d(1)', () => new rg.AdaptiveAvgPool2d(1), [2, 3, 3, 2]],
    ['BatchNorm1d [B, C] (training)', () => new rg.BatchNorm1d(5), [6, 5]],
    ['BatchNorm1d [B, C, L] (training)', () => new rg.BatchNorm1d(3, { momentum: null }), [4, 3, 5]],
    ['BatchNorm2d (training)', () => new rg.BatchNorm2d(3), [2, 3, 4, 5]],
    ['BatchNorm2d without affine (training)', () => new rg.BatchNorm2d(2, { affine: false }), [3, 2, 3, 3]],
    ['BatchNorm2d (eval: running statistics)', () => new rg.BatchNorm2d(3).eval(), [2, 3, 4, 5]],
    ['BatchNorm2d without running statistics (eval: batch statistics)', () => new rg.BatchNorm2d(3, { trackRunningStats: false }).eval(), [2, 3, 2, 3]],
    // (a convolution bias just before batch norm would have a gradient of exactly zero: left out, as is usual)
    ['Sequential Conv2d-BatchNorm2d-Tanh-MaxPool2d-Flatten-Linear',
      () => new rg.Sequential([new rg.Conv2d(2, 3, 3, { padding: 1, bias: false }), new rg.BatchNorm2d(3), new rg.Tanh(), new rg.MaxPool2d(2), new rg.Flatten(), new rg.Linear(12, 2)]), [3, 2, 4, 4]],
  ];
  cases.forEach(([name, make, shape], i) => {
    it(name, () => {
      rg.manualSeed(100 + i);
      const m = make();
      // Non-trivial affine parameters and running statistics, so their gradients and uses are checked too.
      const draw = rng(7 + i);
      const isBatchNorm = m instanceof rg.BatchNorm1d || m instanceof rg.BatchNorm2d;
      for (const [key, t] of Object.entries(m.stateDict())) {
        if (key.endsWith('running_var')) t.assign(Array.from({ length: t.size }, () => 0.5 + draw()));
        else if (key.endsWith('running_mean') || (isBatchNorm && t.dtype !== 'int32')) t.assign(Array.from({ length: t.size }, () => 2 * draw() - 1));
      }
      const r = rg.gradCheck(m, input(shape, 50 + i, 2));
      expect(r.maxRelError, JSON.stringify(r.errors)).toBeLessThan(TOL.gradcheck);
      expect(r.ok).toBe(true);
      const params = m.namedParameters().map(([n]) => n);
      expect(Object.keys(r.errors).sort()).toEqual(['input', ...params].sort());
    });
  });
});

// ---- everything else, on each backend that has the kernels ----

describe.each(backendNames)('conv layers on %s', (backend) => {
  beforeEach(() => rg.setBackend(backend));
  // float32 sums in a different order than the float64 loops
  const tol = backend === 'reference' ? 1e-6 : TOL.reduction;

  describe('forward against plain loops', () => {
    const convCases: [number[], number, P2, P2, P2, P2, boolean][] = [
      [[2, 3, 9, 7], 4, [3, 3], [2, 2], [1, 1], [1, 1], true],
      [[1, 1, 5, 5], 1, [3, 3], [1, 1], [0, 0], [1, 1], true],
      [[3, 2, 8, 9], 5, [3, 2], [1, 3], [2, 0], [2, 1], false],
      [[2, 4, 6, 6], 3, [1, 1], [1, 1], [0, 0], [1, 1], true],
      [[1, 3, 17, 5], 2, [5, 3], [3, 2], [2, 1], [1, 2], true],
    ];
    convCases.forEach(([shape, OC, k, s, p, d, bias], i) => {
      it(`Conv2d ${shape[1]}→${OC} on [${shape.join(', ')}], k=${k}, s=${s}, p=${p}, d=${d}${bias ? '' : ', no bias'}`, () => {
        rg.manualSeed(i);
        const conv = new rg.Conv2d(shape[1], OC, k, { stride: s, padding: p, dilation: d, bias });
        expect(conv.weight.shape).toEqual([OC, shape[1], ...k]);
        const x = input(shape, 20 + i);
        const y = conv.forward(x);
        const want = conv2dLoop(x.toArray(), shape, conv.weight.value.toArray(), conv.bias ? conv.bias.value.toArray() : null, OC, k, s, p, d);
        expect(y.shape).toEqual(want.shape);
        expect(relError(y.toArray(), want.out)).toBeLessThan(tol);
      });
    });

    it('Conv2d initialises as PyTorch: U(−1/√fanIn, 1/√fanIn) for weight and bias, fanIn = C·KH·KW', () => {
      rg.manualSeed(3);
      const conv = new rg.Conv2d(4, 16, [3, 2]);
      const bound = 1 / Math.sqrt(4 * 3 * 2);
      const w = [...conv.weight.value.toArray()], b = [...conv.bias!.value.toArray()];
      for (const v of [...w, ...b]) expect(Math.abs(v)).toBeLessThanOrEqual(bound);
      expect(Math.max(...w.map(Math.abs))).toBeGreaterThan(0.9 * bound);
      rg.manualSeed(3);
      expect([...new rg.Conv2d(4, 16, [3, 2]).weight.value.toArray()]).toEqual(w);
    });

    const poolCases: ['max' | 'avg', number[], P2, P2, P2, boolean][] = [
      ['max', [2, 3, 6, 5], [2, 2], [2, 2], [0, 0], true],
      ['max', [1, 2, 7, 7], [3, 3], [2, 2], [1, 1], true],
      ['max', [2, 1, 5, 8], [3, 2], [1, 3], [1, 0], true],
      ['avg', [2, 3, 6, 5], [2, 2], [2, 2], [0, 0], true],
      ['avg', [1, 2, 7, 7], [3, 3], [2, 2], [1, 1], true],
      ['avg', [1, 2, 7, 7], [3, 3], [2, 2], [1, 1], false],
      ['avg', [2, 1, 5, 8], [3, 2], [1, 3], [1, 1], false],
    ];
    poolCases.forEach(([kind, shape, k, s, p, cip]) => {
      it(`${kind === 'max' ? 'MaxPool2d' : 'AvgPool2d'} on [${shape.join(', ')}], k=${k}, s=${s}, p=${p}${kind === 'avg' ? `, countIncludePad ${cip}` : ''}`, () => {
        const layer = kind === 'max' ? new rg.MaxPool2d(k, { stride: s, padding: p }) : new rg.AvgPool2d(k, { stride: s, padding: p, countIncludePad: cip });
        // all-negative input: padding must never win a max
        const x = input(shape, 31, 1);
        const xs = kind === 'max' ? rg.tensor(x.toArray().map((v) => v - 2), shape) : x;
        const y = layer.forward(xs);
        const want = poolLoop(kind, xs.toArray(), shape, k, s, p, cip);
        expect(y.shape).toEqual(want.shape);
        expect(relError(y.toArray(), want.out)).toBeLessThan(tol);
      });
    });

    it('MaxPool2d sends the gradient to each window maximum; AvgPool2d spreads it over the window', () => {
      const x = rg.tensor([1, 5, 2, 0, 3, 4, 9, 8, 7, 6, -1, -2, 0, 1, 2, 3], [1, 1, 4, 4]);
      const mp = new rg.MaxPool2d(2);
      expect([...mp.forward(x).toArray()]).toEqual([5, 9, 7, 3]);
      expect([...mp.backward(rg.tensor([1, 2, 3, 4], [1, 1, 2, 2])).toArray()]).toEqual([0, 1, 0, 0, 0, 0, 2, 0, 3, 0, 0, 0, 0, 0, 0, 4]);
      const ap = new rg.AvgPool2d(2);
      expect([...ap.forward(x).toArray()]).toEqual([3.25, 4.75, 3.5, 0.5]);
      expect([...ap.backward(rg.tensor([4, 8, 4, 8], [1, 1, 2, 2])).toArray()]).toEqual([1, 1, 2, 2, 1, 1, 2, 2, 1, 1, 2, 2, 1, 1, 2, 2]);
    });

    it('GlobalAvgPool2d gives [B, C], AdaptiveAvgPool2d(1) [B, C, 1, 1]: the mean of each plane', () => {
      const shape = [2, 3, 4, 5];
      const x = input(shape, 40);
      const xs = [...x.toArray()];
      const want = Array.from({ length: 6 }, (_, p) => xs.slice(p * 20, p * 20 + 20).reduce((a, b) => a + b, 0) / 20);
      const g = new rg.GlobalAvgPool2d().forward(x);
      expect(g.shape).toEqual([2, 3]);
      expect(relError(g.toArray(), want)).toBeLessThan(tol);
      const a = new rg.AdaptiveAvgPool2d(1).forward(x);
      expect(a.shape).toEqual([2, 3, 1, 1]);
      expect(relError(a.toArray(), want)).toBeLessThan(tol);
      expect(new rg.AdaptiveAvgPool2d([1, 1]).forward(x).shape).toEqual([2, 3, 1, 1]);
      const dx = new rg.GlobalAvgPool2d();
      dx.forward(x);
      expect([...dx.backward(rg.tensor(Array.from({ length: 6 }, (_, i) => 20 * i), [2, 3])).toArray()]).toEqual(Array.from({ length: 120 }, (_, i) => Math.floor(i / 20)));
    });

    it('BatchNorm1d and BatchNorm2d normalise with the batch statistics in training', () => {
      const cases: [rg.Module, number[], number][] = [
        [new rg.BatchNorm1d(5), [6, 5], 1],
        [new rg.BatchNorm1d(3), [4, 3, 7], 7],
        [new rg.BatchNorm2d(4, { eps: 1e-3 }), [2, 4, 3, 5], 15],
      ];
      for (const [bn, shape, R] of cases) {
        const C = shape[1];
        const sd = bn.stateDict();
        sd.weight.assign(Array.from({ length: C }, (_, c) => 0.5 + c));
        sd.bias.assign(Array.from({ length: C }, (_, c) => c - 1));
        const x = input(shape, 60 + C, 3);
        const y = bn.forward(x);
        expect(y.shape).toEqual(shape);
        const { mean, varB } = channelStats(x.toArray(), shape[0], C, R);
        const want = normLoop(x.toArray(), shape[0], C, R, mean, varB, (bn as rg.BatchNorm2d).eps, sd.weight.toArray(), sd.bias.toArray());
        expect(relError(y.toArray(), want)).toBeLessThan(backend === 'reference' ? 1e-6 : TOL.reduction);
      }
    });
  });

  describe('BatchNorm running statistics', () => {
    it('two training forwards update running_mean, running_var (unbiased) with momentum 0.1 and count 2 batches', () => {
      const bn = new rg.BatchNorm2d(3);
      const shape = [4, 3, 2, 3];
      const x1 = input(shape, 70, 2), x2 = input(shape, 71, 1);
      bn.forward(x1);
      bn.forward(x2);
      const s1 = channelStats(x1.toArray(), 4, 3, 6), s2 = channelStats(x2.toArray(), 4, 3, 6);
      const m = 0.1;
      const wantMean = s1.mean.map((a, c) => (1 - m) * ((1 - m) * 0 + m * a) + m * s2.mean[c]);
      const wantVar = s1.varU.map((a, c) => (1 - m) * ((1 - m) * 1 + m * a) + m * s2.varU[c]);
      const sd = bn.stateDict();
      expect(relError(sd.running_mean.toArray(), wantMean)).toBeLessThan(1e-5);
      expect(relError(sd.running_var.toArray(), wantVar)).toBeLessThan(1e-5);
      expect(sd.num_batches_tracked.dtype).toBe('int32');
      expect(sd.num_batches_tracked.shape).toEqual([]);
      expect(sd.num_batches_tracked.item()).toBe(2);
    });

    it('momentum null keeps the cumulative average (momentum 1/num_batches_tracked)', () => {
      const bn = new rg.BatchNorm1d(4, { momentum: null });
      const xs = [input([5, 4], 80, 1), input([5, 4], 81, 2), input([5, 4], 82, 3)];
      for (const x of xs) bn.forward(x);
      const stats = xs.map((x) => channelStats(x.toArray(), 5, 4, 1));
      const avg = (f: (s: (typeof stats)[0]) => number[]) => [0, 1, 2, 3].map((c) => stats.reduce((a, s) => a + f(s)[c], 0) / 3);
      expect(relError(bn.stateDict().running_mean.toArray(), avg((s) => s.mean))).toBeLessThan(1e-5);
      expect(relError(bn.stateDict().running_var.toArray(), avg((s) => s.varU))).toBeLessThan(1e-5);
      expect(bn.stateDict().num_batches_tracked.item()).toBe(3);
    });

    it('eval mode normalises with the running statistics and updates nothing', () => {
      const bn = new rg.BatchNorm2d(2, { eps: 1e-4 });
      const sd = bn.stateDict();
      sd.running_mean.assign([0.5, -1]);
      sd.running_var.assign([2, 0.25]);
      sd.weight.assign([1.5, -2]);
      sd.bias.assign([0.1, 0.2]);
      bn.eval();
      const x = input([3, 2, 2, 2], 90, 2);
      const y = bn.forward(x);
      const want = normLoop(x.toArray(), 3, 2, 4, [0.5, -1], [2, 0.25], 1e-4, [1.5, -2], [0.1, 0.2]);
      expect(relError(y.toArray(), want)).toBeLessThan(backend === 'reference' ? 1e-6 : TOL.reduction);
      expect([...sd.running_mean.toArray()]).toEqual([0.5, -1]);
      expect([...sd.running_var.toArray()]).toEqual([2, 0.25]);
      expect(sd.num_batches_tracked.item()).toBe(0);
      // eval with a batch of one sample is fine; training with one value per channel is not
      expect(bn.forward(input([1, 2, 1, 1], 91)).shape).toEqual([1, 2, 1, 1]);
      // back to training: the batch statistics again, and the count goes on
      bn.train();
      bn.forward(x);
      expect(sd.num_batches_tracked.item()).toBe(1);
    });

    it('without trackRunningStats: no buffers, batch statistics in eval too', () => {
      const bn = new rg.BatchNorm1d(3, { trackRunningStats: false });
      expect(Object.keys(bn.stateDict())).toEqual(['weight', 'bias']);
      const x = input([4, 3], 95, 2);
      const yTrain = [...bn.forward(x).toArray()];
      bn.eval();
      expect([...bn.forward(x).toArray()]).toEqual(yTrain);
    });

    it('num_batches_tracked counts on from a loaded or assigned value', () => {
      const bn = new rg.BatchNorm1d(2);
      bn.forward(input([3, 2], 96));
      bn.loadStateDict({ ...bn.stateDict(), num_batches_tracked: rg.tensor(Int32Array.of(41), []) });
      bn.forward(input([3, 2], 97));
      expect(bn.stateDict().num_batches_tracked.item()).toBe(42);
      bn.stateDict().num_batches_tracked.assign([7]);
      bn.forward(input([3, 2], 98));
      expect(bn.stateDict().num_batches_tracked.item()).toBe(8);
      // a gradient check works on copies: the module's own count is untouched
      rg.gradCheck(bn, input([3, 2], 99));
      expect(bn.stateDict().num_batches_tracked.item()).toBe(8);
      bn.forward(input([3, 2], 100));
      expect(bn.stateDict().num_batches_tracked.item()).toBe(9);
    });

    it('moved to another backend, a BatchNorm keeps its running statistics and its count', () => {
      const other = backend === 'cpu' ? 'reference' : backendNames.includes('cpu') ? 'cpu' : 'reference';
      const bn = new rg.BatchNorm2d(2, { affine: false });
      bn.forward(input([2, 2, 3, 3], 101));
      const mean = [...bn.stateDict().running_mean.toArray()];
      bn.to(other);
      expect(bn.backend.name).toBe(other);
      expect([...bn.stateDict().running_mean.toArray()]).toEqual(mean);
      rg.setBackend(other);
      bn.forward(input([2, 2, 3, 3], 102));
      expect(bn.stateDict().num_batches_tracked.item()).toBe(2);
      expect(bn.stateDict().num_batches_tracked.device).toBe(other);
      // a BatchNorm without affine parameters still knows where it lives (its running statistics)
      if (other !== backend)
        expect(() => bn.forward(rg.zeros([2, 2, 3, 3]).to(backend))).toThrow(`BatchNorm2d(2): input is on '${backend}' but the layer is on '${other}'`);
    });
  });

  describe('state dicts and save / load', () => {
    it('PyTorch names: weight, bias, running_mean, running_var, num_batches_tracked', () => {
      const model = new rg.Sequential([
        new rg.Conv2d(1, 4, 3), new rg.BatchNorm2d(4), new rg.ReLU(), new rg.MaxPool2d(2), new rg.Conv2d(4, 2, 1, { bias: false }),
        new rg.BatchNorm2d(2, { affine: false }), new rg.GlobalAvgPool2d(), new rg.BatchNorm1d(2), new rg.Linear(2, 3),
      ]);
      const sd = model.stateDict();
      expect(Object.keys(sd)).toEqual([
        '0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean', '1.running_var', '1.num_batches_tracked', '4.weight',
        '5.running_mean', '5.running_var', '5.num_batches_tracked', '7.weight', '7.bias', '7.running_mean', '7.running_var',
        '7.num_batches_tracked', '8.weight', '8.bias',
      ]);
      expect(sd['0.weight'].shape).toEqual([4, 1, 3, 3]);
      expect([...sd['1.weight'].toArray()]).toEqual([1, 1, 1, 1]);
      expect([...sd['1.bias'].toArray()]).toEqual([0, 0, 0, 0]);
      expect([...sd['1.running_mean'].toArray()]).toEqual([0, 0, 0, 0]);
      expect([...sd['1.running_var'].toArray()]).toEqual([1, 1, 1, 1]);
      expect(model.namedParameters().map(([n]) => n)).toEqual(['0.weight', '0.bias', '1.weight', '1.bias', '4.weight', '7.weight', '7.bias', '8.weight', '8.bias']);
      expect(model.namedBuffers().map(([n]) => n)).toEqual(['1.running_mean', '1.running_var', '1.num_batches_tracked', '5.running_mean', '5.running_var', '5.num_batches_tracked', '7.running_mean', '7.running_var', '7.num_batches_tracked']);
    });

    it('rg.save / rg.load round-trip architecture, weights and running statistics', async () => {
      rg.manualSeed(5);
      const make = () => new rg.Sequential([
        new rg.Conv2d(2, 4, [3, 2], { stride: [2, 1], padding: 1, dilation: [1, 2], bias: false }), new rg.BatchNorm2d(4, { eps: 1e-3, momentum: null }),
        new rg.ReLU(), new rg.MaxPool2d(2, { stride: 1 }), new rg.AvgPool2d(3, { stride: 2, padding: 1, countIncludePad: false }),
        new rg.AdaptiveAvgPool2d(1), new rg.Flatten(), new rg.BatchNorm1d(4, { affine: false, momentum: 0.3 }), new rg.Linear(4, 3),
      ]);
      const model = make();
      const x = input([3, 2, 9, 8], 110);
      model.forward(x);
      model.forward(input([3, 2, 9, 8], 111));
      const path = join(dir, `cnn-${backend}.safetensors`);
      await rg.save(model, path);
      const loaded = (await rg.load(path)) as rg.Sequential;
      expect(loaded.layers.map((l) => l.constructor.name)).toEqual(model.layers.map((l) => l.constructor.name));
      const conv = loaded.layers[0] as rg.Conv2d;
      expect([conv.kernelSize, conv.stride, conv.padding, conv.dilation, conv.bias]).toEqual([[3, 2], [2, 1], [1, 1], [1, 2], null]);
      const bn = loaded.layers[1] as rg.BatchNorm2d;
      expect([bn.eps, bn.momentum, bn.affine, bn.trackRunningStats]).toEqual([1e-3, null, true, true]);
      expect((loaded.layers[4] as rg.AvgPool2d).countIncludePad).toBe(false);
      expect((loaded.layers[7] as rg.BatchNorm1d).momentum).toBe(0.3);
      const a = model.stateDict(), b = loaded.stateDict();
      expect(Object.keys(b)).toEqual(Object.keys(a));
      for (const k of Object.keys(a)) {
        expect(b[k].shape, k).toEqual(a[k].shape);
        expect(b[k].dtype === 'int32', k).toBe(a[k].dtype === 'int32');
        expect([...b[k].toArray()], k).toEqual([...a[k].toArray()]);
      }
      expect(b['1.num_batches_tracked'].item()).toBe(2);
      model.eval();
      loaded.eval();
      expect([...loaded.forward(x).toArray()]).toEqual([...model.forward(x).toArray()]);
      loaded.train();
      loaded.forward(x);
      expect(loaded.stateDict()['1.num_batches_tracked'].item()).toBe(3);
    });
  });

  describe('bad input', () => {
    it('Conv2d: constructor arguments and input shapes, each named with what was expected and what came', () => {
      expect(() => new rg.Conv2d(0, 4, 3)).toThrow('Conv2d: invalid inChannels 0; expected an integer >= 1');
      expect(() => new rg.Conv2d(3, 4, [3, 0])).toThrow('Conv2d: invalid kernelSize[1] 0; expected an integer >= 1');
      expect(() => new rg.Conv2d(3, 4, 3, { stride: 0 })).toThrow('Conv2d: invalid stride 0; expected an integer >= 1');
      expect(() => new rg.Conv2d(3, 4, 3, { padding: -1 })).toThrow(RangeError);
      expect(() => new rg.Conv2d(3, 4, 3, { dilation: 1.5 })).toThrow('Conv2d: invalid dilation 1.5; expected an integer >= 1');
      expect(() => new rg.Conv2d(3, 4, '3' as never)).toThrow(new TypeError("Conv2d: kernelSize must be a number or [h, w], got the string '3'"));
      expect(() => new rg.Conv2d(3, 4, [3, 3, 3] as never)).toThrow(TypeError);
      expect(() => new rg.Conv2d(3, 4, 3, { strides: 2 } as never)).toThrow(/unknown option 'strides' \(did you mean 'stride'\?\)/);
      expect(() => new rg.Conv2d(3, 4, 3, { bias: 1 } as never)).toThrow(TypeError);

      const conv = new rg.Conv2d(3, 16, 3);
      expect(() => conv.forward(rg.zeros([2, 4, 5, 5]))).toThrow(new RangeError('Conv2d(3→16, k=3): input must be [B, 3, H, W], got [2, 4, 5, 5]'));
      expect(() => conv.forward(rg.zeros([3, 5, 5]))).toThrow('Conv2d(3→16, k=3): input must be [B, 3, H, W], got [3, 5, 5]');
      expect(() => conv.forward(rg.zeros([1, 3, 2, 5]))).toThrow('Conv2d(3→16, k=3): input [1, 3, 2, 5] is smaller than the kernel: the padded input is 2×5, the kernel 3×3');
      expect(() => new rg.Conv2d(1, 1, 3, { dilation: 2, padding: [0, 1] }).forward(rg.zeros([1, 1, 4, 4])))
        .toThrow('Conv2d(1→1, k=3, p=0×1, d=2): input [1, 1, 4, 4] is smaller than the kernel: the padded input is 4×6, the dilated kernel 5×5');
      expect(() => conv.forward(rg.zeros([1, 3, 0, 5]))).toThrow(/non-empty H × W plane, got \[1, 3, 0, 5\]/);
      expect(() => conv.forward(rg.tensor(new Int32Array(75), [1, 3, 5, 5]))).toThrow(new TypeError('Conv2d(3→16, k=3): input must be a float32 tensor, got int32'));
      expect(() => conv.forward([1, 2] as never)).toThrow(TypeError);
      expect(() => new rg.Conv2d(1, 1, 1).backward(rg.zeros([1, 1, 1, 1]))).toThrow('Conv2d(1→1, k=1): backward called before forward');
      conv.forward(rg.zeros([2, 3, 5, 5]));
      expect(() => conv.backward(rg.zeros([2, 16, 3, 4]))).toThrow('Conv2d(3→16, k=3): gradient has shape [2, 16, 3, 4], expected the output shape [2, 16, 3, 3]');
      // padding alone may make a small input fit, as in PyTorch
      expect(new rg.Conv2d(1, 1, 3, { padding: 1 }).forward(rg.zeros([1, 1, 1, 1])).shape).toEqual([1, 1, 1, 1]);
    });

    it('pools: kernel, stride, padding at most half the kernel, input at least the kernel', () => {
      expect(() => new rg.MaxPool2d(0)).toThrow('MaxPool2d: invalid kernelSize 0; expected an integer >= 1');
      expect(() => new rg.AvgPool2d(2, { stride: [1, 0] })).toThrow('AvgPool2d: invalid stride[1] 0; expected an integer >= 1');
      expect(() => new rg.MaxPool2d(3, { padding: 2 })).toThrow(new RangeError('MaxPool2d: padding must be at most half the kernel size, got padding 2 with kernel 3'));
      expect(() => new rg.AvgPool2d([2, 4], { padding: [1, 3] })).toThrow('AvgPool2d: padding must be at most half the kernel size, got padding 1×3 with kernel 2×4');
      expect(() => new rg.AvgPool2d(2, { countIncludePad: 'yes' } as never)).toThrow(TypeError);
      expect(() => new rg.MaxPool2d(2, { dilation: 2 } as never)).toThrow(/unknown option 'dilation'/);
      expect(() => new rg.MaxPool2d(4).forward(rg.zeros([1, 1, 3, 5]))).toThrow(new RangeError('MaxPool2d(k=4): input [1, 1, 3, 5] is smaller than the kernel: the padded input is 3×5, the kernel 4×4'));
      expect(() => new rg.AvgPool2d(3, { stride: 2, padding: 1 }).forward(rg.zeros([2, 3, 4]))).toThrow('AvgPool2d(k=3, s=2, p=1): input must be [B, C, H, W], got [2, 3, 4]');
      expect(() => new rg.GlobalAvgPool2d().forward(rg.zeros([2, 3]))).toThrow('GlobalAvgPool2d: input must be [B, C, H, W], got [2, 3]');
      expect(() => new rg.AdaptiveAvgPool2d(2)).toThrow(new RangeError('AdaptiveAvgPool2d: only output size 1 (the global average) is supported, got 2'));
      expect(() => new rg.AdaptiveAvgPool2d([1, 7])).toThrow(/only output size 1 .* got 1×7/);
      expect(() => new rg.MaxPool2d(2).backward(rg.zeros([1]))).toThrow('MaxPool2d(k=2): backward called before forward');
    });

    it('BatchNorm: sizes, options, input shapes, one value per channel in training; a failed call changes nothing', () => {
      expect(() => new rg.BatchNorm2d(0)).toThrow('BatchNorm2d: invalid numFeatures 0; expected an integer >= 1');
      expect(() => new rg.BatchNorm1d(3, { momentum: 2 })).toThrow('BatchNorm1d: invalid momentum 2; expected >= 0 <= 1');
      expect(() => new rg.BatchNorm1d(3, { eps: 0 })).toThrow(RangeError);
      expect(() => new rg.BatchNorm1d(3, { affine: 'no' } as never)).toThrow(TypeError);
      expect(() => new rg.BatchNorm1d(3, { momentun: 0.1 } as never)).toThrow(/did you mean 'momentum'/);
      const bn2 = new rg.BatchNorm2d(3);
      expect(() => bn2.forward(rg.zeros([2, 4, 5, 5]))).toThrow(new RangeError('BatchNorm2d(3): input must be [B, 3, H, W], got [2, 4, 5, 5]'));
      expect(() => bn2.forward(rg.zeros([2, 3, 5]))).toThrow('BatchNorm2d(3): input must be [B, 3, H, W], got [2, 3, 5]');
      const bn1 = new rg.BatchNorm1d(3);
      expect(() => bn1.forward(rg.zeros([2, 3, 4, 4]))).toThrow('BatchNorm1d(3): input must be [B, 3] or [B, 3, L], got [2, 3, 4, 4]');
      expect(() => bn1.forward(rg.zeros([1, 3]))).toThrow(
        new RangeError('BatchNorm1d(3): expected more than 1 value per channel when using batch statistics (training), got input [1, 3]'),
      );
      expect(() => bn1.forward(rg.tensor(new Int32Array(6), [2, 3]))).toThrow(TypeError);
      expect(bn1.stateDict().num_batches_tracked.item()).toBe(0);
      expect([...bn1.stateDict().running_mean.toArray()]).toEqual([0, 0, 0]);
      expect(bn1.forward(rg.zeros([1, 3, 2])).shape).toEqual([1, 3, 2]);
      expect(bn1.stateDict().num_batches_tracked.item()).toBe(1);
    });
  });

  describe('training', () => {
    it('a tiny CNN (Conv2d-ReLU-MaxPool2d-Flatten-Linear) lowers its loss on random data', () => {
      rg.manualSeed(11);
      const model = new rg.Sequential([new rg.Conv2d(1, 4, 3, { padding: 1 }), new rg.ReLU(), new rg.MaxPool2d(2), new rg.Flatten(), new rg.Linear(4 * 4 * 4, 3)]);
      const opt = new rg.Adam(model.parameters(), { lr: 0.01 });
      const lossFn = new rg.CrossEntropyLoss();
      const x = input([16, 1, 8, 8], 120);
      const t = rg.tensor(Int32Array.from({ length: 16 }, (_, i) => i % 3), [16]);
      const losses: number[] = [];
      for (let step = 0; step < 15; step++) {
        model.zeroGrad();
        losses.push(lossFn.forward(model.forward(x), t).item());
        model.backward(lossFn.backward());
        opt.step();
      }
      expect(losses.every(Number.isFinite)).toBe(true);
      expect(losses[losses.length - 1]).toBeLessThan(0.8 * losses[0]);
    });

    it('backward accumulates parameter gradients over two calls, and overwrites after zeroGrad', () => {
      const conv = new rg.Conv2d(2, 3, 3, { padding: 1 });
      const bn = new rg.BatchNorm2d(3);
      const x = input([2, 2, 4, 4], 130), dy = input([2, 3, 4, 4], 131);
      const grads = () => [conv.weight, conv.bias!, bn.weight!, bn.bias!].map((p) => [...p.grad.toArray()]);
      conv.zeroGrad();
      bn.zeroGrad();
      bn.forward(conv.forward(x));
      conv.backward(bn.backward(dy));
      const g1 = grads();
      bn.forward(conv.forward(x));
      conv.backward(bn.backward(dy));
      const g2 = grads();
      g2.forEach((g, i) => expect(relError(g, g1[i].map((v) => 2 * v))).toBeLessThan(1e-6));
      conv.zeroGrad();
      bn.zeroGrad();
      bn.forward(conv.forward(x));
      conv.backward(bn.backward(dy));
      grads().forEach((g, i) => expect(relError(g, g1[i])).toBeLessThan(1e-6));
    });

    it('used directly, a layer leaves no tensor behind: its own buffers are freed or reused', () => {
      const cases: [rg.Module, number[]][] = [
        [new rg.Conv2d(2, 3, 3, { padding: 1, stride: 2 }), [2, 2, 8, 8]],
        [new rg.BatchNorm2d(2), [2, 2, 4, 4]],
        [new rg.BatchNorm1d(2, { trackRunningStats: false }), [4, 2]],
        [new rg.MaxPool2d(2), [2, 2, 4, 4]],
        [new rg.AvgPool2d(3, { padding: 1, stride: 1 }), [2, 2, 4, 4]],
        [new rg.GlobalAvgPool2d(), [2, 2, 4, 4]],
      ];
      for (const [layer, shape] of cases) {
        const x = input(shape, 140);
        expectNoTensorGrowth(layer, x, layer.constructor.name);
      }
    });

    it('fit: the steady-state step allocates nothing (tensor count and bytes flat)', async () => {
      rg.manualSeed(12);
      const model = new rg.Sequential([
        new rg.Conv2d(1, 4, 3, { padding: 1 }), new rg.BatchNorm2d(4), new rg.ReLU(), new rg.MaxPool2d(2), new rg.Conv2d(4, 4, 3, { stride: 2, padding: 1 }),
        new rg.AvgPool2d(2, { stride: 1 }), new rg.GlobalAvgPool2d(), new rg.Linear(4, 3),
      ]);
      model.compile({ optimizer: new rg.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 }), loss: new rg.CrossEntropyLoss() });
      const x = input([40, 1, 8, 8], 150), y = rg.tensor(Int32Array.from({ length: 40 }, (_, i) => i % 3), [40]);
      const counts: number[] = [], bytes: number[] = [];
      await model.fit(x, y, {
        epochs: 6, batchSize: 8, verbose: 0,
        callbacks: [{ onBatchEnd: (b) => { if (b >= 2) { const m = rg.memory(); counts.push(m.tensors); bytes.push(m.bytes); } } }],
      });
      expect(counts.length).toBe(6 * 3);
      // the one tensor that comes and goes is the epoch's shuffled index (40 int32)
      expect(Math.max(...counts) - counts[0]).toBeLessThanOrEqual(1);
      expect(Math.max(...bytes) - bytes[0]).toBeLessThanOrEqual(40 * 4);
      expect((model.layers[1] as rg.BatchNorm2d).stateDict().num_batches_tracked.item()).toBe(30);
    });
  });
});

describe('state dicts as host arrays', () => {
  it('loadStateDict takes the Float32Array / Int32Array copies of a state dict, num_batches_tracked included', () => {
    rg.setBackend('reference');
    const a = new rg.BatchNorm2d(3);
    a.forward(rg.randn([4, 3, 2, 2]));
    a.forward(rg.randn([4, 3, 2, 2]));
    const host = Object.fromEntries(Object.entries(a.stateDict()).map(([k, t]) => [k, t.toArray()]));
    expect(host.num_batches_tracked).toBeInstanceOf(Int32Array);
    const b = new rg.BatchNorm2d(3);
    b.loadStateDict(host);
    expect([...b.stateDict().num_batches_tracked.toArray()]).toEqual([2]);
    expect([...b.stateDict().running_mean.toArray()]).toEqual([...a.stateDict().running_mean.toArray()]);
    expect(() => b.loadStateDict({ ...host, num_batches_tracked: Float32Array.of(2) })).toThrow(/expected Int32Array for an int32 tensor/);
  });
});
