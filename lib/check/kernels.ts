// The kernel conformance check: every kernel of the contract (lib/backend.ts) on a backend against the
// reference, on fresh random data with awkward sizes (1, 3, 17, 257, non-square, odd GEMM shapes). It ships in
// dist/ so a GPU machine can run it without the test tools (`retrograd check cuda`); test/kernels.test.ts runs
// the same table under vitest.
//
// Outputs that a kernel overwrites start poisoned with NaN (int32 outputs with −7; a kernel that skips an element
// fails); outputs that accumulate start from the same random values on both backends. Each float output is
// compared normwise and per element (compare) against the case's tolerance (TOL, lib/check/numerics.ts), each
// int32 output exactly.
import { backendByName, productPrecision, KERNEL_NAMES, type Backend, type Buf, type HostArray, type KernelName } from '../backend.js';
import '../backends/index.js'; // registers the backends, so a name resolves without going through lib/index.ts
import { mulberry32 } from '../data/split.js';
import { EW, REDUCE, RNN_GATES, RNN_WS } from '../backend.js';
import { referenceKernels } from '../backends/reference/index.js';
import { fromBfloat16, toBfloat16 } from '../io/safetensors.js';
import { compare, ELEMENT_FACTOR, randomArray, TOL } from './numerics.js';

/**
 * One argument of a kernel call: an input's host data, an output (poisoned with NaN, or −7 when `int`, unless
 * `init` gives its starting values, for outputs that accumulate or update in place), or a size, scalar, flag or
 * null buffer. An `int` output is an int32 buffer and must match the reference exactly.
 */
export type ArgSpec =
  | { kind: 'in'; data: Float32Array | Int32Array }
  | { kind: 'out'; size: number; init?: Float32Array; int?: boolean; scratch?: boolean }
  | null
  | number
  | boolean;

export interface Built {
  args: ArgSpec[];
  tol: number;
  /**
   * The least norm an output's error is measured against. A result that cancels to near zero (GELU far in its
   * negative tail; its derivative Φ(x) + x φ(x) near its root at x ≈ −0.75) carries the float32 rounding of the
   * terms that cancelled, so it is judged against their size rather than its own.
   */
  floor?: number | readonly number[];
}
/** A kernel's sizes to try (each a list of dimensions and flags) and how to build its arguments for one. */
export interface KernelCase {
  sizes: number[][];
  build(s: number[], r: () => number): Built;
}

const inp = (data: Float32Array | Int32Array): ArgSpec => ({ kind: 'in', data });
const out = (size: number, init?: Float32Array): ArgSpec => ({ kind: 'out', size, init });
const intOut = (size: number): ArgSpec => ({ kind: 'out', size, int: true });
/** A kernel's working memory: an output whose contents are not compared. */
const scratch = (size: number): ArgSpec => ({ kind: 'out', size, scratch: true });
/** The value an int32 output starts from: no valid index, so an element left unwritten shows. */
const INT_POISON = -7;
export const ELEMENTWISE_SIZES = [[1], [3], [17], [64], [257], [40_000]];

/** elementwise's broadcasting layouts: out dims, and the masks of a, b, c (bit k: that input is 1 along dim k). */
const EW_LAYOUTS: { dims: number[]; masks: [number, number, number] }[] = [
  { dims: [40_000], masks: [0, 0, 0] }, // the contiguous fast path
  { dims: [17, 3], masks: [0, 0b01, 0] }, // b a row
  { dims: [5, 4, 17], masks: [0b010, 0b101, 0b001] },
  { dims: [2, 3, 1, 4, 2, 5], masks: [0b010010, 0b101100, 0b000001] },
  { dims: [], masks: [0, 0, 0] }, // scalars
  { dims: [257, 1], masks: [0b10, 0b01, 0b11] },
];
/** The operands of an EW op on its domain: positive where a log or root needs it, small integers where equality
 * matters, 0/1 for conditions and masks. */
function ewOperands(op: number, r: () => number, sizes: number[]): [Float32Array, Float32Array, Float32Array] {
  const positive = (n: number) => randomArray(n, r, 1.4, 1.5);
  const small = (n: number) => Float32Array.from({ length: n }, () => Math.floor(r() * 3) - 1);
  const flags = (n: number) => Float32Array.from({ length: n }, () => (r() < 0.5 ? 0 : 1));
  const [na, nb, nc] = sizes;
  const logLike = [EW.log, EW.log1p, EW.sqrt, EW.rsqrt, EW.reciprocal, EW.powScalar, EW.pow] as number[];
  const compare = [EW.eq, EW.ne, EW.lt, EW.le, EW.gt, EW.ge, EW.maximum, EW.minimum, EW.reluGrad, EW.leakyReluGrad] as number[];
  const a = op === EW.where ? flags(na) : logLike.includes(op) ? positive(na) : compare.includes(op) ? small(na) : randomArray(na, r, 3);
  const b = op === EW.maskedFill ? flags(nb) : op === EW.div ? Float32Array.from(positive(nb), (v, i) => (i % 2 ? v : -v)) : op === EW.pow ? randomArray(nb, r, 2) : compare.includes(op) ? small(nb) : randomArray(nb, r, 3);
  return [a, b, randomArray(nc, r, 3)];
}
/** The alpha and beta an EW op is tried with. */
function ewScalars(op: number): [number, number] {
  return op === EW.clamp ? [-0.5, 0.75] : op === EW.softplus ? [1.5, 2] : op === EW.powScalar ? [1.7, 0] : [0.3, -1.25];
}
/** Terms that cancel (Built.floor) in an EW op over n elements: GELU's derivative Φ(x) + x φ(x) near its root at
 * x ≈ −0.75 (terms ~0.2, as gelu_backward's floor), and axpby's α·a + β·b, whose α and β reach a float32 kernel
 * rounded to float32. */
function ewFloor(op: number, n: number, a: Float32Array, b: Float32Array): number {
  const [alpha, beta] = ewScalars(op);
  const rms = (x: Float32Array) => (x.length ? norm(x) / Math.sqrt(x.length) : 0);
  return op === EW.geluGrad ? 0.2 * Math.sqrt(n) : op === EW.axpby ? 0.5 * Math.sqrt(n) * (Math.abs(alpha) * rms(a) + Math.abs(beta) * rms(b)) : 1e-6;
}
/** n int32 indices in [0, D). */
function indices(n: number, D: number, r: () => number): Int32Array {
  return Int32Array.from({ length: n }, () => Math.floor(r() * D));
}
/** strided_copy's (and strided_scatter's) layouts over a source of `src` elements. */
const STRIDED_LAYOUTS: { src: number; ndim: number; offset: number; dims: number[]; strides: number[] }[] = [
  { src: 1, ndim: 1, offset: 0, dims: [1, 1, 1, 1, 1, 1], strides: [1, 0, 0, 0, 0, 0] },
  { src: 17 * 33, ndim: 2, offset: 0, dims: [33, 17, 1, 1, 1, 1], strides: [1, 33, 0, 0, 0, 0] }, // transpose
  { src: 200, ndim: 2, offset: 5, dims: [10, 7, 1, 1, 1, 1], strides: [20, 1, 0, 0, 0, 0] }, // narrow
  { src: 7, ndim: 2, offset: 0, dims: [5, 7, 1, 1, 1, 1], strides: [0, 1, 0, 0, 0, 0] }, // expand
  { src: 120, ndim: 4, offset: 0, dims: [2, 4, 5, 3, 1, 1], strides: [60, 5, 1, 20, 0, 0] }, // permute (0, 2, 3, 1)
  { src: 2 * 3 * 2 * 2 * 3 * 2, ndim: 6, offset: 0, dims: [2, 2, 3, 2, 3, 2], strides: [72, 6, 24, 1, 2, 12] }, // 6-d permute
  { src: 100, ndim: 1, offset: 3, dims: [24, 1, 1, 1, 1, 1], strides: [4, 0, 0, 0, 0, 0] }, // a step
  { src: 40_000, ndim: 2, offset: 0, dims: [200, 200, 1, 1, 1, 1], strides: [1, 200, 0, 0, 0, 0] }, // a large transpose
  { src: 10, ndim: 0, offset: 4, dims: [1, 1, 1, 1, 1, 1], strides: [0, 0, 0, 0, 0, 0] }, // one element
];

function norm(x: Float32Array): number {
  return Math.sqrt(x.reduce((s, v) => s + v * v, 0));
}

