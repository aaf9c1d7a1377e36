// The CPU kernels of retrograd (native/cpu/): raw pointers and sizes, no Node types. The declarations are the
// shared list in core/kernel_list.h; Activation is the epilogue activation of the GEMM and Linear.
#pragma once
#include <cstdint>

#include "../core/status.h"
#include "../core/thread_pool.h"

namespace rg::cpu {

// Activations the gemm epilogue can apply (the ones whose backward can be taken from the output).
enum class Activation { None, Relu, LeakyRelu };

#define RG_KERNEL void
#include "../core/kernel_list.h"
#undef RG_KERNEL

// Whether the matrix products queued now run in bfloat16 (rg.autocast on a CPU with AVX512-BF16).
bool bf16_products(const ThreadPool& pool);

// The blocked product behind gemm_ex, over K in [kbeg, kend): C = act(alpha · op(A)[:, kbeg:kend] · op(B)[kbeg:kend, :]
// + beta · C + bias), in bfloat16 pairs under rg.autocast (bf16_products). Called from inside a pool range it runs on
// that thread alone (conv.cc's image groups). rowsum: see gemm_rowsum.
void packed(ThreadPool& pool, bool transA, bool transB, int64_t M, int64_t N, int64_t K, int64_t kbeg, int64_t kend, float alpha,
            const float* A, const float* B, float beta, float* C, const float* bias, Activation act, float slope,
            float* rowsum = nullptr);

// C[M,N] = Aᵀ·B + beta·C for A stored [K, M] (a Linear's weight gradient, dyᵀ·x), and rowsum[i] += Σ_k A[k, i] (its bias
// gradient, Σ over the batch of dy) taken while the product packs A: one pass over dy instead of two. Each row sum
// adds its terms in ascending k, as a separate pass would (where the product splits K among threads, each slice's
// sum is added in slice order).
void gemm_rowsum(ThreadPool& pool, int64_t M, int64_t N, int64_t K, const float* A, const float* B, float beta, float* C, float* rowsum);

}  // namespace rg::cpu
