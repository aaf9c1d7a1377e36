// Losses on the GPU, with the formulas of native/cpu/losses.cc: the mean loss (loss[0], overwrite) and its gradient
// (overwrite); sums are two-stage and deterministic (common.cuh), cross-entropy takes a warp per position.
#include <cmath>

#include "common.cuh"

namespace rg::cuda {

namespace {

// Cross-entropy rows: a warp per position; the loss of a block's positions lands in partials[block].
__global__ void cross_entropy_kernel(float* dlogits, const float* logits, const int32_t* target, int64_t B, int64_t C, int64_t D,
                                     int64_t ignore_index, const int* count, double* partials) {
  RG_GUARD();
  const int lane = threadIdx.x % 32;
  const int n = *count;
  const float inv = n > 0 ? 1.f / static_cast<float>(n) : NAN;
  double block_loss = 0;
  RG_FOR_ROWS(p, B * D) {
    const int64_t b = p / D, d = p % D;
    const float* x = logits + b * C * D + d;
    float* dx = dlogits + b * C * D + d;
    const int64_t t = target[p];
    if (t == ignore_index) {
      for (int64_t c = lane; c < C; c += 32) dx[c * D] = 0.f;
      continue;
    }
    float mx = -INFINITY;
    for (int64_t c = lane; c < C; c += 32) mx = fmaxf(mx, x[c * D]);
    mx = warp_max(mx);
    double se = 0;
    for (int64_t c = lane; c < C; c += 32) se += expf(x[c * D] - mx);
    se = warp_sum(se);
    const float inv_se = static_cast<float>(1.0 / se);
    for (int64_t c = lane; c < C; c += 32) {
      const float g = expf(x[c * D] - mx) * inv_se * inv;
      dx[c * D] = c == t ? g - inv : g;
    }
    if (lane == 0) block_loss += static_cast<double>(mx) + log(se) - x[t * D];
  }
  block_loss = block_reduce<false>(block_loss);
  if (threadIdx.x == 0) partials[blockIdx.x] = block_loss;
}

}  // namespace

Status mse_loss(ThreadPool&, float* loss, float* dpred, const float* pred, const float* target, int64_t N) {
  const float scale = N > 0 ? 2.f / static_cast<float>(N) : 0.f;
  return reduce("mse_loss", N, [=] __device__(int64_t i) {
    const float d = pred[i] - target[i];
    dpred[i] = scale * d;
    return static_cast<double>(d) * d;
  }, loss, Into::Mean);
}

Status cross_entropy_loss(ThreadPool&, float* loss, float* dlogits, const float* logits, const int32_t* target, int64_t B,
                          int64_t C, int64_t D, int64_t ignore_index) {
  const int64_t P = B * D;
  std::lock_guard<std::mutex> lock(g_scratch_mu);
  int* count = g_counter;
  cudaMemsetAsync(count, 0, sizeof(int), g_stream);
  Status s = map("cross_entropy_loss", P, [=] __device__(int64_t p) {
    const int64_t t = target[p];
    if (t == ignore_index) return;
    if (t < 0 || t >= C) record_failure(kClassIndex, t, p, C, 0);
    else atomicAdd(count, 1);
  });
  if (!s.ok()) return s;
  const int parts = row_blocks(P);
  if (P > 0 && C > 0) {
    cross_entropy_kernel<<<parts, kThreads, 0, g_stream>>>(dlogits, logits, target, B, C, D, ignore_index, count, g_partials);
  } else {
    cudaMemsetAsync(g_partials, 0, sizeof(double), g_stream);
  }
  if (!(s = launched("cross_entropy_loss")).ok()) return s;
  finish_kernel<false><<<1, kThreads, 0, g_stream>>>(g_partials, parts, loss, Into::MeanOverCount, 0, count);
  return launched("cross_entropy_loss");
}

Status bce_with_logits_loss(ThreadPool&, float* loss, float* dpred, const float* logits, const float* target, int64_t N) {
  const float inv = 1.f / static_cast<float>(N);
  return reduce("bce_with_logits_loss", N, [=] __device__(int64_t i) {
    const float x = logits[i], t = target[i];
    dpred[i] = (1.f / (1.f + expf(-x)) - t) * inv;
    return static_cast<double>(fmaxf(x, 0.f) - x * t + log1pf(expf(-fabsf(x))));
  }, loss, Into::Mean);
}

Status l1_loss(ThreadPool&, float* loss, float* dpred, const float* pred, const float* target, int64_t N) {
  const float inv = 1.f / static_cast<float>(N);
  return reduce("l1_loss", N, [=] __device__(int64_t i) {
    const float d = pred[i] - target[i];
    dpred[i] = d > 0.f ? inv : d < 0.f ? -inv : d == 0.f ? 0.f : d;  // sign(NaN) is NaN
    return static_cast<double>(fabsf(d));
  }, loss, Into::Mean);
}

Status huber_loss(ThreadPool&, float* loss, float* dpred, const float* pred, const float* target, int64_t N, float delta) {
  const float inv = 1.f / static_cast<float>(N);
  return reduce("huber_loss", N, [=] __device__(int64_t i) {
    const float d = pred[i] - target[i];
    const float ad = fabsf(d);
    dpred[i] = (isnan(d) ? d : fminf(fmaxf(d, -delta), delta)) * inv;  // fmaxf drops NaN
    return static_cast<double>(ad < delta ? 0.5f * d * d : delta * (ad - 0.5f * delta));
  }, loss, Into::Mean);
}

Status bce_loss(ThreadPool&, float* loss, float* dpred, const float* pred, const float* target, int64_t N) {
  const float inv = 1.f / static_cast<float>(N);
  return reduce("bce_loss", N, [=] __device__(int64_t i) {
    const float p = pred[i], t = target[i];
    if (!(p >= 0.f && p <= 1.f)) record_failure(kProbability, i, 0, 0, p);
    dpred[i] = (p - t) / fmaxf((1.f - p) * p, 1e-12f) * inv;
    const float lp = fmaxf(logf(p), -100.f);
    const float lq = fmaxf(logf(1.f - p), -100.f);
    return -static_cast<double>(t * lp + (1.f - t) * lq);
  }, loss, Into::Mean);
}

}  // namespace rg::cuda