/**
 * `terms`: the size of the terms that may cancel (see Built.floor), relative to the input in the forward and to
 * the incoming gradient in the backward.
 */
function elementwise(forwardOf: 'input' | 'output', scale = 3, terms = { fwd: 0, bwd: 0 }): Pick<KernelCase, 'sizes'> & { fwd: KernelCase; bwd: KernelCase } {
  return {
    sizes: ELEMENTWISE_SIZES,
    fwd: {
      sizes: ELEMENTWISE_SIZES,
      build: ([n], r) => {
        const x = randomArray(n, r, scale);
        return { args: [out(n), inp(x), n], tol: TOL.elementwise, floor: terms.fwd * norm(x) };
      },
    },
    bwd: {
      sizes: ELEMENTWISE_SIZES,
      build: ([n], r) => {
        const dout = randomArray(n, r);
        return {
          args: [out(n), inp(dout), inp(forwardOf === 'output' ? randomArray(n, r, 0.5, 0.5) : randomArray(n, r, scale)), n],
          tol: TOL.elementwise,
          floor: terms.bwd * norm(dout),
        };
      },
    },
  };
}
const relu = elementwise('input');
const sigmoid = elementwise('output', 12);
const tanh = elementwise('output');
// GELU = x/2 + x/2 · erf(x/√2): for x < −3 the two halves cancel to ~1e-6 of x; its derivative cancels near −0.75.
const gelu = elementwise('input', 5, { fwd: 0.5, bwd: 0.2 });

export const MATMUL_SIZES = [[1, 1, 1], [3, 17, 5], [64, 64, 64], [257, 3, 31], [7, 255, 1], [33, 300, 129], [2, 520, 300], [5, 33, 700], [97, 65, 513]];
/**
 * GEMM shapes that a tiled kernel gets wrong first: edges that are no tile multiple on either side of a tile
 * (1023, 1025, 129, 257), K larger than one tile and very long K (a split-K path), tall-skinny and short-wide
 * products, matrix-vector (M or N of 1) and rank-1 (K of 1), each with its own transposition flags. About 0.5
 * GFLOP in all, ~1.2 s on the reference backend (measured single-threaded, 0.4–0.5 GFMA/s).
 */
export const MATMUL_LARGE_SIZES = [
  [512, 512, 512, 0, 0], [512, 512, 512, 1, 1], [1023, 1025, 127, 0, 1], [129, 257, 1031, 1, 0], [129, 257, 1031, 1, 1],
  [2048, 3, 1000, 0, 0], [3, 2048, 1000, 1, 1], [1, 4097, 513, 0, 1], [4097, 1, 513, 1, 0], [3, 5, 8191, 0, 0],
  [1000, 1000, 1, 0, 0], [65, 4096, 64, 1, 0], [33, 47, 4100, 1, 1], [64, 96, 6000, 0, 1],
];
export const LINEAR_SIZES = [[1, 1, 1], [1, 784, 256], [3, 17, 5], [5, 100, 37], [64, 33, 10], [257, 64, 3], [64, 784, 256], [100, 300, 130]];

/** OH (or OW) of a window of K taps, stride S, padding P, dilation D over N positions, as lib/backend.ts defines it. */
const poolOut = (N: number, K: number, S: number, P: number, D = 1) => Math.floor((N + 2 * P - D * (K - 1) - 1) / S) + 1;
/**
 * [B, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW] for im2col / col2im: one of everything, odd planes, stride 2 with
 * overlapping windows, padding on one side only, dilation 2, a window as large as the padded plane, a layer
 * of LeNet's size, stride 2 onto rows of 16 outputs (the widest that the CPU's AVX-512 stride-2 rows take), and stride 1
 * across onto rows of 20 and 33 outputs (the AVX-512 stride-1 rows' second and third chunks of 16), one with dilation 2.
 */
export const IM2COL_SIZES = [
  [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1], [2, 3, 7, 5, 3, 3, 1, 1, 1, 1, 1, 1], [1, 1, 9, 11, 3, 2, 2, 2, 1, 0, 1, 1],
  [3, 2, 8, 7, 3, 3, 1, 2, 2, 1, 2, 2], [2, 4, 17, 13, 5, 3, 2, 1, 2, 1, 1, 2], [1, 2, 4, 3, 6, 5, 1, 1, 1, 1, 1, 1],
  [4, 6, 14, 14, 5, 5, 1, 1, 0, 0, 1, 1], [2, 3, 10, 32, 4, 3, 2, 2, 1, 1, 1, 1], [1, 2, 5, 20, 3, 3, 1, 1, 1, 1, 1, 1],
  [2, 3, 9, 37, 3, 5, 2, 1, 1, 2, 1, 2],
];
/**
 * [B, C, H, W, KH, KW, SH, SW, PH, PW] for pooling (padding at most half the window, as PyTorch requires): a 1×1
 * plane, the common 2×2 stride 2, overlapping 3×3 stride 2 with padding, non-square windows and strides on odd
 * planes, one channel, batch 1, and 5×4 windows with stride 3×2.
 */
export const POOL_SIZES = [
  [1, 1, 1, 1, 1, 1, 1, 1, 0, 0], [2, 3, 7, 5, 2, 2, 2, 2, 0, 0], [1, 2, 9, 11, 3, 3, 2, 2, 1, 1],
  [3, 1, 8, 7, 3, 2, 1, 2, 1, 1], [4, 16, 28, 28, 2, 2, 2, 2, 0, 0], [2, 3, 13, 17, 5, 4, 3, 2, 2, 2],
];
/** For each window of a pooling of `s` (POOL_SIZES), the index h·W + w of a random element inside the input. */
function randomArgmax([B, C, H, W, KH, KW, SH, SW, PH, PW]: number[], r: () => number): Int32Array {
  const OH = poolOut(H, KH, SH, PH), OW = poolOut(W, KW, SW, PW);
  const pick = (start: number, K: number, N: number) => {
    const lo = Math.max(start, 0), hi = Math.min(start + K, N);
    return lo + Math.floor(r() * (hi - lo));
  };
  return Int32Array.from({ length: B * C * OH * OW }, (_, k) => {
    const ow = k % OW, oh = Math.floor(k / OW) % OH;
    return pick(oh * SH - PH, KH, H) * W + pick(ow * SW - PW, KW, W);
  });
}
/** Batch statistics of x [B, C, R] per channel: the mean and 1/√(biased variance + eps), in float64. */
function channelStats(x: Float32Array, B: number, C: number, R: number, eps: number): { mean: Float32Array; invstd: Float32Array } {
  const mean = new Float32Array(C), invstd = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    let s = 0, ss = 0;
    for (let b = 0; b < B; b++) for (let i = 0; i < R; i++) s += x[(b * C + c) * R + i];
    const m = s / (B * R);
    for (let b = 0; b < B; b++) for (let i = 0; i < R; i++) ss += (x[(b * C + c) * R + i] - m) ** 2;
    mean[c] = m;
    invstd[c] = 1 / Math.sqrt(ss / (B * R) + eps);
  }
  return { mean, invstd };
}

/** Layer-norm statistics of x [rows, dim] per row: the mean and 1/√(biased variance + eps), in float64. */
function rowStats(x: Float32Array, rows: number, dim: number, eps: number): { mean: Float32Array; invstd: Float32Array } {
  const mean = new Float32Array(rows), invstd = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0, ss = 0;
    for (let d = 0; d < dim; d++) s += x[r * dim + d];
    const m = s / dim;
    for (let d = 0; d < dim; d++) ss += (x[r * dim + d] - m) ** 2;
    mean[r] = m;
    invstd[r] = 1 / Math.sqrt(ss / dim + eps);
  }
  return { mean, invstd };
}

