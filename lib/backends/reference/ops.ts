// Reference generic tensor operations, as native/cpu/ops.cc: broadcasting elementwise ops, reductions over a middle
// axis, strided copies, batched matrix products and the index kernels. Written for obviousness: one loop per
// output element, sums in JavaScript numbers (double).
import { EW, MAX_DIMS, REDUCE } from '../../backend.js';
import { RetrogradError } from '../../errors.js';
import { erf } from './activations.js';
import type { F, I } from './types.js';

type Any = F | I;

const SQRT1_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** One element of an EW op (b, c unused by unary ops). */
export function ewValue(op: number, a: number, b: number, c: number, alpha: number, beta: number): number {
  switch (op) {
    case EW.identity: return a;
    case EW.neg: return -a;
    case EW.exp: return Math.exp(a);
    case EW.log: return Math.log(a);
    case EW.log1p: return Math.log1p(a);
    case EW.sqrt: return Math.sqrt(a);
    case EW.rsqrt: return 1 / Math.sqrt(a);
    case EW.abs: return Math.abs(a);
    case EW.sign: return Number.isNaN(a) ? a : Math.sign(a) + 0; // + 0: sign(−0) is 0
    case EW.sin: return Math.sin(a);
    case EW.cos: return Math.cos(a);
    case EW.tanh: return Math.tanh(a);
    case EW.sigmoid: return 1 / (1 + Math.exp(-a));
    case EW.relu: return a < 0 ? 0 : a;
    case EW.gelu: return 0.5 * a * (1 + erf(a * SQRT1_2));
    case EW.leakyRelu: return a < 0 ? alpha * a : a;
    case EW.softplus: return alpha * a > beta ? a : Math.log1p(Math.exp(alpha * a)) / alpha;
    case EW.clamp: return Number.isNaN(a) ? a : Math.min(Math.max(a, alpha), beta);
    case EW.square: return a * a;
    case EW.reciprocal: return 1 / a;
    case EW.powScalar: return Math.pow(a, alpha);
    case EW.affine: return alpha * a + beta;
    case EW.geluGrad: return 0.5 * (1 + erf(a * SQRT1_2)) + a * INV_SQRT_2PI * Math.exp(-0.5 * a * a);
    case EW.add: return a + b;
    case EW.sub: return a - b;
    case EW.mul: return a * b;
    case EW.div: return a / b;
    case EW.pow: return Math.pow(a, b);
    case EW.maximum: return Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b);
    case EW.minimum: return Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b);
    case EW.eq: return a === b ? 1 : 0;
    case EW.ne: return a !== b ? 1 : 0;
    case EW.lt: return a < b ? 1 : 0;
    case EW.le: return a <= b ? 1 : 0;
    case EW.gt: return a > b ? 1 : 0;
    case EW.ge: return a >= b ? 1 : 0;
    case EW.reluGrad: return b <= 0 ? 0 : a;
    case EW.leakyReluGrad: return b > 0 ? a : alpha * a;
    case EW.maskedFill: return b !== 0 ? alpha : a;
    case EW.axpby: return alpha * a + beta * b;
    case EW.sigmoidGrad: return a * b * (1 - b);
    case EW.tanhGrad: return a * (1 - b * b);
    case EW.where: return a !== 0 ? b : c;
    default: throw new RetrogradError(`elementwise: unknown op code ${op}`, 'INVALID_ARGUMENT');
  }
}

/** Whether an EW op reads b (binary and ternary ops) and c (where). */
export const ewReadsB = (op: number) => op >= EW.add;
export const ewReadsC = (op: number) => op === EW.where;

export function elementwise(out: F, a: F, b: F | null, c: F | null, op: number, alpha: number, beta: number, ndim: number,
  d0: number, d1: number, d2: number, d3: number, d4: number, d5: number, amask: number, bmask: number, cmask: number): void {
  if (ndim > MAX_DIMS) throw new RetrogradError(`elementwise: at most ${MAX_DIMS} dimensions, got ${ndim}`, 'INVALID_ARGUMENT');
  ewValue(op, 0, 0, 0, alpha, beta); // an unknown op fails before anything is written
  if (ewReadsB(op) && !b) throw new RetrogradError(`elementwise: op ${op} needs b`, 'INVALID_ARGUMENT');
  if (ewReadsC(op) && !c) throw new RetrogradError(`elementwise: op ${op} needs c`, 'INVALID_ARGUMENT');
  const dims = [d0, d1, d2, d3, d4, d5].slice(0, ndim);
  // the stride of each input along each output dimension: 0 where it broadcasts
  const stridesOf = (mask: number) => {
    const s = new Array<number>(ndim).fill(0);
    let step = 1;
    for (let k = ndim - 1; k >= 0; k--) {
      if (!((mask >> k) & 1)) {
        s[k] = step;
        step *= dims[k];
      }
    }
    return s;
  };
  const sa = stridesOf(amask), sb = stridesOf(bmask), sc = stridesOf(cmask);
  const n = dims.reduce((p, d) => p * d, 1);
  const index = new Array<number>(ndim).fill(0);
  for (let i = 0; i < n; i++) {
    let ia = 0, ib = 0, ic = 0;
    for (let k = 0; k < ndim; k++) {
      ia += index[k] * sa[k];
      ib += index[k] * sb[k];
      ic += index[k] * sc[k];
    }
    out[i] = ewValue(op, a[ia], b ? b[ib] : 0, c ? c[ic] : 0, alpha, beta);
    for (let k = ndim - 1; k >= 0; k--) {
      if (++index[k] < dims[k]) break;
      index[k] = 0;
    }
  }
}

