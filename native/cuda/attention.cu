// Scaled dot-product self-attention on the GPU, with the formulas of native/cpu/attention.cc (the contract is in
// lib/backend.ts). A warp takes one query row (batch row, head, position i): its lanes split the keys for the
// scores and the softmax, then the D output columns, each summed over the keys in order. The backward takes the
// query rows the same way (dP, dS into scratch, dq) and then the key rows (dk, dv summed over the queries in
// order), so no two threads add into one value and results repeat.
#include "common.cuh"

namespace rg::cuda {

namespace {

// Offset of head h's columns of part `part` (0 q, 1 k, 2 v) in row (b, t) of qkv [B, T, 3E].
__device__ __forceinline__ int64_t qkv_at(int64_t b, int64_t t, int part, int64_t h, int64_t T, int64_t E, int64_t D) {
  return (b * T + t) * 3 * E + part * E + h * D;
}

__global__ void attention_forward_kernel(float* out, float* probs, const float* qkv, int64_t B, int64_t T, int64_t H, int64_t D,
                                         bool causal, float scale) {
  RG_GUARD();
  const int lane = threadIdx.x % 32;
  const int64_t E = H * D;
  RG_FOR_ROWS(row, B * H * T) {
    const int64_t i = row % T, h = (row / T) % H, b = row / (T * H);
    const int64_t n = causal ? i + 1 : T;  // the keys this query sees
    const float* q = qkv + qkv_at(b, i, 0, h, T, E, D);
    float* p = probs + row * T;  // probs [B, H, T, T]: row (b, h, i)
    float mx = -INFINITY;
    for (int64_t j = lane; j < n; j += 32) {
      const float* k = qkv + qkv_at(b, j, 1, h, T, E, D);
      float s = 0.f;
      for (int64_t d = 0; d < D; d++) s += q[d] * k[d];
      p[j] = s * scale;
      mx = fmaxf(mx, p[j]);
    }
    mx = warp_max(mx);
    double sum = 0;
    for (int64_t j = lane; j < n; j += 32) sum += (p[j] = expf(p[j] - mx));
    const float inv = static_cast<float>(1.0 / warp_sum(sum));
    for (int64_t j = lane; j < T; j += 32) p[j] = j < n ? p[j] * inv : 0.f;
    __syncwarp();
    for (int64_t d = lane; d < D; d += 32) {
      float o = 0.f;
      for (int64_t j = 0; j < n; j++) o += p[j] * qkv[qkv_at(b, j, 2, h, T, E, D) + d];
      out[(b * T + i) * E + h * D + d] = o;
    }
  }
}

// Per query row: dP_ij = dout_i·v_j, dS_ij = P_ij·(dP_ij − Σ_j dP_ij·P_ij) into scratch, dq_i = scale·Σ_j dS_ij·k_j.
__global__ void attention_dq_kernel(float* dqkv, float* dS, const float* dout, const float* qkv, const float* probs, int64_t B, int64_t T,
                                    int64_t H, int64_t D, bool causal, float scale) {
  RG_GUARD();
  const int lane = threadIdx.x % 32;
  const int64_t E = H * D;
  RG_FOR_ROWS(row, B * H * T) {
    const int64_t i = row % T, h = (row / T) % H, b = row / (T * H);
    const int64_t n = causal ? i + 1 : T;
    const float* dy = dout + (b * T + i) * E + h * D;
    const float* p = probs + row * T;
    float* ds = dS + row * T;
    double dot = 0;
    for (int64_t j = lane; j < n; j += 32) {
      const float* v = qkv + qkv_at(b, j, 2, h, T, E, D);
      float s = 0.f;
      for (int64_t d = 0; d < D; d++) s += dy[d] * v[d];
      ds[j] = s;
      dot += static_cast<double>(s) * p[j];
    }
    const float dt = static_cast<float>(warp_sum(dot));
    for (int64_t j = lane; j < T; j += 32) ds[j] = j < n ? p[j] * (ds[j] - dt) : 0.f;
    __syncwarp();
    for (int64_t d = lane; d < D; d += 32) {
      float g = 0.f;
      for (int64_t j = 0; j < n; j++) g += ds[j] * qkv[qkv_at(b, j, 1, h, T, E, D) + d];
      dqkv[qkv_at(b, i, 0, h, T, E, D) + d] = g * scale;
    }
  }
}

// Per key row j: dk_j = scale·Σ_i dS_ij·q_i, dv_j = Σ_i P_ij·dout_i (i from j on when causal).
__global__ void attention_dkv_kernel(float* dqkv, const float* dS, const float* dout, const float* qkv, const float* probs, int64_t B, int64_t T,
                                     int64_t H, int64_t D, bool causal, float scale) {
  RG_GUARD();
  const int lane = threadIdx.x % 32;
  const int64_t E = H * D;
  RG_FOR_ROWS(row, B * H * T) {
    const int64_t j = row % T, h = (row / T) % H, b = row / (T * H);
    const int64_t first = causal ? j : 0;
    const int64_t plane = (b * H + h) * T * T;
    for (int64_t d = lane; d < D; d += 32) {
      float gk = 0.f, gv = 0.f;
      for (int64_t i = first; i < T; i++) {
        gk += dS[plane + i * T + j] * qkv[qkv_at(b, i, 0, h, T, E, D) + d];
        gv += probs[plane + i * T + j] * dout[(b * T + i) * E + h * D + d];
      }
      dqkv[qkv_at(b, j, 1, h, T, E, D) + d] = gk * scale;
      dqkv[qkv_at(b, j, 2, h, T, E, D) + d] = gv;
    }
  }
}

// 1/√D (0 for heads of width 0, whose scores are all 0: uniform probabilities, as on the CPU)
float attention_scale(int64_t D) { return D > 0 ? 1.f / sqrtf(static_cast<float>(D)) : 0.f; }

}  // namespace

Status attention_forward(ThreadPool&, float* out, float* probs, const float* qkv, int64_t B, int64_t T, int64_t H, int64_t D, bool causal) {
  if (B <= 0 || T <= 0 || H <= 0) return Status::Ok();
  attention_forward_kernel<<<row_blocks(B * H * T), kThreads, 0, g_stream>>>(out, probs, qkv, B, T, H, D, causal, attention_scale(D));
  return launched("attention_forward");
}

Status attention_backward(ThreadPool&, float* dqkv, float* scratch, const float* dout, const float* qkv, const float* probs, int64_t B, int64_t T,
                          int64_t H, int64_t D, bool causal) {
  if (B <= 0 || T <= 0 || H <= 0) return Status::Ok();
  const float scale = attention_scale(D);
  attention_dq_kernel<<<row_blocks(B * H * T), kThreads, 0, g_stream>>>(dqkv, scratch, dout, qkv, probs, B, T, H, D, causal, scale);
  Status s = launched("attention_backward");
  if (!s.ok()) return s;
  attention_dkv_kernel<<<row_blocks(B * H * T), kThreads, 0, g_stream>>>(dqkv, scratch, dout, qkv, probs, B, T, H, D, causal, scale);
  return launched("attention_backward");
}

}  // namespace rg::cuda
