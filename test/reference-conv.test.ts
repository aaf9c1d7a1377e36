// The reference convolution, pooling and batch-normalisation kernels (lib/backends/reference/conv.ts) against
// independent definitions: im2col with a plain product against a direct convolution, col2im as im2col's
// adjoint, pooling on a hand-worked 4×4 plane, batch normalisation's statistics and its backward against
// central differences, all in float64 on the reference64 backend.
import { describe, expect, it } from 'vitest';
import type { Buf, HostArray, KernelName } from '../lib/backend.js';
import { IM2COL_SIZES, POOL_SIZES } from '../lib/check/kernels.js';
import { randomArray, reference64Backend, relError, rng, TOL } from './helpers.js';

const b64 = reference64Backend;
type Arg = HostArray | number | boolean | null;
/** Runs reference64 kernel `name`; array arguments go in as copies, and every array comes back, in order. */
function run(name: KernelName, ...args: Arg[]): HostArray[] {
  const bufs = args.map((a) => (a !== null && typeof a === 'object' ? b64.fromHost(a) : a));
  (b64.k[name] as (...x: unknown[]) => void)(...bufs);
  return bufs.filter((b): b is Buf => b !== null && typeof b === 'object').map((b) => b64.read(b));
}
const rand = (n: number, seed: number, scale = 1, offset = 0) => Float64Array.from(randomArray(n, rng(seed), scale, offset));
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((s, v, i) => s + v * b[i], 0);
const outSize = (N: number, K: number, S: number, P: number, D = 1) => Math.floor((N + 2 * P - D * (K - 1) - 1) / S) + 1;

describe('im2col and col2im', () => {
  // [B, C, H, W, OC, KH, KW, SH, SW, PH, PW, DH, DW]
  const convs = [
    [2, 2, 5, 6, 3, 3, 2, 2, 1, 1, 1, 2, 1],
    [1, 3, 7, 4, 2, 3, 3, 1, 2, 2, 0, 1, 2],
    [3, 1, 4, 4, 1, 1, 1, 1, 1, 0, 0, 1, 1],
  ];
  it.each(convs)('im2col then a product is a direct convolution: B %i, C %i, %i×%i, OC %i, k %i×%i, s %i,%i, p %i,%i, d %i,%i', (B, C, H, W, OC, KH, KW, SH, SW, PH, PW, DH, DW) => {
    const OH = outSize(H, KH, SH, PH, DH), OW = outSize(W, KW, SW, PW, DW);
    const x = rand(B * C * H * W, 1), w = rand(OC * C * KH * KW, 2);
    const direct = new Float64Array(B * OC * OH * OW);
    for (let b = 0; b < B; b++)
      for (let o = 0; o < OC; o++)
        for (let oh = 0; oh < OH; oh++)
          for (let ow = 0; ow < OW; ow++) {
            let s = 0;
            for (let c = 0; c < C; c++)
              for (let i = 0; i < KH; i++)
                for (let j = 0; j < KW; j++) {
                  const h = oh * SH - PH + i * DH, ww = ow * SW - PW + j * DW;
                  if (h >= 0 && h < H && ww >= 0 && ww < W) s += w[((o * C + c) * KH + i) * KW + j] * x[((b * C + c) * H + h) * W + ww];
                }
            direct[((b * OC + o) * OH + oh) * OW + ow] = s;
          }
    const rows = C * KH * KW, cols = B * OH * OW;
    const [col] = run('im2col', new Float64Array(rows * cols).fill(NaN), x, B, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW);
    const viaCol = new Float64Array(B * OC * OH * OW);
    for (let o = 0; o < OC; o++)
      for (let k = 0; k < cols; k++) {
        const b = Math.floor(k / (OH * OW)), p = k % (OH * OW);
        let s = 0;
        for (let rr = 0; rr < rows; rr++) s += w[o * rows + rr] * col[rr * cols + k];
        viaCol[(b * OC + o) * OH * OW + p] = s;
      }
    expect(relError(viaCol, direct)).toBeLessThan(1e-14);
  });

  it.each(IM2COL_SIZES)('col2im is the adjoint of im2col: B %i, C %i, %i×%i, k %i×%i, s %i,%i, p %i,%i, d %i,%i', (B, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW) => {
    const n = C * KH * KW * B * outSize(H, KH, SH, PH, DH) * outSize(W, KW, SW, PW, DW);
    const x = rand(B * C * H * W, 3), y = rand(n, 4);
    const [col] = run('im2col', new Float64Array(n).fill(NaN), x, B, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW);
    const [dx] = run('col2im', new Float64Array(B * C * H * W).fill(NaN), y, B, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW);
    const lhs = dot(col, y), rhs = dot(x, dx);
    expect(Math.abs(lhs - rhs)).toBeLessThan(1e-12 * (Math.abs(lhs) + 1));
  });
});

