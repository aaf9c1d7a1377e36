// Matrix products on the GPU, the interface the other kernel files use: C = act(alpha · op(A) · op(B) + beta · C +
// bias[col]) on the backend's stream, through the kernels of gemm_kernels.cuh (gemm.cu chooses among them).
#pragma once
#include "common.cuh"

namespace rg::cuda {

// What happens to each accumulated element on its way to C.
struct Epilogue {
  float alpha, beta, slope;
  const float* bias;
  int act;  // Activation as int
  // Leading dimensions of A and B as stored (0: those of a whole product, M or K for A and K or N for B; a slice
  // of K for split-K keeps the whole product's).
  int lda = 0, ldb = 0;
  __device__ float apply(float acc, const float* c_old, int col) const {
    float v = alpha * acc;
    if (beta != 0.f) v += beta * *c_old;
    if (bias) v += bias[col];
    if (act == 1) v = v < 0.f ? 0.f : v;  // NaN stays NaN, as in PyTorch
    else if (act == 2) v = v > 0.f ? v : v * slope;
    return v;
  }
};

// C[M,N] = act(alpha · op(A) · op(B) + beta · C + bias). M, N or K of 0: C = act(beta · C + bias) (K = 0). Row-major;
// op(A) is [M, K] (A stored [K, M] when transposed), op(B) is [K, N].
Status gemm_launch(const char* name, bool transA, bool transB, int64_t M, int64_t N, int64_t K, const float* A, const float* B,
                   float* C, const Epilogue& ep);

}  // namespace rg::cuda
