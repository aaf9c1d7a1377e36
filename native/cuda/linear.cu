// Fully connected layers on the GPU (the contract's linear kernels), through gemm.cu's products with their epilogues.
#include "gemm.cuh"

namespace rg::cuda {

Status linear_forward(ThreadPool&, float* out, const float* inp, const float* weight, const float* bias, int64_t B, int64_t C,
                      int64_t OC, Activation act, float slope) {
  return gemm_launch("linear_forward", false, true, B, OC, C, inp, weight, out, Epilogue{1.f, 0.f, slope, bias, static_cast<int>(act)});
}

Status linear_backward(ThreadPool& pool, float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                       const float* weight, int64_t B, int64_t C, int64_t OC, bool accumulate) {
  const Epilogue plain{1.f, 0.f, 0.f, nullptr, 0};
  const Epilogue acc{1.f, accumulate ? 1.f : 0.f, 0.f, nullptr, 0};
  Status s;
  if (dinp && !(s = gemm_launch("linear_backward", false, false, B, C, OC, dout, weight, dinp, plain)).ok()) return s;
  if (dweight && !(s = gemm_launch("linear_backward", true, false, OC, C, B, dout, inp, dweight, acc)).ok()) return s;
  if (dbias) return act_bias_backward(pool, nullptr, dbias, dout, dout, B, OC, Activation::None, 0.f, accumulate);
  return Status::Ok();
}

}  // namespace rg::cuda
