// The layers ConvTranspose2d, Conv1d, Upsample, GroupNorm, Identity and Dropout2d (and their rg.F forms where a
// layer test needs them): output shapes and state-dict keys, forwards against plain loops written here (awkward sizes
// that the PyTorch golden cases of test/autograd-golden.test.ts do not reach), Dropout2d in training and eval mode,
// the bad-input messages, and a model built of them trained with loss.backward() on the CPU backend and the reference
// agreeing at every step. Gradients are checked against finite differences in test/autograd-gradcheck.test.ts and
// against PyTorch in test/autograd-golden.test.ts.
import { afterEach, describe, expect, it } from 'vitest';
import { compare, describeComparison, randomArray, requireCpu, rg, rng, TOL } from './helpers.js';

const cpuAvailable = requireCpu();
const backendNames: ('reference' | 'cpu')[] = cpuAvailable ? ['reference', 'cpu'] : ['reference'];
afterEach(() => rg.setBackend(cpuAvailable ? 'cpu' : 'reference'));

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
function input(shape: number[], seed: number): rg.Tensor {
  return rg.tensor(randomArray(size(shape), rng(seed)), shape);
}
function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number): void {
  const c = compare(got, want, tol);
  if (!c.ok) throw new Error(describeComparison(c, got, want));
}
const keysAndShapes = (m: rg.Module) => Object.fromEntries(Object.entries(m.stateDict()).map(([k, t]) => [k, t.shape]));

// ---- plain loops: what the layers must compute ----

type P2 = [number, number];
/** The transposed convolution as a scatter: every input pixel adds w[ic, oc] · x at the positions it reaches. */
function convTransposeLoop(x: ArrayLike<number>, [B, IC, H, W]: number[], w: ArrayLike<number>, bias: ArrayLike<number> | null, OC: number,
  [KH, KW]: P2, [SH, SW]: P2, [PH, PW]: P2, [OPH, OPW]: P2, [DH, DW]: P2) {
  const OH = (H - 1) * SH - 2 * PH + DH * (KH - 1) + OPH + 1, OW = (W - 1) * SW - 2 * PW + DW * (KW - 1) + OPW + 1;
  const out = new Float64Array(B * OC * OH * OW);
  for (let b = 0; b < B; b++)
    for (let o = 0; o < OC; o++) for (let e = 0; e < OH * OW; e++) out[(b * OC + o) * OH * OW + e] = bias ? bias[o] : 0;
  for (let b = 0; b < B; b++)
    for (let c = 0; c < IC; c++)
      for (let h = 0; h < H; h++)
        for (let v = 0; v < W; v++)
          for (let o = 0; o < OC; o++)
            for (let i = 0; i < KH; i++)
              for (let j = 0; j < KW; j++) {
                const oh = h * SH - PH + i * DH, ow = v * SW - PW + j * DW;
                if (oh < 0 || oh >= OH || ow < 0 || ow >= OW) continue;
                out[((b * OC + o) * OH + oh) * OW + ow] += x[((b * IC + c) * H + h) * W + v] * w[((c * OC + o) * KH + i) * KW + j];
              }
  return { out, shape: [B, OC, OH, OW] };
}

function conv1dLoop(x: ArrayLike<number>, [B, C, L]: number[], w: ArrayLike<number>, bias: ArrayLike<number> | null, OC: number, K: number, S: number, P: number, D: number) {
  const OL = Math.floor((L + 2 * P - D * (K - 1) - 1) / S) + 1;
  const out = new Float64Array(B * OC * OL);
  for (let b = 0; b < B; b++)
    for (let o = 0; o < OC; o++)
      for (let t = 0; t < OL; t++) {
        let s = bias ? bias[o] : 0;
        for (let c = 0; c < C; c++)
          for (let k = 0; k < K; k++) {
            const l = t * S - P + k * D;
            if (l >= 0 && l < L) s += x[(b * C + c) * L + l] * w[(o * C + c) * K + k];
          }
        out[(b * OC + o) * OL + t] = s;
      }
  return { out, shape: [B, OC, OL] };
}

