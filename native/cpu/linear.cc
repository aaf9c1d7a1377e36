// Linear: out[B,OC] = inp[B,C] · weight[OC,C]ᵀ + bias[OC], weight in PyTorch's [out, in] layout.
// Gradient contract: dinp = (overwrite); dweight += and dbias += (accumulate, like PyTorch's .grad).
// A null output pointer skips that gradient (a frozen parameter, or an input that needs none).
// Deterministic: the bias reduction sums rows in order within fixed column ranges.
#include <algorithm>

#include "kernels.h"

namespace rg::cpu {

void linear_forward(ThreadPool& pool, float* out, const float* inp, const float* weight, const float* bias,
                    int64_t B, int64_t C, int64_t OC) {
  float beta = 0.f;
  if (bias) {
    pool.parallel_for(B, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, OC)), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; b++) std::copy(bias, bias + OC, out + b * OC);
    });
    beta = 1.f;
  }
  gemm(pool, /*transA=*/false, /*transB=*/true, B, OC, C, 1.f, inp, weight, beta, out);
}

void linear_backward(ThreadPool& pool, float* dinp, float* dweight, float* dbias, const float* dout,
                     const float* inp, const float* weight, int64_t B, int64_t C, int64_t OC) {
  // dinp[B,C] = dout[B,OC] · weight[OC,C]
  if (dinp) gemm(pool, false, false, B, C, OC, 1.f, dout, weight, 0.f, dinp);
  // dweight[OC,C] += dout[B,OC]ᵀ · inp[B,C]
  if (dweight) gemm(pool, true, false, OC, C, B, 1.f, dout, inp, 1.f, dweight);
  // dbias[OC] += Σ_b dout[b, :]
  if (dbias) {
    pool.parallel_for(OC, 64, [&](int64_t o0, int64_t o1) {
      for (int64_t b = 0; b < B; b++) {
        const float* d = dout + b * OC;
        for (int64_t o = o0; o < o1; o++) dbias[o] += d[o];
      }
    });
  }
}

}  // namespace rg::cpu
