// Convolution (im2col + the tiled GEMM + transpose01), pooling and batch normalisation on the GPU, with the
// semantics of lib/backend.ts and the same sums as native/cpu/conv.cc: every output element gathers its inputs
// (col2im and the pooling backwards included, so no atomics and results that repeat); per-channel statistics
// take a block per channel.
#include "common.cuh"

namespace rg::cuda {

namespace {

struct Geometry {
  int64_t B, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW;
};
Geometry geometry(int64_t B, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t SH, int64_t SW, int64_t PH,
                  int64_t PW, int64_t DH, int64_t DW) {
  return {B, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW, (H + 2 * PH - DH * (KH - 1) - 1) / SH + 1, (W + 2 * PW - DW * (KW - 1) - 1) / SW + 1};
}

__device__ __forceinline__ int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }
__device__ __forceinline__ int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

__device__ __forceinline__ int64_t source_of(int64_t x, int64_t k, int64_t S, int64_t P, int64_t D, int64_t n) {
  const int64_t t = x + P - k * D;
  if (t < 0 || t % S) return -1;
  const int64_t o = t / S;
  return o < n ? o : -1;
}
__device__ __forceinline__ void windows_over(int64_t x, int64_t K, int64_t S, int64_t P, int64_t n, int64_t* lo, int64_t* hi) {
  const int64_t a = x + P - K + 1;
  *lo = a <= 0 ? 0 : (a + S - 1) / S;
  *hi = imin(n, (x + P) / S + 1);
}
__device__ __forceinline__ float window_divisor(int64_t oh, int64_t ow, const Geometry& g, bool include_pad) {
  if (include_pad) return static_cast<float>(g.KH * g.KW);
  const int64_t h0 = imax(0, oh * g.SH - g.PH), h1 = imin(g.H, oh * g.SH - g.PH + g.KH);
  const int64_t w0 = imax(0, ow * g.SW - g.PW), w1 = imin(g.W, ow * g.SW - g.PW + g.KW);
  return static_cast<float>((h1 - h0) * (w1 - w0));
}

// Per-channel statistics of x [B, C, R]: a block per channel. Sum of f(value, index) over the channel's n = B·R
// values, in double, the same in every thread of the block on return.
template <typename F>
__device__ double channel_total(const float* x, int64_t B, int64_t C, int64_t R, int64_t c, F f) {
  __shared__ double total;
  double acc = 0;
  for (int64_t e = threadIdx.x; e < B * R; e += blockDim.x) {
    const int64_t at = (e / R * C + c) * R + e % R;
    acc += f(x[at], at);
  }
  acc = block_reduce<false>(acc);
  if (threadIdx.x == 0) total = acc;
  __syncthreads();
  const double t = total;
  __syncthreads();
  return t;
}

__global__ void channel_sum_kernel(float* out, const float* x, int64_t B, int64_t C, int64_t R, bool accumulate) {
  RG_GUARD();
  const int64_t c = blockIdx.x;
  const double s = channel_total(x, B, C, R, c, [] __device__(float v, int64_t) { return static_cast<double>(v); });
  if (threadIdx.x == 0) out[c] = accumulate ? out[c] + static_cast<float>(s) : static_cast<float>(s);
}

__global__ void batchnorm_forward_kernel(float* out, float* save_mean, float* save_invstd, float* run_mean, float* run_var,
                                         const float* inp, const float* weight, const float* bias, int64_t B, int64_t C, int64_t R,
                                         float momentum, float eps, bool training) {
  RG_GUARD();
  const int64_t c = blockIdx.x, n = B * R;
  float mean, invstd;
  if (training) {
    const double m = n ? channel_total(inp, B, C, R, c, [] __device__(float v, int64_t) { return static_cast<double>(v); }) / n : 0.0;
    const double sq = channel_total(inp, B, C, R, c, [m] __device__(float v, int64_t) { return (v - m) * (v - m); });
    const double var = n ? sq / n : 0.0;
    mean = static_cast<float>(m);
    invstd = static_cast<float>(1.0 / sqrt(var + static_cast<double>(eps)));
    if (threadIdx.x == 0) {
      run_mean[c] = (1.f - momentum) * run_mean[c] + momentum * mean;
      run_var[c] = (1.f - momentum) * run_var[c] + momentum * static_cast<float>(var * n / static_cast<double>(n > 1 ? n - 1 : 1));
    }
  } else {
    mean = run_mean[c];
    invstd = static_cast<float>(1.0 / sqrt(static_cast<double>(run_var[c]) + static_cast<double>(eps)));
  }
  if (threadIdx.x == 0) {
    save_mean[c] = mean;
    save_invstd[c] = invstd;
  }
  const float scale = (weight ? weight[c] : 1.f) * invstd, shift = bias ? bias[c] : 0.f;
  for (int64_t e = threadIdx.x; e < n; e += blockDim.x) {
    const int64_t at = (e / R * C + c) * R + e % R;
    out[at] = (inp[at] - mean) * scale + shift;
  }
}

__global__ void batchnorm_backward_kernel(float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                                          const float* weight, const float* save_mean, const float* save_invstd, int64_t B, int64_t C,
                                          int64_t R, bool training, bool accumulate) {
  RG_GUARD();
  const int64_t c = blockIdx.x, n = B * R;
  const float mean = save_mean[c], invstd = save_invstd[c];
  const double sd = channel_total(dout, B, C, R, c, [] __device__(float v, int64_t) { return static_cast<double>(v); });
  const double sdx = channel_total(dout, B, C, R, c, [=] __device__(float d, int64_t at) {
    return static_cast<double>(d) * ((inp[at] - mean) * invstd);
  });
  if (threadIdx.x == 0) {
    if (dweight) dweight[c] = (accumulate ? dweight[c] : 0.f) + static_cast<float>(sdx);
    if (dbias) dbias[c] = (accumulate ? dbias[c] : 0.f) + static_cast<float>(sd);
  }
  if (!dinp) return;
  const float k = (weight ? weight[c] : 1.f) * invstd;
  const float md = training && n ? static_cast<float>(sd / n) : 0.f;
  const float mdx = training && n ? static_cast<float>(sdx / n) : 0.f;
  for (int64_t e = threadIdx.x; e < n; e += blockDim.x) {
    const int64_t at = (e / R * C + c) * R + e % R;
    dinp[at] = k * (dout[at] - md - (inp[at] - mean) * invstd * mdx);
  }
}

Status per_channel_grid(const char* name, int64_t C) {
  if (C > 2147483647) return Status::Invalid(std::string(name) + ": too many channels");
  return Status::Ok();
}

}  // namespace

