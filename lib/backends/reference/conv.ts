// Reference convolution helpers, pooling and batch normalisation: plain loops mirroring the formulas of the
// contract (lib/backend.ts), same names and argument order as the native kernels. NCHW; windows of KH × KW,
// stride SH, SW, zero padding PH, PW, dilation DH, DW; OH = ⌊(H + 2·PH − DH·(KH − 1) − 1) / SH⌋ + 1.
//
// Gradient contract: channel_sum, and dweight/dbias of batchnorm_backward, accumulate (+=) when asked, else
// overwrite; everything else overwrites. Sums are taken in float64 (JS numbers) per output element and stored
// once; the scatters (col2im, the pooling backwards) add into a float64 plane in ascending window order.
import { matmul } from './linear.js';
import type { F, I } from './types.js';

/** Output length of a window of K taps, dilation D, over N positions with padding P and stride S. */
function outSize(N: number, K: number, S: number, P: number, D: number): number {
  return Math.floor((N + 2 * P - D * (K - 1) - 1) / S) + 1;
}

// col [C·KH·KW, B·OH·OW], inp [B, C, H, W]
export function im2col(col: F, inp: F, B: number, C: number, H: number, W: number, KH: number, KW: number, SH: number, SW: number, PH: number, PW: number, DH: number, DW: number): void {
  const OH = outSize(H, KH, SH, PH, DH), OW = outSize(W, KW, SW, PW, DW);
  const cols = B * OH * OW;
  for (let c = 0; c < C; c++) {
    for (let i = 0; i < KH; i++) {
      for (let j = 0; j < KW; j++) {
        const row = (c * KH + i) * KW + j;
        for (let b = 0; b < B; b++) {
          for (let oh = 0; oh < OH; oh++) {
            for (let ow = 0; ow < OW; ow++) {
              const h = oh * SH - PH + i * DH, w = ow * SW - PW + j * DW;
              const inside = h >= 0 && h < H && w >= 0 && w < W;
              col[row * cols + (b * OH + oh) * OW + ow] = inside ? inp[((b * C + c) * H + h) * W + w] : 0;
            }
          }
        }
      }
    }
  }
}

// dinp [B, C, H, W], dcol [C·KH·KW, B·OH·OW]: the same loops as im2col, adding where it copies.
export function col2im(dinp: F, dcol: F, B: number, C: number, H: number, W: number, KH: number, KW: number, SH: number, SW: number, PH: number, PW: number, DH: number, DW: number): void {
  const OH = outSize(H, KH, SH, PH, DH), OW = outSize(W, KW, SW, PW, DW);
  const cols = B * OH * OW;
  const acc = new Float64Array(B * C * H * W);
  for (let c = 0; c < C; c++) {
    for (let i = 0; i < KH; i++) {
      for (let j = 0; j < KW; j++) {
        const row = (c * KH + i) * KW + j;
        for (let b = 0; b < B; b++) {
          for (let oh = 0; oh < OH; oh++) {
            for (let ow = 0; ow < OW; ow++) {
              const h = oh * SH - PH + i * DH, w = ow * SW - PW + j * DW;
              if (h >= 0 && h < H && w >= 0 && w < W) acc[((b * C + c) * H + h) * W + w] += dcol[row * cols + (b * OH + oh) * OW + ow];
            }
          }
        }
      }
    }
  }
  for (let k = 0; k < B * C * H * W; k++) dinp[k] = acc[k];
}

// out [Bd, A, R], inp [A, Bd, R], bias [A]
export function transpose01(out: F, inp: F, bias: F | null, A: number, Bd: number, R: number): void {
  for (let a = 0; a < A; a++) {
    for (let b = 0; b < Bd; b++) {
      for (let r = 0; r < R; r++) out[(b * A + a) * R + r] = inp[(a * Bd + b) * R + r] + (bias ? bias[a] : 0);
    }
  }
}

// out [C], x [B, C, R]
export function channel_sum(out: F, x: F, B: number, C: number, R: number, accumulate: boolean): void {
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let b = 0; b < B; b++) for (let r = 0; r < R; r++) s += x[(b * C + c) * R + r];
    out[c] = (accumulate ? out[c] : 0) + s;
  }
}

/**
 * out, argmax [B, C, OH, OW], inp [B, C, H, W]; dilation 1. Padding is −∞ and never chosen: the index starts at
 * the window's first element inside the input (as PyTorch's), then moves on `v > best || isNaN(v)` — the first
 * maximum in row-major window order wins, and a NaN wins (the last NaN, as in PyTorch).
 */
