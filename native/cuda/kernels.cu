// The CUDA kernels of retrograd: every kernel of the contract (lib/backend.ts), with the formulas of the
// CPU kernels (native/cpu/) to the letter, so that both agree with the reference backend. Elementwise work
// is a grid-stride map; sums are two-stage (per-block partials, then one block adds them in order), so every
// result is the same from run to run; row-wise work (softmax, cross-entropy, accuracy) takes a warp per row.
#include <climits>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <string>

#include "../core/dropout_hash.h"
#include "conv.cuh"
#include "gemm.cuh"
#include "kernels.h"
#include "ops.cuh"
#include "runtime.cuh"
#include "sequence.cuh"

namespace rg::cuda {

// ---- runtime ----

Status start(void* stream) {
  g_stream = static_cast<cudaStream_t>(stream);
  int dev = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&g_sms, cudaDevAttrMultiProcessorCount, dev);
  if (const char* v = std::getenv("RETROGRAD_CUDA_GEMM")) g_gemm_variant = std::atoi(v);
  void* mapped = nullptr;
  if (cudaMalloc(&g_partials, kMaxPartials * sizeof(double)) != cudaSuccess ||
      cudaMalloc(&g_counter, sizeof(int)) != cudaSuccess ||
      cudaHostAlloc(reinterpret_cast<void**>(&h_record), sizeof(FailureRecord), cudaHostAllocMapped) != cudaSuccess ||
      cudaHostGetDevicePointer(&mapped, h_record, 0) != cudaSuccess ||
      cudaMemcpyToSymbol(d_record, &mapped, sizeof(mapped)) != cudaSuccess ||
      cudaGetSymbolAddress(reinterpret_cast<void**>(&d_failed_addr), d_failed) != cudaSuccess ||
      cudaMemset(d_failed_addr, 0, sizeof(int)) != cudaSuccess) {
    return launched("start");
  }
  *h_record = FailureRecord{};
  return Status::Ok();
}

void set_tf32(bool on) { g_tf32 = on; }

const int* failure_flag() { return d_failed_addr; }

Status take_failure() {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  if (!h_record) return Status::Ok();
  const int kind = reinterpret_cast<volatile int*>(&h_record->kind)[0];
  if (kind == kNone) return Status::Ok();
  const FailureRecord r = *h_record;
  reinterpret_cast<volatile int*>(&h_record->kind)[0] = kNone;
  cudaMemsetAsync(d_failed_addr, 0, sizeof(int), g_stream);
  switch (kind) {
    case kClassIndex:
      return Status::Invalid("CrossEntropyLoss: target " + std::to_string(r.a) + " at position " + std::to_string(r.b) +
                             " is outside [0, " + std::to_string(r.c) + ")");
    case kRowIndex:
      return Status::Invalid("gather_rows: row index " + std::to_string(r.a) + " is outside [0, " + std::to_string(r.c) + ")");
    case kEmbeddingIndex:
      return Status::Invalid("embedding_backward: index " + std::to_string(r.a) + " at position " + std::to_string(r.b) + " is outside [0, " +
                             std::to_string(r.c) + ")");
    case kNonFinite:
      return r.c == 1 ? non_finite_before(r.a, r.b) : non_finite(r.a, r.b, static_cast<float>(r.value));
    case kIndex:
      return Status::Invalid(std::string(index_kernel_name(static_cast<int>(r.value))) + ": index " + std::to_string(r.a) + " at position " +
                             std::to_string(r.b) + " is outside [0, " + std::to_string(r.c) + ")");
    case kProbability:
      return Status::Invalid("BCELoss: every input must be between 0 and 1, got " + std::to_string(r.value) + " at index " +
                             std::to_string(r.a));
    default:
      return Status::Invalid("a kernel found invalid data (failure " + std::to_string(kind) + ")");
  }
}

// ---- matrix products ----

Status gemm_ex(ThreadPool&, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
               const float* B, float beta, float* C, const float* bias, Activation act, float slope) {
  return gemm_launch("matmul", transA, transB, M, N, K, A, B, C, Epilogue{alpha, beta, slope, bias, static_cast<int>(act)});
}