/** The case table, one entry per kernel of the contract. */
/** [T, B, H, mode, initial state?, b_hh?] for the recurrent kernels: every mode with and without an initial state. */
const RNN_SIZES = [
  [1, 1, 1, 0, 0, 1], [3, 2, 5, 0, 1, 1], [7, 3, 17, 1, 1, 0], [1, 1, 1, 2, 1, 1], [5, 3, 17, 2, 0, 1], [20, 4, 33, 2, 1, 1],
  [1, 1, 1, 3, 1, 1], [6, 3, 17, 3, 0, 0], [20, 2, 33, 3, 1, 1], [4, 1, 130, 2, 1, 1], [3, 16, 64, 3, 1, 1],
];
/** The inputs of rnn_forward for RNN_SIZES `s` (xproj, w_hh, b_hh?, h0?, c0?, T, B, H, mode), and its reference outputs. */
function rnnCase([T, B, H, mode, state, bias]: number[], r: () => number) {
  const GH = RNN_GATES[mode] * H, lstm = mode === 2, wsSize = RNN_WS[mode] * T * B * H;
  const xproj = randomArray(T * B * GH, r), whh = randomArray(GH * H, r, 1 / Math.sqrt(H));
  const bhh = bias ? randomArray(GH, r) : null, h0 = state ? randomArray(B * H, r) : null;
  const c0 = state && lstm ? randomArray(B * H, r) : null;
  const inputs: ArgSpec[] = [inp(xproj), inp(whh), bhh && inp(bhh), h0 && inp(h0), c0 && inp(c0), T, B, H, mode];
  return {
    T, B, H, lstm, wsSize, bias: bias === 1, inputs,
    forward() {
      const hs = new Float32Array(T * B * H), ws = wsSize ? new Float32Array(wsSize) : null;
      referenceKernels.rnn_forward(hs, new Float32Array(B * H), lstm ? new Float32Array(B * H) : null, ws, xproj, whh, bhh, h0, c0, T, B, H, mode);
      return { out: hs, ws };
    },
  };
}
/** [B, T, H, D, causal?] for attention. */
const ATTENTION_SIZES = [[1, 1, 1, 1, 0], [1, 1, 1, 1, 1], [2, 3, 1, 5, 1], [3, 17, 2, 7, 0], [2, 17, 3, 16, 1], [2, 64, 4, 32, 1], [1, 130, 2, 64, 0], [4, 9, 8, 8, 1]];

