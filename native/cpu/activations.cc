// Activations, elementwise over N values (softmax: over the last dimension C of B rows).
// Gradient contract: every backward overwrites dinp (=). Sigmoid, tanh and softmax backward read the
// forward OUTPUT (out); ReLU, LeakyReLU and GELU read the forward INPUT (inp) — each layer caches what its
// backward reads. act_bias_backward is the backward of an activation fused into Linear's forward (it reads
// the output) together with the bias-gradient reduction.
// Loops run through dispatch(): vectorised for AVX-512, AVX2 or SSE2 by the CPU's features, with the
// branch-free vexp / vtanh / verf of simd.h. Deterministic: per-row sums in order, fixed ranges.
#include <algorithm>
#include <cmath>

#include "kernels.h"
#include "simd.h"

namespace rg::cpu {

namespace {
constexpr int64_t kGrain = 16384;
constexpr float kInvSqrt2 = 0.70710678118654752440f;
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;

// Runs body(i0, i1) over fixed ranges of [0, N), each compiled for the CPU's widest vectors.
#define RG_ELEMENTWISE(N, BODY)                                                   \
  pool.parallel_for((N), kGrain, [&](int64_t i0, int64_t i1) {                   \
    dispatch([=]() __attribute__((always_inline)) {                               \
      for (int64_t i = i0; i < i1; i++) { BODY; }                                 \
    });                                                                           \
  })
}  // namespace

void relu_forward(ThreadPool& pool, float* out, const float* inp, int64_t N) {
  RG_ELEMENTWISE(N, out[i] = inp[i] < 0.f ? 0.f : inp[i]);  // NaN stays NaN, as in PyTorch
}
// dout is loaded whatever the sign: a load under the condition kept the loop scalar and branchy (5.5 ms for
// 1.6M random values; 0.3 ms as a vector select).
void relu_backward(ThreadPool& pool, float* dinp, const float* dout, const float* inp, int64_t N) {
  RG_ELEMENTWISE(N, const float d = dout[i]; dinp[i] = inp[i] <= 0.f ? 0.f : d);  // a NaN input passes the gradient, as PyTorch's threshold_backward
}
// The slope is copied into a local before the loop: read from the closure, a float that a float store may alias, it was
// re-read after every store and the loop stayed scalar and branchy (10% of a DCGAN step, whose discriminator uses
// LeakyReLU; the vectorised loop takes a fifth of the time).
void leaky_relu_forward(ThreadPool& pool, float* out, const float* inp, int64_t N, float slope) {
  pool.parallel_for(N, kGrain, [&](int64_t i0, int64_t i1) {
    dispatch([=]() __attribute__((always_inline)) {
      const float s = slope;
      for (int64_t i = i0; i < i1; i++) {
        const float x = inp[i];
        out[i] = x > 0.f ? x : x * s;
      }
    });
  });
}
void leaky_relu_backward(ThreadPool& pool, float* dinp, const float* dout, const float* inp, int64_t N, float slope) {
  pool.parallel_for(N, kGrain, [&](int64_t i0, int64_t i1) {
    dispatch([=]() __attribute__((always_inline)) {
      const float s = slope;
      for (int64_t i = i0; i < i1; i++) {
        const float d = dout[i];
        dinp[i] = inp[i] > 0.f ? d : d * s;
      }
    });
  });
}
void sigmoid_forward(ThreadPool& pool, float* out, const float* inp, int64_t N) {
  RG_ELEMENTWISE(N, out[i] = vsigmoid(inp[i]));
}
void sigmoid_backward(ThreadPool& pool, float* dinp, const float* dout, const float* out, int64_t N) {
  RG_ELEMENTWISE(N, dinp[i] = dout[i] * out[i] * (1.f - out[i]));
}
void tanh_forward(ThreadPool& pool, float* out, const float* inp, int64_t N) {
  RG_ELEMENTWISE(N, out[i] = vtanh(inp[i]));
}
void tanh_backward(ThreadPool& pool, float* dinp, const float* dout, const float* out, int64_t N) {
  RG_ELEMENTWISE(N, dinp[i] = dout[i] * (1.f - out[i] * out[i]));
}

// GELU, erf form (PyTorch's default approximate='none'): x · Φ(x), Φ(x) = (1 + erf(x/√2)) / 2.
void gelu_forward(ThreadPool& pool, float* out, const float* inp, int64_t N) {
  RG_ELEMENTWISE(N, out[i] = 0.5f * inp[i] * (1.f + verf(inp[i] * kInvSqrt2)));
}
// d/dx [x Φ(x)] = Φ(x) + x φ(x), φ(x) = exp(-x²/2) / √(2π): one exponential, e^(−u²) with u = x/√2, serves
// both Φ(x) = (1 + erf(u)) / 2 and φ.
void gelu_backward(ThreadPool& pool, float* dinp, const float* dout, const float* inp, int64_t N) {
  RG_ELEMENTWISE(N, {
    const float x = inp[i];
    const float u = x * kInvSqrt2;
    const float e = vexp_nonpos(-u * u);
    const float cdf = 0.5f * (1.f + verf_given(u, e));
    dinp[i] = dout[i] * (cdf + x * kInvSqrt2Pi * e);
  });
}

namespace {

// A row's maximum in 16 running maxima (a vector loop; a NaN is passed over, as std::max(m, NaN) keeps m, and then
// makes its row NaN through the exponential), combined in lane order.
RG_INLINE float row_max(const float* x, int64_t n) {
  constexpr int64_t kL = 16;
  float m[kL];
  for (int64_t l = 0; l < kL; l++) m[l] = -INFINITY;
  int64_t c = 0;
  for (; c + kL <= n; c += kL)
    for (int64_t l = 0; l < kL; l++) m[l] = x[c + l] > m[l] ? x[c + l] : m[l];
  float mx = -INFINITY;
  for (; c < n; c++) mx = x[c] > mx ? x[c] : mx;
  for (int64_t l = 0; l < kL; l++) mx = m[l] > mx ? m[l] : mx;
  return mx;
}

}  // namespace

// Softmax over rows of C: the row maximum is subtracted first so that large logits do not overflow. A row's sums (Σ y
// here, Σ dy·y in the backward) by simd.h's lane_sum in 8 double partial sums: one running sum, a chain of dependent
// adds, made a 512-wide softmax take 5× GELU's time.
void softmax_forward(ThreadPool& pool, float* out, const float* inp, int64_t B, int64_t C) {
  pool.parallel_for(B, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, C)), [&](int64_t b0, int64_t b1) {
    dispatch([=]() __attribute__((always_inline)) {
      for (int64_t b = b0; b < b1; b++) {
        const float* x = inp + b * C;
        float* y = out + b * C;
        const float mx = row_max(x, C);
        for (int64_t c = 0; c < C; c++) y[c] = vexp(x[c] - mx);
        const float inv = static_cast<float>(1.0 / lane_sum<double, 8>(C, [&](int64_t c) { return static_cast<double>(y[c]); }));
        for (int64_t c = 0; c < C; c++) y[c] *= inv;
      }
    });
  });
}
// dinp = out ⊙ (dout − Σ_c dout·out), per row.
void softmax_backward(ThreadPool& pool, float* dinp, const float* dout, const float* out, int64_t B, int64_t C) {
  pool.parallel_for(B, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, C)), [&](int64_t b0, int64_t b1) {
    dispatch([=]() __attribute__((always_inline)) {
      for (int64_t b = b0; b < b1; b++) {
        const float* dy = dout + b * C;
        const float* y = out + b * C;
        float* dx = dinp + b * C;
        const float d = static_cast<float>(lane_sum<double, 8>(C, [&](int64_t c) { return static_cast<double>(dy[c]) * y[c]; }));
        for (int64_t c = 0; c < C; c++) dx[c] = y[c] * (dy[c] - d);
      }
    });
  });
}