Status im2col(ThreadPool&, float* col, const float* inp, int64_t B, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t SH,
              int64_t SW, int64_t PH, int64_t PW, int64_t DH, int64_t DW) {
  const Geometry g = geometry(B, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW);
  const int64_t cols = B * g.OH * g.OW;
  return map("im2col", C * KH * KW * cols, [=] __device__(int64_t e) {
    const int64_t row = e / cols, q = e % cols;
    const int64_t c = row / (g.KH * g.KW), i = row / g.KW % g.KH, j = row % g.KW;
    const int64_t b = q / (g.OH * g.OW), oh = q / g.OW % g.OH, ow = q % g.OW;
    const int64_t h = oh * g.SH - g.PH + i * g.DH, w = ow * g.SW - g.PW + j * g.DW;
    col[e] = h >= 0 && h < g.H && w >= 0 && w < g.W ? inp[((b * g.C + c) * g.H + h) * g.W + w] : 0.f;
  });
}

Status col2im(ThreadPool&, float* dinp, const float* dcol, int64_t B, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t SH,
              int64_t SW, int64_t PH, int64_t PW, int64_t DH, int64_t DW) {
  const Geometry g = geometry(B, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW);
  const int64_t cols = B * g.OH * g.OW;
  return map("col2im", B * C * H * W, [=] __device__(int64_t e) {
    const int64_t w = e % g.W, h = e / g.W % g.H, c = e / (g.W * g.H) % g.C, b = e / (g.W * g.H * g.C);
    double sum = 0;
    for (int64_t i = 0; i < g.KH; i++) {
      const int64_t oh = source_of(h, i, g.SH, g.PH, g.DH, g.OH);
      if (oh < 0) continue;
      for (int64_t j = 0; j < g.KW; j++) {
        const int64_t ow = source_of(w, j, g.SW, g.PW, g.DW, g.OW);
        if (ow < 0) continue;
        sum += dcol[((c * g.KH + i) * g.KW + j) * cols + (b * g.OH + oh) * g.OW + ow];
      }
    }
    dinp[e] = static_cast<float>(sum);
  });
}

Status transpose01(ThreadPool&, float* out, const float* inp, const float* bias, int64_t A, int64_t Bd, int64_t R) {
  return map("transpose01", A * Bd * R, [=] __device__(int64_t e) {
    const int64_t r = e % R, a = e / R % A, b = e / (R * A);
    out[e] = inp[(a * Bd + b) * R + r] + (bias ? bias[a] : 0.f);
  });
}

Status channel_sum(ThreadPool&, float* out, const float* x, int64_t B, int64_t C, int64_t R, bool accumulate) {
  if (C <= 0) return Status::Ok();
  Status s = per_channel_grid("channel_sum", C);
  if (!s.ok()) return s;
  channel_sum_kernel<<<static_cast<unsigned>(C), kThreads, 0, g_stream>>>(out, x, B, C, R, accumulate);
  return launched("channel_sum");
}