export const cases = {
  matmul: {
    // [M, N, K, transA, transB]: the small shapes with every transposition, then the large ones
    sizes: [...MATMUL_SIZES.flatMap((s) => [[...s, 0, 0], [...s, 1, 0], [...s, 0, 1], [...s, 1, 1]]), ...MATMUL_LARGE_SIZES],
    build: ([M, N, K, ta, tb], r) => {
      const accumulate = (M + N + ta) % 2 === 1;
      return {
        args: [out(M * N, accumulate ? randomArray(M * N, r) : undefined), inp(randomArray(M * K, r)), inp(randomArray(K * N, r)), M, N, K, ta === 1, tb === 1, accumulate ? 0.5 : 1, accumulate ? 0.75 : 0],
        tol: TOL.reduction,
      };
    },
  },
  linear_forward: {
    // [B, C, OC, bias?, act]: every shape with and without bias, and each epilogue activation
    sizes: LINEAR_SIZES.flatMap((s) => [[...s, 1, 0], [...s, 0, 0], [...s, 1, 1], [...s, 1, 2]]),
    build: ([B, C, OC, bias, act], r) => ({
      args: [out(B * OC), inp(randomArray(B * C, r)), inp(randomArray(OC * C, r)), bias ? inp(randomArray(OC, r)) : null, B, C, OC, act, 0.1],
      tol: TOL.reduction,
    }),
  },
  linear_backward: {
    // [B, C, OC, all outputs?, accumulate?]
    sizes: LINEAR_SIZES.flatMap((s) => [[...s, 1, 1], [...s, 0, 1], [...s, 1, 0]]),
    build: ([B, C, OC, all, acc], r) => ({
      args: [
        all ? out(B * C) : null,
        acc ? out(OC * C, randomArray(OC * C, r)) : out(OC * C),
        all ? (acc ? out(OC, randomArray(OC, r)) : out(OC)) : null,
        inp(randomArray(B * OC, r)), inp(randomArray(B * C, r)), inp(randomArray(OC * C, r)), B, C, OC, acc === 1,
      ],
      tol: TOL.reduction,
    }),
  },
  act_bias_backward: {
    // [B, OC, act, accumulate?, with dz?]
    sizes: [[1, 1, 1, 1, 1], [3, 17, 2, 0, 1], [64, 256, 1, 1, 0], [257, 3, 0, 0, 1], [2, 5000, 1, 1, 1]],
    build: ([B, OC, act, acc, withDz], r) => ({
      args: [withDz ? out(B * OC) : null, acc ? out(OC, randomArray(OC, r)) : out(OC), inp(randomArray(B * OC, r)), inp(randomArray(B * OC, r)), B, OC, act, 0.2, acc === 1],
      tol: TOL.reduction,
    }),
  },
  relu_forward: relu.fwd,
  relu_backward: relu.bwd,
  leaky_relu_forward: { sizes: ELEMENTWISE_SIZES, build: ([n], r) => ({ args: [out(n), inp(randomArray(n, r)), n, 0.07], tol: TOL.elementwise }) },
  leaky_relu_backward: { sizes: ELEMENTWISE_SIZES, build: ([n], r) => ({ args: [out(n), inp(randomArray(n, r)), inp(randomArray(n, r)), n, 0.07], tol: TOL.elementwise }) },
  sigmoid_forward: sigmoid.fwd,
  sigmoid_backward: sigmoid.bwd,
  tanh_forward: tanh.fwd,
  tanh_backward: tanh.bwd,
  gelu_forward: gelu.fwd,
  gelu_backward: gelu.bwd,
  softmax_forward: {
    sizes: [[1, 1], [3, 17], [64, 10], [257, 3], [2, 5000]],
    // large logits: the row maximum must be subtracted
    build: ([B, C], r) => ({ args: [out(B * C), inp(randomArray(B * C, r, 50, B > 60 ? 500 : 0)), B, C], tol: TOL.elementwise }),
  },
  softmax_backward: {
    sizes: [[1, 1], [3, 17], [64, 10], [257, 3]],
    build: ([B, C], r) => ({ args: [out(B * C), inp(randomArray(B * C, r)), inp(randomArray(B * C, r, 0.5, 0.5)), B, C], tol: TOL.reduction }),
  },
  mse_loss: {
    sizes: ELEMENTWISE_SIZES,
    build: ([n], r) => ({ args: [out(1), out(n), inp(randomArray(n, r)), inp(randomArray(n, r)), n], tol: TOL.reduction }),
  },
  cross_entropy_loss: {
    sizes: [[1, 1, 1], [3, 17, 1], [64, 10, 1], [257, 3, 1], [4, 5, 7], [2, 3, 257]],
    build: ([B, C, D], r) => {
      const target = Int32Array.from({ length: B * D }, (_, i) => (i % 5 === 4 ? -100 : Math.floor(r() * C)));
      return { args: [out(1), out(B * C * D), inp(randomArray(B * C * D, r, 20)), inp(target), B, C, D, -100], tol: TOL.reduction };
    },
  },
  bce_with_logits_loss: {
    sizes: ELEMENTWISE_SIZES,
    build: ([n], r) => ({ args: [out(1), out(n), inp(randomArray(n, r, 30)), inp(randomArray(n, r, 0.5, 0.5)), n], tol: TOL.reduction }),
  },
  l1_loss: {
    sizes: ELEMENTWISE_SIZES,
    build: ([n], r) => ({ args: [out(1), out(n), inp(randomArray(n, r)), inp(randomArray(n, r)), n], tol: TOL.reduction }),
  },
  huber_loss: {
    sizes: ELEMENTWISE_SIZES,
    build: ([n], r) => ({ args: [out(1), out(n), inp(randomArray(n, r, 2)), inp(randomArray(n, r)), n, 0.7], tol: TOL.reduction }),
  },
  bce_loss: {
    sizes: ELEMENTWISE_SIZES,
    build: ([n], r) => ({ args: [out(1), out(n), inp(randomArray(n, r, 0.499, 0.5)), inp(randomArray(n, r, 0.5, 0.5)), n], tol: TOL.reduction }),
  },
  sgd_step: {
    // [n, momentum?, nesterov?, firstStep?, maximize?]
    sizes: [[1, 0, 0, 1, 0], [17, 1, 0, 1, 0], [257, 1, 0, 0, 0], [257, 1, 1, 0, 1], [40_000, 1, 0, 0, 0], [64, 0, 0, 0, 1]],
    build: ([n, mom, nest, first, max], r) => ({
      args: [out(n, randomArray(n, r)), mom ? out(n, randomArray(n, r)) : null, inp(randomArray(n, r)), n, 0.05, mom ? 0.9 : 0, nest ? 0 : 0.1, 0.01, nest === 1, max === 1, first === 1],
      tol: TOL.update,
    }),
  },
  adam_step: {
    // [n, step, amsgrad?, decoupled?, maximize?]
    sizes: [[1, 1, 0, 0, 0], [17, 3, 1, 0, 0], [257, 10, 0, 1, 0], [257, 2, 1, 1, 1], [40_000, 5, 0, 0, 0]],
    build: ([n, step, ams, dec, max], r) => ({
      args: [
        out(n, randomArray(n, r)), out(n, randomArray(n, r, 0.1)), out(n, randomArray(n, r, 0.05, 0.05)),
        ams ? out(n, randomArray(n, r, 0.05, 0.05)) : null, inp(randomArray(n, r)),
        n, 0.01, 0.9, 0.999, 1e-8, 0.02, step, ams === 1, dec === 1, max === 1,
      ],
      tol: TOL.update,
    }),
  },
  rmsprop_step: {
    // [n, centered?, momentum?, maximize?]
    sizes: [[1, 0, 0, 0], [17, 1, 0, 0], [257, 0, 1, 1], [257, 1, 1, 0], [40_000, 1, 1, 0]],
    build: ([n, cen, mom, max], r) => ({
      args: [
        out(n, randomArray(n, r)), out(n, randomArray(n, r, 0.05, 0.1)), cen ? out(n, randomArray(n, r, 0.01)) : null,
        mom ? out(n, randomArray(n, r, 0.1)) : null, inp(randomArray(n, r)), n, 0.01, 0.9, 1e-8, 0.01, mom ? 0.9 : 0, cen === 1, max === 1,
      ],
      tol: TOL.update,
    }),
  },
  adagrad_step: {
    sizes: [[1, 0], [17, 1], [257, 0], [40_000, 1]],
    build: ([n, max], r) => ({
      args: [out(n, randomArray(n, r)), out(n, randomArray(n, r, 0.1, 0.2)), inp(randomArray(n, r)), n, 0.05, 1e-10, 0.01, max === 1],
      tol: TOL.update,
    }),
  },
  adamax_step: {
    sizes: [[1, 1, 0], [17, 3, 1], [257, 10, 0], [40_000, 2, 1]],
    build: ([n, step, max], r) => ({
      args: [out(n, randomArray(n, r)), out(n, randomArray(n, r, 0.1)), out(n, randomArray(n, r, 0.05, 0.1)), inp(randomArray(n, r)), n, 0.01, 0.9, 0.999, 1e-8, 0.01, step, max === 1],
      tol: TOL.update,
    }),
  },
  adadelta_step: {
    sizes: [[1, 0], [17, 1], [257, 0], [40_000, 1]],
    build: ([n, max], r) => ({
      args: [out(n, randomArray(n, r)), out(n, randomArray(n, r, 0.05, 0.1)), out(n, randomArray(n, r, 0.05, 0.1)), inp(randomArray(n, r)), n, 1, 0.9, 1e-6, 0.01, max === 1],
      tol: TOL.update,
    }),
  },
  nadam_radam_step: {
    // [n, radam?, rectified?]
    sizes: [[1, 0, 0], [17, 1, 0], [257, 1, 1], [40_000, 0, 0], [40_000, 1, 1]],
    build: ([n, radam, rect], r) => ({
      args: [out(n, randomArray(n, r)), out(n, randomArray(n, r, 0.1)), out(n, randomArray(n, r, 0.05, 0.1)), inp(randomArray(n, r)), n, 0.9, 0.999, 1e-8, 0.01, 0.3, 0.002, 0.01, radam === 1, rect === 1],
      tol: TOL.update,
    }),
  },
  fill: { sizes: ELEMENTWISE_SIZES, build: ([n]) => ({ args: [out(n), n, 2.5], tol: 0 }) },
  copy: { sizes: ELEMENTWISE_SIZES, build: ([n], r) => ({ args: [out(n), inp(randomArray(n, r)), n], tol: 0 }) },
  // out + α·src cancels where out ≈ −α·src: judged against the terms' size, as axpby (ewFloor)
  axpy: {
    sizes: ELEMENTWISE_SIZES,
    build: ([n], r) => {
      const o = randomArray(n, r), src = randomArray(n, r);
      return { args: [out(n, o), inp(src), n, -0.3], tol: TOL.elementwise, floor: 0.5 * (norm(o) + 0.3 * norm(src)) };
    },
  },
  gather_rows: {
    sizes: [[1, 1, 1, 0], [3, 17, 5, 2], [64, 784, 100, 7], [257, 3, 300, 0]],
    build: ([rows, cols, srcRows, offset], r) => ({
      args: [out(rows * cols), inp(randomArray(srcRows * cols, r)), inp(Int32Array.from({ length: offset + rows }, () => Math.floor(r() * srcRows))), rows, cols, srcRows, offset],
      tol: 0,
    }),
  },
  norm_accumulate: {
    // [n, infNorm?]
    sizes: [[1, 0], [17, 1], [257, 0], [40_000, 0], [40_000, 1]],
    build: ([n, inf], r) => ({ args: [out(1, Float32Array.of(inf ? 0.5 : 3)), inp(randomArray(n, r)), n, inf === 1], tol: TOL.reduction }),
  },
  clip_by_norm: {
    // [n, infNorm?, acc]: acc small enough that nothing is clipped, or large
    sizes: [[1, 0, 0.01], [17, 1, 0.2], [257, 0, 900], [40_000, 1, 30]],
    build: ([n, inf, acc], r) => ({ args: [out(n, randomArray(n, r)), inp(Float32Array.of(acc)), n, 1.5, inf === 1], tol: TOL.elementwise }),
  },
  clamp: {
    sizes: ELEMENTWISE_SIZES,
    build: ([n], r) => ({ args: [out(n, randomArray(n, r, 3)), n, -0.5, 1.25], tol: 0 }),
  },
  penalty: {
    sizes: [[1], [17], [257], [40_000]],
    build: ([n], r) => ({ args: [out(1, Float32Array.of(0.5)), out(n, randomArray(n, r)), inp(randomArray(n, r)), n, 0.01, 0.003], tol: TOL.reduction }),
  },
  accuracy_count: {
    sizes: [[1, 1], [3, 17], [64, 10], [257, 3]],
    build: ([B, C], r) => ({
      args: [out(1, Float32Array.of(5)), inp(randomArray(B * C, r)), inp(Int32Array.from({ length: B }, () => Math.floor(r() * C))), B, C],
      tol: 0,
    }),
  },
  check_finite: {
    // [n, position of a planted NaN (or, odd n, +Infinity), −1 for none]; tag −1: report the index without failing
    sizes: [[1, -1], [1, 0], [17, 16], [257, 3], [40_000, -1], [40_000, 39_999], [100_003, 70_001]],
    build: ([n, at], r) => {
      const x = randomArray(n, r);
      if (at >= 0) {
        x[at] = n % 2 ? Infinity : NaN;
        if (at + 5 < n) x[at + 5] = NaN; // a later one must not win
      }
      return { args: [intOut(1), inp(x), n, -1], tol: 0 };
    },
  },
  dropout_forward: {
    sizes: [[1, 0.5], [17, 0], [257, 0.3], [40_000, 0.5], [64, 1]],
    build: ([n, p], r) => ({ args: [out(n), out(n), inp(randomArray(n, r)), n, p, Math.floor(r() * 2 ** 31)], tol: 0 }),
  },
  dropout_backward: {
    sizes: ELEMENTWISE_SIZES,
    build: ([n], r) => ({ args: [out(n), inp(randomArray(n, r)), inp(Float32Array.from({ length: n }, () => (r() < 0.5 ? 0 : 2))), n], tol: 0 }),
  },
  im2col: {
    sizes: IM2COL_SIZES,
    build: ([B, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW], r) => {
      const n = C * KH * KW * B * poolOut(H, KH, SH, PH, DH) * poolOut(W, KW, SW, PW, DW);
      return { args: [out(n), inp(randomArray(B * C * H * W, r)), B, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW], tol: 0 };
    },
  },
  col2im: {
    sizes: IM2COL_SIZES,
    build: ([B, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW], r) => {
      const n = C * KH * KW * B * poolOut(H, KH, SH, PH, DH) * poolOut(W, KW, SW, PW, DW);
      return { args: [out(B * C * H * W), inp(randomArray(n, r)), B, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW], tol: TOL.reduction };
    },
  },
  transpose01: {
    // [A, Bd, R, bias?]
    sizes: [[1, 1, 1, 0], [3, 5, 7, 1], [16, 2, 49, 1], [1, 17, 3, 0], [64, 8, 1, 1], [6, 4, 100, 0]],
    build: ([A, Bd, R, bias], r) => ({
      args: [out(A * Bd * R), inp(randomArray(A * Bd * R, r)), bias ? inp(randomArray(A, r)) : null, A, Bd, R],
      tol: TOL.elementwise,
    }),
  },
  channel_sum: {
    // [B, C, R, accumulate?]
    sizes: [[1, 1, 1, 0], [3, 5, 7, 1], [16, 8, 49, 0], [257, 3, 1, 1], [2, 64, 196, 1], [1, 1, 3000, 0]],
    build: ([B, C, R, acc], r) => ({
      args: [acc ? out(C, randomArray(C, r)) : out(C), inp(randomArray(B * C * R, r)), B, C, R, acc === 1],
      tol: TOL.reduction,
    }),
  },
  maxpool2d_forward: {
    // POOL_SIZES, each on continuous data and on data rounded to quarters (ties: the first maximum wins)
    sizes: POOL_SIZES.flatMap((s) => [[...s, 0], [...s, 1]]),
    build: ([B, C, H, W, KH, KW, SH, SW, PH, PW, ties], r) => {
      const x = randomArray(B * C * H * W, r, 2);
      if (ties) x.forEach((v, i) => (x[i] = Math.round(v * 4) / 4));
      const n = B * C * poolOut(H, KH, SH, PH) * poolOut(W, KW, SW, PW);
      return { args: [out(n), intOut(n), inp(x), B, C, H, W, KH, KW, SH, SW, PH, PW], tol: 0 };
    },
  },
  maxpool2d_backward: {
    sizes: POOL_SIZES,
    build: (s, r) => {
      const [B, C, H, W, KH, KW, SH, SW, PH, PW] = s;
      const argmax = randomArgmax(s, r);
      return { args: [out(B * C * H * W), inp(randomArray(argmax.length, r)), inp(argmax), B, C, H, W, KH, KW, SH, SW, PH, PW], tol: TOL.reduction };
    },
  },
  avgpool2d_forward: {
    // POOL_SIZES with countIncludePad false and true
    sizes: POOL_SIZES.flatMap((s) => [[...s, 0], [...s, 1]]),
    build: ([B, C, H, W, KH, KW, SH, SW, PH, PW, incl], r) => {
      const n = B * C * poolOut(H, KH, SH, PH) * poolOut(W, KW, SW, PW);
      return { args: [out(n), inp(randomArray(B * C * H * W, r)), B, C, H, W, KH, KW, SH, SW, PH, PW, incl === 1], tol: TOL.reduction };
    },
  },
  avgpool2d_backward: {
    sizes: POOL_SIZES.flatMap((s) => [[...s, 0], [...s, 1]]),
    build: ([B, C, H, W, KH, KW, SH, SW, PH, PW, incl], r) => {
      const n = B * C * poolOut(H, KH, SH, PH) * poolOut(W, KW, SW, PW);
      return { args: [out(B * C * H * W), inp(randomArray(n, r)), B, C, H, W, KH, KW, SH, SW, PH, PW, incl === 1], tol: TOL.reduction };
    },
  },
  batchnorm_forward: {
    // [B, C, R, training?, affine: 0 neither weight nor bias, 1 both, 2 weight only, 3 bias only]; R 1 is
    // BatchNorm1d on [B, C]; [1, 3, 1] has one value per channel (variance 0, the unbiased one taken as 0); [11, 3, 3]
    // sums planes of fewer than 8 values eight planes at a time, then three alone (the CPU's lanes)
    sizes: [[1, 3, 1, 1, 1], [8, 4, 1, 1, 1], [2, 3, 49, 1, 0], [3, 16, 25, 0, 1], [1, 5, 17, 1, 2], [16, 8, 64, 1, 3], [4, 2, 9, 0, 0], [64, 1, 1, 1, 1],
      [11, 3, 3, 1, 1]],
    build: ([B, C, R, training, affine], r) => ({
      args: [
        out(B * C * R), out(C), out(C), out(C, randomArray(C, r, 0.5)), out(C, randomArray(C, r, 0.5, 1)),
        inp(randomArray(B * C * R, r, 2, 0.5)), affine === 1 || affine === 2 ? inp(randomArray(C, r, 1, 1)) : null,
        affine === 1 || affine === 3 ? inp(randomArray(C, r)) : null, B, C, R, 0.1, 1e-5, training === 1,
      ],
      tol: TOL.reduction,
    }),
  },
  batchnorm_backward: {
    // [B, C, R, training?, weight?, outputs: 0 dinp only, 1 all, 2 dweight and dbias only, accumulate?]; the saved
    // statistics are the input's own in training, running-like values when not
    sizes: [[1, 1, 2, 1, 1, 1, 0], [8, 4, 1, 1, 1, 1, 1], [2, 3, 49, 1, 0, 1, 0], [3, 16, 25, 0, 1, 1, 1], [1, 5, 17, 1, 1, 2, 1], [16, 8, 64, 1, 1, 1, 1], [4, 2, 9, 0, 0, 0, 0], [5, 3, 7, 1, 0, 0, 0],
      [11, 3, 3, 1, 1, 1, 1]],
    build: ([B, C, R, training, withWeight, outputs, acc], r) => {
      const x = randomArray(B * C * R, r, 2, 0.5);
      const stats = training ? channelStats(x, B, C, R, 1e-5) : { mean: randomArray(C, r, 0.5), invstd: randomArray(C, r, 0.5, 1) };
      const param = () => (acc ? out(C, randomArray(C, r)) : out(C));
      const dout = randomArray(B * C * R, r);
      const weight = withWeight ? randomArray(C, r, 1, 1) : null;
      // In training dinp = w·invstd·(dout − mean(dout) − x̂·mean(dout·x̂)) cancels (to exactly 0 when a channel holds
      // two values): it is judged against the size of w·invstd·dout.
      let scaled = 0;
      for (let i = 0; i < dout.length; i++) {
        const c = Math.floor(i / R) % C;
        scaled += (dout[i] * (weight ? weight[c] : 1) * stats.invstd[c]) ** 2;
      }
      return {
        args: [
          outputs !== 2 ? out(B * C * R) : null, outputs !== 0 ? param() : null, outputs !== 0 ? param() : null,
          inp(dout), inp(x), weight ? inp(weight) : null, inp(stats.mean), inp(stats.invstd),
          B, C, R, training === 1, acc === 1,
        ],
        tol: TOL.reduction,
        floor: outputs !== 2 ? [Math.sqrt(scaled)] : [],
      };
    },
  },
conv2d_forward: {
    // IM2COL_SIZES geometry, then OC and bias?; the CPU works through the last two in image groups (14 groups of 3, the
    // last short) and in whole-batch chunks (13 images whose columns exceed a group's cache, 6 per chunk)
    sizes: [...IM2COL_SIZES.map((g, i) => [...g, 1 + ((i * 3) % 5), i % 2]), [40, 16, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 8, 1],
      [13, 16, 28, 28, 7, 7, 1, 1, 3, 3, 1, 1, 3, 1]],
    build: ([B, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OC, bias], r) => {
      const n = B * OC * poolOut(H, KH, SH, PH, DH) * poolOut(W, KW, SW, PW, DW);
      return {
        args: [out(n), inp(randomArray(B * C * H * W, r)), inp(randomArray(OC * C * KH * KW, r)), bias ? inp(randomArray(OC, r)) : null,
          B, C, H, W, OC, KH, KW, SH, SW, PH, PW, DH, DW],
        tol: TOL.reduction,
        // half the norm that sums of C·KH·KW products of U(−1, 1) values have (each of standard deviation 1/3): a case
        // with a single output (a window as large as the padded plane, one channel) can cancel to near zero, and its
        // rounding is then that of the terms (seed 1235943390: a normwise error of 6.6e-5 against a result near zero)
        floor: (0.5 * Math.sqrt(n * C * KH * KW)) / 3,
      };
    },
  },
  conv2d_backward: {
    // IM2COL_SIZES geometry, then OC, outputs (0 dinp only, 1 all, 2 dweight and dbias), accumulate?
    // (the last two: image groups, 14 in 14 slots, and whole-batch chunks, as conv2d_forward's)
    sizes: [...IM2COL_SIZES.map((g, i) => [...g, 1 + ((i * 2) % 5), i % 3, (i >> 1) % 2]), [40, 16, 16, 16, 3, 3, 1, 1, 1, 1, 1, 1, 8, 1, 1],
      [13, 16, 28, 28, 7, 7, 1, 1, 3, 3, 1, 1, 3, 1, 1]],
    build: ([B, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OC, outputs, acc], r) => {
      const n = B * OC * poolOut(H, KH, SH, PH, DH) * poolOut(W, KW, SW, PW, DW);
      const grad = (size: number) => (acc ? out(size, randomArray(size, r)) : out(size));
      return {
        args: [
          outputs !== 2 ? out(B * C * H * W) : null, outputs !== 0 ? grad(OC * C * KH * KW) : null, outputs !== 0 ? grad(OC) : null,
          inp(randomArray(n, r)), inp(randomArray(B * C * H * W, r)), inp(randomArray(OC * C * KH * KW, r)),
          B, C, H, W, OC, KH, KW, SH, SW, PH, PW, DH, DW, acc === 1,
        ],
        tol: TOL.reduction,
      };
    },
  },
  embedding_backward: {
    // [rows, dim, numEmbeddings, accumulate?]: one of everything, one embedding taking every row, more rows than
    // embeddings (repeats), most embeddings unused (their rows must still be zeroed), GPT-2's width
    sizes: [[1, 1, 1, 0], [1, 1, 1, 1], [3, 17, 5, 0], [257, 3, 1, 1], [40, 257, 7, 0], [5, 3, 100, 0], [33, 768, 4, 1], [64, 1, 3, 1]],
    build: ([rows, dim, num, acc], r) => {
      // the first rows repeat one index, the rest are random (repeats too whenever rows > num)
      const index = Int32Array.from({ length: rows }, (_, i) => (i < 3 ? num - 1 : Math.floor(r() * num)));
      return {
        args: [acc ? out(num * dim, randomArray(num * dim, r)) : out(num * dim), inp(index), inp(randomArray(rows * dim, r)), rows, dim, num, acc === 1],
        tol: TOL.reduction,
      };
    },
  },
  layernorm_forward: {
    // [rows, dim, affine: 0 neither weight nor bias, 1 both, 2 weight only, 3 bias only, offset]; dim 1 normalises
    // every value to 0 (variance 0: out is the bias); an offset makes the mean matter
    sizes: [[1, 1, 1, 0], [1, 3, 0, 0], [3, 17, 1, 0], [64, 768, 1, 0], [257, 3, 2, 0], [5, 257, 3, 0], [2, 1, 0, 0], [16, 33, 1, 5]],
    build: ([rows, dim, affine, offset], r) => ({
      args: [
        out(rows * dim), out(rows), out(rows), inp(randomArray(rows * dim, r, 2, 0.5 + offset)),
        affine === 1 || affine === 2 ? inp(randomArray(dim, r, 1, 1)) : null, affine === 1 || affine === 3 ? inp(randomArray(dim, r)) : null,
        rows, dim, 1e-5,
      ],
      tol: TOL.reduction,
    }),
  },
  layernorm_backward: {
    // [rows, dim, weight?, outputs: 0 dinp only, 1 all, 2 dweight and dbias only, accumulate?]; the saved statistics
    // are the input's own
    sizes: [[1, 1, 1, 1, 0], [1, 3, 0, 0, 0], [3, 17, 1, 1, 1], [64, 768, 1, 1, 1], [257, 3, 1, 2, 1], [5, 257, 0, 1, 0], [8, 64, 1, 0, 0], [2, 1, 0, 1, 1]],
    build: ([rows, dim, withWeight, outputs, acc], r) => {
      const x = randomArray(rows * dim, r, 2, 0.5);
      const stats = rowStats(x, rows, dim, 1e-5);
      const param = () => (acc ? out(dim, randomArray(dim, r)) : out(dim));
      const dout = randomArray(rows * dim, r);
      const weight = withWeight ? randomArray(dim, r, 1, 1) : null;
      // dinp = invstd·(g − mean_d(g) − x̂·mean_d(g·x̂)) cancels (to exactly 0 when dim is 1): it is judged against the
      // size of invstd·weight·dout.
      let scaled = 0;
      for (let i = 0; i < dout.length; i++) scaled += (dout[i] * (weight ? weight[i % dim] : 1) * stats.invstd[Math.floor(i / dim)]) ** 2;
      return {
        args: [
          outputs !== 2 ? out(rows * dim) : null, outputs !== 0 ? param() : null, outputs !== 0 ? param() : null,
          inp(dout), inp(x), weight ? inp(weight) : null, inp(stats.mean), inp(stats.invstd), rows, dim, acc === 1,
        ],
        tol: TOL.reduction,
        floor: outputs !== 2 ? [Math.sqrt(scaled)] : [],
      };
    },
  },
  copy_range: {
    // [N, outSize, srcSize, outOffset, srcOffset]: the whole buffer, a slice at each end, one element
    sizes: [[1, 1, 1, 0, 0], [17, 17, 17, 0, 0], [5, 20, 9, 15, 4], [64, 200, 300, 3, 236], [1, 3, 3, 2, 0]],
    build: ([n, outSize, srcSize, outOffset, srcOffset], r) => ({
      args: [out(outSize, randomArray(outSize, r)), inp(randomArray(srcSize, r)), n, outOffset, srcOffset],
      tol: 0,
    }),
  },
  rnn_forward: {
    // [T, B, H, mode (0 tanh, 1 relu, 2 LSTM, 3 GRU), initial state?, b_hh?]: one step of one unit, odd sizes, a long
    // sequence, a batch of 1, a wide layer
    sizes: RNN_SIZES,
    build: (s, r) => {
      const c = rnnCase(s, r);
      return { args: [out(c.T * c.B * c.H), out(c.B * c.H), c.lstm ? out(c.B * c.H) : null, c.wsSize ? out(c.wsSize) : null, ...c.inputs], tol: TOL.reduction };
    },
  },
  rnn_backward: {
    // RNN_SIZES, then outputs: 0 dxproj only, 1 everything, 2 dxproj and the weights'; accumulate? The forward's
    // saved steps come from the reference.
    sizes: RNN_SIZES.map((s, i) => [...s, i % 3 === 2 ? 0 : i % 3 === 0 ? 1 : 2, i % 2]),
    build: (s, r) => {
      const [T, B, H, mode, , , outputs, acc] = s;
      const c = rnnCase(s, r);
      const { out: hs, ws } = c.forward();
      const GH = RNN_GATES[mode] * H;
      const grad = (n: number) => (acc ? out(n, randomArray(n, r)) : out(n));
      const all = outputs === 1, weights = outputs !== 0;
      return {
        args: [
          out(T * B * GH), weights ? grad(GH * H) : null, weights && c.bias ? grad(GH) : null, all ? out(B * H) : null,
          all && c.lstm ? out(B * H) : null, scratch(2 * B * H + (mode === 3 ? T * B * GH : 0)), inp(randomArray(T * B * H, r)),
          all ? inp(randomArray(B * H, r)) : null, all && c.lstm ? inp(randomArray(B * H, r)) : null, ws ? inp(ws) : null, inp(hs),
          c.inputs[1], c.inputs[3], c.inputs[4], T, B, H, mode, acc === 1,
        ],
        tol: TOL.reduction,
      };
    },
  },
  attention_forward: {
    // [B, T, H, D, causal?]: one position, odd lengths and widths, GPT-sized heads, a long sequence
    sizes: ATTENTION_SIZES,
    build: ([B, T, H, D, causal], r) => ({
      args: [out(B * T * H * D), out(B * H * T * T), inp(randomArray(B * T * 3 * H * D, r, 1.5)), B, T, H, D, causal === 1],
      tol: TOL.reduction,
    }),
  },
  attention_backward: {
    sizes: ATTENTION_SIZES,
    build: ([B, T, H, D, causal], r) => {
      const qkv = randomArray(B * T * 3 * H * D, r, 1.5);
      const probs = new Float32Array(B * H * T * T);
      referenceKernels.attention_forward(new Float32Array(B * T * H * D), probs, qkv, B, T, H, D, causal === 1);
      return {
        args: [out(B * T * 3 * H * D), scratch(B * H * T * T), inp(randomArray(B * T * H * D, r)), inp(qkv), inp(probs), B, T, H, D, causal === 1],
        tol: TOL.reduction,
      };
    },
  },

  // ---- generic tensor operations ----
  elementwise: {
    // [op, layout]: every op code on every broadcasting layout of EW_LAYOUTS
    sizes: Object.values(EW).flatMap((op) => EW_LAYOUTS.map((_, layout) => [op, layout])),
    build: ([op, layout], r) => {
      const { dims, masks } = EW_LAYOUTS[layout];
      const count = (mask: number) => dims.reduce((n, d, k) => n * ((mask >> k) & 1 ? 1 : d), 1);
      const [a, b, c] = ewOperands(op, r, masks.map(count));
      const d = [...dims, 1, 1, 1, 1, 1, 1].slice(0, 6);
      const [alpha, beta] = ewScalars(op);
      const n = count(0);
      return {
        args: [out(n), inp(a), op >= EW.add ? inp(b) : null, op === EW.where ? inp(c) : null, op, alpha, beta, dims.length, ...d, ...masks],
        tol: TOL.elementwise,
        floor: ewFloor(op, n, a, b),
      };
    },
  },
  elementwise_flat: {
    // [op, N]: every op code, on a vector with a SIMD tail and on one element
    sizes: Object.values(EW).flatMap((op) => [[op, 1], [op, 37]]),
    build: ([op, n], r) => {
      const [a, b, c] = ewOperands(op, r, [n, n, n]);
      const [alpha, beta] = ewScalars(op);
      return { args: [out(n), inp(a), op >= EW.add ? inp(b) : null, op === EW.where ? inp(c) : null, op, alpha, beta, n], tol: TOL.elementwise, floor: ewFloor(op, n, a, b) };
    },
  },
  reduce: {
    // [op, outer, R, inner]
    sizes: [[0, 1, 1, 1], [0, 3, 17, 5], [0, 1, 40_000, 1], [0, 257, 3, 1], [0, 2, 0, 3], [0, 4, 1000, 33], [1, 3, 17, 5], [1, 1, 1000, 7], [2, 4, 33, 1], [1, 5, 3, 64], [2, 1, 257, 3], [1, 1, 1, 1]],
    build: ([op, outer, R, inner], r) => ({
      args: [out(outer * inner), op === REDUCE.sum ? null : intOut(outer * inner), inp(randomArray(outer * R * inner, r, 2)), op, outer, R, inner],
      tol: TOL.reduction,
    }),
  },
  strided_copy: {
    sizes: STRIDED_LAYOUTS.map((_, i) => [i]),
    build: ([i], r) => {
      const { src, ndim, offset, dims, strides } = STRIDED_LAYOUTS[i];
      const n = dims.slice(0, ndim).reduce((p, d) => p * d, 1);
      return { args: [out(n), inp(randomArray(src, r)), ndim, offset, ...dims, ...strides], tol: 0 };
    },
  },
  strided_scatter: {
    // [layout, accumulate]; only the layouts whose positions are distinct (no stride 0)
    sizes: STRIDED_LAYOUTS.flatMap((l, i) => (l.strides.slice(0, l.ndim).some((s, k) => s === 0 && l.dims[k] > 1) ? [] : [[i, 0], [i, 1]])),
    build: ([i, accumulate], r) => {
      const { src, ndim, offset, dims, strides } = STRIDED_LAYOUTS[i];
      const n = dims.slice(0, ndim).reduce((p, d) => p * d, 1);
      return { args: [out(src, randomArray(src, r)), inp(randomArray(n, r)), ndim, offset, ...dims, ...strides, accumulate === 1], tol: TOL.elementwise };
    },
  },
  bmm: {
    // [batch, M, N, K, transA, transB, a broadcast over the batch]
    sizes: [[1, 1, 1, 1, 0, 0, 0], [3, 17, 5, 9, 0, 0, 0], [4, 8, 33, 16, 1, 0, 0], [2, 7, 3, 64, 0, 1, 1], [5, 3, 3, 3, 1, 1, 0], [2, 65, 70, 130, 0, 0, 0], [0, 3, 3, 3, 0, 0, 0]],
    build: ([P, M, N, K, ta, tb, shared], r) => {
      const accumulate = (M + K) % 2 === 1;
      return {
        args: [out(P * M * N, accumulate ? randomArray(P * M * N, r) : undefined), inp(randomArray((shared ? 1 : P) * M * K, r)), inp(randomArray(P * K * N, r)),
          P, M, N, K, ta === 1, tb === 1, shared ? 0 : M * K, K * N, accumulate ? 0.5 : 1, accumulate ? 0.75 : 0],
        tol: TOL.reduction,
      };
    },
  },
  index_select: {
    // [outer, D, inner, n]
    sizes: [[1, 1, 1, 1], [3, 17, 5, 9], [1, 1000, 64, 300], [7, 3, 1, 20], [2, 5, 3, 0]],
    build: ([outer, D, inner, n], r) => ({
      args: [out(outer * n * inner), inp(randomArray(outer * D * inner, r)), inp(indices(n, D, r)), outer, D, inner, n],
      tol: 0,
    }),
  },
  index_add: {
    sizes: [[1, 1, 1, 1], [3, 17, 5, 9], [1, 1000, 64, 300], [7, 3, 1, 20], [2, 5, 3, 0]],
    build: ([outer, D, inner, n], r) => ({
      args: [out(outer * D * inner, randomArray(outer * D * inner, r)), inp(randomArray(outer * n * inner, r)), inp(indices(n, D, r)), outer, D, inner, n],
      tol: TOL.elementwise,
    }),
  },
  gather: {
    // [outer, D, n, inner]
    sizes: [[1, 1, 1, 1], [3, 17, 9, 5], [64, 10, 1, 1], [2, 3, 20, 7]],
    build: ([outer, D, n, inner], r) => ({
      args: [out(outer * n * inner), inp(randomArray(outer * D * inner, r)), inp(indices(outer * n * inner, D, r)), outer, D, n, inner],
      tol: 0,
    }),
  },
  scatter_add: {
    sizes: [[1, 1, 1, 1], [3, 17, 9, 5], [64, 10, 1, 1], [2, 3, 20, 7]],
    build: ([outer, D, n, inner], r) => ({
      args: [out(outer * D * inner, randomArray(outer * D * inner, r)), inp(randomArray(outer * n * inner, r)), inp(indices(outer * n * inner, D, r)), outer, D, n, inner],
      tol: TOL.elementwise,
    }),
  },
} satisfies Record<KernelName, KernelCase>;

