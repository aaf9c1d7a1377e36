// Scaled dot-product self-attention on the CPU (the contract is in lib/backend.ts). The threads share out the
// (batch row, head) pairs; each pair copies its q, k and v columns into contiguous [T, D] blocks and runs the
// products through the GEMM on its own thread (a nested call is serial): S = q·kᵀ/√D straight into its [T, T]
// slice of probs, a softmax per row (causal: the keys after the query are excluded and get probability 0),
// then out = P·v. The backward is four more products per pair: dP = dout·vᵀ, dq = dS·k/√D, dk = dSᵀ·q/√D, dv = Pᵀ·dout.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels.h"
#include "simd.h"

namespace rg::cpu {

namespace {

// A head's [T, D] block, its rows `stride` apart in a packed matrix, copied out to contiguous rows (and back).
void head_copy(float* dst, const float* src, int64_t T, int64_t D, int64_t stride) {
  for (int64_t t = 0; t < T; t++) std::memcpy(dst + t * D, src + t * stride, static_cast<size_t>(D) * 4);
}
void head_scatter(float* dst, const float* src, int64_t T, int64_t D, int64_t stride) {
  for (int64_t t = 0; t < T; t++) std::memcpy(dst + t * stride, src + t * D, static_cast<size_t>(D) * 4);
}

// Per-thread blocks of a (batch row, head) pair: q, k, v, and one more [T, D] for the output or its gradient.
struct Blocks {
  std::vector<float> buf;
  float *q, *k, *v, *o, *dq, *dk, *dv;
  void size(int64_t TD, bool backward) {
    buf.resize(static_cast<size_t>(TD * (backward ? 7 : 4)));
    q = buf.data(), k = q + TD, v = k + TD, o = v + TD;
    dq = backward ? o + TD : nullptr, dk = backward ? dq + TD : nullptr, dv = backward ? dk + TD : nullptr;
  }
  // q, k and v of head h of batch row b, from qkv [B, T, 3E]
  void load(const float* qkv, int64_t b, int64_t h, int64_t T, int64_t D, int64_t E) {
    const float* rows = qkv + b * T * 3 * E + h * D;
    head_copy(q, rows, T, D, 3 * E);
    head_copy(k, rows + E, T, D, 3 * E);
    head_copy(v, rows + 2 * E, T, D, 3 * E);
  }
};
thread_local Blocks tls_blocks;

}  // namespace

void attention_forward(ThreadPool& pool, float* out, float* probs, const float* qkv, int64_t B, int64_t T, int64_t H, int64_t D, bool causal) {
  const int64_t E = H * D, TD = T * D;
  const float scale = D > 0 ? 1.f / std::sqrt(static_cast<float>(D)) : 0.f;
  pool.parallel_for(B * H, 1, [&](int64_t p0, int64_t p1) {
    Blocks& m = tls_blocks;
    m.size(TD, false);
    for (int64_t p = p0; p < p1; p++) {
      const int64_t b = p / H, h = p % H;
      m.load(qkv, b, h, T, D, E);
      float* P = probs + p * T * T;
      gemm(pool, false, true, T, T, D, scale, m.q, m.k, 0.f, P);
      dispatch([&]() __attribute__((always_inline)) {
        for (int64_t i = 0; i < T; i++) {
          float* s = P + i * T;
          const int64_t n = causal ? i + 1 : T;  // the keys this query sees
          float mx = s[0];
          for (int64_t j = 1; j < n; j++) mx = std::max(mx, s[j]);
          for (int64_t j = 0; j < n; j++) s[j] = vexp(s[j] - mx);  // a vector loop; the sum below keeps its order
          double sum = 0;
          for (int64_t j = 0; j < n; j++) sum += s[j];
          const float inv = static_cast<float>(1.0 / sum);
          for (int64_t j = 0; j < n; j++) s[j] *= inv;
          for (int64_t j = n; j < T; j++) s[j] = 0.f;
        }
      });
      gemm(pool, false, false, T, D, T, 1.f, P, m.v, 0.f, m.o);
      head_scatter(out + b * T * E + h * D, m.o, T, D, E);
    }
  });
}

void attention_backward(ThreadPool& pool, float* dqkv, float* scratch, const float* dout, const float* qkv, const float* probs, int64_t B,
                        int64_t T, int64_t H, int64_t D, bool causal) {
  const int64_t E = H * D, TD = T * D;
  const float scale = D > 0 ? 1.f / std::sqrt(static_cast<float>(D)) : 0.f;
  pool.parallel_for(B * H, 1, [&](int64_t p0, int64_t p1) {
    Blocks& m = tls_blocks;
    m.size(TD, true);
    for (int64_t p = p0; p < p1; p++) {
      const int64_t b = p / H, h = p % H;
      m.load(qkv, b, h, T, D, E);
      head_copy(m.o, dout + b * T * E + h * D, T, D, E);  // dout's block
      const float* P = probs + p * T * T;
      float* dS = scratch + p * T * T;
      gemm(pool, false, true, T, T, D, 1.f, m.o, m.v, 0.f, dS);  // dP
      for (int64_t i = 0; i < T; i++) {
        float* d = dS + i * T;
        const float* pr = P + i * T;
        const int64_t n = causal ? i + 1 : T;
        double dot = 0;
        for (int64_t j = 0; j < n; j++) dot += static_cast<double>(d[j]) * pr[j];
        const float dt = static_cast<float>(dot);
        for (int64_t j = 0; j < n; j++) d[j] = pr[j] * (d[j] - dt);
        for (int64_t j = n; j < T; j++) d[j] = 0.f;
      }
      gemm(pool, false, false, T, D, T, scale, dS, m.k, 0.f, m.dq);
      gemm(pool, true, false, T, D, T, scale, dS, m.q, 0.f, m.dk);
      gemm(pool, true, false, T, D, T, 1.f, P, m.o, 0.f, m.dv);
      float* drows = dqkv + b * T * 3 * E + h * D;
      head_scatter(drows, m.dq, T, D, 3 * E);
      head_scatter(drows + E, m.dk, T, D, 3 * E);
      head_scatter(drows + 2 * E, m.dv, T, D, 3 * E);
    }
  });
}

}  // namespace rg::cpu
