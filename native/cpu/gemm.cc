// gemm: C[M,N] = alpha · op(A) · op(B) + beta · C, for the four transpose combinations that Linear's
// forward (x·Wᵀ) and backward (dy·W, dyᵀ·x) need, without transposed copies of the operands.
//
// Blocking: K is cut into blocks of KC; for each block the KC × N slice of op(B) is packed once,
// row-major, so that the micro-kernel streams it with unit stride whatever B's layout. The output is cut
// into tasks of MR rows × NC columns; a task packs its MR × KC slice of op(A) (alpha folded in) and runs the
// micro-kernel over its columns in strips of NR, accumulating an MR × NR block in registers.
// Tasks are independent and each output element is summed in k order, so the result does not depend on
// the thread count.
//
// ISA: the micro-kernel is compiled three times (x86-64-v4 = AVX-512, x86-64-v3 = AVX2+FMA, baseline
// SSE2) and chosen at load by the CPU's features (GCC target_clones), so one binary runs on any x86-64.
// RETROGRAD_CPU_ISA=portable|avx2 caps the choice, so that each path can be tested on one machine.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels.h"

namespace rg::cpu {

namespace {

constexpr int64_t KC = 256;
constexpr int64_t NC = 256;
constexpr int MR = 4;
constexpr int NR = 32;

#define RG_V4 __attribute__((target("arch=x86-64-v4")))
#define RG_V3 __attribute__((target("arch=x86-64-v3")))

// C[mr, nc] += Ap[mr, kc] · Bp[kc, nc] (Bp row stride ldb), full MR × NR blocks kept in registers.
template <int R>
inline __attribute__((always_inline)) void micro_kernel_body(const float* __restrict__ Ap, const float* __restrict__ Bp,
                                                             int64_t ldb, int64_t kc, float* __restrict__ C,
                                                             int64_t ldc, int64_t nc) {
  int64_t j = 0;
  for (; j + NR <= nc; j += NR) {
    float acc[R][NR];
    for (int r = 0; r < R; r++)
      for (int jj = 0; jj < NR; jj++) acc[r][jj] = 0.f;
    for (int64_t k = 0; k < kc; k++) {
      const float* b = Bp + k * ldb + j;
      for (int r = 0; r < R; r++) {
        float a = Ap[r * kc + k];
        for (int jj = 0; jj < NR; jj++) acc[r][jj] += a * b[jj];
      }
    }
    for (int r = 0; r < R; r++)
      for (int jj = 0; jj < NR; jj++) C[r * ldc + j + jj] += acc[r][jj];
  }
  // Edge strip narrower than NR: accumulate straight into C.
  for (int r = 0; r < R; r++) {
    float* c = C + r * ldc;
    for (int64_t k = 0; k < kc; k++) {
      float a = Ap[r * kc + k];
      const float* b = Bp + k * ldb;
      for (int64_t jj = j; jj < nc; jj++) c[jj] += a * b[jj];
    }
  }
}

template <int R>
RG_V4 void micro_kernel_v4(const float* Ap, const float* Bp, int64_t ldb, int64_t kc, float* C, int64_t ldc,
                           int64_t nc) {
  micro_kernel_body<R>(Ap, Bp, ldb, kc, C, ldc, nc);
}
template <int R>
RG_V3 void micro_kernel_v3(const float* Ap, const float* Bp, int64_t ldb, int64_t kc, float* C, int64_t ldc,
                           int64_t nc) {
  micro_kernel_body<R>(Ap, Bp, ldb, kc, C, ldc, nc);
}
template <int R>
void micro_kernel_portable(const float* Ap, const float* Bp, int64_t ldb, int64_t kc, float* C, int64_t ldc,
                           int64_t nc) {
  micro_kernel_body<R>(Ap, Bp, ldb, kc, C, ldc, nc);
}

enum class Isa { Portable, Avx2, Avx512 };

Isa detect_isa() {
  __builtin_cpu_init();
  Isa best = Isa::Portable;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = Isa::Avx2;
  if (best == Isa::Avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
    best = Isa::Avx512;
  if (const char* cap = std::getenv("RETROGRAD_CPU_ISA")) {
    if (std::strcmp(cap, "portable") == 0) best = Isa::Portable;
    else if (std::strcmp(cap, "avx2") == 0 && best == Isa::Avx512) best = Isa::Avx2;
  }
  return best;
}

const Isa kIsa = detect_isa();

template <int R>
void micro_kernel(const float* Ap, const float* Bp, int64_t ldb, int64_t kc, float* C, int64_t ldc, int64_t nc) {
  switch (kIsa) {
    case Isa::Avx512: return micro_kernel_v4<R>(Ap, Bp, ldb, kc, C, ldc, nc);
    case Isa::Avx2: return micro_kernel_v3<R>(Ap, Bp, ldb, kc, C, ldc, nc);
    default: return micro_kernel_portable<R>(Ap, Bp, ldb, kc, C, ldc, nc);
  }
}

void micro_kernel_rows(int rows, const float* Ap, const float* Bp, int64_t ldb, int64_t kc, float* C,
                       int64_t ldc, int64_t nc) {
  switch (rows) {
    case 4: return micro_kernel<4>(Ap, Bp, ldb, kc, C, ldc, nc);
    case 3: return micro_kernel<3>(Ap, Bp, ldb, kc, C, ldc, nc);
    case 2: return micro_kernel<2>(Ap, Bp, ldb, kc, C, ldc, nc);
    default: return micro_kernel<1>(Ap, Bp, ldb, kc, C, ldc, nc);
  }
}

}  // namespace

const char* gemm_isa() {
  switch (kIsa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    default: return "portable";
  }
}

void gemm(ThreadPool& pool, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
          const float* A, const float* B, float beta, float* C) {
  if (M <= 0 || N <= 0) return;
  // C = beta · C first (beta == 0 overwrites, as BLAS does).
  if (beta != 1.f) {
    pool.parallel_for(M, std::max<int64_t>(1, 16384 / N), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i++) {
        float* c = C + i * N;
        if (beta == 0.f) std::fill(c, c + N, 0.f);
        else
          for (int64_t j = 0; j < N; j++) c[j] *= beta;
      }
    });
  }
  if (K <= 0 || alpha == 0.f) return;