// dz[B,OC] = dout ⊙ act'(out) (act from the output: ReLU, LeakyReLU with slope ≥ 0, or none);
// dbias[OC] (+)= Σ_b dz — in one pass over dout. dz or dbias may be null; accumulate = false overwrites dbias.
// The bias sum runs over fixed column ranges, rows in order: deterministic.
void act_bias_backward(ThreadPool& pool, float* dz, float* dbias, const float* dout, const float* out, int64_t B,
                       int64_t OC, Activation act, float slope, bool accumulate) {
  pool.parallel_for(OC, std::max<int64_t>(16, kGrain / std::max<int64_t>(1, B)), [&](int64_t o0, int64_t o1) {
    dispatch([=]() __attribute__((always_inline)) {
      if (dbias && !accumulate)
        for (int64_t o = o0; o < o1; o++) dbias[o] = 0.f;
      for (int64_t b = 0; b < B; b++) {
        const float* d = dout + b * OC;
        const float* y = out + b * OC;
        float* z = dz ? dz + b * OC : nullptr;
        for (int64_t o = o0; o < o1; o++) {
          const float g = act == Activation::None ? d[o] : (!(y[o] <= 0.f) ? d[o] : (act == Activation::Relu ? 0.f : d[o] * slope));
          if (z) z[o] = g;
          if (dbias) dbias[o] += g;
        }
      }
    });
  });
}

}  // namespace rg::cpu