/** GroupNorm by its definition: each (sample, group)'s mean and biased variance over its channels and positions. */
function groupNormLoop(x: ArrayLike<number>, [N, C, R]: number[], G: number, w: ArrayLike<number> | null, b: ArrayLike<number> | null, eps: number) {
  const out = new Float64Array(N * C * R), per = (C / G) * R;
  for (let n = 0; n < N; n++)
    for (let g = 0; g < G; g++) {
      const at = (n * C + g * (C / G)) * R;
      let m = 0;
      for (let e = 0; e < per; e++) m += x[at + e];
      m /= per;
      let v = 0;
      for (let e = 0; e < per; e++) v += (x[at + e] - m) ** 2;
      v /= per;
      for (let e = 0; e < per; e++) {
        const c = g * (C / G) + Math.floor(e / R);
        out[at + e] = ((x[at + e] - m) / Math.sqrt(v + eps)) * (w ? w[c] : 1) + (b ? b[c] : 0);
      }
    }
  return out;
}

// ---- shapes, state dicts, forwards ----

describe.each(backendNames)('layers on %s', (name) => {
  it('ConvTranspose2d: PyTorch layout and keys, the output size formula, batched and unbatched, against a loop', () => {
    rg.setBackend(name);
    rg.manualSeed(1);
    const m = new rg.ConvTranspose2d(16, 8, 4, { stride: 2, padding: 1 });
    expect(m.label).toBe('ConvTranspose2d(16→8, k=4, s=2, p=1)');
    expect(keysAndShapes(m)).toEqual({ weight: [16, 8, 4, 4], bias: [8] });
    expect(m.forward(input([2, 16, 5, 7], 1)).shape).toEqual([2, 8, 10, 14]);
    expect(m.forward(input([16, 5, 7], 2)).shape).toEqual([8, 10, 14]);
    expect(keysAndShapes(new rg.ConvTranspose2d(3, 2, [1, 2], { bias: false }))).toEqual({ weight: [3, 2, 1, 2] });

    // every option away from its default, a batch and sizes that are not tile multiples
    const c = new rg.ConvTranspose2d(5, 7, [3, 4], { stride: [3, 2], padding: [2, 1], outputPadding: [1, 1], dilation: [2, 1] });
    expect(c.label).toBe('ConvTranspose2d(5→7, k=3×4, s=3×2, p=2×1, op=1, d=2×1)');
    const shape = [3, 5, 9, 6], x = input(shape, 3);
    const want = convTransposeLoop(x.toArray(), shape, c.weight.value.toArray(), c.bias!.value.toArray(), 7, [3, 4], [3, 2], [2, 1], [1, 1], [2, 1]);
    const y = c.forward(x);
    expect(y.shape).toEqual(want.shape);
    expectClose(y.toArray(), want.out, TOL.reduction);
  });

  it('ConvTranspose2d with outputPadding ≥ stride (allowed below the dilation) matches the loop', () => {
    rg.setBackend(name);
    const c = new rg.ConvTranspose2d(2, 3, [2, 3], { outputPadding: [2, 1], dilation: [3, 2], bias: false });
    const shape = [2, 2, 4, 3], x = input(shape, 4);
    const want = convTransposeLoop(x.toArray(), shape, c.weight.value.toArray(), null, 3, [2, 3], [1, 1], [0, 0], [2, 1], [3, 2]);
    const y = c.forward(x);
    expect(y.shape).toEqual(want.shape);
    expectClose(y.toArray(), want.out, TOL.reduction);
  });

  it('Conv1d: PyTorch layout and keys, batched and unbatched, against a loop', () => {
    rg.setBackend(name);
    rg.manualSeed(2);
    const m = new rg.Conv1d(3, 5, 4, { stride: 2, padding: 1 });
    expect(m.label).toBe('Conv1d(3→5, k=4, s=2, p=1)');
    expect(keysAndShapes(m)).toEqual({ weight: [5, 3, 4], bias: [5] });
    expect(m.forward(input([2, 3, 9], 1)).shape).toEqual([2, 5, 4]);
    expect(m.forward(input([3, 9], 2)).shape).toEqual([5, 4]);
    const c = new rg.Conv1d(4, 6, [3], { stride: [3], padding: 2, dilation: 2, bias: false });
    expect(keysAndShapes(c)).toEqual({ weight: [6, 4, 3] });
    const shape = [5, 4, 17], x = input(shape, 3);
    const want = conv1dLoop(x.toArray(), shape, c.weight.value.toArray(), null, 6, 3, 3, 2, 2);
    const y = c.forward(x);
    expect(y.shape).toEqual(want.shape);
    expectClose(y.toArray(), want.out, TOL.reduction);
  });

  it('Upsample: sizes from size or scaleFactor, 1-d and 2-d, no state; nearest copies the source pixels', () => {
    rg.setBackend(name);
    const up = new rg.Upsample({ scaleFactor: 2 });
    expect(up.label).toBe("Upsample(scaleFactor=2, mode='nearest')");
    expect(up.stateDict()).toEqual({});
    const x = input([1, 2, 3, 5], 1), xs = x.toArray();
    const y = up.forward(x), ys = y.toArray();
    expect(y.shape).toEqual([1, 2, 6, 10]);
    for (let p = 0; p < 2; p++)
      for (let i = 0; i < 6; i++) for (let j = 0; j < 10; j++) expect(ys[(p * 6 + i) * 10 + j]).toBe(xs[(p * 3 + (i >> 1)) * 5 + (j >> 1)]);
    expect(new rg.Upsample({ scaleFactor: 3 }).forward(input([2, 3, 5], 2)).shape).toEqual([2, 3, 15]);
    const bi = new rg.Upsample({ size: [4, 9], mode: 'bilinear', alignCorners: true });
    expect(bi.label).toBe("Upsample(size=[4, 9], mode='bilinear', alignCorners=true)");
    expect(bi.forward(input([2, 1, 3, 3], 3)).shape).toEqual([2, 1, 4, 9]);
    expect(new rg.Upsample({ scaleFactor: [1.5, 0.5], mode: 'bilinear' }).forward(input([1, 1, 5, 5], 4)).shape).toEqual([1, 1, 7, 2]);
  });

  it('bilinear with alignCorners keeps the corners and is exact on a linear ramp', () => {
    rg.setBackend(name);
    // f(h, w) = 2h + 3w sampled on 3×4 and resampled to 5×7: the corners align, so the output is f at the scaled positions
    const x = rg.tensor(Float32Array.from({ length: 12 }, (_, e) => 2 * Math.floor(e / 4) + 3 * (e % 4)), [1, 1, 3, 4]);
    const y = rg.F.interpolate(x, { size: [5, 7], mode: 'bilinear', alignCorners: true }).toArray();
    const want = Float32Array.from({ length: 35 }, (_, e) => 2 * (Math.floor(e / 7) * 2) / 4 + 3 * ((e % 7) * 3) / 6);
    expectClose(y, want, 1e-6);
  });

  it('nearest follows torch 1.13 in both its forms: 1-d ⌊dst/factor⌋ always, 2-d a copy at out = in and dst/2 at out = 2·in', () => {
    rg.setBackend(name);
    const ramp = (n: number, shape: number[]) => rg.tensor(Float32Array.from({ length: n }, (_, i) => i), shape);
    // values from torch 1.13: F.interpolate(torch.arange(5.).reshape(1, 1, 5), scale_factor=2.1) and the 2-d equivalents
    expect([...rg.F.interpolate(ramp(5, [1, 1, 5]), { scaleFactor: 2.1 }).toArray()]).toEqual([0, 0, 0, 1, 1, 2, 2, 3, 3, 4]);
    expect([...rg.F.interpolate(ramp(5, [1, 1, 1, 5]), { scaleFactor: [1, 2.1] }).toArray()]).toEqual([0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
    expect([...rg.F.interpolate(ramp(10, [1, 1, 10]), { scaleFactor: 1.05 }).toArray()]).toEqual([0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect([...rg.F.interpolate(ramp(10, [1, 1, 1, 10]), { scaleFactor: 1.05 }).toArray()]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('GroupNorm: weight ones and bias zeros of [C], no buffers; the definition by a loop, with and without affine', () => {
    rg.setBackend(name);
    const g = new rg.GroupNorm(3, 6);
    expect(g.label).toBe('GroupNorm(3, 6)');
    expect(keysAndShapes(g)).toEqual({ weight: [6], bias: [6] });
    expect([...g.weight!.value.toArray()]).toEqual([1, 1, 1, 1, 1, 1]);
    expect([...g.bias!.value.toArray()]).toEqual([0, 0, 0, 0, 0, 0]);
    expect(new rg.GroupNorm(2, 4, { affine: false }).stateDict()).toEqual({});
    g.weight!.value.assign(randomArray(6, rng(5), 1, 1));
    g.bias!.value.assign(randomArray(6, rng(6)));
    const shape = [3, 6, 5, 3], x = input(shape, 7);
    const want = groupNormLoop(x.toArray(), [3, 6, 15], 3, g.weight!.value.toArray(), g.bias!.value.toArray(), 1e-5);
    expectClose(g.forward(x).toArray(), want, TOL.reduction);
    // one group per channel of an unbatched-looking [N, C] input: R = 1, each channel normalised alone (to zeros)
    const n = new rg.GroupNorm(2, 2, { affine: false, eps: 1e-3 });
    expectClose(n.forward(input([4, 2], 8)).toArray(), new Float32Array(8), 1e-6);
    expectClose(n.forward(input([2, 2, 7], 9)).toArray(), groupNormLoop(input([2, 2, 7], 9).toArray(), [2, 2, 7], 2, null, null, 1e-3), TOL.reduction);
  });

  it('Identity returns its input, takes any constructor arguments, holds nothing, and passes the gradient back', () => {
    rg.setBackend(name);
    const id = new rg.Identity(54, { unused: true }, 'x');
    const x = input([2, 3], 1);
    expect(id.forward(x)).toBe(x);
    expect(id.stateDict()).toEqual({});
    // a Sequential of built-in layers holding it keeps its hand-written backward, and agrees with the graph
    rg.manualSeed(3);
    const seq = new rg.Sequential([new rg.Linear(3, 4), new rg.Identity(), new rg.ReLU(), new rg.Linear(4, 2)]);
    const dy = input([2, 2], 2);
    seq.forward(x);
    const dx = seq.backward(dy).toArray();
    const xg = x.detach().requiresGrad_();
    seq.forward(xg).mul(dy).sum().backward();
    expectClose(xg.grad!.toArray(), dx, 1e-6);
  });
});

// ---- Dropout2d ----

describe.each(backendNames)('Dropout2d on %s', (name) => {
  it('in training zeroes whole channels with probability p and scales the kept ones by 1/(1 − p); the gradient is the mask', () => {
    rg.setBackend(name);
    rg.manualSeed(11);
    const p = 0.3, d = new rg.Dropout2d(p);
    expect(d.label).toBe('Dropout2d(p=0.3)');
    const [N, C, R] = [8, 64, 6];
    const x = rg.tensor(randomArray(N * C * R, rng(1), 1, 2), [N, C, 2, 3], { requiresGrad: true });
    const y = d.forward(x), ys = y.toArray(), xs = x.toArray();
    let dropped = 0;
    for (let plane = 0; plane < N * C; plane++) {
      const ratios = Array.from({ length: R }, (_, r) => ys[plane * R + r] / xs[plane * R + r]);
      const kept = ratios[0] !== 0;
      if (!kept) dropped++;
      for (const v of ratios) expect(v).toBeCloseTo(kept ? 1 / (1 - p) : 0, 5); // one decision per channel
    }
    // 512 channels: the fraction dropped is p within 4 standard deviations (0.08)
    expect(Math.abs(dropped / (N * C) - p)).toBeLessThan(0.08);
    const w = input([N, C, 2, 3], 2);
    y.mul(w).sum().backward();
    const g = x.grad!.toArray(), ws = w.toArray();
    for (let e = 0; e < N * C * R; e++) expect(g[e]).toBeCloseTo((ws[e] * ys[e]) / xs[e], 5);
  });

  it('unbatched [C, H, W] drops whole channels too; eval mode and p = 0 return the input; p = 1 zeroes everything', () => {
    rg.setBackend(name);
    rg.manualSeed(12);
    const x = rg.ones([40, 2, 2]);
    const ys = new rg.Dropout2d(0.5).forward(x).toArray();
    const planes = Array.from({ length: 40 }, (_, c) => ys.slice(4 * c, 4 * c + 4));
    for (const pl of planes) expect(new Set(pl).size).toBe(1);
    expect(new Set(planes.map((pl) => pl[0]))).toEqual(new Set([0, 2]));
    const d = new rg.Dropout2d(0.5).eval();
    expect(d.forward(x)).toBe(x);
    expect(new rg.Dropout2d(0).forward(x)).toBe(x);
    expect([...new rg.Dropout2d(1).forward(x).toArray()].every((v) => v === 0)).toBe(true);
  });
});

it.runIf(cpuAvailable)('Dropout2d draws the same channels on the CPU backend as on the reference from the same seed', () => {
  const masks = (['reference', 'cpu'] as const).map((b) => {
    rg.setBackend(b);
    rg.manualSeed(21);
    return new rg.Dropout2d(0.4).forward(rg.ones([3, 50, 1, 2])).toArray();
  });
  expect([...masks[1]]).toEqual([...masks[0]]);
});

// ---- bad input ----

describe('bad input: each message names the layer or function, what it expected and what came', () => {
  const x4 = () => rg.zeros([2, 3, 5, 5]);
  it('ConvTranspose2d', () => {
    const m = new rg.ConvTranspose2d(16, 8, 4, { stride: 2, padding: 1 });
    expect(() => m.forward(x4())).toThrow(new RangeError('ConvTranspose2d(16→8, k=4, s=2, p=1): input must be [B, 16, H, W] or [16, H, W], got [2, 3, 5, 5]'));
    expect(() => m.forward(rg.zeros([16, 5]))).toThrow(/input must be \[B, 16, H, W\] or \[16, H, W\], got \[16, 5\]/);
    expect(() => m.forward(rg.tensor(new Int32Array(16), [1, 16, 1, 1]))).toThrow(TypeError);
    expect(() => m.forward([1, 2] as unknown as rg.Tensor)).toThrow(TypeError);
    expect(() => new rg.ConvTranspose2d(1, 1, 1, { padding: 2 }).forward(rg.zeros([1, 1, 2, 2])))
      .toThrow(new RangeError('ConvTranspose2d(1→1, k=1, p=2): input [1, 1, 2, 2] gives an output of -2×-2: the padding takes away more than the kernel adds'));
    expect(() => new rg.ConvTranspose2d(4, 4, 3, { stride: 2, outputPadding: 2 }))
      .toThrow(new RangeError('ConvTranspose2d: outputPadding must be smaller than the stride or the dilation, got outputPadding 2 with stride 2 and dilation 1'));
    expect(() => new rg.ConvTranspose2d(4, 4, 3, { stride: [2, 1], outputPadding: [1, 1] })).toThrow(/outputPadding 1 with stride 2×1 and dilation 1/);
    expect(() => new rg.ConvTranspose2d(4, 4, 3, { outputpadding: 1 } as never)).toThrow(new TypeError(
      "ConvTranspose2d: unknown option 'outputpadding' (did you mean 'outputPadding'?); valid options: stride, padding, outputPadding, dilation, bias"));
    expect(() => new rg.ConvTranspose2d(4, 0, 3)).toThrow(new RangeError('ConvTranspose2d: invalid outChannels 0; expected an integer >= 1'));
    expect(() => new rg.ConvTranspose2d(4, 4, [3, 0])).toThrow(/ConvTranspose2d: invalid kernelSize\[1\] 0/);
    expect(() => new rg.ConvTranspose2d(4, 4, 3, { bias: 1 } as never)).toThrow(new TypeError('ConvTranspose2d: option bias must be a boolean, got number'));
  });
  it('Conv1d', () => {
    const m = new rg.Conv1d(3, 4, 5, { dilation: 2 });
    expect(() => m.forward(rg.zeros([2, 4, 9]))).toThrow(new RangeError('Conv1d(3→4, k=5, d=2): input must be [B, 3, L] or [3, L], got [2, 4, 9]'));
    expect(() => m.forward(rg.zeros([2, 3, 8])))
      .toThrow(new RangeError('Conv1d(3→4, k=5, d=2): input [2, 3, 8] is shorter than the kernel: the padded input has length 8, the dilated kernel 9'));
    expect(() => new rg.Conv1d(3, 4, [2, 2] as never)).toThrow(new TypeError('Conv1d: kernelSize must be a number or [n], got an array of length 2'));
    expect(() => new rg.Conv1d(3, 4, 2, { stride: 0 })).toThrow(new RangeError('Conv1d: invalid stride 0; expected an integer >= 1'));
  });
  it('Upsample', () => {
    expect(() => new rg.Upsample({ size: 4, scaleFactor: 2 })).toThrow(new RangeError('Upsample: give either size or scaleFactor, not both'));
    expect(() => new rg.Upsample()).toThrow(new TypeError('Upsample: give the output size (size) or a scale factor (scaleFactor)'));
    expect(() => new rg.Upsample({ scaleFactor: 2, mode: 'bicubic' as never })).toThrow(new RangeError("Upsample: mode must be 'nearest' or 'bilinear', got 'bicubic'"));
    expect(() => new rg.Upsample({ scaleFactor: 2, alignCorners: false })).toThrow(new RangeError("Upsample: alignCorners can only be set with mode 'bilinear', got mode 'nearest'"));
    expect(() => new rg.Upsample({ scaleFactor: -1 })).toThrow(new RangeError('Upsample: invalid scaleFactor -1; expected > 0'));
    expect(() => new rg.Upsample({ size: [4, 2.5] })).toThrow(new RangeError('Upsample: invalid size[1] 2.5; expected an integer >= 1'));
    expect(() => new rg.Upsample({ size: '4' as never })).toThrow(new TypeError("Upsample: size must be a number or a non-empty array of numbers, got the string '4'"));
    const bi = new rg.Upsample({ scaleFactor: 2, mode: 'bilinear' });
    expect(() => bi.forward(rg.zeros([2, 3, 5])))
      .toThrow(new RangeError("Upsample(scaleFactor=2, mode='bilinear', alignCorners=false): mode 'bilinear' needs input [N, C, H, W], got [2, 3, 5]"));
    expect(() => new rg.Upsample({ scaleFactor: 2 }).forward(rg.zeros([2, 3]))).toThrow(/input must be \[N, C, L\] or \[N, C, H, W\], got \[2, 3\]/);
    expect(() => new rg.Upsample({ scaleFactor: 0.1 }).forward(x4()))
      .toThrow(new RangeError("Upsample(scaleFactor=0.1, mode='nearest'): scaleFactor 0.1 turns the input's spatial size [5, 5] into [0, 0]; every size must be at least 1"));
    expect(() => new rg.Upsample({ size: [4, 4, 4] }).forward(x4())).toThrow(/size has 3 values for an input of 2 spatial dimensions \[5, 5\]/);
    expect(() => new rg.Upsample({ size: 4 }).forward(rg.zeros([2, 3, 0, 5]))).toThrow(/input must have non-empty spatial dimensions, got \[2, 3, 0, 5\]/);
  });
  it('GroupNorm, Identity, Dropout2d', () => {
    expect(() => new rg.GroupNorm(4, 6)).toThrow(new RangeError('GroupNorm: numChannels must be divisible by numGroups, got 6 channels in 4 groups'));
    expect(() => new rg.GroupNorm(2, 6, { affine: 'yes' } as never)).toThrow(new TypeError('GroupNorm: option affine must be a boolean, got string'));
    expect(() => new rg.GroupNorm(2, 6, { eps: 0 })).toThrow(/GroupNorm: invalid eps 0; expected > 0/);
    expect(() => new rg.GroupNorm(2, 6).forward(rg.zeros([2, 4, 3]))).toThrow(new RangeError('GroupNorm(2, 6): input must be [N, 6, …], got [2, 4, 3]'));
    expect(() => new rg.GroupNorm(2, 6).forward(rg.zeros([6]))).toThrow(/input must be \[N, 6, …\], got \[6\]/);
    expect(() => new rg.Identity().forward(3 as never)).toThrow(TypeError);
    expect(() => new rg.Dropout2d(1.5)).toThrow(new RangeError('Dropout2d: invalid p 1.5; expected >= 0 <= 1'));
    expect(() => new rg.Dropout2d().forward(rg.zeros([2, 3]))).toThrow(new RangeError('Dropout2d(p=0.5): input must be [N, C, H, W] or [C, H, W], got [2, 3]'));
  });
  it('the rg.F forms', () => {
    const w = rg.zeros([3, 2, 2, 2]);
    expect(() => rg.F.convTranspose2d(x4(), rg.zeros([3, 2, 2]))).toThrow(new RangeError('F.convTranspose2d: weight must be [inChannels, outChannels, KH, KW], got [3, 2, 2]'));
    expect(() => rg.F.convTranspose2d(rg.zeros([2, 4, 5, 5]), w))
      .toThrow(new RangeError('F.convTranspose2d: input must be [N, 3, H, W] or [3, H, W] for a weight of 3 input channels, got [2, 4, 5, 5]'));
    expect(() => rg.F.convTranspose2d(x4(), w, rg.zeros([3]))).toThrow(new RangeError('F.convTranspose2d: bias must be [2], got [3]'));
    expect(() => rg.F.convTranspose2d(x4(), w, null, { outputPadding: 1 })).toThrow(/F.convTranspose2d: outputPadding must be smaller than the stride or the dilation/);
    expect(() => rg.F.convTranspose2d(x4(), w, null, { padding: 9 })).toThrow(/F.convTranspose2d: an input of 5×5 gives an output of -12×-12 \(kernel 2×2, stride 1×1, padding 9×9, dilation 1×1, outputPadding 0×0\); it must be at least 1×1/);
    expect(() => rg.F.conv1d(rg.zeros([2, 3, 5]), rg.zeros([4, 3, 2, 1]))).toThrow(new RangeError('F.conv1d: weight must be [OC, C, K], got [4, 3, 2, 1]'));
    expect(() => rg.F.conv1d(rg.zeros([2, 3, 1]), rg.zeros([4, 3, 2]))).toThrow(/F.conv1d: a window of 2 .* does not fit an input of 1/);
    expect(() => rg.F.interpolate(rg.zeros([2, 3, 5]), { size: 4, mode: 'bilinear' }))
      .toThrow(new RangeError("F.interpolate: mode 'bilinear' needs input [N, C, H, W], got [2, 3, 5]"));
    expect(() => rg.F.interpolate(x4(), { scalefactor: 2 } as never)).toThrow(/F.interpolate: unknown option 'scalefactor' \(did you mean 'scaleFactor'\?\)/);
    expect(() => rg.F.groupNorm(rg.zeros([2, 5, 3]), 2)).toThrow(new RangeError('F.groupNorm: 5 channels cannot be split into 2 groups of equal size'));
    expect(() => rg.F.groupNorm(rg.zeros([2, 4, 3]), 2, rg.ones([5]))).toThrow(new RangeError('F.groupNorm: weight must be [4], got [5]'));
    expect(() => rg.F.dropout2d(x4(), 2)).toThrow(new RangeError('F.dropout2d: p must be in [0, 1], got 2'));
    expect(() => rg.F.dropout2d(x4(), '0.5' as never)).toThrow(new TypeError("F.dropout2d: p must be a number, got the string '0.5'"));
  });
});

// ---- the CPU backend against the reference where the native kernels work in pieces ----

it.runIf(cpuAvailable)('ConvTranspose2d: forward and every gradient on the CPU backend as on the reference, on a batch the CPU convolution works through in image groups', () => {
  // the CPU's conv2d kernels take images in groups whose columns fit a cache: here OC·KH·KW · H·W = 16·8·8 · 16·16 floats
  // per image, one image per group, 17 groups in 16 slots of the weight gradient (one slot sums two)
  const run = (backend: 'reference' | 'cpu') => {
    rg.setBackend(backend);
    rg.manualSeed(61);
    const m = new rg.ConvTranspose2d(2, 16, 8, { stride: 2, padding: 3 });
    const x = rg.tensor(randomArray(17 * 2 * 16 * 16, rng(62)), [17, 2, 16, 16], { requiresGrad: true });
    const y = m.forward(x);
    y.mul(rg.tensor(randomArray(y.size, rng(63)), y.shape)).sum().backward();
    return [y, x.grad!, m.weight.grad, m.bias!.grad].map((t) => t.toArray());
  };
  const ref = run('reference'), cpu = run('cpu');
  ['output', 'dx', 'dweight', 'dbias'].forEach((what, i) => {
    const c = compare(cpu[i], ref[i], TOL.reduction);
    if (!c.ok) throw new Error(`${what}: ${describeComparison(c, cpu[i], ref[i])}`);
  });
});

// ---- a model of these layers trained on the graph: the CPU backend against the reference, step by step ----

class Net extends rg.Module {
  conv = new rg.Conv2d(2, 4, 3, { padding: 1 });
  norm = new rg.GroupNorm(2, 4);
  drop = new rg.Dropout2d(0.25);
  up = new rg.ConvTranspose2d(4, 3, 4, { stride: 2, padding: 1 });
  resize = new rg.Upsample({ size: [5, 7], mode: 'bilinear' });
  skip = new rg.Identity();
  seq = new rg.Conv1d(3, 2, 3, { padding: 1 });
  near = new rg.Upsample({ scaleFactor: 2 });
  forward(x: rg.Tensor): rg.Tensor {
    const h = this.drop.forward(this.norm.forward(this.conv.forward(x)).relu()); // [B, 4, 4, 6]
    const img = this.skip.forward(this.resize.forward(this.up.forward(h))); // [B, 3, 8, 12] → [B, 3, 5, 7]
    return this.near.forward(this.seq.forward(img.mean(2))).flatten(1); // [B, 3, 7] → [B, 2, 7] → [B, 2, 14]
  }
}

function train(backend: 'reference' | 'cpu', steps: number) {
  rg.setBackend(backend);
  rg.manualSeed(31);
  const model = new Net();
  const opt = new rg.Adam(model.parameters(), { lr: 1e-2 });
  const x = input([3, 2, 4, 6], 41), target = input([3, 28], 42);
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    opt.zeroGrad();
    const loss = rg.F.mseLoss(model.forward(x), target);
    loss.backward();
    opt.step();
    losses.push(loss.item());
  }
  return { losses, params: Object.fromEntries(Object.entries(model.stateDict()).map(([k, t]) => [k, t.toArray()])) };
}

it('a model of ConvTranspose2d, Conv1d, Upsample, GroupNorm, Identity and Dropout2d learns on the graph', () => {
  const ref = train('reference', 8);
  expect(ref.losses[7]).toBeLessThan(0.9 * ref.losses[0]);
  expect(Object.keys(ref.params)).toEqual([
    'conv.weight', 'conv.bias', 'norm.weight', 'norm.bias', 'up.weight', 'up.bias', 'seq.weight', 'seq.bias',
  ]);
});

it.runIf(cpuAvailable)('that model trains alike on the CPU backend and the reference: the loss at every step, the weights at the end', () => {
  const ref = train('reference', 6), cpu = train('cpu', 6);
  expectClose(cpu.losses, ref.losses, TOL.trajectory);
  for (const [k, v] of Object.entries(ref.params)) {
    const c = compare(cpu.params[k], v, TOL.trajectory);
    if (!c.ok) throw new Error(`${k}: ${describeComparison(c, cpu.params[k], v)}`);
  }
});

it('inside a Sequential, with built-in layers around them, they train through fit', async () => {
  rg.setBackend(cpuAvailable ? 'cpu' : 'reference');
  rg.manualSeed(51);
  const model = new rg.Sequential([
    new rg.Conv2d(1, 4, 3, { padding: 1 }), new rg.GroupNorm(2, 4), new rg.ReLU(), new rg.Dropout2d(0.1),
    new rg.ConvTranspose2d(4, 2, 2, { stride: 2 }), new rg.Upsample({ scaleFactor: 0.5, mode: 'bilinear' }), new rg.Identity(),
    new rg.Flatten(), new rg.Linear(2 * 4 * 4, 3),
  ]);
  model.compile({ optimizer: new rg.Adam(model.parameters(), { lr: 1e-2 }), loss: new rg.CrossEntropyLoss() });
  const x = input([16, 1, 4, 4], 52), y = rg.tensor(Int32Array.from({ length: 16 }, (_, i) => i % 3), [16]);
  const { history } = await model.fit(x, y, { epochs: 4, batchSize: 8, verbose: 0 });
  expect(history.loss[3]).toBeLessThan(history.loss[0]);
});