/**
 * Runs kernel `name` on backend `b` with arguments built from `args` and returns a copy of each output, in
 * argument order. Overwritten outputs start as NaN; every buffer is disposed before returning.
 */
export function runKernel(b: Backend, name: KernelName, args: ArgSpec[]): HostArray[] {
  const made: Buf[] = [];
  try {
    const bufs = args.map((a) => {
      if (a === null || typeof a !== 'object') return a;
      const buf = b.fromHost(
        a.kind === 'in' ? a.data
        : a.int ? new Int32Array(a.size).fill(INT_POISON)
        : a.init ? Float32Array.from(a.init)
        : new Float32Array(a.size).fill(NaN),
      );
      made.push(buf);
      return buf;
    });
    (b.k[name] as (...x: unknown[]) => void)(...bufs);
    const outs: HostArray[] = [];
    args.forEach((a, i) => {
      if (a !== null && typeof a === 'object' && a.kind === 'out' && !a.scratch) outs.push(b.read(bufs[i] as Buf));
    });
    return outs;
  } finally {
    for (const buf of made) b.dispose(buf);
  }
}

/** Options of {@link checkKernels}. */
export interface KernelCheckOptions {
  /** Kernels to check (default: all). */
  only?: readonly KernelName[];
  /** Case i of every kernel draws its data from mulberry32(seed + i); default derived from Date.now(). */
  seed?: number;
  /** Multiplies a kernel's tolerances (e.g. for a backend documented as less exact); exact kernels stay exact. */
  tolScale?: Partial<Record<KernelName, number>>;
}

