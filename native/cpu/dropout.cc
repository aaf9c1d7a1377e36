// Dropout (inverted): mask = keep / (1 − p), out = inp · mask; backward dinp = dout · mask (overwrite).
// The keep decision for element i is a pure function of (seed, i) — a 32-bit integer hash — so the CPU,
// CUDA and reference backends draw the same mask for the same seed, independent of the thread count.
#include "kernels.h"
#include "simd.h"

namespace rg::cpu {

namespace {
RG_INLINE uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}
}  // namespace

void dropout_forward(ThreadPool& pool, float* out, float* mask, const float* inp, int64_t N, float p, uint32_t seed) {
  const uint32_t s = fmix32(seed);
  const float scale = p < 1.f ? 1.f / (1.f - p) : 0.f;
  pool.parallel_for(N, 16384, [&](int64_t i0, int64_t i1) {
    dispatch([=]() __attribute__((always_inline)) {
    for (int64_t i = i0; i < i1; i++) {
      uint32_t h = fmix32((static_cast<uint32_t>(i) * 0x9E3779B9u) ^ s);
      float u = static_cast<float>(h >> 8) * (1.f / 16777216.f);
      float m = u >= p ? scale : 0.f;
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
