// Deterministic parallel sums: the range count depends only on N, the grain and the thread count, and
// partial sums are combined in range order, so a loss reads the same on every run with the same threads.
#pragma once
#include <vector>

#include "../core/thread_pool.h"

namespace rg::cpu {

// Returns Σ_{i<N} term(i) in double, computed over the pool's fixed ranges.
template <typename Term>
double parallel_sum(ThreadPool& pool, int64_t N, int64_t grain, Term term) {
  const int R = pool.ranges_for(N, grain);
  std::vector<double> partial(R > 0 ? R : 1, 0.0);
  pool.parallel_for(R, 1, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      double s = 0;
      for (int64_t i = N * r / R; i < N * (r + 1) / R; i++) s += term(i);
      partial[r] = s;
    }
  });
  double total = 0;
  for (double p : partial) total += p;
  return total;
}

}  // namespace rg::cpu