Status gemm(ThreadPool& pool, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
            const float* B, float beta, float* C) {
  return gemm_ex(pool, transA, transB, M, N, K, alpha, A, B, beta, C, nullptr, Activation::None, 0.f);
}

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

// ---- activations ----

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

namespace {

constexpr int kWarpsPerBlock = kThreads / 32;

__device__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

int row_blocks(int64_t rows) {
  int64_t b = (rows + kWarpsPerBlock - 1) / kWarpsPerBlock;
  return static_cast<int>(std::min<int64_t>(std::max<int64_t>(b, 1), kMaxPartials));
}

#define RG_FOR_ROWS(r, rows)                                                                                   \
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32; r < (rows);          \
       r += static_cast<int64_t>(gridDim.x) * kWarpsPerBlock)

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

// Cross-entropy rows: a warp per position; the loss of a block's positions lands in partials[block].
__global__ void cross_entropy_kernel(float* dlogits, const float* logits, const int32_t* target, int64_t B, int64_t C, int64_t D,
                                     int64_t ignore_index, const int* count, double* partials) {
  RG_GUARD();
  const int lane = threadIdx.x % 32;
  const int n = *count;
  const float inv = n > 0 ? 1.f / static_cast<float>(n) : NAN;
  double block_loss = 0;
  RG_FOR_ROWS(p, B * D) {
    const int64_t b = p / D, d = p % D;
    const float* x = logits + b * C * D + d;
    float* dx = dlogits + b * C * D + d;
    const int64_t t = target[p];
    if (t == ignore_index) {
      for (int64_t c = lane; c < C; c += 32) dx[c * D] = 0.f;
      continue;
    }
    float mx = -INFINITY;
    for (int64_t c = lane; c < C; c += 32) mx = fmaxf(mx, x[c * D]);
    mx = warp_max(mx);
    double se = 0;
    for (int64_t c = lane; c < C; c += 32) se += expf(x[c * D] - mx);
    se = warp_sum(se);
    const float inv_se = static_cast<float>(1.0 / se);
    for (int64_t c = lane; c < C; c += 32) {
      const float g = expf(x[c * D] - mx) * inv_se * inv;
      dx[c * D] = c == t ? g - inv : g;
    }
    if (lane == 0) block_loss += static_cast<double>(mx) + log(se) - x[t * D];
  }
  block_loss = block_reduce<false>(block_loss);
  if (threadIdx.x == 0) partials[blockIdx.x] = block_loss;
}

// count[0] += rows whose first largest logit is at the target: a warp per row.
__global__ void accuracy_kernel(float* count, const float* logits, const int32_t* target, int64_t B, int64_t C) {
  RG_GUARD();
  const int lane = threadIdx.x % 32;
  double correct = 0;
  RG_FOR_ROWS(b, B) {
    const float* x = logits + b * C;
    float best = -INFINITY;
    int64_t at = C;  // no candidate yet
    for (int64_t c = lane; c < C; c += 32)
      if (at == C || x[c] > best) best = x[c], at = c;
    for (int o = 16; o > 0; o >>= 1) {
      const float ob = __shfl_xor_sync(0xffffffffu, best, o);
      const int64_t oa = __shfl_xor_sync(0xffffffffu, at, o);
      if (oa != C && (at == C || ob > best || (ob == best && oa < at))) best = ob, at = oa;
    }
    if (lane == 0 && at == target[b]) correct += 1;
  }
  correct = block_reduce<false>(correct);
  if (threadIdx.x == 0 && correct > 0) atomicAdd(count, static_cast<float>(correct));  // whole numbers: exact
}

}  // namespace

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

// ---- losses: the mean loss (loss[0], overwrite) and its gradient (overwrite) ----

Status mse_loss(ThreadPool&, float* loss, float* dpred, const float* pred, const float* target, int64_t N) {
  const float scale = N > 0 ? 2.f / static_cast<float>(N) : 0.f;
  return reduce("mse_loss", N, [=] __device__(int64_t i) {
    const float d = pred[i] - target[i];
    dpred[i] = scale * d;
    return static_cast<double>(d) * d;
  }, loss, Into::Mean);
}

