// Activations on the GPU, with the formulas of native/cpu/activations.cc: elementwise maps, a warp per softmax row,
// and the activation-and-bias backward of fused layers.
#include <climits>
#include <cmath>

#include "common.cuh"

namespace rg::cuda {

namespace {

__global__ void softmax_forward_kernel(float* out, const float* inp, int64_t B, int64_t C) {
  RG_GUARD();
  const int lane = threadIdx.x % 32;
  RG_FOR_ROWS(b, B) {
    const float* x = inp + b * C;
    float* y = out + b * C;
    float mx = -INFINITY;
    for (int64_t c = lane; c < C; c += 32) mx = fmaxf(mx, x[c]);
    mx = warp_max(mx);
    double sum = 0;
    for (int64_t c = lane; c < C; c += 32) {
      const float e = expf(x[c] - mx);
      y[c] = e;
      sum += e;
    }
    const float inv = static_cast<float>(1.0 / warp_sum(sum));
    for (int64_t c = lane; c < C; c += 32) y[c] *= inv;
  }
}

__global__ void softmax_backward_kernel(float* dinp, const float* dout, const float* out, int64_t B, int64_t C) {
  RG_GUARD();
  const int lane = threadIdx.x % 32;
  RG_FOR_ROWS(b, B) {
    const float* dy = dout + b * C;
    const float* y = out + b * C;
    double dot = 0;
    for (int64_t c = lane; c < C; c += 32) dot += static_cast<double>(dy[c]) * y[c];
    const float d = static_cast<float>(warp_sum(dot));
    for (int64_t c = lane; c < C; c += 32) dinp[b * C + c] = y[c] * (dy[c] - d);
  }
}

// dz = dout ⊙ act'(out) and dbias (+)= Σ_b dz: a block takes 32 columns, its 8 thread rows split the batch
// rows, and the 8 partial sums of a column are added in order.
__global__ void act_bias_backward_kernel(float* dz, float* dbias, const float* dout, const float* out, int64_t B, int64_t OC,
                                         int act, float slope, bool accumulate) {
  RG_GUARD();
  __shared__ float part[8][33];
  const int64_t o = static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x;
  float sum = 0.f;
  if (o < OC) {
    for (int64_t b = threadIdx.y; b < B; b += 8) {
      const float d = dout[b * OC + o];
      const float y = out[b * OC + o];
      const float g = act == 0 ? d : (!(y <= 0.f) ? d : (act == 1 ? 0.f : d * slope));
      if (dz) dz[b * OC + o] = g;
      sum += g;
    }
  }
  part[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y == 0 && o < OC && dbias) {
    float total = 0.f;
    for (int i = 0; i < 8; i++) total += part[i][threadIdx.x];
    dbias[o] = accumulate ? dbias[o] + total : total;
  }
}

}  // namespace

Status relu_forward(ThreadPool&, float* out, const float* inp, int64_t N) {
  return map("relu_forward", N, [=] __device__(int64_t i) { out[i] = inp[i] < 0.f ? 0.f : inp[i]; });
}
Status relu_backward(ThreadPool&, float* dinp, const float* dout, const float* inp, int64_t N) {
  return map("relu_backward", N, [=] __device__(int64_t i) { dinp[i] = inp[i] <= 0.f ? 0.f : dout[i]; });
}
Status leaky_relu_forward(ThreadPool&, float* out, const float* inp, int64_t N, float slope) {
  return map("leaky_relu_forward", N, [=] __device__(int64_t i) { out[i] = inp[i] > 0.f ? inp[i] : slope * inp[i]; });
}
Status leaky_relu_backward(ThreadPool&, float* dinp, const float* dout, const float* inp, int64_t N, float slope) {
  return map("leaky_relu_backward", N, [=] __device__(int64_t i) { dinp[i] = dout[i] * (inp[i] > 0.f ? 1.f : slope); });
}
Status sigmoid_forward(ThreadPool&, float* out, const float* inp, int64_t N) {
  return map("sigmoid_forward", N, [=] __device__(int64_t i) { out[i] = 1.f / (1.f + expf(-inp[i])); });
}
Status sigmoid_backward(ThreadPool&, float* dinp, const float* dout, const float* out, int64_t N) {
  return map("sigmoid_backward", N, [=] __device__(int64_t i) { dinp[i] = dout[i] * out[i] * (1.f - out[i]); });
}
Status tanh_forward(ThreadPool&, float* out, const float* inp, int64_t N) {
  return map("tanh_forward", N, [=] __device__(int64_t i) { out[i] = tanhf(inp[i]); });
}
Status tanh_backward(ThreadPool&, float* dinp, const float* dout, const float* out, int64_t N) {
  return map("tanh_backward", N, [=] __device__(int64_t i) { dinp[i] = dout[i] * (1.f - out[i] * out[i]); });
}
// GELU, erf form: x · Φ(x); the derivative Φ(x) + x φ(x). Φ(x) = erfc(−x/√2)/2, which keeps its precision in
// the negative tail where 1 + erf(x/√2) would cancel.
Status gelu_forward(ThreadPool&, float* out, const float* inp, int64_t N) {
  return map("gelu_forward", N, [=] __device__(int64_t i) { out[i] = 0.5f * inp[i] * erfcf(-inp[i] * 0.70710678118654752440f); });
}
Status gelu_backward(ThreadPool&, float* dinp, const float* dout, const float* inp, int64_t N) {
  return map("gelu_backward", N, [=] __device__(int64_t i) {
    const float x = inp[i];
    const float cdf = 0.5f * erfcf(-x * 0.70710678118654752440f);
    const float pdf = 0.39894228040143267794f * expf(-0.5f * x * x);
    dinp[i] = dout[i] * (cdf + x * pdf);
  });
}

Status softmax_forward(ThreadPool&, float* out, const float* inp, int64_t B, int64_t C) {
  if (B <= 0 || C <= 0) return Status::Ok();
  softmax_forward_kernel<<<row_blocks(B), kThreads, 0, g_stream>>>(out, inp, B, C);
  return launched("softmax_forward");
}
Status softmax_backward(ThreadPool&, float* dinp, const float* dout, const float* out, int64_t B, int64_t C) {
  if (B <= 0 || C <= 0) return Status::Ok();
  softmax_backward_kernel<<<row_blocks(B), kThreads, 0, g_stream>>>(dinp, dout, out, B, C);
  return launched("softmax_backward");
}
Status act_bias_backward(ThreadPool&, float* dz, float* dbias, const float* dout, const float* out, int64_t B, int64_t OC,
                         Activation act, float slope, bool accumulate) {
  if (OC <= 0 || (!dz && !dbias)) return Status::Ok();
  const int64_t blocks = (OC + 31) / 32;
  if (blocks > INT32_MAX) return Status::Invalid("act_bias_backward: too many columns");
  act_bias_backward_kernel<<<static_cast<unsigned>(blocks), dim3(32, 8), 0, g_stream>>>(dz, dbias, dout, out, B, OC,
                                                                                        static_cast<int>(act), slope, accumulate);
  return launched("act_bias_backward");
}

}  // namespace rg::cuda