/** One output of one case; a case that threw has one row with output null, error Infinity and the message. */
export interface KernelCheckResult {
  /** The kernel checked. */
  kernel: KernelName;
  /** The case's sizes (dimensions and flags). */
  sizes: number[];
  /** Which output of the kernel (its index among the outputs), or null when the case threw. */
  output: number | null;
  /** Normwise relative error, bounded by tol. */
  error: number;
  /** The worst element's error (elementError), bounded by ELEMENT_FACTOR · tol. */
  elementError: number;
  /** The tolerance this output is held to. */
  tol: number;
  /** Whether both errors are within their bounds. */
  ok: boolean;
  /** The seed this case's data came from (mulberry32), to rebuild it with `cases[kernel].build`. */
  seed: number;
  /** The error message of a case that threw. */
  message?: string;
}

/**
 * Every case of every kernel (or of `options.only`) on `backend` (a backend or its name: 'cpu', 'cuda') and on
 * the reference, compared output by output. Throws only for bad arguments or a backend that cannot load; a
 * failing kernel, or one that throws, gives rows with ok false (and the message).
 */
export function checkKernels(backend: Backend | string, options: KernelCheckOptions = {}): KernelCheckResult[] {
  if (typeof backend === 'string') backend = backendByName(backend);
  if (backend === null || typeof backend !== 'object' || typeof backend.k !== 'object')
    throw new TypeError(`checkKernels: expected a backend or a backend name, got ${backend === null ? 'null' : typeof backend}`);
  const reference = backendByName('reference');
  const only = options.only ?? KERNEL_NAMES;
  if (!Array.isArray(only)) throw new TypeError(`checkKernels: options.only must be an array of kernel names, got ${typeof only}`);
  for (const name of only) {
    if (!(KERNEL_NAMES as readonly string[]).includes(name))
      throw new RangeError(`checkKernels: unknown kernel '${String(name)}' in options.only; known: ${KERNEL_NAMES.join(', ')}`);
  }
  const seed = options.seed ?? Date.now() % 2 ** 31;
  if (!Number.isSafeInteger(seed)) throw new RangeError(`checkKernels: options.seed must be an integer, got ${seed}`);
  for (const [name, s] of Object.entries(options.tolScale ?? {})) {
    if (!(KERNEL_NAMES as readonly string[]).includes(name))
      throw new RangeError(`checkKernels: unknown kernel '${name}' in options.tolScale; known: ${KERNEL_NAMES.join(', ')}`);
    if (typeof s !== 'number' || !(s > 0) || !Number.isFinite(s))
      throw new RangeError(`checkKernels: options.tolScale.${name} must be a positive number, got ${String(s)}`);
  }

  const rows: KernelCheckResult[] = [];
  for (const kernel of KERNEL_NAMES) {
    if (!only.includes(kernel)) continue;
    const c: KernelCase = cases[kernel];
    const scale = options.tolScale?.[kernel] ?? 1;
    c.sizes.forEach((sizes, si) => {
      const caseSeed = seed + si;
      let tol = 0;
      try {
        const built = c.build(sizes, mulberry32(caseSeed));
        tol = built.tol * scale;
        const want = runKernel(reference, kernel, built.args);
        const got = runKernel(backend, kernel, built.args);
        want.forEach((w, output) => {
          const floor = typeof built.floor === 'number' ? built.floor : built.floor?.[output];
          const outTol = w instanceof Int32Array ? 0 : tol; // indices are exact
          const c = compare(got[output] ?? [], w, outTol, floor ?? 0);
          rows.push({ kernel, sizes, output, error: c.error, elementError: c.elementError, tol: outTol, ok: c.ok, seed: caseSeed });
        });
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        rows.push({ kernel, sizes, output: null, error: Infinity, elementError: Infinity, tol, ok: false, seed: caseSeed, message });
      }
    });
  }
  return rows;
}

