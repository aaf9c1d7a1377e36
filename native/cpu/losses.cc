// Losses: each kernel writes the mean loss (loss[0], overwrite) and its gradient with respect to the
// prediction (overwrite) in one pass: PyTorch's reduction='mean' and the gradient of that mean.
// Deterministic: sums use parallel_sum's fixed ranges and double accumulators.
#include <algorithm>
#include <cmath>
#include <string>

#include "kernels.h"
#include "reduce.h"

namespace rg::cpu {

namespace {
constexpr int64_t kGrain = 8192;
}

// loss = Σ (pred − target)² / N; dpred = 2 (pred − target) / N.
void mse_loss(ThreadPool& pool, float* loss, float* dpred, const float* pred, const float* target, int64_t N) {
  const float scale = N > 0 ? 2.f / static_cast<float>(N) : 0.f;
  double sum = parallel_sum(pool, N, kGrain, [&](int64_t i) {
    float d = pred[i] - target[i];
    dpred[i] = scale * d;
    return static_cast<double>(d) * d;
  });
  loss[0] = static_cast<float>(sum / static_cast<double>(N));
}

// logits [B, C, D] (D = 1 for [B, C]), target [B, D] class indices. Positions whose target equals
// ignore_index contribute neither loss nor gradient and do not count in the mean.
// loss = Σ (logsumexp(x) − x_target) / count; dlogits = (softmax(x) − onehot(target)) / count.
Status cross_entropy_loss(ThreadPool& pool, float* loss, float* dlogits, const float* logits,
                          const int32_t* target, int64_t B, int64_t C, int64_t D, int64_t ignore_index) {
  const int64_t P = B * D;
  int64_t count = 0;
  for (int64_t p = 0; p < P; p++) {
    const int64_t t = target[p];
    if (t == ignore_index) continue;
    if (t < 0 || t >= C) {
      loss[0] = NAN;
      for (int64_t i = 0; i < B * C * D; i++) dlogits[i] = 0.f;
      return Status::Invalid("CrossEntropyLoss: target " + std::to_string(t) + " at position " +
                             std::to_string(p) + " is outside [0, " + std::to_string(C) + ")");
    }
    count++;
  }
  const float inv = count > 0 ? 1.f / static_cast<float>(count) : NAN;
  double sum = parallel_sum(pool, P, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, C)), [&](int64_t p) {
    const int64_t b = p / D, d = p % D;
    const float* x = logits + b * C * D + d;
    float* dx = dlogits + b * C * D + d;
    const int64_t t = target[p];
    if (t == ignore_index) {
      for (int64_t c = 0; c < C; c++) dx[c * D] = 0.f;
      return 0.0;
    }
    float mx = -INFINITY;
    for (int64_t c = 0; c < C; c++) mx = std::max(mx, x[c * D]);
    double se = 0;
    for (int64_t c = 0; c < C; c++) {
      float e = std::exp(x[c * D] - mx);
      dx[c * D] = e;
      se += e;
    }
    const float inv_se = static_cast<float>(1.0 / se);
    for (int64_t c = 0; c < C; c++) dx[c * D] *= inv_se * inv;
    dx[t * D] -= inv;
    return static_cast<double>(mx) + std::log(se) - x[t * D];
  });
  loss[0] = count > 0 ? static_cast<float>(sum / static_cast<double>(count)) : NAN;
  return Status::Ok();
}

// loss = Σ [max(x, 0) − x·t + log(1 + exp(−|x|))] / N (stable for large |x|); dpred = (σ(x) − t) / N.
void bce_with_logits_loss(ThreadPool& pool, float* loss, float* dpred, const float* logits, const float* target,
                          int64_t N) {
  const float inv = 1.f / static_cast<float>(N);
  double sum = parallel_sum(pool, N, kGrain, [&](int64_t i) {
    float x = logits[i], t = target[i];
    dpred[i] = (1.f / (1.f + std::exp(-x)) - t) * inv;
    return static_cast<double>(std::max(x, 0.f) - x * t + std::log1p(std::exp(-std::fabs(x))));
  });
  loss[0] = static_cast<float>(sum / static_cast<double>(N));
}

// loss = Σ |pred − target| / N; dpred = sign(pred − target) / N (0 where they are equal, as PyTorch).
void l1_loss(ThreadPool& pool, float* loss, float* dpred, const float* pred, const float* target, int64_t N) {
  const float inv = 1.f / static_cast<float>(N);
  double sum = parallel_sum(pool, N, kGrain, [&](int64_t i) {
    const float d = pred[i] - target[i];
    dpred[i] = d > 0.f ? inv : d < 0.f ? -inv : d == 0.f ? 0.f : d;  // sign(NaN) is NaN
    return static_cast<double>(std::fabs(d));
  });
  loss[0] = static_cast<float>(sum / static_cast<double>(N));
}

// Huber: ½d² where |d| < delta, else delta·(|d| − ½delta); dpred = clamp(d, −delta, delta) / N.
void huber_loss(ThreadPool& pool, float* loss, float* dpred, const float* pred, const float* target, int64_t N,
                float delta) {
  const float inv = 1.f / static_cast<float>(N);
  double sum = parallel_sum(pool, N, kGrain, [&](int64_t i) {
    const float d = pred[i] - target[i];
    const float ad = std::fabs(d);
    dpred[i] = std::min(std::max(d, -delta), delta) * inv;
    return static_cast<double>(ad < delta ? 0.5f * d * d : delta * (ad - 0.5f * delta));
  });
  loss[0] = static_cast<float>(sum / static_cast<double>(N));
}

// PyTorch's binary_cross_entropy: logs clamped at −100; gradient (p − t) / max(p (1 − p), 1e-12) / N.
Status bce_loss(ThreadPool& pool, float* loss, float* dpred, const float* pred, const float* target, int64_t N) {
  for (int64_t i = 0; i < N; i++) {
    if (!(pred[i] >= 0.f && pred[i] <= 1.f)) {
      loss[0] = NAN;
      for (int64_t j = 0; j < N; j++) dpred[j] = 0.f;
      return Status::Invalid("BCELoss: every input must be between 0 and 1, got " + std::to_string(pred[i]) +
                             " at index " + std::to_string(i));
    }
  }
  const float inv = 1.f / static_cast<float>(N);
  double sum = parallel_sum(pool, N, kGrain, [&](int64_t i) {
    float p = pred[i], t = target[i];
    dpred[i] = (p - t) / std::max((1.f - p) * p, 1e-12f) * inv;
    float lp = std::max(std::log(p), -100.f);
    float lq = std::max(std::log(1.f - p), -100.f);
    return -static_cast<double>(t * lp + (1.f - t) * lq);
  });
  loss[0] = static_cast<float>(sum / static_cast<double>(N));
  return Status::Ok();
}

}  // namespace rg::cpu
