// Dropout (inverted): mask = keep / (1 − p), out = inp · mask; backward dinp = dout · mask (overwrite).
// The keep decision for element i is a pure function of (seed, i) (core/dropout_hash.h), so the CPU, CUDA and
// reference backends draw the same mask for the same seed, independent of the thread count.
#include "../core/dropout_hash.h"
#include "kernels.h"
#include "simd.h"

namespace rg::cpu {

void dropout_forward(ThreadPool& pool, float* out, float* mask, const float* inp, int64_t N, float p, uint32_t seed) {
  const uint32_t s = fmix32(seed);
  const float scale = p < 1.f ? 1.f / (1.f - p) : 0.f;
  pool.parallel_for(N, 16384, [&](int64_t i0, int64_t i1) {
    dispatch([=]() __attribute__((always_inline)) {
      for (int64_t i = i0; i < i1; i++) {
        const float m = dropout_uniform(s, i) >= p ? scale : 0.f;
        mask[i] = m;
        out[i] = inp[i] * m;
      }
    });
  });
}

void dropout_backward(ThreadPool& pool, float* dinp, const float* dout, const float* mask, int64_t N) {
  pool.parallel_for(N, 16384, [&](int64_t i0, int64_t i1) {
    dispatch([=]() __attribute__((always_inline)) {
      for (int64_t i = i0; i < i1; i++) dinp[i] = dout[i] * mask[i];
    });
  });
}

}  // namespace rg::cpu
