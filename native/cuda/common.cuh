// The CUDA kernels' common ground, included by every kernel file: the stream, launch checks, the device-side failure
// record, elementwise maps, deterministic reductions and the warp helpers of row-wise kernels. The host globals are
// defined once, in runtime.cu. The failure flag is one word of device memory; each kernel file holds its address in
// constant memory of its own, set by start() through the binder the file registers when it is loaded (whole-program
// device code per file: relocatable device code, which would let the files share one symbol, spilled registers in
// the TF32 kernels).
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "cuda_status.h"
#include "kernels.h"

namespace rg::cuda {

extern cudaStream_t g_stream;
extern bool g_tf32;
extern int g_sms;  // multiprocessors of the device

// Failures a kernel can find in its data. The first one is recorded; until the host takes it, every later
// kernel returns at once, so a bad batch cannot go on to update the weights.
// kIndex: an index kernel of ops.cu (a: the index, b: its position, c: the dimension, value: which kernel).
enum FailureKind : int { kNone = 0, kClassIndex = 1, kRowIndex = 2, kProbability = 3, kEmbeddingIndex = 4, kNonFinite = 5, kIndex = 6 };
struct FailureRecord {
  int kind;
  int unused;
  long long a, b, c;
  double value;
};
extern FailureRecord* h_record;  // host memory mapped into the device: the details of the first failure
extern int* d_failed_addr;       // the flag, in device memory
extern double* g_partials;                  // per-block partial sums of the reductions
extern int* g_counter;                      // an integer the kernels can count into
// Held while a kernel issues launches that share the scratch above: worker threads have queues of their own,
// all issuing to the one stream, and must not interleave such a sequence.
extern std::mutex g_scratch_mu;

// The name of an index kernel (ops.cu), for the failures it records.
const char* index_kernel_name(int k);

// Every kernel file's binder, called by start() with the flag and the record as the device sees them.
using FailureBinder = cudaError_t (*)(int* flag, FailureRecord* record);
std::vector<FailureBinder>& failure_binders();

namespace {

__constant__ int* c_failed;              // the flag every kernel of this file reads first
__constant__ FailureRecord* c_record;    // the record, mapped

cudaError_t bind_failure(int* flag, FailureRecord* record) {
  cudaError_t e = cudaMemcpyToSymbol(c_failed, &flag, sizeof(flag));
  return e != cudaSuccess ? e : cudaMemcpyToSymbol(c_record, &record, sizeof(record));
}
[[maybe_unused]] const bool g_failure_bound = (failure_binders().push_back(bind_failure), true);

#define RG_GUARD() \
  if (*c_failed) return

__device__ __forceinline__ void record_failure(int kind, long long a, long long b, long long c, double value) {
  if (atomicCAS(c_failed, 0, kind) != 0) return;
  FailureRecord* r = c_record;
  r->a = a;
  r->b = b;
  r->c = c;
  r->value = value;
  __threadfence_system();
  reinterpret_cast<volatile int*>(&r->kind)[0] = kind;
  __threadfence_system();
}

inline Status launched(const char* name) { return cuda_status(name, cudaGetLastError()); }

constexpr int kThreads = 256;
constexpr int kMaxPartials = 1024;

// Blocks for a grid-stride loop over n items: enough to fill the device, never more than the items need.
inline int blocks_for(int64_t n, int per_block = kThreads) {
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

// ---- row-wise kernels: a warp per row ----

constexpr int kWarpsPerBlock = kThreads / 32;

__device__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

inline int row_blocks(int64_t rows) {
  int64_t b = (rows + kWarpsPerBlock - 1) / kWarpsPerBlock;
  return static_cast<int>(std::min<int64_t>(std::max<int64_t>(b, 1), kMaxPartials));
}

#define RG_FOR_ROWS(r, rows)                                                                                   \
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32; r < (rows);          \
       r += static_cast<int64_t>(gridDim.x) * kWarpsPerBlock)

}  // namespace

}  // namespace rg::cuda
