// The CUDA kernels' common ground: the stream, launch checks, the device-side failure record, elementwise
// maps and deterministic reductions. Included once, by kernels.cu (every kernel lives in that one
// translation unit, so the failure flag below is one variable without relocatable device code).
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <string>

#include "kernels.h"

namespace rg::cuda {

namespace {

cudaStream_t g_stream = nullptr;
bool g_tf32 = false;
// Which large-tile matrix kernel runs: 0 the default, 1 and 2 the alternatives bench/gpu-gemm-variants.mjs
// times (RETROGRAD_CUDA_GEMM).
int g_gemm_variant = 0;
int g_sms = 132;

// Failures a kernel can find in its data. The first one is recorded; until the host takes it, every later
// kernel returns at once, so a bad batch cannot go on to update the weights.
// kIndex: an index kernel of ops.cuh (a: the index, b: its position, c: the dimension, value: which kernel).
enum FailureKind : int { kNone = 0, kClassIndex = 1, kRowIndex = 2, kProbability = 3, kEmbeddingIndex = 4, kNonFinite = 5, kIndex = 6 };
struct FailureRecord {
  int kind;
  int unused;
  long long a, b, c;
  double value;
};
__device__ int d_failed;                  // the guard every kernel reads first
__device__ FailureRecord* d_record;       // host memory mapped into the device: the details
FailureRecord* h_record = nullptr;
int* d_failed_addr = nullptr;
double* g_partials = nullptr;             // per-block partial sums of the reductions
int* g_counter = nullptr;                 // an integer the kernels can count into
// Held while a kernel issues launches that share the scratch above: worker threads have queues of their own,
// all issuing to the one stream, and must not interleave such a sequence.
std::mutex g_scratch_mu;

#define RG_GUARD() \
  if (d_failed) return

__device__ void record_failure(int kind, long long a, long long b, long long c, double value) {
  if (atomicCAS(&d_failed, 0, kind) != 0) return;
  FailureRecord* r = d_record;
  r->a = a;
  r->b = b;
  r->c = c;
  r->value = value;
  __threadfence_system();
  reinterpret_cast<volatile int*>(&r->kind)[0] = kind;
  __threadfence_system();
}

Status launched(const char* name) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return Status::Cuda(std::string(name) + ": " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
  return Status::Ok();
}

constexpr int kThreads = 256;
constexpr int kMaxPartials = 1024;

// Blocks for a grid-stride loop over n items: enough to fill the device, never more than the items need.
int blocks_for(int64_t n, int per_block = kThreads) {
  int64_t b = (n + per_block - 1) / per_block;
  int64_t cap = static_cast<int64_t>(g_sms) * 8;
  return static_cast<int>(b < cap ? (b < 1 ? 1 : b) : cap);
}

template <typename F>
__global__ void map_kernel(int64_t n, F f) {
  RG_GUARD();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x) f(i);
}

// f(i) for every i < n.
template <typename F>
Status map(const char* name, int64_t n, F f) {
  if (n <= 0) return Status::Ok();
  map_kernel<<<blocks_for(n), kThreads, 0, g_stream>>>(n, f);
  return launched(name);
}

// Sum (or maximum) over a block, in a fixed order: warp shuffles, then the warps' results in order.
template <bool kMax>
__device__ double block_reduce(double v) {
  __shared__ double warp_part[32];
  for (int o = 16; o > 0; o >>= 1) {
    double w = __shfl_down_sync(0xffffffffu, v, o);
    v = kMax ? fmax(v, w) : v + w;
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) warp_part[warp] = v;
  __syncthreads();
  if (warp == 0) {
    const int warps = (blockDim.x + 31) >> 5;
    v = lane < warps ? warp_part[lane] : (kMax ? -INFINITY : 0.0);
    for (int o = 16; o > 0; o >>= 1) {
      double w = __shfl_down_sync(0xffffffffu, v, o);
      v = kMax ? fmax(v, w) : v + w;
    }
  }
  __syncthreads();
  return v;  // valid in thread 0
}

template <bool kMax, typename F>
__global__ void partials_kernel(int64_t n, F f, double* partials) {
  RG_GUARD();
  double acc = kMax ? -INFINITY : 0.0;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    double v = f(i);
    acc = kMax ? fmax(acc, v) : acc + v;
  }
  acc = block_reduce<kMax>(acc);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

// How a reduction's total lands in out[0].
enum class Into { Mean, MeanOverCount, Add, Max };

template <bool kMax>
__global__ void finish_kernel(const double* partials, int parts, float* out, Into into, double n, const int* count) {
  RG_GUARD();
  double acc = kMax ? -INFINITY : 0.0;
  for (int i = threadIdx.x; i < parts; i += blockDim.x) acc = kMax ? fmax(acc, partials[i]) : acc + partials[i];
  acc = block_reduce<kMax>(acc);
  if (threadIdx.x != 0) return;
  switch (into) {
    case Into::Mean: out[0] = static_cast<float>(acc / n); break;
    case Into::MeanOverCount: out[0] = *count > 0 ? static_cast<float>(acc / *count) : NAN; break;
    case Into::Add: out[0] = static_cast<float>(static_cast<double>(out[0]) + acc); break;
    case Into::Max: out[0] = fmaxf(out[0], static_cast<float>(acc)); break;
  }
}

// out[0] ⟵ Σ_i f(i) (or max), landed as `into` says. Deterministic: the split into blocks depends on n only.
template <bool kMax = false, typename F>
Status reduce(const char* name, int64_t n, F f, float* out, Into into, const int* count = nullptr) {
  std::lock_guard<std::mutex> lock(g_scratch_mu);
  const int parts = n > 0 ? std::min(blocks_for(n), kMaxPartials) : 1;
  if (n > 0) {
    partials_kernel<kMax><<<parts, kThreads, 0, g_stream>>>(n, f, g_partials);
  } else {
    cudaMemsetAsync(g_partials, 0, sizeof(double), g_stream);
  }
  Status s = launched(name);
  if (!s.ok()) return s;
  if (kMax && n == 0) return Status::Ok();
  finish_kernel<kMax><<<1, kThreads, 0, g_stream>>>(g_partials, parts, out, into, static_cast<double>(n), count);
  return launched(name);
}

}  // namespace

}  // namespace rg::cuda