export function maxpool2d_forward(out: F, argmax: I, inp: F, B: number, C: number, H: number, W: number, KH: number, KW: number, SH: number, SW: number, PH: number, PW: number): void {
  const OH = outSize(H, KH, SH, PH, 1), OW = outSize(W, KW, SW, PW, 1);
  for (let p = 0; p < B * C; p++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        let best = -Infinity, idx = -1;
        for (let i = 0; i < KH; i++) {
          for (let j = 0; j < KW; j++) {
            const h = oh * SH - PH + i, w = ow * SW - PW + j;
            if (h < 0 || h >= H || w < 0 || w >= W) continue;
            const v = inp[(p * H + h) * W + w];
            if (idx < 0 || v > best || Number.isNaN(v)) {
              best = v;
              idx = h * W + w;
            }
          }
        }
        out[(p * OH + oh) * OW + ow] = best;
        argmax[(p * OH + oh) * OW + ow] = idx;
      }
    }
  }
}

// dinp [B, C, H, W], dout and argmax [B, C, OH, OW]: dout added at each window's argmax, windows in ascending (oh, ow).
export function maxpool2d_backward(dinp: F, dout: F, argmax: I, B: number, C: number, H: number, W: number, KH: number, KW: number, SH: number, SW: number, PH: number, PW: number): void {
  const OH = outSize(H, KH, SH, PH, 1), OW = outSize(W, KW, SW, PW, 1);
  const plane = new Float64Array(H * W);
  for (let p = 0; p < B * C; p++) {
    plane.fill(0);
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const idx = argmax[(p * OH + oh) * OW + ow];
        if (idx >= 0) plane[idx] += dout[(p * OH + oh) * OW + ow];
      }
    }
    for (let k = 0; k < H * W; k++) dinp[p * H * W + k] = plane[k];
  }
}

/** The divisor of window (oh, ow): KH·KW, or (countIncludePad false) its elements inside the input. */
function avgDivisor(oh: number, ow: number, H: number, W: number, KH: number, KW: number, SH: number, SW: number, PH: number, PW: number, countIncludePad: boolean): number {
  if (countIncludePad) return KH * KW; // with floor output sizes no window reaches past the padded border
  const h0 = oh * SH - PH, w0 = ow * SW - PW;
  const rows = Math.min(h0 + KH, H) - Math.max(h0, 0), cols = Math.min(w0 + KW, W) - Math.max(w0, 0);
  return rows * cols;
}

// out [B, C, OH, OW], inp [B, C, H, W]; dilation 1
export function avgpool2d_forward(out: F, inp: F, B: number, C: number, H: number, W: number, KH: number, KW: number, SH: number, SW: number, PH: number, PW: number, countIncludePad: boolean): void {
  const OH = outSize(H, KH, SH, PH, 1), OW = outSize(W, KW, SW, PW, 1);
  for (let p = 0; p < B * C; p++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        let s = 0;
        for (let i = 0; i < KH; i++) {
          for (let j = 0; j < KW; j++) {
            const h = oh * SH - PH + i, w = ow * SW - PW + j;
            if (h >= 0 && h < H && w >= 0 && w < W) s += inp[(p * H + h) * W + w];
          }
        }
        out[(p * OH + oh) * OW + ow] = s / avgDivisor(oh, ow, H, W, KH, KW, SH, SW, PH, PW, countIncludePad);
      }
    }
  }
}

// dinp [B, C, H, W], dout [B, C, OH, OW]: each window's dout / divisor added to its elements, windows in ascending (oh, ow).
export function avgpool2d_backward(dinp: F, dout: F, B: number, C: number, H: number, W: number, KH: number, KW: number, SH: number, SW: number, PH: number, PW: number, countIncludePad: boolean): void {
  const OH = outSize(H, KH, SH, PH, 1), OW = outSize(W, KW, SW, PW, 1);
  const plane = new Float64Array(H * W);
  for (let p = 0; p < B * C; p++) {
    plane.fill(0);
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const g = dout[(p * OH + oh) * OW + ow] / avgDivisor(oh, ow, H, W, KH, KW, SH, SW, PH, PW, countIncludePad);
        for (let i = 0; i < KH; i++) {
          for (let j = 0; j < KW; j++) {
            const h = oh * SH - PH + i, w = ow * SW - PW + j;
            if (h >= 0 && h < H && w >= 0 && w < W) plane[h * W + w] += g;
          }
        }
      }
    }
    for (let k = 0; k < H * W; k++) dinp[p * H * W + k] = plane[k];
  }
}

/**
 * out and inp [B, C, R]; saveMean, saveInvstd, runMean, runVar, weight, bias [C]. Two passes per channel (mean,
 * then Σ(x − mean)²). The running variance takes the unbiased variance var·n/(n − 1), n = B·R; at n = 1 it takes
 * var itself (0) rather than dividing by zero.
 */
