// Tensor utilities the layers and the training loop use: fill, copy, axpy, row gathers (mini-batches),
// and the accuracy count. All overwrite their output except axpy and accuracy_count, which accumulate.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "kernels.h"
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

}  // namespace rg::cpu