/** float32 → bfloat16 → float32, rounding to nearest even (PyTorch's conversion; NaN stays NaN). */
export const roundToBfloat16 = (values: Float32Array): Float32Array => fromBfloat16(toBfloat16(values));

/**
 * The kernels whose products run in bfloat16 under rg.autocast, and how to give the reference the same product: the
 * operands rounded to bfloat16 (alpha folded into the first before rounding, as the packed kernels do), biases and
 * accumulated outputs left float32.
 */
const BF16_PRODUCTS: Partial<Record<KernelName, (args: ArgSpec[]) => ArgSpec[]>> = (() => {
  const round = (a: ArgSpec, scale = 1): ArgSpec => {
    const data = (a as { data: Float32Array }).data;
    return inp(roundToBfloat16(scale === 1 ? data : data.map((v) => scale * v)));
  };
  return {
    // [out, a, b, M, N, K, transA, transB, alpha, beta]
    matmul: (a) => [a[0], round(a[1], a[8] as number), round(a[2]), ...a.slice(3, 8), 1, a[9]],
    // [out, a, b, batch, M, N, K, transA, transB, strideA, strideB, alpha, beta]
    bmm: (a) => [a[0], round(a[1], a[11] as number), round(a[2]), ...a.slice(3, 11), 1, a[12]],
    // [out, inp, weight, bias, …]
    linear_forward: (a) => [a[0], round(a[1]), round(a[2]), ...a.slice(3)],
    conv2d_forward: (a) => [a[0], round(a[1]), round(a[2]), ...a.slice(3)],
  };
})();

