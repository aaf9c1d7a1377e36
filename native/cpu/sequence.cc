// Sequence-model kernels: the gradient of an embedding lookup (its forward is gather_rows) and layer
// normalisation over the last dimension. Sums run in a fixed order, so results do not depend on the thread count:
// rows in ascending order for every column of the embedding gradient and of dweight / dbias; a row's statistics in 16
// float partial sums (a vector loop) added in order in double.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels.h"
#include "simd.h"

namespace rg::cpu {

Status embedding_backward(ThreadPool& pool, float* dweight, const int32_t* index, const float* dout, int64_t rows, int64_t dim,
                          int64_t num_embeddings, bool accumulate) {
  for (int64_t r = 0; r < rows; r++)
    if (index[r] < 0 || index[r] >= num_embeddings)
      return Status::Invalid("embedding_backward: index " + std::to_string(index[r]) + " at position " + std::to_string(r) +
                             " is outside [0, " + std::to_string(num_embeddings) + ")");
  if (!accumulate) std::memset(dweight, 0, static_cast<size_t>(num_embeddings * dim) * 4);
  // Threads own column ranges, so repeated indices add in ascending r without races.
  pool.parallel_for(dim, std::max<int64_t>(16, 65536 / std::max<int64_t>(1, rows)), [&](int64_t c0, int64_t c1) {
    for (int64_t r = 0; r < rows; r++) {
      float* w = dweight + index[r] * dim;
      const float* d = dout + r * dim;
      for (int64_t c = c0; c < c1; c++) w[c] += d[c];
    }
  });
  return Status::Ok();
}

// (a row's sums: simd.h's lane_sum in 16 float partial sums, each holding dim / 16 terms)
constexpr int64_t kLanes = 16;

void layernorm_forward(ThreadPool& pool, float* out, float* save_mean, float* save_invstd, const float* inp, const float* weight,
                       const float* bias, int64_t rows, int64_t dim, float eps) {
  pool.parallel_for(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, dim)), [&](int64_t r0, int64_t r1) {
    dispatch([&]() __attribute__((always_inline)) {
      for (int64_t r = r0; r < r1; r++) {
        const float* x = inp + r * dim;
        const float mean = dim ? static_cast<float>(lane_sum<float, kLanes>(dim, [&](int64_t d) { return x[d]; }) / static_cast<double>(dim)) : 0.f;
        const double sq = lane_sum<float, kLanes>(dim, [&](int64_t d) { return (x[d] - mean) * (x[d] - mean); });
        const float invstd = static_cast<float>(1.0 / std::sqrt((dim ? sq / static_cast<double>(dim) : 0.0) + static_cast<double>(eps)));
        save_mean[r] = mean;
        save_invstd[r] = invstd;
        float* y = out + r * dim;
        for (int64_t d = 0; d < dim; d++) y[d] = (x[d] - mean) * invstd * (weight ? weight[d] : 1.f) + (bias ? bias[d] : 0.f);
      }
    });
  });
}

void layernorm_backward(ThreadPool& pool, float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* save_mean, const float* save_invstd, int64_t rows, int64_t dim, bool accumulate) {
  if (dinp) {
    pool.parallel_for(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, dim)), [&](int64_t r0, int64_t r1) {
      dispatch([&]() __attribute__((always_inline)) {
        for (int64_t r = r0; r < r1; r++) {
          const float* x = inp + r * dim;
          const float* dy = dout + r * dim;
          const float mean = save_mean[r], invstd = save_invstd[r];
          auto g = [&](int64_t d) { return dy[d] * (weight ? weight[d] : 1.f); };  // the gradient of x̂
          const float mg = static_cast<float>(lane_sum<float, kLanes>(dim, g) / static_cast<double>(dim));
          const float mgx = static_cast<float>(lane_sum<float, kLanes>(dim, [&](int64_t d) { return g(d) * ((x[d] - mean) * invstd); }) / static_cast<double>(dim));
          float* dx = dinp + r * dim;
          for (int64_t d = 0; d < dim; d++) dx[d] = invstd * (g(d) - mg - (x[d] - mean) * invstd * mgx);
        }
      });
    });
  }
  if (!dweight && !dbias) return;
  // Threads own column ranges; each walks the rows in order, so every column adds its rows in ascending order.
  pool.parallel_for(dim, std::max<int64_t>(16, 65536 / std::max<int64_t>(1, rows)), [&](int64_t c0, int64_t c1) {
    std::vector<double> sw(static_cast<size_t>(c1 - c0)), sb(static_cast<size_t>(c1 - c0));
    dispatch([&]() __attribute__((always_inline)) {
      for (int64_t r = 0; r < rows; r++) {
        const float* dy = dout + r * dim;
        const float* x = inp + r * dim;
        const float mean = save_mean[r], invstd = save_invstd[r];
        for (int64_t c = c0; c < c1; c++) {
          sw[c - c0] += static_cast<double>(dy[c]) * ((x[c] - mean) * invstd);
          sb[c - c0] += dy[c];
        }
      }
    });
    for (int64_t c = c0; c < c1; c++) {
      if (dweight) dweight[c] = (accumulate ? dweight[c] : 0.f) + static_cast<float>(sw[c - c0]);
      if (dbias) dbias[c] = (accumulate ? dbias[c] : 0.f) + static_cast<float>(sb[c - c0]);
    }
  });
}

}  // namespace rg::cpu
