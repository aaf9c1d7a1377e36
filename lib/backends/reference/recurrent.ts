// Reference recurrent kernels: one layer of an RNN, LSTM or GRU over a whole sequence, forward and backward through
// time, as plain loops over steps, batch rows and units (the contract is in lib/backend.ts; the native kernels are
// native/cpu/recurrent.cc and native/cuda/recurrent.cu). Every sum runs in float64 (JS numbers).
//
// Layouts, time-major: xproj and dxproj [T, B, G·H] (gate blocks in PyTorch's order: i f g o, r z n), out and dout
// [T, B, H], w_hh [G·H, H]. ws per step: LSTM [B, 4H] activated gates then [B, H] c_t; GRU [B, 3H] r z n then [B, H]
// hn = W_hn·h' + b_hn.
import { RNN_GATES, RNN_MODE, RNN_WS } from '../../backend.js';
import type { F } from './types.js';

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** hp[b, g] = Σ_k h[b, k]·w_hh[g, k] + b_hh[g] for one step (h null: the zero state). */
function hiddenProjection(h: F | null, hOff: number, w_hh: F, b_hh: F | null, B: number, GH: number, H: number): Float64Array {
  const hp = new Float64Array(B * GH);
  for (let b = 0; b < B; b++)
    for (let g = 0; g < GH; g++) {
      let s = b_hh ? b_hh[g] : 0;
      if (h) for (let k = 0; k < H; k++) s += h[hOff + b * H + k] * w_hh[g * H + k];
      hp[b * GH + g] = s;
    }
  return hp;
}

export function rnn_forward(out: F, hN: F, cN: F | null, ws: F | null, xproj: F, w_hh: F, b_hh: F | null, h0: F | null, c0: F | null, T: number, B: number, H: number, mode: number): void {
  const G = RNN_GATES[mode], GH = G * H, S = RNN_WS[mode] * B * H;
  for (let t = 0; t < T; t++) {
    // the previous hidden state: h0 (or zeros) at t = 0, else the last step's output
    const hPrev = t > 0 ? out : h0, hOff = t > 0 ? (t - 1) * B * H : 0;
    const hp = hiddenProjection(hPrev, hOff, w_hh, b_hh, B, GH, H);
    for (let b = 0; b < B; b++)
      for (let j = 0; j < H; j++) {
        const x = (gate: number) => xproj[(t * B + b) * GH + gate * H + j];
        const p = (gate: number) => hp[b * GH + gate * H + j];
        const prev = hPrev ? hPrev[hOff + b * H + j] : 0;
        let h: number;
        if (mode === RNN_MODE.tanh || mode === RNN_MODE.relu) {
          const v = x(0) + p(0);
          h = mode === RNN_MODE.tanh ? Math.tanh(v) : Math.max(v, 0);
        } else if (mode === RNN_MODE.lstm) {
          const i = sigmoid(x(0) + p(0)), f = sigmoid(x(1) + p(1)), g = Math.tanh(x(2) + p(2)), o = sigmoid(x(3) + p(3));
          const cPrev = t > 0 ? ws![(t - 1) * S + 4 * B * H + b * H + j] : c0 ? c0[b * H + j] : 0;
          const c = f * cPrev + i * g;
          h = o * Math.tanh(c);
          const w = ws!, base = t * S + b * 4 * H + j;
          w[base] = i, w[base + H] = f, w[base + 2 * H] = g, w[base + 3 * H] = o;
          w[t * S + 4 * B * H + b * H + j] = c;
        } else {
          const r = sigmoid(x(0) + p(0)), z = sigmoid(x(1) + p(1)), n = Math.tanh(x(2) + r * p(2));
          h = (1 - z) * n + z * prev;
          const w = ws!, base = t * S + b * 3 * H + j;
          w[base] = r, w[base + H] = z, w[base + 2 * H] = n;
          w[t * S + 3 * B * H + b * H + j] = p(2);
        }
        out[(t * B + b) * H + j] = h;
      }
  }
  for (let k = 0; k < B * H; k++) hN[k] = T > 0 ? out[(T - 1) * B * H + k] : h0 ? h0[k] : 0;
  if (cN && mode === RNN_MODE.lstm) for (let k = 0; k < B * H; k++) cN[k] = T > 0 ? ws![(T - 1) * S + 4 * B * H + k] : c0 ? c0[k] : 0;
}