Status cross_entropy_loss(ThreadPool&, float* loss, float* dlogits, const float* logits, const int32_t* target, int64_t B,
                          int64_t C, int64_t D, int64_t ignore_index) {
  const int64_t P = B * D;
  std::lock_guard<std::mutex> lock(g_scratch_mu);
  int* count = g_counter;
  cudaMemsetAsync(count, 0, sizeof(int), g_stream);
  Status s = map("cross_entropy_loss", P, [=] __device__(int64_t p) {
    const int64_t t = target[p];
    if (t == ignore_index) return;
    if (t < 0 || t >= C) record_failure(kClassIndex, t, p, C, 0);
    else atomicAdd(count, 1);
  });
  if (!s.ok()) return s;
  const int parts = row_blocks(P);
  if (P > 0 && C > 0) {
    cross_entropy_kernel<<<parts, kThreads, 0, g_stream>>>(dlogits, logits, target, B, C, D, ignore_index, count, g_partials);
  } else {
    cudaMemsetAsync(g_partials, 0, sizeof(double), g_stream);
  }
  if (!(s = launched("cross_entropy_loss")).ok()) return s;
  finish_kernel<false><<<1, kThreads, 0, g_stream>>>(g_partials, parts, loss, Into::MeanOverCount, 0, count);
  return launched("cross_entropy_loss");
}

Status bce_with_logits_loss(ThreadPool&, float* loss, float* dpred, const float* logits, const float* target, int64_t N) {
  const float inv = 1.f / static_cast<float>(N);
  return reduce("bce_with_logits_loss", N, [=] __device__(int64_t i) {
    const float x = logits[i], t = target[i];
    dpred[i] = (1.f / (1.f + expf(-x)) - t) * inv;
    return static_cast<double>(fmaxf(x, 0.f) - x * t + log1pf(expf(-fabsf(x))));
  }, loss, Into::Mean);
}

Status l1_loss(ThreadPool&, float* loss, float* dpred, const float* pred, const float* target, int64_t N) {
  const float inv = 1.f / static_cast<float>(N);
  return reduce("l1_loss", N, [=] __device__(int64_t i) {
    const float d = pred[i] - target[i];
    dpred[i] = d > 0.f ? inv : d < 0.f ? -inv : d == 0.f ? 0.f : d;  // sign(NaN) is NaN
    return static_cast<double>(fabsf(d));
  }, loss, Into::Mean);
}

Status huber_loss(ThreadPool&, float* loss, float* dpred, const float* pred, const float* target, int64_t N, float delta) {
  const float inv = 1.f / static_cast<float>(N);
  return reduce("huber_loss", N, [=] __device__(int64_t i) {
    const float d = pred[i] - target[i];
    const float ad = fabsf(d);
    dpred[i] = (isnan(d) ? d : fminf(fmaxf(d, -delta), delta)) * inv;  // fmaxf drops NaN
    return static_cast<double>(ad < delta ? 0.5f * d * d : delta * (ad - 0.5f * delta));
  }, loss, Into::Mean);
}

Status bce_loss(ThreadPool&, float* loss, float* dpred, const float* pred, const float* target, int64_t N) {
  const float inv = 1.f / static_cast<float>(N);
  return reduce("bce_loss", N, [=] __device__(int64_t i) {
    const float p = pred[i], t = target[i];
    if (!(p >= 0.f && p <= 1.f)) record_failure(kProbability, i, 0, 0, p);
    dpred[i] = (p - t) / fmaxf((1.f - p) * p, 1e-12f) * inv;
    const float lp = fmaxf(logf(p), -100.f);
    const float lq = fmaxf(logf(1.f - p), -100.f);
    return -static_cast<double>(t * lp + (1.f - t) * lq);
  }, loss, Into::Mean);
}

// ---- optimizers: PyTorch's single-tensor formulas, as native/cpu/optim.cc ----

