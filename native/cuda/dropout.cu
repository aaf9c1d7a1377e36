// Dropout on the GPU: the same hash of (seed, i) as the CPU and the reference (native/core/dropout_hash.h).
#include "../core/dropout_hash.h"
#include "common.cuh"

namespace rg::cuda {

Status dropout_forward(ThreadPool&, float* out, float* mask, const float* inp, int64_t N, float p, uint32_t seed) {
  const uint32_t s = fmix32(seed);
  const float scale = p < 1.f ? 1.f / (1.f - p) : 0.f;
  return map("dropout_forward", N, [=] __device__(int64_t i) {
    const float m = dropout_uniform(s, i) >= p ? scale : 0.f;
    mask[i] = m;
    out[i] = inp[i] * m;
  });
}

Status dropout_backward(ThreadPool&, float* dinp, const float* dout, const float* mask, int64_t N) {
  return map("dropout_backward", N, [=] __device__(int64_t i) { dinp[i] = dout[i] * mask[i]; });
}

}  // namespace rg::cuda