export function rnn_backward(dxproj: F, dw_hh: F | null, db_hh: F | null, dh0: F | null, dc0: F | null, _scratch: F, dout: F, dhN: F | null, dcN: F | null, ws: F | null, out: F, w_hh: F, h0: F | null, c0: F | null, T: number, B: number, H: number, mode: number, accumulate: boolean): void {
  const G = RNN_GATES[mode], GH = G * H, S = RNN_WS[mode] * B * H;
  // dh: the gradient reaching h_t from later steps (and the final state); dc likewise for the LSTM's cell
  let dh = Float64Array.from({ length: B * H }, (_, k) => (dhN ? dhN[k] : 0));
  let dc = Float64Array.from({ length: B * H }, (_, k) => (dcN ? dcN[k] : 0));
  // the gradients of the hidden projection's pre-activations, every step (they differ from dxproj for GRU's n gate)
  const dgh = new Float64Array(T * B * GH);
  for (let t = T - 1; t >= 0; t--) {
    const hPrev = (b: number, j: number) => (t > 0 ? out[((t - 1) * B + b) * H + j] : h0 ? h0[b * H + j] : 0);
    const direct = new Float64Array(B * H); // GRU: the part of dh_{t−1} that skips the weights (z·dh)
    for (let b = 0; b < B; b++)
      for (let j = 0; j < H; j++) {
        const k = b * H + j;
        const g = dh[k] + dout[(t * B + b) * H + j];
        const dx = (gate: number, v: number) => {
          dxproj[(t * B + b) * GH + gate * H + j] = v;
          dgh[(t * B + b) * GH + gate * H + j] = v;
        };
        if (mode === RNN_MODE.tanh) {
          const h = out[(t * B + b) * H + j];
          dx(0, g * (1 - h * h));
        } else if (mode === RNN_MODE.relu) {
          dx(0, out[(t * B + b) * H + j] > 0 ? g : 0);
        } else if (mode === RNN_MODE.lstm) {
          const base = t * S + b * 4 * H + j;
          const i = ws![base], f = ws![base + H], gg = ws![base + 2 * H], o = ws![base + 3 * H];
          const c = ws![t * S + 4 * B * H + k];
          const cPrev = t > 0 ? ws![(t - 1) * S + 4 * B * H + k] : c0 ? c0[k] : 0;
          const tc = Math.tanh(c);
          const dcell = dc[k] + g * o * (1 - tc * tc);
          dx(0, dcell * gg * i * (1 - i));
          dx(1, dcell * cPrev * f * (1 - f));
          dx(2, dcell * i * (1 - gg * gg));
          dx(3, g * tc * o * (1 - o));
          dc[k] = dcell * f;
        } else {
          const base = t * S + b * 3 * H + j;
          const r = ws![base], z = ws![base + H], n = ws![base + 2 * H], hn = ws![t * S + 3 * B * H + k];
          const dnPre = g * (1 - z) * (1 - n * n);
          const dr = dnPre * hn * r * (1 - r), dz = g * (hPrev(b, j) - n) * z * (1 - z);
          dx(0, dr);
          dx(1, dz);
          dxproj[(t * B + b) * GH + 2 * H + j] = dnPre;
          dgh[(t * B + b) * GH + 2 * H + j] = dnPre * r;
          direct[k] = g * z;
        }
      }
    // dh_{t−1} = dgates_h·W_hh (+ the direct path)
    const next = new Float64Array(B * H);
    for (let b = 0; b < B; b++)
      for (let kk = 0; kk < H; kk++) {
        let s = direct[b * H + kk];
        for (let gI = 0; gI < GH; gI++) s += dgh[(t * B + b) * GH + gI] * w_hh[gI * H + kk];
        next[b * H + kk] = s;
      }
    dh = next;
  }
  if (dh0) for (let k = 0; k < B * H; k++) dh0[k] = dh[k];
  if (dc0 && mode === RNN_MODE.lstm) for (let k = 0; k < B * H; k++) dc0[k] = dc[k];
  if (dw_hh) {
    for (let gI = 0; gI < GH; gI++)
      for (let kk = 0; kk < H; kk++) {
        let s = accumulate ? dw_hh[gI * H + kk] : 0;
        for (let t = 0; t < T; t++)
          for (let b = 0; b < B; b++) {
            const hp = t > 0 ? out[((t - 1) * B + b) * H + kk] : h0 ? h0[b * H + kk] : 0;
            s += dgh[(t * B + b) * GH + gI] * hp;
          }
        dw_hh[gI * H + kk] = s;
      }
  }
  if (db_hh) {
    for (let gI = 0; gI < GH; gI++) {
      let s = accumulate ? db_hh[gI] : 0;
      for (let row = 0; row < T * B; row++) s += dgh[row * GH + gI];
      db_hh[gI] = s;
    }
  }
}