export function elementwise_flat(out: F, a: F, b: F | null, c: F | null, op: number, alpha: number, beta: number, N: number): void {
  elementwise(out, a, b, c, op, alpha, beta, 1, N, 1, 1, 1, 1, 1, 0, 0, 0);
}

export function reduce(out: F, idx: I | null, a: F, op: number, outer: number, R: number, inner: number): void {
  if (op !== REDUCE.sum && op !== REDUCE.max && op !== REDUCE.min) throw new RetrogradError(`reduce: unknown op code ${op}`, 'INVALID_ARGUMENT');
  if (op !== REDUCE.sum && R === 0 && outer * inner > 0)
    throw new RetrogradError(`reduce: ${op === REDUCE.max ? 'max' : 'min'} over an empty dimension has no value`, 'INVALID_ARGUMENT');
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let acc = op === REDUCE.sum ? 0 : a[o * R * inner + i];
      let at = 0;
      if (op === REDUCE.sum) for (let r = 0; r < R; r++) acc += a[(o * R + r) * inner + i];
      else {
        for (let r = 1; r < R && !Number.isNaN(acc); r++) {
          const v = a[(o * R + r) * inner + i];
          if (Number.isNaN(v) || (op === REDUCE.max ? v > acc : v < acc)) {
            acc = v;
            at = r;
          }
        }
      }
      out[o * inner + i] = acc;
      if (idx) idx[o * inner + i] = at;
    }
  }
}

/** Calls fn(contiguous index, strided position) over dims, with the strides given. */
function walk(ndim: number, offset: number, dims: number[], strides: number[], fn: (i: number, at: number) => void): void {
  const n = dims.slice(0, ndim).reduce((p, d) => p * d, 1);
  const index = new Array<number>(ndim).fill(0);
  for (let i = 0; i < n; i++) {
    let at = offset;
    for (let k = 0; k < ndim; k++) at += index[k] * strides[k];
    fn(i, at);
    for (let k = ndim - 1; k >= 0; k--) {
      if (++index[k] < dims[k]) break;
      index[k] = 0;
    }
  }
}

export function strided_copy(out: Any, a: Any, ndim: number, offset: number, d0: number, d1: number, d2: number, d3: number, d4: number, d5: number,
  s0: number, s1: number, s2: number, s3: number, s4: number, s5: number): void {
  walk(ndim, offset, [d0, d1, d2, d3, d4, d5], [s0, s1, s2, s3, s4, s5], (i, at) => { out[i] = a[at]; });
}

export function strided_scatter(out: F, a: F, ndim: number, offset: number, d0: number, d1: number, d2: number, d3: number, d4: number, d5: number,
  s0: number, s1: number, s2: number, s3: number, s4: number, s5: number, accumulate: boolean): void {
  walk(ndim, offset, [d0, d1, d2, d3, d4, d5], [s0, s1, s2, s3, s4, s5], (i, at) => { out[at] = accumulate ? out[at] + a[i] : a[i]; });
}

export function bmm(out: F, a: F, b: F, batch: number, M: number, N: number, K: number, transA: boolean, transB: boolean, strideA: number, strideB: number, alpha: number, beta: number): void {
  for (let p = 0; p < batch; p++) {
    const ao = p * strideA, bo = p * strideB, oo = p * M * N;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += a[ao + (transA ? k * M + i : i * K + k)] * b[bo + (transB ? j * K + k : k * N + j)];
        out[oo + i * N + j] = alpha * s + (beta === 0 ? 0 : beta * out[oo + i * N + j]);
      }
    }
  }
}

function checkIndex(where: string, v: number, at: number, D: number): void {
  if (!(v >= 0 && v < D)) throw new RetrogradError(`${where}: index ${v} at position ${at} is outside [0, ${D})`, 'INVALID_ARGUMENT');
}

export function index_select(out: Any, a: Any, idx: I, outer: number, D: number, inner: number, n: number): void {
  for (let j = 0; j < n; j++) checkIndex('index_select', idx[j], j, D);
  for (let o = 0; o < outer; o++)
    for (let j = 0; j < n; j++)
      for (let i = 0; i < inner; i++) out[(o * n + j) * inner + i] = a[(o * D + idx[j]) * inner + i];
}

export function index_add(out: F, src: F, idx: I, outer: number, D: number, inner: number, n: number): void {
  for (let j = 0; j < n; j++) checkIndex('index_add', idx[j], j, D);
  for (let o = 0; o < outer; o++)
    for (let j = 0; j < n; j++)
      for (let i = 0; i < inner; i++) out[(o * D + idx[j]) * inner + i] += src[(o * n + j) * inner + i];
}

export function gather(out: Any, a: Any, idx: I, outer: number, D: number, n: number, inner: number): void {
  for (let e = 0; e < outer * n * inner; e++) checkIndex('gather', idx[e], e, D);
  for (let o = 0; o < outer; o++)
    for (let j = 0; j < n; j++)
      for (let i = 0; i < inner; i++) out[(o * n + j) * inner + i] = a[(o * D + idx[(o * n + j) * inner + i]) * inner + i];
}

export function scatter_add(out: F, src: F, idx: I, outer: number, D: number, n: number, inner: number): void {
  for (let e = 0; e < outer * n * inner; e++) checkIndex('scatter_add', idx[e], e, D);
  for (let o = 0; o < outer; o++)
    for (let j = 0; j < n; j++)
      for (let i = 0; i < inner; i++) out[(o * D + idx[(o * n + j) * inner + i]) * inner + i] += src[(o * n + j) * inner + i];
}