Status maxpool2d_forward(ThreadPool&, float* out, int32_t* argmax, const float* inp, int64_t B, int64_t C, int64_t H, int64_t W,
                         int64_t KH, int64_t KW, int64_t SH, int64_t SW, int64_t PH, int64_t PW) {
  const Geometry g = geometry(B, C, H, W, KH, KW, SH, SW, PH, PW, 1, 1);
  return map("maxpool2d_forward", B * C * g.OH * g.OW, [=] __device__(int64_t e) {
    const int64_t ow = e % g.OW, oh = e / g.OW % g.OH, p = e / (g.OW * g.OH);
    const float* plane = inp + p * g.H * g.W;
    float best = -INFINITY;
    int64_t at = -1;
    for (int64_t i = 0; i < g.KH; i++) {
      const int64_t h = oh * g.SH - g.PH + i;
      if (h < 0 || h >= g.H) continue;
      for (int64_t j = 0; j < g.KW; j++) {
        const int64_t w = ow * g.SW - g.PW + j;
        if (w < 0 || w >= g.W) continue;
        const float v = plane[h * g.W + w];
        if (at < 0 || v > best || isnan(v)) best = v, at = h * g.W + w;
      }
    }
    out[e] = best;
    argmax[e] = static_cast<int32_t>(at);
  });
}

Status maxpool2d_backward(ThreadPool&, float* dinp, const float* dout, const int32_t* argmax, int64_t B, int64_t C, int64_t H, int64_t W,
                          int64_t KH, int64_t KW, int64_t SH, int64_t SW, int64_t PH, int64_t PW) {
  const Geometry g = geometry(B, C, H, W, KH, KW, SH, SW, PH, PW, 1, 1);
  return map("maxpool2d_backward", B * C * H * W, [=] __device__(int64_t e) {
    const int64_t w = e % g.W, h = e / g.W % g.H, p = e / (g.W * g.H);
    const float* d = dout + p * g.OH * g.OW;
    const int32_t* am = argmax + p * g.OH * g.OW;
    int64_t oh0, oh1, ow0, ow1;
    windows_over(h, g.KH, g.SH, g.PH, g.OH, &oh0, &oh1);
    windows_over(w, g.KW, g.SW, g.PW, g.OW, &ow0, &ow1);
    float sum = 0.f;
    for (int64_t oh = oh0; oh < oh1; oh++)
      for (int64_t ow = ow0; ow < ow1; ow++)
        if (am[oh * g.OW + ow] == h * g.W + w) sum += d[oh * g.OW + ow];
    dinp[e] = sum;
  });
}

Status avgpool2d_forward(ThreadPool&, float* out, const float* inp, int64_t B, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW,
                         int64_t SH, int64_t SW, int64_t PH, int64_t PW, bool count_include_pad) {
  const Geometry g = geometry(B, C, H, W, KH, KW, SH, SW, PH, PW, 1, 1);
  return map("avgpool2d_forward", B * C * g.OH * g.OW, [=] __device__(int64_t e) {
    const int64_t ow = e % g.OW, oh = e / g.OW % g.OH, p = e / (g.OW * g.OH);
    const float* plane = inp + p * g.H * g.W;
    const int64_t h0 = imax(0, oh * g.SH - g.PH), h1 = imin(g.H, oh * g.SH - g.PH + g.KH);
    const int64_t w0 = imax(0, ow * g.SW - g.PW), w1 = imin(g.W, ow * g.SW - g.PW + g.KW);
    double sum = 0;
    for (int64_t h = h0; h < h1; h++)
      for (int64_t w = w0; w < w1; w++) sum += plane[h * g.W + w];
    out[e] = static_cast<float>(sum / window_divisor(oh, ow, g, count_include_pad));
  });
}

Status avgpool2d_backward(ThreadPool&, float* dinp, const float* dout, int64_t B, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW,
                          int64_t SH, int64_t SW, int64_t PH, int64_t PW, bool count_include_pad) {
  const Geometry g = geometry(B, C, H, W, KH, KW, SH, SW, PH, PW, 1, 1);
  return map("avgpool2d_backward", B * C * H * W, [=] __device__(int64_t e) {
    const int64_t w = e % g.W, h = e / g.W % g.H, p = e / (g.W * g.H);
    const float* d = dout + p * g.OH * g.OW;
    int64_t oh0, oh1, ow0, ow1;
    windows_over(h, g.KH, g.SH, g.PH, g.OH, &oh0, &oh1);
    windows_over(w, g.KW, g.SW, g.PW, g.OW, &ow0, &ow1);
    double sum = 0;
    for (int64_t oh = oh0; oh < oh1; oh++)
      for (int64_t ow = ow0; ow < ow1; ow++) sum += d[oh * g.OW + ow] / window_divisor(oh, ow, g, count_include_pad);
    dinp[e] = static_cast<float>(sum);
  });
}

