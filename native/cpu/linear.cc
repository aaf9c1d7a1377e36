// Linear: out[B,OC] = act(inp[B,C] · weight[OC,C]ᵀ + bias[OC]), weight in PyTorch's [out, in] layout; the bias
// and the activation (none, ReLU, LeakyReLU) run in the gemm's epilogue, so the forward is one pass.
// Gradient contract: dinp = (overwrite); dweight and dbias accumulate (+=, like PyTorch's .grad) when
// `accumulate`, else overwrite (the training loop's zeroed gradients, without a separate fill).
// A null output pointer skips that gradient (a frozen parameter, or an input that needs none).
// Deterministic: the bias reduction adds each column's rows in ascending order (where the weight gradient's product
// splits the batch among threads, each slice's sum in slice order).
#include <algorithm>

#include "kernels.h"
#include "simd.h"

namespace rg::cpu {

void linear_forward(ThreadPool& pool, float* out, const float* inp, const float* weight, const float* bias, int64_t B,
                    int64_t C, int64_t OC, Activation act, float slope) {
  gemm_ex(pool, /*transA=*/false, /*transB=*/true, B, OC, C, 1.f, inp, weight, 0.f, out, bias, act, slope);
}

void linear_backward(ThreadPool& pool, float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                     const float* weight, int64_t B, int64_t C, int64_t OC, bool accumulate) {
  const float beta = accumulate ? 1.f : 0.f;
  // dinp[B,C] = dout[B,OC] · weight[OC,C]
  if (dinp) gemm(pool, false, false, B, C, OC, 1.f, dout, weight, 0.f, dinp);
  // dweight[OC,C] (+)= dout[B,OC]ᵀ · inp[B,C] and dbias[OC] (+)= Σ_b dout[b, :], the sums taken as the product packs dout
  if (dweight && dbias) {
    if (!accumulate) std::fill(dbias, dbias + OC, 0.f);
    gemm_rowsum(pool, OC, C, B, dout, inp, beta, dweight, dbias);
    return;
  }
  if (dweight) gemm(pool, true, false, OC, C, B, 1.f, dout, inp, beta, dweight);
  if (dbias) act_bias_backward(pool, nullptr, dbias, dout, dout, B, OC, Activation::None, 0.f, accumulate);
}

}  // namespace rg::cpu