describe('transpose01 and channel_sum', () => {
  it('swap the leading dimensions adding a bias, and sum per channel (accumulating or not)', () => {
    const x = Float64Array.from({ length: 2 * 3 * 2 }, (_, i) => i); // [A 2, Bd 3, R 2]
    expect([...run('transpose01', new Float64Array(12), x, Float64Array.of(10, 20), 2, 3, 2)[0]]).toEqual([10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31]);
    expect([...run('transpose01', new Float64Array(12), x, null, 2, 3, 2)[0]]).toEqual([0, 1, 6, 7, 2, 3, 8, 9, 4, 5, 10, 11]);
    // as [B 2, C 3, R 2]: channel c sums x[(b·3 + c)·2 + r]
    expect([...run('channel_sum', Float64Array.of(NaN, NaN, NaN), x, 2, 3, 2, false)[0]]).toEqual([14, 22, 30]);
    expect([...run('channel_sum', Float64Array.of(1, 2, 3), x, 2, 3, 2, true)[0]]).toEqual([15, 24, 33]);
  });
});

describe('pooling on a hand-worked 4×4 plane', () => {
  const x = Float64Array.of(
    1, 3, 3, 0,
    2, 9, 1, 4,
    7, 7, 5, 6,
    0, 7, 8, 8,
  );
  const int = (n: number) => new Int32Array(n).fill(-7);
  const nan = (n: number) => new Float64Array(n).fill(NaN);

  it('max pooling 2×2 stride 2: the first maximum of a tie wins, and a NaN wins', () => {
    const [out, argmax] = run('maxpool2d_forward', nan(4), int(4), x, 1, 1, 4, 4, 2, 2, 2, 2, 0, 0);
    expect([...out]).toEqual([9, 4, 7, 8]);
    expect([...argmax]).toEqual([5, 7, 8, 14]);
    const withNaN = Float64Array.from(x);
    withNaN[2] = NaN;
    const [out2, argmax2] = run('maxpool2d_forward', nan(4), int(4), withNaN, 1, 1, 4, 4, 2, 2, 2, 2, 0, 0);
    expect([...out2]).toEqual([9, NaN, 7, 8]);
    expect([...argmax2]).toEqual([5, 2, 8, 14]);
  });

  it('max pooling 3×3 stride 2 padding 1: overlapping windows share one maximum, and its gradient sums', () => {
    const [out, argmax] = run('maxpool2d_forward', nan(4), int(4), x, 1, 1, 4, 4, 3, 3, 2, 2, 1, 1);
    expect([...out]).toEqual([9, 9, 9, 9]);
    expect([...argmax]).toEqual([5, 5, 5, 5]);
    const [dinp] = run('maxpool2d_backward', nan(16), Float64Array.of(1, 2, 3, 4), argmax, 1, 1, 4, 4, 3, 3, 2, 2, 1, 1);
    expect([...dinp]).toEqual([0, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('a padded border never wins, even against −∞', () => {
    const neg = new Float64Array(16).fill(-Infinity);
    const [out, argmax] = run('maxpool2d_forward', nan(4), int(4), neg, 1, 1, 4, 4, 3, 3, 2, 2, 1, 1);
    expect([...out]).toEqual([-Infinity, -Infinity, -Infinity, -Infinity]);
    expect([...argmax]).toEqual([0, 1, 4, 5]); // each window's first element inside the plane
  });

  it('average pooling 3×3 stride 2 padding 1, counting the padding or not', () => {
    const sums = [15, 20, 32, 55]; // the windows' elements inside the plane: 4, 6, 6, 9
    const [incl] = run('avgpool2d_forward', nan(4), x, 1, 1, 4, 4, 3, 3, 2, 2, 1, 1, true);
    expect([...incl]).toEqual(sums.map((s) => s / 9));
    const [excl] = run('avgpool2d_forward', nan(4), x, 1, 1, 4, 4, 3, 3, 2, 2, 1, 1, false);
    expect([...excl]).toEqual([15 / 4, 20 / 6, 32 / 6, 55 / 9]);
    // dout = the divisors: each element receives 1 from every window that holds it (rows 0 | 1 | 1–3 by 0–1 | 1–3)
    const [dinp] = run('avgpool2d_backward', nan(16), Float64Array.of(4, 6, 6, 9), 1, 1, 4, 4, 3, 3, 2, 2, 1, 1, false);
    const per = [1, 2, 1, 1];
    expect([...dinp]).toEqual(per.flatMap((r) => per.map((c) => r * c)));
  });

  it.each(POOL_SIZES)('the pooling backwards are the adjoints of their forwards: B %i, C %i, %i×%i, k %i×%i, s %i,%i, p %i,%i', (B, C, H, W, KH, KW, SH, SW, PH, PW) => {
    const n = B * C * H * W, m = B * C * outSize(H, KH, SH, PH) * outSize(W, KW, SW, PW);
    const xs = rand(n, 5), y = rand(m, 6);
    for (const incl of [false, true]) {
      const [out] = run('avgpool2d_forward', nan(m), xs, B, C, H, W, KH, KW, SH, SW, PH, PW, incl);
      const [dx] = run('avgpool2d_backward', nan(n), y, B, C, H, W, KH, KW, SH, SW, PH, PW, incl);
      expect(Math.abs(dot(out, y) - dot(xs, dx))).toBeLessThan(1e-12 * (Math.abs(dot(out, y)) + 1));
    }
    // max pooling is linear in x for a fixed argmax: out = x[argmax]
    const [out, argmax] = run('maxpool2d_forward', nan(m), int(m), xs, B, C, H, W, KH, KW, SH, SW, PH, PW);
    const [dx] = run('maxpool2d_backward', nan(n), y, argmax, B, C, H, W, KH, KW, SH, SW, PH, PW);
    expect(Math.abs(dot(out, y) - dot(xs, dx))).toBeLessThan(1e-12 * (Math.abs(dot(out, y)) + 1));
    const plane = H * W;
    for (let k = 0; k < m; k++) expect(out[k]).toBe(xs[Math.floor(k / (m / (B * C))) * plane + argmax[k]]);
  });
});

describe('batch normalisation', () => {
  const eps = 1e-5, momentum = 0.1;

  /** Training forward of x [B, C, R]: out, saveMean, saveInvstd, runMean, runVar. */
  function forward(x: Float64Array, w: Float64Array | null, bias: Float64Array | null, B: number, C: number, R: number, training: boolean, runMean: Float64Array, runVar: Float64Array) {
    const nan = (k: number) => new Float64Array(k).fill(NaN);
    return run('batchnorm_forward', nan(B * C * R), nan(C), nan(C), runMean, runVar, x, w, bias, B, C, R, momentum, eps, training) as Float64Array[];
  }

  it.each([[4, 3, 10], [16, 2, 1], [1, 3, 1]])('training: per-channel mean 0 and variance 1, running statistics updated (B %i, C %i, R %i)', (B, C, R) => {
    const x = rand(B * C * R, 7, 2, 0.5), rm = rand(C, 8), rv = rand(C, 9, 0.5, 1);
    const [out, mean, invstd, runMean, runVar] = forward(x, Float64Array.from({ length: C }, () => 1), new Float64Array(C), B, C, R, true, rm, rv);
    const [outPlain] = forward(x, null, null, B, C, R, true, rm, rv);
    expect([...outPlain]).toEqual([...out]);
    const n = B * R;
    for (let c = 0; c < C; c++) {
      const vals = (a: Float64Array) => Array.from({ length: n }, (_, k) => a[(Math.floor(k / R) * C + c) * R + (k % R)]);
      const xs = vals(x), ys = vals(out);
      const m = xs.reduce((s, v) => s + v, 0) / n;
      const v = xs.reduce((s, u) => s + (u - m) ** 2, 0) / n;
      const outMean = ys.reduce((s, u) => s + u, 0) / n;
      const outVar = ys.reduce((s, u) => s + (u - outMean) ** 2, 0) / n;
      expect(Math.abs(outMean)).toBeLessThan(1e-12);
      expect(outVar).toBeCloseTo(n === 1 ? 0 : v / (v + eps), 12);
      if (n > 1) expect(Math.abs(outVar - 1)).toBeLessThan(1e-4);
      expect(mean[c]).toBeCloseTo(m, 14);
      expect(invstd[c]).toBeCloseTo(1 / Math.sqrt(v + eps), 10);
      expect(runMean[c]).toBeCloseTo((1 - momentum) * rm[c] + momentum * m, 14);
      const unbiased = n === 1 ? 0 : (v * n) / (n - 1);
      expect(runVar[c]).toBeCloseTo((1 - momentum) * rv[c] + momentum * unbiased, 14);
    }
  });

  it('evaluation: the running statistics normalise, are copied to the saved ones, and stay as they were', () => {
    const B = 3, C = 2, R = 5;
    const x = rand(B * C * R, 10, 2), rm = Float64Array.of(0.5, -1), rv = Float64Array.of(4, 0.25), w = Float64Array.of(2, 3), bias = Float64Array.of(-1, 1);
    const [out, mean, invstd, runMean, runVar] = forward(x, w, bias, B, C, R, false, rm, rv);
    expect([...runMean]).toEqual([...rm]);
    expect([...runVar]).toEqual([...rv]);
    expect([...mean]).toEqual([...rm]);
    expect([...invstd]).toEqual([...rv].map((v) => 1 / Math.sqrt(v + eps)));
    const want = Float64Array.from(x, (v, k) => {
      const c = Math.floor(k / R) % C;
      return ((v - rm[c]) / Math.sqrt(rv[c] + eps)) * w[c] + bias[c];
    });
    expect(relError(out, want)).toBeLessThan(1e-15);
  });

  // [B, C, R, training?, weight and bias?]
  it.each([[3, 2, 4, 1, 1], [5, 3, 1, 1, 0], [2, 2, 3, 0, 1], [1, 2, 6, 1, 1]])('backward against central differences of Σ out·g: B %i, C %i, R %i, training %i, affine %i', (B, C, R, trainingFlag, affine) => {
    const training = trainingFlag === 1;
    const n = B * C * R;
    const x = rand(n, 11, 2, 0.3), g = rand(n, 12), rm = rand(C, 13), rv = rand(C, 14, 0.5, 1);
    const w = affine ? rand(C, 15, 1, 1) : null, bias = affine ? rand(C, 16) : null;
    const loss = (xx: Float64Array, ww: Float64Array | null, bb: Float64Array | null) => dot(forward(xx, ww, bb, B, C, R, training, rm, rv)[0], g);
    const [, mean, invstd] = forward(x, w, bias, B, C, R, training, rm, rv);
    const start = rand(C, 17);
    const [dinp, dweight, dbias] = run('batchnorm_backward', new Float64Array(n).fill(NaN), start, start, g, x, w, mean, invstd, B, C, R, training, true);
    const h = 1e-6;
    const numeric = (a: Float64Array, f: () => number) =>
      Float64Array.from(a, (v, i) => {
        a[i] = v + h;
        const up = f();
        a[i] = v - h;
        const down = f();
        a[i] = v;
        return (up - down) / (2 * h);
      });
    expect(relError(dinp, numeric(x, () => loss(x, w, bias)))).toBeLessThan(TOL.gradcheck);
    // without weight and bias the parameter gradients are those of weight 1, bias 0
    const w1 = w ?? new Float64Array(C).fill(1), b0 = bias ?? new Float64Array(C);
    const dwNum = numeric(w1, () => loss(x, w1, b0)), dbNum = numeric(b0, () => loss(x, w1, b0));
    expect(relError(Float64Array.from(dweight, (v, c) => v - start[c]), dwNum)).toBeLessThan(TOL.gradcheck);
    expect(relError(Float64Array.from(dbias, (v, c) => v - start[c]), dbNum)).toBeLessThan(TOL.gradcheck);
    // overwriting, and null outputs skipped
    const [dw2, db2] = run('batchnorm_backward', null, new Float64Array(C).fill(NaN), new Float64Array(C).fill(NaN), g, x, w, mean, invstd, B, C, R, training, false);
    expect(relError(dw2, dwNum)).toBeLessThan(TOL.gradcheck);
    expect(relError(db2, dbNum)).toBeLessThan(TOL.gradcheck);
    const [dinpOnly] = run('batchnorm_backward', new Float64Array(n).fill(NaN), null, null, g, x, w, mean, invstd, B, C, R, training, false);
    expect([...dinpOnly]).toEqual([...dinp]);
  });
});
