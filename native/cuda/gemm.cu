// Matrix products on the GPU: which kernel of gemm_kernels.cuh runs for a product (by precision, alignment and how
// many tiles fill the device), split-K for long thin products, and the contract's matmul kernels.
#include <algorithm>
#include <string>

#include "gemm_kernels.cuh"

namespace rg::cuda {

namespace {

// The sum of split-K partials in order, through the epilogue: C = ep(Σ_s partial[s]).
__global__ void split_k_sum_kernel(float* C, const float* partial, int splits, int64_t MN, int N, Epilogue ep) {
  RG_GUARD();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < MN; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float acc = 0.f;
    for (int sp = 0; sp < splits; sp++) acc += partial[sp * MN + i];
    C[i] = ep.apply(acc, C + i, static_cast<int>(i % N));
  }
}

template <bool TA, bool TB>
void launch_tiles(int M, int N, int K, const float* A, const float* B, float* C, const Epilogue& ep) {
  auto tiles = [&](int bm, int bn) { return static_cast<int64_t>((M + bm - 1) / bm) * ((N + bn - 1) / bn); };
  const unsigned grid128 = grid_of(M, N, 128, 128);
  if (g_tf32) {
    // The pipelined mma.sync kernel where rows are 16-byte aligned, else the wmma kernel.
    if (tc::launch<TA, TB>(M, N, K, A, B, C, ep)) return;
    tf32_gemm_kernel<true, 2, TA, TB><<<grid128, 256, 0, g_stream>>>(M, N, K, A, B, C, ep);
  } else if (tiles(128, 128) >= g_sms) {
    // Measured on an H100 at 4096³ (bench/results/gpu-gemm-variants-H100.log): slices of 8 and two blocks per
    // multiprocessor 41.7 TFLOP/s; slices of 16, one block 39.8.
    sgemm_kernel<128, 128, 8, 8, 8, 2, TA, TB><<<grid128, 256, 0, g_stream>>>(M, N, K, A, B, C, ep);
  } else if (tiles(64, 64) >= g_sms / 2) {
    sgemm_kernel<64, 64, 16, 4, 4, 2, TA, TB><<<grid_of(M, N, 64, 64), 256, 0, g_stream>>>(M, N, K, A, B, C, ep);
  } else {
    sgemm_kernel<32, 32, 16, 4, 4, 2, TA, TB><<<grid_of(M, N, 32, 32), 64, 0, g_stream>>>(M, N, K, A, B, C, ep);
  }
}

// Products with too few output tiles to fill the device and a long K (a weight gradient summed over a large
// batch: 64 × 800 × 12544 in a convolution's backward has 13 tiles of 64 × 64) are split along K: each slice
// into a partial product of its own, then one pass adds the partials in order (results repeat) through the
// epilogue. Falls back to one launch when the partials' memory cannot be had.
template <bool TA, bool TB>
void launch_gemm(int M, int N, int K, const float* A, const float* B, float* C, Epilogue ep) {
  ep.lda = TA ? M : K;
  ep.ldb = TB ? K : N;
  const int64_t tiles = static_cast<int64_t>((M + 63) / 64) * ((N + 63) / 64);
  int splits = 1;
  if (tiles < g_sms / 2 && K >= 2048) splits = static_cast<int>(std::min<int64_t>({(2 * g_sms + tiles - 1) / tiles, K / 512, 32}));
  StoragePtr partial;
  if (splits >= 2) partial = Storage::create(DType::F32, static_cast<size_t>(splits) * M * N);
  if (!partial) {
    launch_tiles<TA, TB>(M, N, K, A, B, C, ep);
    return;
  }
  const int slice = (K + splits - 1) / splits + 15 & ~15;  // a multiple of 16: slices start on 16-byte rows
  splits = (K + slice - 1) / slice;
  Epilogue plain{1.f, 0.f, 0.f, nullptr, 0, ep.lda, ep.ldb};
  for (int sp = 0; sp < splits; sp++) {
    const int k0 = sp * slice, ks = std::min(slice, K - k0);
    const float* As = TA ? A + static_cast<int64_t>(k0) * ep.lda : A + k0;  // op(A)[:, k0:] (A is [K, M] or [M, K])
    const float* Bs = TB ? B + k0 : B + static_cast<int64_t>(k0) * ep.ldb;  // op(B)[k0:, :]
    launch_tiles<TA, TB>(M, N, ks, As, Bs, partial->f32() + static_cast<int64_t>(sp) * M * N, plain);
  }
  const int64_t mn = static_cast<int64_t>(M) * N;
  split_k_sum_kernel<<<blocks_for(mn), kThreads, 0, g_stream>>>(C, partial->f32(), splits, mn, N, ep);
}

}  // namespace

Status gemm_launch(const char* name, bool transA, bool transB, int64_t M, int64_t N, int64_t K, const float* A, const float* B,
                   float* C, const Epilogue& ep) {
  if (M <= 0 || N <= 0) return Status::Ok();
  // 32-bit tile arithmetic: dimensions and the tile count stay clear of 2^31 (every tile size is at least 32)
  constexpr int64_t kMax = INT32_MAX - 256;
  if (M > kMax || N > kMax || K > kMax || (M + 31) / 32 * ((N + 31) / 32) > kMax)
    return Status::Invalid(std::string(name) + ": matrix dimensions too large for the GPU kernels (each must be below 2^31 − 256)");
  const int m = static_cast<int>(M), n = static_cast<int>(N), k = static_cast<int>(K);
  if (transA) {
    if (transB) launch_gemm<true, true>(m, n, k, A, B, C, ep);
    else launch_gemm<true, false>(m, n, k, A, B, C, ep);
  } else {
    if (transB) launch_gemm<false, true>(m, n, k, A, B, C, ep);
    else launch_gemm<false, false>(m, n, k, A, B, C, ep);
  }
  return launched(name);
}

Status gemm_ex(ThreadPool&, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               const float* B, float beta, float* C, const float* bias, Activation act, float slope) {
  return gemm_launch("matmul", transA, transB, M, N, K, A, B, C, Epilogue{alpha, beta, slope, bias, static_cast<int>(act)});
}

Status gemm(ThreadPool& pool, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
            const float* B, float beta, float* C) {
  return gemm_ex(pool, transA, transB, M, N, K, alpha, A, B, beta, C, nullptr, Activation::None, 0.f);
}

}  // namespace rg::cuda
