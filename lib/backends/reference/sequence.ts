// Reference sequence-model kernels: the gradient of an embedding lookup (its forward is gather_rows) and layer
// normalisation over the last dimension, plain loops mirroring the contract (lib/backend.ts) with the native
// kernels' names and argument order (native/cpu/sequence.cc).
//
// Gradient contract: dweight of embedding_backward, and dweight / dbias of layernorm_backward, accumulate (+=)
// when asked, else overwrite; dinp overwrites. Sums are taken in float64 (JS numbers) per output element and
// stored once; an embedding row receives its dout rows in ascending r.
import { RetrogradError } from '../../errors.js';
import type { F, I } from './types.js';

// dweight [numEmbeddings, dim], index [rows], dout [rows, dim]. Every index is checked before anything is written,
// so a bad one leaves dweight as it was.
export function embedding_backward(dweight: F, index: I, dout: F, rows: number, dim: number, numEmbeddings: number, accumulate: boolean): void {
  for (let r = 0; r < rows; r++) {
    const v = index[r];
    if (v < 0 || v >= numEmbeddings)
      throw new RetrogradError(`embedding_backward: index ${v} at position ${r} is outside [0, ${numEmbeddings})`, 'INVALID_ARGUMENT');
  }
  const acc = new Float64Array(numEmbeddings * dim);
  if (accumulate) for (let k = 0; k < numEmbeddings * dim; k++) acc[k] = dweight[k];
  for (let r = 0; r < rows; r++) {
    const e = index[r];
    for (let d = 0; d < dim; d++) acc[e * dim + d] += dout[r * dim + d];
  }
  for (let k = 0; k < numEmbeddings * dim; k++) dweight[k] = acc[k];
}

/**
 * out and inp [rows, dim]; saveMean, saveInvstd [rows]; weight, bias [dim]. Two passes per row (mean, then
 * Σ(x − mean)²); the variance is the biased one, as PyTorch's layer_norm.
 */
export function layernorm_forward(out: F, saveMean: F, saveInvstd: F, inp: F, weight: F | null, bias: F | null, rows: number, dim: number, eps: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let s = 0;
    for (let d = 0; d < dim; d++) s += inp[o + d];
    const mean = dim > 0 ? s / dim : 0;
    let ss = 0;
    for (let d = 0; d < dim; d++) ss += (inp[o + d] - mean) ** 2;
    const invstd = 1 / Math.sqrt((dim > 0 ? ss / dim : 0) + eps);
    saveMean[r] = mean;
    saveInvstd[r] = invstd;
    for (let d = 0; d < dim; d++) out[o + d] = (inp[o + d] - mean) * invstd * (weight ? weight[d] : 1) + (bias ? bias[d] : 0);
  }
}

// dinp, dout, inp [rows, dim]; dweight, dbias, weight [dim]; saveMean, saveInvstd [rows]. Null outputs are skipped.
export function layernorm_backward(dinp: F | null, dweight: F | null, dbias: F | null, dout: F, inp: F, weight: F | null, saveMean: F, saveInvstd: F, rows: number, dim: number, accumulate: boolean): void {
  if (dinp) {
    for (let r = 0; r < rows; r++) {
      const o = r * dim;
      const mean = saveMean[r], invstd = saveInvstd[r];
      let sumG = 0, sumGXhat = 0;
      for (let d = 0; d < dim; d++) {
        const g = dout[o + d] * (weight ? weight[d] : 1);
        sumG += g;
        sumGXhat += g * (inp[o + d] - mean) * invstd;
      }
      for (let d = 0; d < dim; d++) {
        const g = dout[o + d] * (weight ? weight[d] : 1);
        const xhat = (inp[o + d] - mean) * invstd;
        dinp[o + d] = invstd * (g - sumG / dim - (xhat * sumGXhat) / dim);
      }
    }
  }
  if (!dweight && !dbias) return;
  for (let d = 0; d < dim; d++) {
    let sw = 0, sb = 0;
    for (let r = 0; r < rows; r++) {
      const k = r * dim + d;
      sw += dout[k] * (inp[k] - saveMean[r]) * saveInvstd[r];
      sb += dout[k];
    }
    if (dweight) dweight[d] = (accumulate ? dweight[d] : 0) + sw;
    if (dbias) dbias[d] = (accumulate ? dbias[d] : 0) + sb;
  }
}