/**
 * The products of rg.autocast('bfloat16') on `backend`: each case of matmul, bmm, linear_forward and conv2d_forward run
 * with bfloat16 products, against the reference given the operands rounded to bfloat16 (the sums agree to float32's
 * precision). Meaningful where the backend has bfloat16 products (the cpu backend's detail.bf16Products); elsewhere
 * its products stay float32 and the rows show the rounding's size instead.
 */
export function checkBf16Products(backend: Backend | string, options: Pick<KernelCheckOptions, 'seed'> = {}): KernelCheckResult[] {
  if (typeof backend === 'string') backend = backendByName(backend);
  const reference = backendByName('reference');
  const seed = options.seed ?? Date.now() % 2 ** 31;
  const rows: KernelCheckResult[] = [];
  for (const [kernel, toReference] of Object.entries(BF16_PRODUCTS) as [KernelName, (a: ArgSpec[]) => ArgSpec[]][]) {
    cases[kernel].sizes.forEach((sizes, si) => {
      const caseSeed = seed + si;
      const built = cases[kernel].build(sizes, mulberry32(caseSeed));
      const tol = 2 * built.tol;
      try {
        const want = runKernel(reference, kernel, toReference(built.args));
        backend.setMatmulPrecision?.('bfloat16');
        let got: HostArray[];
        try {
          got = runKernel(backend, kernel, built.args);
        } finally {
          backend.setMatmulPrecision?.(productPrecision());
        }
        want.forEach((w, output) => {
          const c = compare(got[output] ?? [], w, tol);
          rows.push({ kernel, sizes, output, error: c.error, elementError: c.elementError, tol, ok: c.ok, seed: caseSeed });
        });
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        rows.push({ kernel, sizes, output: null, error: Infinity, elementError: Infinity, tol, ok: false, seed: caseSeed, message });
      }
    });
  }
  return rows;
}

/** One kernel's rows of checkKernels, summarised. */
export interface KernelCheckSummary {
  /** The kernel. */
  kernel: KernelName;
  /** Cases (sizes) whose every output passed, of `total`. */
  passed: number;
  /** Cases run. */
  total: number;
  /** The row furthest over (or nearest to) its tolerance, by error / tol. */
  worst: KernelCheckResult;
  /** The rows that failed. */
  failures: KernelCheckResult[];
}

/** checkKernels' rows grouped by kernel, in the contract's order. */
export function summarizeKernelCheck(rows: readonly KernelCheckResult[]): KernelCheckSummary[] {
  // a NaN error (NaN on both sides where the norms differ) ranks with Infinity
  const ratio = (r: KernelCheckResult) => {
    const e = Math.max(r.error, r.elementError / ELEMENT_FACTOR);
    return Number.isNaN(e) ? Infinity : e === 0 ? 0 : r.tol > 0 ? e / r.tol : Infinity;
  };
  const byKernel = new Map<KernelName, KernelCheckResult[]>();
  for (const r of rows) byKernel.set(r.kernel, [...(byKernel.get(r.kernel) ?? []), r]);
  return KERNEL_NAMES.filter((k) => byKernel.has(k)).map((kernel) => {
    const mine = byKernel.get(kernel)!;
    const caseOk = new Map<number[], boolean>();
    for (const r of mine) caseOk.set(r.sizes, (caseOk.get(r.sizes) ?? true) && r.ok);
    const worst = mine.reduce((a, b) => (ratio(b) > ratio(a) ? b : a));
    return { kernel, passed: [...caseOk.values()].filter(Boolean).length, total: caseOk.size, worst, failures: mine.filter((r) => !r.ok) };
  });
}
