// Reference tensor utilities and dropout, as native/cpu/tensor_ops.cc and dropout.cc.
import { RetrogradError } from '../../errors.js';
import type { F, I } from './types.js';

type Any = F | I;

export function fill(out: F, N: number, value: number): void {
  out.fill(value, 0, N);
}
export function copy(out: Any, src: Any, N: number): void {
  for (let i = 0; i < N; i++) out[i] = src[i];
}
export function copy_range(out: F, src: F, N: number, outOffset: number, srcOffset: number): void {
  for (let i = 0; i < N; i++) out[outOffset + i] = src[srcOffset + i];
}
export function axpy(out: F, src: F, N: number, alpha: number): void {
  for (let i = 0; i < N; i++) out[i] += alpha * src[i];
}
export function gather_rows(out: Any, src: Any, index: I, rows: number, cols: number, srcRows: number, indexOffset: number): void {
  for (let r = 0; r < rows; r++) {
    const s = index[indexOffset + r];
    if (s < 0 || s >= srcRows) throw new RetrogradError(`gather_rows: row index ${s} is outside [0, ${srcRows})`, 'INVALID_ARGUMENT');
    for (let c = 0; c < cols; c++) out[r * cols + c] = src[s * cols + c];
  }
}
export function norm_accumulate(acc: F, x: F, N: number, infNorm: boolean): void {
  let v = infNorm ? acc[0] : 0;
  for (let i = 0; i < N; i++) v = infNorm ? Math.max(v, Math.abs(x[i])) : v + x[i] * x[i];
  acc[0] = infNorm ? v : acc[0] + v;
}
export function clip_by_norm(x: F, acc: F, N: number, maxNorm: number, infNorm: boolean): void {
  const total = infNorm ? acc[0] : Math.sqrt(acc[0]);
  const coef = Math.min(1, maxNorm / (total + 1e-6));
  for (let i = 0; i < N; i++) x[i] *= coef;
}
export function clamp(x: F, N: number, lo: number, hi: number): void {
  for (let i = 0; i < N; i++) x[i] = Math.min(Math.max(x[i], lo), hi);
}
export function penalty(acc: F, grad: F, w: F, N: number, l1: number, l2: number): void {
  let s = 0;
  for (let i = 0; i < N; i++) {
    s += l1 * Math.abs(w[i]) + l2 * w[i] * w[i];
    grad[i] += l1 * Math.sign(w[i]) + 2 * l2 * w[i];
  }
  acc[0] += s;
}
export function check_finite(first: I, x: F, N: number, tag: number): void {
  if (tag >= 0 && first[0] >= 0)
    throw new RetrogradError(`check_finite: tensor ${tag} follows a failed check (element ${first[0]} of an earlier tensor was not finite)`, 'NON_FINITE');
  let at = -1;
  for (let i = 0; i < N && at < 0; i++) if (!Number.isFinite(x[i])) at = i;
  first[0] = at;
  if (at >= 0 && tag >= 0) {
    const v = x[at];
    throw new RetrogradError(`check_finite: tensor ${tag} holds ${Number.isNaN(v) ? 'NaN' : v > 0 ? '+Infinity' : '-Infinity'} at element ${at}`, 'NON_FINITE');
  }
}
export function accuracy_count(count: F, logits: F, target: I, B: number, C: number): void {
  let correct = 0;
  for (let b = 0; b < B; b++) {
    let best = 0;
    for (let c = 1; c < C; c++) if (logits[b * C + c] > logits[b * C + best]) best = c;
    if (best === target[b]) correct++;
  }
  count[0] += correct;
}

/** The 32-bit finaliser of MurmurHash3; dropout's keep decision for element i hashes (seed, i) with it. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function dropout_forward(out: F, mask: F, inp: F, N: number, p: number, seed: number): void {
  // p and the scale rounded as float32, as the native kernel computes them, so the masks agree exactly.
  const pf = Math.fround(p);
  const s = fmix32(seed);
  const scale = pf < 1 ? Math.fround(1 / Math.fround(1 - pf)) : 0;
  for (let i = 0; i < N; i++) {
    const h = fmix32((Math.imul(i, 0x9e3779b9) ^ s) >>> 0);
    const u = (h >>> 8) / 16777216;
    mask[i] = u >= pf ? scale : 0;
    out[i] = inp[i] * mask[i];
  }
}
export function dropout_backward(dinp: F, dout: F, mask: F, N: number): void {
  for (let i = 0; i < N; i++) dinp[i] = dout[i] * mask[i];
}