export function batchnorm_forward(out: F, saveMean: F, saveInvstd: F, runMean: F, runVar: F, inp: F, weight: F | null, bias: F | null, B: number, C: number, R: number, momentum: number, eps: number, training: boolean): void {
  const n = B * R;
  for (let c = 0; c < C; c++) {
    let mean: number, invstd: number;
    if (training) {
      let s = 0;
      for (let b = 0; b < B; b++) for (let r = 0; r < R; r++) s += inp[(b * C + c) * R + r];
      mean = s / n;
      let ss = 0;
      for (let b = 0; b < B; b++) {
        for (let r = 0; r < R; r++) {
          const d = inp[(b * C + c) * R + r] - mean;
          ss += d * d;
        }
      }
      const variance = ss / n;
      invstd = 1 / Math.sqrt(variance + eps);
      runMean[c] = (1 - momentum) * runMean[c] + momentum * mean;
      runVar[c] = (1 - momentum) * runVar[c] + momentum * ((variance * n) / Math.max(n - 1, 1));
    } else {
      mean = runMean[c];
      invstd = 1 / Math.sqrt(runVar[c] + eps);
    }
    saveMean[c] = mean;
    saveInvstd[c] = invstd;
    const w = weight ? weight[c] : 1, bb = bias ? bias[c] : 0;
    for (let b = 0; b < B; b++) {
      for (let r = 0; r < R; r++) {
        const k = (b * C + c) * R + r;
        out[k] = (inp[k] - mean) * invstd * w + bb;
      }
    }
  }
}

// dinp, dout, inp [B, C, R]; dweight, dbias, weight, saveMean, saveInvstd [C]
export function batchnorm_backward(dinp: F | null, dweight: F | null, dbias: F | null, dout: F, inp: F, weight: F | null, saveMean: F, saveInvstd: F, B: number, C: number, R: number, training: boolean, accumulate: boolean): void {
  const n = B * R;
  for (let c = 0; c < C; c++) {
    const mean = saveMean[c], invstd = saveInvstd[c];
    let sumDout = 0, sumDoutXhat = 0;
    for (let b = 0; b < B; b++) {
      for (let r = 0; r < R; r++) {
        const k = (b * C + c) * R + r;
        sumDout += dout[k];
        sumDoutXhat += dout[k] * (inp[k] - mean) * invstd;
      }
    }
    if (dweight) dweight[c] = (accumulate ? dweight[c] : 0) + sumDoutXhat;
    if (dbias) dbias[c] = (accumulate ? dbias[c] : 0) + sumDout;
    if (!dinp) continue;
    const scale = (weight ? weight[c] : 1) * invstd;
    for (let b = 0; b < B; b++) {
      for (let r = 0; r < R; r++) {
        const k = (b * C + c) * R + r;
        const xhat = (inp[k] - mean) * invstd;
        dinp[k] = training ? scale * (dout[k] - sumDout / n - (xhat * sumDoutXhat) / n) : scale * dout[k];
      }
    }
  }
}

/** A zeroed array of the same element type as `like` (float32, or float64 in gradient checks). */
function scratchLike(like: F, n: number): F {
  return like instanceof Float64Array ? new Float64Array(n) : new Float32Array(n);
}

// The fused convolution: im2col, weight·col, transpose01 with the bias, on the whole batch.
export function conv2d_forward(out: F, inp: F, weight: F, bias: F | null, B: number, C: number, H: number, W: number, OC: number, KH: number, KW: number, SH: number, SW: number, PH: number, PW: number, DH: number, DW: number): void {
  const R = outSize(H, KH, SH, PH, DH) * outSize(W, KW, SW, PW, DW), CK = C * KH * KW;
  const col = scratchLike(out, CK * B * R), y = scratchLike(out, OC * B * R);
  im2col(col, inp, B, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW);
  matmul(y, weight, col, OC, B * R, CK, false, false, 1, 0);
  transpose01(out, y, bias, OC, B, R);
}

// Its backward, written out from the same pieces.
export function conv2d_backward(dinp: F | null, dweight: F | null, dbias: F | null, dout: F, inp: F, weight: F, B: number, C: number, H: number, W: number, OC: number, KH: number, KW: number, SH: number, SW: number, PH: number, PW: number, DH: number, DW: number, accumulate: boolean): void {
  const R = outSize(H, KH, SH, PH, DH) * outSize(W, KW, SW, PW, DW), CK = C * KH * KW;
  if (dbias) channel_sum(dbias, dout, B, OC, R, accumulate);
  const dy = scratchLike(dout, OC * B * R);
  transpose01(dy, dout, null, B, OC, R);
  if (dweight) {
    const col = scratchLike(dout, CK * B * R);
    im2col(col, inp, B, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW);
    matmul(dweight, dy, col, OC, CK, B * R, false, true, 1, accumulate ? 1 : 0);
  }
  if (dinp) {
    const dcol = scratchLike(dout, CK * B * R);
    matmul(dcol, weight, dy, CK, B * R, OC, true, false, 1, 0);
    col2im(dinp, dcol, B, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW);
  }
}