Status sgd_step(ThreadPool&, float* param, float* momentum_buf, const float* grad, int64_t N, float lr, float momentum,
                float dampening, float weight_decay, bool nesterov, bool maximize, bool first_step) {
  const float sign = maximize ? -1.f : 1.f;
  const float keep = first_step ? 0.f : momentum;
  const float take = first_step ? 1.f : 1.f - dampening;
  if (momentum == 0.f)
    return map("sgd_step", N, [=] __device__(int64_t i) { param[i] -= lr * (sign * grad[i] + weight_decay * param[i]); });
  return map("sgd_step", N, [=] __device__(int64_t i) {
    const float g = sign * grad[i] + weight_decay * param[i];
    const float b = keep * momentum_buf[i] + take * g;
    momentum_buf[i] = b;
    param[i] -= lr * (nesterov ? g + momentum * b : b);
  });
}

Status adam_step(ThreadPool&, float* param, float* exp_avg, float* exp_avg_sq, float* max_exp_avg_sq, const float* grad, int64_t N,
                 float lr, float beta1, float beta2, float eps, float weight_decay, int64_t step, bool amsgrad, bool decoupled,
                 bool maximize) {
  const double bc1 = 1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(static_cast<double>(beta2), static_cast<double>(step));
  const float step_size = static_cast<float>(lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  const float decay = decoupled ? 1.f - lr * weight_decay : 1.f;
  const float l2 = decoupled ? 0.f : weight_decay;
  const float sign = maximize ? -1.f : 1.f;
  return map("adam_step", N, [=] __device__(int64_t i) {
    const float pi = param[i] * decay;
    const float g = sign * grad[i] + l2 * param[i];
    const float mi = beta1 * exp_avg[i] + (1.f - beta1) * g;
    const float vi = beta2 * exp_avg_sq[i] + (1.f - beta2) * g * g;
    exp_avg[i] = mi;
    exp_avg_sq[i] = vi;
    float v = vi;
    if (amsgrad) {
      v = max_exp_avg_sq[i] > vi ? max_exp_avg_sq[i] : vi;
      max_exp_avg_sq[i] = v;
    }
    param[i] = pi - step_size * (mi / (sqrtf(v) / bc2_sqrt + eps));
  });
}

Status rmsprop_step(ThreadPool&, float* param, float* square_avg, float* grad_avg, float* momentum_buf, const float* grad, int64_t N,
                    float lr, float alpha, float eps, float weight_decay, float momentum, bool centered, bool maximize) {
  const float sign = maximize ? -1.f : 1.f;
  return map("rmsprop_step", N, [=] __device__(int64_t i) {
    const float g = sign * grad[i] + weight_decay * param[i];
    const float vi = alpha * square_avg[i] + (1.f - alpha) * g * g;
    square_avg[i] = vi;
    float avg;
    if (centered) {
      const float mi = alpha * grad_avg[i] + (1.f - alpha) * g;
      grad_avg[i] = mi;
      avg = sqrtf(vi - mi * mi) + eps;
    } else {
      avg = sqrtf(vi) + eps;
    }
    if (momentum > 0.f) {
      const float b = momentum * momentum_buf[i] + g / avg;
      momentum_buf[i] = b;
      param[i] -= lr * b;
    } else {
      param[i] -= lr * (g / avg);
    }
  });
}

Status adagrad_step(ThreadPool&, float* param, float* state_sum, const float* grad, int64_t N, float clr, float eps,
                    float weight_decay, bool maximize) {
  const float sign = maximize ? -1.f : 1.f;
  return map("adagrad_step", N, [=] __device__(int64_t i) {
    const float g = sign * grad[i] + weight_decay * param[i];
    const float si = state_sum[i] + g * g;
    state_sum[i] = si;
    param[i] -= clr * (g / (sqrtf(si) + eps));
  });
}

Status adamax_step(ThreadPool&, float* param, float* exp_avg, float* exp_inf, const float* grad, int64_t N, float lr, float beta1,
                   float beta2, float eps, float weight_decay, int64_t step, bool maximize) {
  const float clr = static_cast<float>(lr / (1.0 - std::pow(static_cast<double>(beta1), static_cast<double>(step))));
  const float sign = maximize ? -1.f : 1.f;
  return map("adamax_step", N, [=] __device__(int64_t i) {
    const float g = sign * grad[i] + weight_decay * param[i];
    const float mi = beta1 * exp_avg[i] + (1.f - beta1) * g;
    const float a = beta2 * exp_inf[i], b = fabsf(g) + eps;
    const float ui = a > b ? a : b;
    exp_avg[i] = mi;
    exp_inf[i] = ui;
    param[i] -= clr * (mi / ui);
  });
}

Status adadelta_step(ThreadPool&, float* param, float* square_avg, float* acc_delta, const float* grad, int64_t N, float lr,
                     float rho, float eps, float weight_decay, bool maximize) {
  const float sign = maximize ? -1.f : 1.f;
  return map("adadelta_step", N, [=] __device__(int64_t i) {
    const float g = sign * grad[i] + weight_decay * param[i];
    const float vi = rho * square_avg[i] + (1.f - rho) * g * g;
    const float delta = sqrtf(acc_delta[i] + eps) / sqrtf(vi + eps) * g;
    square_avg[i] = vi;
    acc_delta[i] = rho * acc_delta[i] + (1.f - rho) * delta * delta;
    param[i] -= lr * delta;
  });
}

Status nadam_radam_step(ThreadPool&, float* param, float* exp_avg, float* exp_avg_sq, const float* grad, int64_t N, float beta1,
                        float beta2, float eps, float weight_decay, float bc2, float c_grad, float c_avg, bool radam,
                        bool rectified) {
  const float bc2_sqrt = std::sqrt(bc2);
  return map("nadam_radam_step", N, [=] __device__(int64_t i) {
    const float g = grad[i] + weight_decay * param[i];
    const float mi = beta1 * exp_avg[i] + (1.f - beta1) * g;
    const float vi = beta2 * exp_avg_sq[i] + (1.f - beta2) * g * g;
    exp_avg[i] = mi;
    exp_avg_sq[i] = vi;
    if (!radam) {
      const float denom = sqrtf(vi / bc2) + eps;
      param[i] = param[i] - c_grad * (g / denom) - c_avg * (mi / denom);
    } else {
      param[i] -= c_avg * mi * (rectified ? bc2_sqrt / (sqrtf(vi) + eps) : 1.f);
    }
  });
}

// ---- tensor utilities ----

Status fill(ThreadPool&, float* out, int64_t N, float value) {
  return map("fill", N, [=] __device__(int64_t i) { out[i] = value; });
}
Status copy(ThreadPool&, void* out, const void* src, int64_t N) {
  uint32_t* o = static_cast<uint32_t*>(out);
  const uint32_t* s = static_cast<const uint32_t*>(src);
  return map("copy", N, [=] __device__(int64_t i) { o[i] = s[i]; });
}
Status axpy(ThreadPool&, float* out, const float* src, int64_t N, float alpha) {
  return map("axpy", N, [=] __device__(int64_t i) { out[i] += alpha * src[i]; });
}

Status gather_rows(ThreadPool&, void* out, const void* src, const int32_t* index, int64_t rows, int64_t cols, int64_t src_rows,
                   int64_t index_offset) {
  uint32_t* o = static_cast<uint32_t*>(out);
  const uint32_t* s = static_cast<const uint32_t*>(src);
  const int32_t* idx = index + index_offset;
  return map("gather_rows", rows * cols, [=] __device__(int64_t e) {
    const int64_t r = e / cols, c = e % cols;
    const int64_t from = idx[r];
    if (from < 0 || from >= src_rows) {
      record_failure(kRowIndex, from, r, src_rows, 0);
      return;
    }
    o[e] = s[from * cols + c];
  });
}

Status norm_accumulate(ThreadPool&, float* acc, const float* x, int64_t N, bool inf_norm) {
  if (inf_norm) return reduce<true>("norm_accumulate", N, [=] __device__(int64_t i) { return static_cast<double>(fabsf(x[i])); }, acc, Into::Max);
  return reduce("norm_accumulate", N, [=] __device__(int64_t i) { return static_cast<double>(x[i]) * x[i]; }, acc, Into::Add);
}

Status clip_by_norm(ThreadPool&, float* x, const float* acc, int64_t N, float max_norm, bool inf_norm) {
  return map("clip_by_norm", N, [=] __device__(int64_t i) {
    const float total = inf_norm ? acc[0] : sqrtf(acc[0]);
    x[i] *= fminf(1.f, max_norm / (total + 1e-6f));
  });
}

Status clamp(ThreadPool&, float* x, int64_t N, float lo, float hi) {
  return map("clamp", N, [=] __device__(int64_t i) { x[i] = isnan(x[i]) ? x[i] : fminf(fmaxf(x[i], lo), hi); });  // fmaxf drops NaN
}

Status penalty(ThreadPool&, float* acc, float* grad, const float* w, int64_t N, float l1, float l2) {
  return reduce("penalty", N, [=] __device__(int64_t i) {
    const float wi = w[i];
    grad[i] += l1 * static_cast<float>((wi > 0.f) - (wi < 0.f)) + 2.f * l2 * wi;
    return static_cast<double>(l1) * fabsf(wi) + static_cast<double>(l2) * wi * wi;
  }, acc, Into::Add);
}

Status accuracy_count(ThreadPool&, float* count, const float* logits, const int32_t* target, int64_t B, int64_t C) {
  if (B <= 0 || C <= 0) return Status::Ok();
  accuracy_kernel<<<row_blocks(B), kThreads, 0, g_stream>>>(count, logits, target, B, C);
  return launched("accuracy_count");
}

// check_finite: the smallest index of a NaN or infinity by integer atomicMin (order-independent, so deterministic),
// then one thread writes it (or -1) and, with tag >= 0, records the failure that stops the kernels after it.
__global__ void first_nonfinite_kernel(int* first, const float* x, int64_t N) {
  RG_GUARD();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < N; i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    if (!isfinite(x[i])) atomicMin(first, static_cast<int>(i));
}
// With tag >= 0, an index left by an earlier failed check fails this one at once (RG_GUARD then stops the rest).
__global__ void sticky_nonfinite_kernel(const int* first, int64_t tag) {
  RG_GUARD();
  if (first[0] >= 0) record_failure(kNonFinite, tag, first[0], 1, 0.0);
}
__global__ void finish_nonfinite_kernel(int* first, const float* x, int64_t tag) {
  RG_GUARD();
  if (first[0] == INT_MAX) {
    first[0] = -1;
  } else if (tag >= 0) {
    record_failure(kNonFinite, tag, first[0], 0, static_cast<double>(x[first[0]]));
  }
}

Status check_finite(ThreadPool&, int32_t* first, const float* x, int64_t N, int64_t tag) {
  int* f = reinterpret_cast<int*>(first);
  if (tag >= 0) {
    sticky_nonfinite_kernel<<<1, 1, 0, g_stream>>>(f, tag);
    Status sticky = launched("check_finite");
    if (!sticky.ok()) return sticky;
  }
  Status s = map("check_finite", 1, [=] __device__(int64_t) { f[0] = INT_MAX; });
  if (!s.ok()) return s;
  if (N > 0) {
    first_nonfinite_kernel<<<blocks_for(N), kThreads, 0, g_stream>>>(f, x, N);
    s = launched("check_finite");
    if (!s.ok()) return s;
  }
  finish_nonfinite_kernel<<<1, 1, 0, g_stream>>>(f, x, tag);
  return launched("check_finite");
}

// ---- dropout: the same hash of (seed, i) as the CPU and the reference ----

Status dropout_forward(ThreadPool&, float* out, float* mask, const float* inp, int64_t N, float p, uint32_t seed) {
  const uint32_t s = fmix32(seed);
  const float scale = p < 1.f ? 1.f / (1.f - p) : 0.f;
  return map("dropout_forward", N, [=] __device__(int64_t i) {
    const float m = dropout_uniform(s, i) >= p ? scale : 0.f;
    mask[i] = m;
    out[i] = inp[i] * m;
  });
}

Status dropout_backward(ThreadPool&, float* dinp, const float* dout, const float* mask, int64_t N) {
  return map("dropout_backward", N, [=] __device__(int64_t i) { dinp[i] = dout[i] * mask[i]; });
}

}  // namespace rg::cuda

// The attention and recurrent kernels use the warp helpers and GEMM wrappers above.
#include "attention.cuh"
#include "recurrent.cuh"
