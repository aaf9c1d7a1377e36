// Reference attention kernels: scaled dot-product self-attention of H heads over a packed q | k | v projection, as
// plain loops per batch row, head and query (the contract is in lib/backend.ts; native/cpu/attention.cc and
// native/cuda/attention.cu are the fast ones). Every sum runs in float64.
//
// qkv [B, T, 3E] with E = H·D: row (b, t) holds q, then k, then v, head h at columns h·D … h·D + D − 1 of each.
import type { F } from './types.js';

export function attention_forward(out: F, probs: F, qkv: F, B: number, T: number, H: number, D: number, causal: boolean): void {
  const E = H * D, scale = D > 0 ? 1 / Math.sqrt(D) : 0;
  const at = (b: number, t: number, part: number, h: number) => (b * T + t) * 3 * E + part * E + h * D;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let i = 0; i < T; i++) {
        const p = ((b * H + h) * T + i) * T;
        const last = causal ? i : T - 1; // the last key this query sees
        let max = -Infinity;
        const s = new Float64Array(T);
        for (let j = 0; j <= last; j++) {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += qkv[at(b, i, 0, h) + d] * qkv[at(b, j, 1, h) + d];
          s[j] = dot * scale;
          max = Math.max(max, s[j]);
        }
        let sum = 0;
        for (let j = 0; j <= last; j++) sum += (s[j] = Math.exp(s[j] - max));
        for (let j = 0; j < T; j++) probs[p + j] = j <= last ? s[j] / sum : 0;
        for (let d = 0; d < D; d++) {
          let o = 0;
          for (let j = 0; j <= last; j++) o += probs[p + j] * qkv[at(b, j, 2, h) + d];
          out[(b * T + i) * E + h * D + d] = o;
        }
      }
}

export function attention_backward(dqkv: F, _scratch: F, dout: F, qkv: F, probs: F, B: number, T: number, H: number, D: number, causal: boolean): void {
  const E = H * D, scale = D > 0 ? 1 / Math.sqrt(D) : 0;
  const at = (b: number, t: number, part: number, h: number) => (b * T + t) * 3 * E + part * E + h * D;
  dqkv.fill(0);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      // dS[i][j] = P_ij·(dP_ij − Σ_j' dP_ij'·P_ij'), dP_ij = dout_i·v_j
      const dS = new Float64Array(T * T);
      for (let i = 0; i < T; i++) {
        const p = ((b * H + h) * T + i) * T;
        const dP = new Float64Array(T);
        let dot = 0;
        for (let j = 0; j < T; j++) {
          let s = 0;
          for (let d = 0; d < D; d++) s += dout[(b * T + i) * E + h * D + d] * qkv[at(b, j, 2, h) + d];
          dP[j] = s;
          dot += s * probs[p + j];
        }
        for (let j = 0; j < T; j++) dS[i * T + j] = causal && j > i ? 0 : probs[p + j] * (dP[j] - dot);
      }
      for (let t = 0; t < T; t++)
        for (let d = 0; d < D; d++) {
          let dq = 0, dk = 0, dv = 0;
          for (let u = 0; u < T; u++) {
            dq += dS[t * T + u] * qkv[at(b, u, 1, h) + d];
            dk += dS[u * T + t] * qkv[at(b, u, 0, h) + d];
            dv += probs[((b * H + h) * T + u) * T + t] * dout[(b * T + u) * E + h * D + d];
          }
          dqkv[at(b, t, 0, h) + d] = dq * scale;
          dqkv[at(b, t, 1, h) + d] = dk * scale;
          dqkv[at(b, t, 2, h) + d] = dv;
        }
    }
}
