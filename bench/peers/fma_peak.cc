// The machine's measured float32 FMA peak, for the benchmark's table: each thread runs 24 independent vector FMA chains
// (enough to cover the FMA latency on every core of the last decade) for a fixed count, on one thread and on every
// core at once. Widest instruction set the CPU has: AVX-512, AVX2 + FMA, else none (reported as such).
// Built and run by bench/run.mjs: g++ -O2 -pthread fma_peak.cc && ./a.out THREADS → one line of JSON.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace {

constexpr long kIters = 40000000;

#if defined(__x86_64__)
// 24 chains of FMAs on vector type V (the body of each instruction set's function, compiled for its target)
#define RG_CHAINS(V, SET1, FMA)                                       \
  V c[24];                                                           \
  const V mul = SET1(0.999999f), add = SET1(1e-7f);                  \
  for (int i = 0; i < 24; i++) c[i] = SET1(1.f);                     \
  for (long it = 0; it < kIters; it++)                               \
    _Pragma("GCC unroll 24") for (int i = 0; i < 24; i++) c[i] = FMA(c[i], mul, add); \
  V s = c[0];                                                        \
  for (int i = 1; i < 24; i++) s = FMA(s, mul, c[i]);                \
  float out[sizeof(V) / 4];                                          \
  __builtin_memcpy(out, &s, sizeof(V));                              \
  return out[0];

__attribute__((target("avx512f"))) double run512() { RG_CHAINS(__m512, _mm512_set1_ps, _mm512_fmadd_ps) }
__attribute__((target("avx2,fma"))) double run256() { RG_CHAINS(__m256, _mm256_set1_ps, _mm256_fmadd_ps) }
#endif

// GFLOP/s of `threads` threads running the chains at once (2 FLOP per lane per FMA).
double measure(int threads, int lanes, double (*run)()) {
  std::vector<std::thread> pool;
  std::vector<double> sink(threads);
  const auto t0 = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; t++) pool.emplace_back([&, t] { sink[t] = run(); });
  for (auto& th : pool) th.join();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return 2.0 * lanes * 24 * kIters * threads / s / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
#if defined(__x86_64__)
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f"), avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (avx512 || avx2) {
    const int lanes = avx512 ? 16 : 8;
    double (*run)() = avx512 ? run512 : run256;
    double one = 0, all = 0;
    for (int rep = 0; rep < 5; rep++) {  // the best of five: the peak is what the hardware can do, on a quiet moment
      one = std::max(one, measure(1, lanes, run));
      all = std::max(all, measure(threads, lanes, run));
    }
    std::printf("{\"isa\":\"%s\",\"oneThread\":%.1f,\"allThreads\":%.1f,\"threads\":%d}\n", avx512 ? "avx512" : "avx2", one, all, threads);
    return 0;
  }
#endif
  std::printf("{\"isa\":\"none\"}\n");
  return 0;
}
