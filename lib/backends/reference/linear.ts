// Reference matrix products and Linear: plain loops, written for obviousness. Same names and argument
// order as native/cpu/gemm.cc and linear.cc. dweight/dbias accumulate (+=) when asked, else overwrite;
// out and dinp overwrite.
import type { F } from './types.js';

export function matmul(out: F, a: F, b: F, M: number, N: number, K: number, transA: boolean, transB: boolean, alpha: number, beta: number): void {
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) {
        const av = transA ? a[k * M + i] : a[i * K + k];
        const bv = transB ? b[j * K + k] : b[k * N + j];
        s += av * bv;
      }
      out[i * N + j] = alpha * s + (beta === 0 ? 0 : beta * out[i * N + j]);
    }
  }
}

export function linear_forward(out: F, inp: F, weight: F, bias: F | null, B: number, C: number, OC: number, act: number, slope: number): void {
  for (let b = 0; b < B; b++) {
    for (let o = 0; o < OC; o++) {
      let s = bias ? bias[o] : 0;
      for (let c = 0; c < C; c++) s += inp[b * C + c] * weight[o * C + c];
      out[b * OC + o] = activate(s, act, slope);
    }
  }
}

/** The activations of act codes 1 (ReLU) and 2 (LeakyReLU); 0 is the identity. */
function activate(v: number, act: number, slope: number): number {
  if (act === 0 || !(v <= 0)) return v; // NaN stays NaN, as in PyTorch
  return act === 1 ? 0 : v * slope;
}

export function linear_backward(dinp: F | null, dweight: F | null, dbias: F | null, dout: F, inp: F, weight: F, B: number, C: number, OC: number, accumulate: boolean): void {
  if (dinp) {
    for (let b = 0; b < B; b++) {
      for (let c = 0; c < C; c++) {
        let s = 0;
        for (let o = 0; o < OC; o++) s += dout[b * OC + o] * weight[o * C + c];
        dinp[b * C + c] = s;
      }
    }
  }
  if (dweight) {
    for (let o = 0; o < OC; o++) {
      for (let c = 0; c < C; c++) {
        let s = 0;
        for (let b = 0; b < B; b++) s += dout[b * OC + o] * inp[b * C + c];
        dweight[o * C + c] = (accumulate ? dweight[o * C + c] : 0) + s;
      }
    }
  }
  if (dbias) {
    for (let o = 0; o < OC; o++) {
      let s = 0;
      for (let b = 0; b < B; b++) s += dout[b * OC + o];
      dbias[o] = (accumulate ? dbias[o] : 0) + s;
    }
  }
}

export function act_bias_backward(dz: F | null, dbias: F | null, dout: F, out: F, B: number, OC: number, act: number, slope: number, accumulate: boolean): void {
  const grad = (i: number) => (act === 0 || !(out[i] <= 0) ? dout[i] : act === 1 ? 0 : dout[i] * slope);
  if (dz) for (let i = 0; i < B * OC; i++) dz[i] = grad(i);
  if (dbias) {
    for (let o = 0; o < OC; o++) {
      let s = 0;
      for (let b = 0; b < B; b++) s += grad(b * OC + o);
      dbias[o] = (accumulate ? dbias[o] : 0) + s;
    }
  }
}
