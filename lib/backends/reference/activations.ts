// Reference activations. Backward overwrites dinp; sigmoid, tanh and softmax read the forward output,
// ReLU, LeakyReLU and GELU the forward input — as native/cpu/activations.cc.
import type { F } from './types.js';

export function relu_forward(out: F, inp: F, N: number): void {
  for (let i = 0; i < N; i++) out[i] = inp[i] < 0 ? 0 : inp[i]; // NaN stays NaN, as in PyTorch
}
export function relu_backward(dinp: F, dout: F, inp: F, N: number): void {
  for (let i = 0; i < N; i++) dinp[i] = inp[i] <= 0 ? 0 : dout[i]; // a NaN input passes the gradient, as PyTorch's
}
export function leaky_relu_forward(out: F, inp: F, N: number, slope: number): void {
  for (let i = 0; i < N; i++) out[i] = inp[i] > 0 ? inp[i] : inp[i] * slope;
}
export function leaky_relu_backward(dinp: F, dout: F, inp: F, N: number, slope: number): void {
  for (let i = 0; i < N; i++) dinp[i] = inp[i] > 0 ? dout[i] : dout[i] * slope;
}
export function sigmoid_forward(out: F, inp: F, N: number): void {
  for (let i = 0; i < N; i++) out[i] = 1 / (1 + Math.exp(-inp[i]));
}
export function sigmoid_backward(dinp: F, dout: F, out: F, N: number): void {
  for (let i = 0; i < N; i++) dinp[i] = dout[i] * out[i] * (1 - out[i]);
}
export function tanh_forward(out: F, inp: F, N: number): void {
  for (let i = 0; i < N; i++) out[i] = Math.tanh(inp[i]);
}
export function tanh_backward(dinp: F, dout: F, out: F, N: number): void {
  for (let i = 0; i < N; i++) dinp[i] = dout[i] * (1 - out[i] * out[i]);
}

/**
 * erf to double precision: the Maclaurin series below |x| = 3 (terms fall off fast enough that the
 * alternating sum keeps ~13 digits), and 1 − erfc from its continued fraction above.
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax < 3) {
    let term = x, sum = x;
    const x2 = x * x;
    for (let n = 1; n < 100; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  if (ax > 6) return Math.sign(x);
  // erfc(x) = e^{−x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …))))), evaluated bottom-up.
  let f = ax;
  for (let k = 60; k >= 1; k--) f = ax + k / 2 / f;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

export function gelu_forward(out: F, inp: F, N: number): void {
  for (let i = 0; i < N; i++) out[i] = 0.5 * inp[i] * (1 + erf(inp[i] / Math.SQRT2));
}
export function gelu_backward(dinp: F, dout: F, inp: F, N: number): void {
  for (let i = 0; i < N; i++) {
    const x = inp[i];
    const cdf = 0.5 * (1 + erf(x / Math.SQRT2));
    const pdf = Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
    dinp[i] = dout[i] * (cdf + x * pdf);
  }
}

export function softmax_forward(out: F, inp: F, B: number, C: number): void {
  for (let b = 0; b < B; b++) {
    let mx = -Infinity;
    for (let c = 0; c < C; c++) mx = Math.max(mx, inp[b * C + c]);
    let sum = 0;
    for (let c = 0; c < C; c++) sum += Math.exp(inp[b * C + c] - mx);
    for (let c = 0; c < C; c++) out[b * C + c] = Math.exp(inp[b * C + c] - mx) / sum;
  }
}
export function softmax_backward(dinp: F, dout: F, out: F, B: number, C: number): void {
  for (let b = 0; b < B; b++) {
    let dot = 0;
    for (let c = 0; c < C; c++) dot += dout[b * C + c] * out[b * C + c];
    for (let c = 0; c < C; c++) dinp[b * C + c] = out[b * C + c] * (dout[b * C + c] - dot);
  }
}
