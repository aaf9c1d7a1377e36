// Activations, elementwise over N values (softmax: over the last dimension C of B rows).
// Gradient contract: every backward overwrites dinp (=). Sigmoid, tanh and softmax backward read the
// forward OUTPUT (out); ReLU, LeakyReLU and GELU read the forward INPUT (inp) — each layer caches what its
// backward reads. Deterministic: no cross-element reductions except softmax's per-row sums, done in order.
#include <algorithm>
#include <cmath>

#include "kernels.h"

namespace rg::cpu {

namespace {
constexpr int64_t kGrain = 16384;
constexpr float kInvSqrt2 = 0.70710678118654752440f;
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;

template <typename F>
void map(ThreadPool& pool, int64_t N, F f) {
  pool.parallel_for(N, kGrain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) f(i);
  });
}
}  // namespace

void relu_forward(ThreadPool& pool, float* out, const float* inp, int64_t N) {
  map(pool, N, [=](int64_t i) { out[i] = inp[i] > 0.f ? inp[i] : 0.f; });
}
void relu_backward(ThreadPool& pool, float* dinp, const float* dout, const float* inp, int64_t N) {
  map(pool, N, [=](int64_t i) { dinp[i] = inp[i] > 0.f ? dout[i] : 0.f; });
}

void leaky_relu_forward(ThreadPool& pool, float* out, const float* inp, int64_t N, float slope) {
  map(pool, N, [=](int64_t i) { out[i] = inp[i] > 0.f ? inp[i] : inp[i] * slope; });
}
void leaky_relu_backward(ThreadPool& pool, float* dinp, const float* dout, const float* inp, int64_t N,
                         float slope) {
  map(pool, N, [=](int64_t i) { dinp[i] = inp[i] > 0.f ? dout[i] : dout[i] * slope; });
}

void sigmoid_forward(ThreadPool& pool, float* out, const float* inp, int64_t N) {
  map(pool, N, [=](int64_t i) { out[i] = 1.f / (1.f + std::exp(-inp[i])); });
}
void sigmoid_backward(ThreadPool& pool, float* dinp, const float* dout, const float* out, int64_t N) {
  map(pool, N, [=](int64_t i) { dinp[i] = dout[i] * out[i] * (1.f - out[i]); });
}

void tanh_forward(ThreadPool& pool, float* out, const float* inp, int64_t N) {
  map(pool, N, [=](int64_t i) { out[i] = std::tanh(inp[i]); });
}
void tanh_backward(ThreadPool& pool, float* dinp, const float* dout, const float* out, int64_t N) {
  map(pool, N, [=](int64_t i) { dinp[i] = dout[i] * (1.f - out[i] * out[i]); });
}

// GELU, erf form (PyTorch's default approximate='none'): x · Φ(x), Φ(x) = (1 + erf(x/√2)) / 2.
void gelu_forward(ThreadPool& pool, float* out, const float* inp, int64_t N) {
  map(pool, N, [=](int64_t i) {
    float x = inp[i];
    out[i] = 0.5f * x * (1.f + std::erf(x * kInvSqrt2));
  });
}
// d/dx [x Φ(x)] = Φ(x) + x φ(x), φ(x) = exp(-x²/2) / √(2π).
void gelu_backward(ThreadPool& pool, float* dinp, const float* dout, const float* inp, int64_t N) {
  map(pool, N, [=](int64_t i) {
    float x = inp[i];
    float cdf = 0.5f * (1.f + std::erf(x * kInvSqrt2));
    float pdf = kInvSqrt2Pi * std::exp(-0.5f * x * x);
    dinp[i] = dout[i] * (cdf + x * pdf);
  });
}

// Softmax over rows of C: the row maximum is subtracted first so that large logits do not overflow.
void softmax_forward(ThreadPool& pool, float* out, const float* inp, int64_t B, int64_t C) {
  pool.parallel_for(B, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, C)), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; b++) {
      const float* x = inp + b * C;
      float* y = out + b * C;
      float mx = -INFINITY;
      for (int64_t c = 0; c < C; c++) mx = std::max(mx, x[c]);
      double sum = 0;
      for (int64_t c = 0; c < C; c++) {
        y[c] = std::exp(x[c] - mx);
        sum += y[c];
      }
      float inv = static_cast<float>(1.0 / sum);
      for (int64_t c = 0; c < C; c++) y[c] *= inv;
    }
  });
}
// dinp = out ⊙ (dout − Σ_c dout·out), per row.
void softmax_backward(ThreadPool& pool, float* dinp, const float* dout, const float* out, int64_t B, int64_t C) {
  pool.parallel_for(B, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, C)), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; b++) {
      const float* dy = dout + b * C;
      const float* y = out + b * C;
      float* dx = dinp + b * C;
      double dot = 0;
      for (int64_t c = 0; c < C; c++) dot += static_cast<double>(dy[c]) * y[c];
      float d = static_cast<float>(dot);
      for (int64_t c = 0; c < C; c++) dx[c] = y[c] * (dy[c] - d);
    }
  });
}

}  // namespace rg::cpu