  const int64_t row_groups = (M + MR - 1) / MR;
  const int64_t col_chunks = (N + NC - 1) / NC;
  std::vector<float> Bp(static_cast<size_t>(std::min(K, KC) * N));

  for (int64_t k0 = 0; k0 < K; k0 += KC) {
    const int64_t kc = std::min(KC, K - k0);
    // Pack op(B)[k0:k0+kc, :] into Bp[kc][N].
    pool.parallel_for(kc, std::max<int64_t>(1, 8192 / N), [&](int64_t k_begin, int64_t k_end) {
      for (int64_t k = k_begin; k < k_end; k++) {
        float* dst = Bp.data() + k * N;
        if (!transB) {
          std::memcpy(dst, B + (k0 + k) * N, static_cast<size_t>(N) * sizeof(float));
        } else {
          for (int64_t j = 0; j < N; j++) dst[j] = B[j * K + k0 + k];
        }
      }
    });
    // One task per MR rows × NC columns; at least ~64k multiply-adds per task so small products stay on
    // one thread.
    const int64_t tasks = row_groups * col_chunks;
    const int64_t flops_per_task = static_cast<int64_t>(MR) * std::min(N, NC) * kc;
    pool.parallel_for(tasks, std::max<int64_t>(1, 65536 / std::max<int64_t>(1, flops_per_task)),
                      [&](int64_t t0, int64_t t1) {
      float Ap[MR * KC];
      int64_t packed_group = -1;
      for (int64_t t = t0; t < t1; t++) {
        const int64_t g = t / col_chunks, cchunk = t % col_chunks;
        const int64_t i0 = g * MR;
        const int rows = static_cast<int>(std::min<int64_t>(MR, M - i0));
        if (g != packed_group) {
          for (int r = 0; r < rows; r++)
            for (int64_t k = 0; k < kc; k++)
              Ap[r * kc + k] = alpha * (transA ? A[(k0 + k) * M + i0 + r] : A[(i0 + r) * K + k0 + k]);
          packed_group = g;
        }
        const int64_t j0 = cchunk * NC;
        const int64_t nc = std::min(NC, N - j0);
        micro_kernel_rows(rows, Ap, Bp.data() + j0, N, kc, C + i0 * N + j0, N, nc);
      }
    });
  }
}

}  // namespace rg::cpu