Status batchnorm_forward(ThreadPool&, float* out, float* save_mean, float* save_invstd, float* run_mean, float* run_var, const float* inp,
                         const float* weight, const float* bias, int64_t B, int64_t C, int64_t R, float momentum, float eps, bool training) {
  if (C <= 0) return Status::Ok();
  Status s = per_channel_grid("batchnorm_forward", C);
  if (!s.ok()) return s;
  batchnorm_forward_kernel<<<static_cast<unsigned>(C), kThreads, 0, g_stream>>>(out, save_mean, save_invstd, run_mean, run_var, inp, weight,
                                                                               bias, B, C, R, momentum, eps, training);
  return launched("batchnorm_forward");
}

Status batchnorm_backward(ThreadPool&, float* dinp, float* dweight, float* dbias, const float* dout, const float* inp, const float* weight,
                          const float* save_mean, const float* save_invstd, int64_t B, int64_t C, int64_t R, bool training, bool accumulate) {
  if (C <= 0) return Status::Ok();
  Status s = per_channel_grid("batchnorm_backward", C);
  if (!s.ok()) return s;
  batchnorm_backward_kernel<<<static_cast<unsigned>(C), kThreads, 0, g_stream>>>(dinp, dweight, dbias, dout, inp, weight, save_mean,
                                                                                save_invstd, B, C, R, training, accumulate);
  return launched("batchnorm_backward");
}

}  // namespace rg::cuda

namespace rg::cuda {

namespace {
// A device buffer for the intermediate matrices of a fused convolution, from the caching allocator. It may be
// released as soon as the kernels that use it are issued: the next user of the block is issued after them.
StoragePtr temporary(int64_t floats, Status* s, const char* name) {
  StoragePtr t = Storage::create(DType::F32, static_cast<size_t>(floats));
  if (!t) *s = Status::OutOfMemory(std::string(name) + ": could not allocate " + std::to_string(floats * 4) + " bytes of device memory for its column matrix");
  return t;
}
}  // namespace

Status conv2d_forward(ThreadPool& pool, float* out, const float* inp, const float* weight, const float* bias, int64_t B, int64_t C, int64_t H,
                      int64_t W, int64_t OC, int64_t KH, int64_t KW, int64_t SH, int64_t SW, int64_t PH, int64_t PW, int64_t DH, int64_t DW) {
  const Geometry g = geometry(B, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW);
  const int64_t ck = C * KH * KW, n = B * g.OH * g.OW;
  if (n == 0) return Status::Ok();
  Status s;
  StoragePtr col = temporary(ck * n, &s, "conv2d_forward"), y = col ? temporary(OC * n, &s, "conv2d_forward") : nullptr;
  if (!y) return s;
  if (!(s = im2col(pool, col->f32(), inp, B, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW)).ok()) return s;
  if (!(s = gemm(pool, false, false, OC, n, ck, 1.f, weight, col->f32(), 0.f, y->f32())).ok()) return s;
  return transpose01(pool, out, y->f32(), bias, OC, B, g.OH * g.OW);
}

Status conv2d_backward(ThreadPool& pool, float* dinp, float* dweight, float* dbias, const float* dout, const float* inp, const float* weight,
                       int64_t B, int64_t C, int64_t H, int64_t W, int64_t OC, int64_t KH, int64_t KW, int64_t SH, int64_t SW, int64_t PH,
                       int64_t PW, int64_t DH, int64_t DW, bool accumulate) {
  const Geometry g = geometry(B, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW);
  const int64_t ck = C * KH * KW, r = g.OH * g.OW, n = B * r;
  Status s;
  if (dbias && !(s = channel_sum(pool, dbias, dout, B, OC, r, accumulate)).ok()) return s;
  if (n == 0) {
    if (dweight && !accumulate) return fill(pool, dweight, OC * ck, 0.f);
    return Status::Ok();
  }
  if (!dweight && !dinp) return Status::Ok();
  StoragePtr dy = temporary(OC * n, &s, "conv2d_backward"), col = dy ? temporary(ck * n, &s, "conv2d_backward") : nullptr;
  if (!col) return s;
  if (!(s = transpose01(pool, dy->f32(), dout, nullptr, B, OC, r)).ok()) return s;
  if (dweight) {
    if (!(s = im2col(pool, col->f32(), inp, B, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW)).ok()) return s;
    if (!(s = gemm(pool, false, true, OC, ck, n, 1.f, dy->f32(), col->f32(), accumulate ? 1.f : 0.f, dweight)).ok()) return s;
  }
  if (dinp) {
    if (!(s = gemm(pool, true, false, ck, n, OC, 1.f, weight, dy->f32(), 0.f, col->f32())).ok()) return s;
    return col2im(pool, dinp, col->f32(), B, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW);
  }
  return Status::Ok();
}

}  // namespace rg::cuda
