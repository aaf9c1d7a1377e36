// Tensor utilities the layers and the training loop use: fill, copy, axpy, row gathers (mini-batches),
// and the accuracy count. All overwrite their output except axpy and accuracy_count, which accumulate.
#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <cstring>
#include <string>

#include "kernels.h"
#include "reduce.h"
#include "simd.h"

namespace rg::cpu {

namespace {
constexpr int64_t kGrain = 32768;
}

void fill(ThreadPool& pool, float* out, int64_t N, float value) {
  pool.parallel_for(N, kGrain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) out[i] = value;
  });
}

void copy_range(ThreadPool& pool, float* out, const float* src, int64_t N, int64_t out_offset, int64_t src_offset) {
  copy(pool, out + out_offset, src + src_offset, N);
}

void copy(ThreadPool& pool, void* out, const void* src, int64_t N) {
  pool.parallel_for(N, kGrain, [&](int64_t i0, int64_t i1) {
    std::memmove(static_cast<char*>(out) + i0 * 4, static_cast<const char*>(src) + i0 * 4,
                 static_cast<size_t>(i1 - i0) * 4);
  });
}

void axpy(ThreadPool& pool, float* out, const float* src, int64_t N, float alpha) {
  pool.parallel_for(N, kGrain, [&](int64_t i0, int64_t i1) {
    dispatch([=]() __attribute__((always_inline)) {
      for (int64_t i = i0; i < i1; i++) out[i] += alpha * src[i];
    });
  });
}

// Gradient clipping (rg.clipGradNorm / clipGradValue).
// norm_accumulate: acc[0] += Σ x² (norm_type 2) or acc[0] = max(acc[0], max |x|) (infinity norm).
void norm_accumulate(ThreadPool& pool, float* acc, const float* x, int64_t N, bool inf_norm) {
  if (inf_norm) {
    float m = acc[0];
    for (int64_t i = 0; i < N; i++) m = std::max(m, std::fabs(x[i]));
    acc[0] = m;
    return;
  }
  acc[0] += static_cast<float>(parallel_sum(pool, N, kGrain, [&](int64_t i) { return static_cast<double>(x[i]) * x[i]; }));
}

// x *= min(1, max_norm / (total + 1e-6)), total = √acc[0] (2-norm) or acc[0] (infinity norm), as
// torch.nn.utils.clip_grad_norm_ computes its clip coefficient.
void clip_by_norm(ThreadPool& pool, float* x, const float* acc, int64_t N, float max_norm, bool inf_norm) {
  const float total = inf_norm ? acc[0] : std::sqrt(acc[0]);
  const float coef = std::min(1.f, max_norm / (total + 1e-6f));
  pool.parallel_for(N, kGrain, [&](int64_t i0, int64_t i1) {
    dispatch([=]() __attribute__((always_inline)) {
      for (int64_t i = i0; i < i1; i++) x[i] *= coef;
    });
  });
}

// x = clamp(x, lo, hi).
void clamp(ThreadPool& pool, float* x, int64_t N, float lo, float hi) {
  pool.parallel_for(N, kGrain, [&](int64_t i0, int64_t i1) {
    dispatch([=]() __attribute__((always_inline)) {
      for (int64_t i = i0; i < i1; i++) x[i] = std::min(std::max(x[i], lo), hi);
    });
  });
}

// Weight penalties: acc[0] += l1·Σ|w| + l2·Σw², grad += l1·sign(w) + 2·l2·w (sign(0) = 0).
void penalty(ThreadPool& pool, float* acc, float* grad, const float* w, int64_t N, float l1, float l2) {
  const double sum = parallel_sum(pool, N, kGrain, [&](int64_t i) {
    const float wi = w[i];
    grad[i] += l1 * static_cast<float>((wi > 0.f) - (wi < 0.f)) + 2.f * l2 * wi;
    return static_cast<double>(l1) * std::fabs(wi) + static_cast<double>(l2) * wi * wi;
  });
  acc[0] += static_cast<float>(sum);
}

// out[r, :] = src[index[index_offset + r], :] for r < rows; rows of `cols` 4-byte elements.
Status gather_rows(ThreadPool& pool, void* out, const void* src, const int32_t* index, int64_t rows, int64_t cols,
                   int64_t src_rows, int64_t index_offset) {
  const int32_t* idx = index + index_offset;
  for (int64_t r = 0; r < rows; r++) {
    if (idx[r] < 0 || idx[r] >= src_rows)
      return Status::Invalid("gather_rows: row index " + std::to_string(idx[r]) + " is outside [0, " +
                             std::to_string(src_rows) + ")");
  }
  pool.parallel_for(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, cols)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++)
      std::memcpy(static_cast<char*>(out) + r * cols * 4, static_cast<const char*>(src) + idx[r] * cols * 4,
                  static_cast<size_t>(cols) * 4);
  });
  return Status::Ok();
}

// count[0] += number of rows b whose first largest logit is at target[b].
void accuracy_count(ThreadPool&, float* count, const float* logits, const int32_t* target, int64_t B, int64_t C) {
  int64_t correct = 0;
  for (int64_t b = 0; b < B; b++) {
    const float* x = logits + b * C;
    int64_t best = 0;
    for (int64_t c = 1; c < C; c++)
      if (x[c] > x[best]) best = c;
    if (best == target[b]) correct++;
  }
  count[0] += static_cast<float>(correct);
}

Status check_finite(ThreadPool& pool, int32_t* first, const float* x, int64_t N, int64_t tag) {
  if (tag >= 0 && first[0] >= 0) return non_finite_before(tag, first[0]);
  // An exponent of all ones is NaN or infinity: an integer OR over the bits vectorises, a float test would not
  // (it needs reassociation). Each range finds its first bad element; the smallest index wins.
  const uint32_t* bits = reinterpret_cast<const uint32_t*>(x);
  std::atomic<int64_t> smallest{INT64_MAX};
  pool.parallel_for(N, kGrain * 4, [&](int64_t i0, int64_t i1) {
    uint32_t bad = 0;
    for (int64_t i = i0; i < i1; i++) bad |= (bits[i] & 0x7f800000u) == 0x7f800000u;
    if (!bad) return;
    int64_t i = i0;
    while ((bits[i] & 0x7f800000u) != 0x7f800000u) i++;
    int64_t seen = smallest.load();
    while (i < seen && !smallest.compare_exchange_weak(seen, i)) {}
  });
  const int64_t at = smallest.load() == INT64_MAX ? -1 : smallest.load();
  first[0] = static_cast<int32_t>(at);
  if (at >= 0 && tag >= 0) return non_finite(tag, at, x[at]);
  return Status::Ok();
}

}  // namespace rg::cpu
