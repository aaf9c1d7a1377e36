// Generic tensor operations on the GPU (the glue of models written op by op), with the semantics of
// lib/backends/reference/ops.ts: broadcasting elementwise ops, reductions over the middle axis of
// [outer, R, inner], strided copies, batched matrix products and the index kernels along the middle axis of
// [outer, D, inner].
//
// Gradient contract: index_add, scatter_add and strided_scatter with `accumulate` ADD into their output; bmm
// adds beta · out; everything else OVERWRITES. Every result repeats from run to run: sums are in double in a
// fixed order (reduce), or one thread owns each output column and adds its rows in order (index_add,
// scatter_add), so there are no float atomics.
//
// Shapes arrive as up to kMaxDims dimensions. Before launching, dimensions of 1 are dropped and neighbours that
// every operand steps through as one are merged, so that a contiguous tensor is one dimension and a transpose
// two, whatever its rank: most elements then cost one or two integer divisions to locate, in 32 bits whenever
// the element count allows.
#include <cstdint>
#include <string>

#include "gemm.cuh"
#include "common.cuh"

namespace rg::cuda {

namespace {

// ---- layouts ----

// Dimensions, and the strides (in elements) of kOps operands along each; dimension ndim − 1 varies fastest.
template <int kOps>
struct Layout {
  int ndim = 0;
  int64_t dims[kMaxDims] = {};
  int64_t strides[kOps][kMaxDims] = {};
};

// The layout of `ndim` dimensions with operand x's strides in strides[x][0…ndim), without dimensions of 1, and
// with dimension k merged into the one before it when every operand's stride there is stride_k · dims_k.
template <int kOps>
Layout<kOps> collapse(int ndim, const int64_t* dims, const int64_t* const* strides) {
  Layout<kOps> l;
  for (int k = 0; k < ndim; k++) {
    if (dims[k] == 1) continue;
    bool merge = l.ndim > 0;
    for (int x = 0; x < kOps && merge; x++) merge = l.strides[x][l.ndim - 1] == strides[x][k] * dims[k];
    if (merge) {
      l.dims[l.ndim - 1] *= dims[k];
      for (int x = 0; x < kOps; x++) l.strides[x][l.ndim - 1] = strides[x][k];
    } else {
      l.dims[l.ndim] = dims[k];
      for (int x = 0; x < kOps; x++) l.strides[x][l.ndim] = strides[x][k];
      l.ndim++;
    }
  }
  return l;
}

int64_t element_count(int ndim, const int64_t* dims) {
  int64_t n = 1;
  for (int k = 0; k < ndim; k++) n *= dims[k];
  return n;
}

// Element i of a contiguous [l.dims]: its offset in each operand. I is the type of the index arithmetic (uint32_t
// when the element count fits: its divisions are several times cheaper than 64-bit ones). The outermost dimension
// needs no division; the loop is unrolled so that the layout is read from the kernel's parameters directly.
template <typename I, int kOps>
__device__ __forceinline__ void offsets_of(I i, const Layout<kOps>& l, int64_t (&at)[kOps]) {
#pragma unroll
  for (int x = 0; x < kOps; x++) at[x] = 0;
#pragma unroll
  for (int k = kMaxDims - 1; k > 0; k--) {
    if (k < l.ndim) {
      const I d = static_cast<I>(l.dims[k]);
      const I q = i / d;
      const int64_t r = static_cast<int64_t>(i - q * d);
#pragma unroll
      for (int x = 0; x < kOps; x++) at[x] += r * l.strides[x][k];
      i = q;
    }
  }
  if (l.ndim > 0) {
#pragma unroll
    for (int x = 0; x < kOps; x++) at[x] += static_cast<int64_t>(i) * l.strides[x][0];
  }
}

// A grid-stride loop over i < n in the index type I (n ≤ INT32_MAX for uint32_t, so that i + stride cannot wrap).
#define RG_FOR_EACH(I, i, n) \
  for (I i = static_cast<I>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += static_cast<I>(gridDim.x) * blockDim.x)

bool fits32(int64_t n) { return n <= INT32_MAX; }

// ---- elementwise ----

// lib/backend.ts's EW codes.
enum class Ew : int {
  identity = 0, neg = 1, exp = 2, log = 3, log1p = 4, sqrt = 5, rsqrt = 6, abs = 7, sign = 8, sin = 9, cos = 10, tanh = 11,
  sigmoid = 12, relu = 13, gelu = 14, leaky_relu = 15, softplus = 16, clamp = 17, square = 18, reciprocal = 19,
  pow_scalar = 20, affine = 21, gelu_grad = 22,
  add = 32, sub = 33, mul = 34, div = 35, pow = 36, maximum = 37, minimum = 38, eq = 39, ne = 40, lt = 41, le = 42, gt = 43,
  ge = 44, relu_grad = 45, leaky_relu_grad = 46, masked_fill = 47, axpby = 48, sigmoid_grad = 49, tanh_grad = 50,
  where = 64,
};
bool ew_known(int op) { return (op >= 0 && op <= 22) || (op >= 32 && op <= 50) || op == 64; }
bool ew_reads_b(int op) { return op >= static_cast<int>(Ew::add); }
bool ew_reads_c(int op) { return op == static_cast<int>(Ew::where); }

// Math.max / Math.min: NaN if either is (fmaxf and fminf drop a NaN).
__device__ __forceinline__ float nan_max(float x, float y) { return isnan(x) || isnan(y) ? NAN : fmaxf(x, y); }
__device__ __forceinline__ float nan_min(float x, float y) { return isnan(x) || isnan(y) ? NAN : fminf(x, y); }
// Math.pow: NaN for a NaN exponent and for ±1 to an infinite power, where powf gives 1.
__device__ __forceinline__ float js_pow(float x, float y) { return isnan(y) || (isinf(y) && fabsf(x) == 1.f) ? NAN : powf(x, y); }

// One element of op (the reference's ewValue): x, y, z the elements of a, b, c.
__device__ __forceinline__ float ew_value(int op, float x, float y, float z, float alpha, float beta) {
  constexpr float kSqrt1_2 = 0.70710678118654752440f, kInvSqrt2Pi = 0.39894228040143267794f;
  switch (static_cast<Ew>(op)) {
    case Ew::identity: return x;
    case Ew::neg: return -x;
    case Ew::exp: return expf(x);
    case Ew::log: return logf(x);
    case Ew::log1p: return log1pf(x);
    case Ew::sqrt: return sqrtf(x);
    case Ew::rsqrt: return 1.f / sqrtf(x);
    case Ew::abs: return fabsf(x);
    case Ew::sign: return isnan(x) ? x : x > 0.f ? 1.f : x < 0.f ? -1.f : 0.f;  // sign(−0) is 0
    case Ew::sin: return sinf(x);
    case Ew::cos: return cosf(x);
    case Ew::tanh: return tanhf(x);
    case Ew::sigmoid: return 1.f / (1.f + expf(-x));
    case Ew::relu: return x < 0.f ? 0.f : x;  // NaN stays NaN
    // GELU and its derivative in the erf form of gelu_forward / gelu_backward: Φ(x) = erfc(−x/√2)/2.
    case Ew::gelu: return 0.5f * x * erfcf(-x * kSqrt1_2);
    case Ew::leaky_relu: return x < 0.f ? alpha * x : x;
    case Ew::softplus: {
      // log(1 + e^t) as max(t, 0) + log1p(e^−|t|): e^t would overflow in float32 for t > 88 (a threshold above that)
      const float t = alpha * x;
      return t > beta ? x : ((t > 0.f ? t : 0.f) + log1pf(expf(-fabsf(t)))) / alpha;
    }
    case Ew::clamp: return isnan(x) ? x : nan_min(nan_max(x, alpha), beta);
    case Ew::square: return x * x;
    case Ew::reciprocal: return 1.f / x;
    case Ew::pow_scalar: return js_pow(x, alpha);
    case Ew::affine: return alpha * x + beta;
    case Ew::gelu_grad: return 0.5f * erfcf(-x * kSqrt1_2) + x * (kInvSqrt2Pi * expf(-0.5f * x * x));
    case Ew::add: return x + y;
    case Ew::sub: return x - y;
    case Ew::mul: return x * y;
    case Ew::div: return x / y;
    case Ew::pow: return js_pow(x, y);
    case Ew::maximum: return nan_max(x, y);
    case Ew::minimum: return nan_min(x, y);
    case Ew::eq: return x == y ? 1.f : 0.f;
    case Ew::ne: return x != y ? 1.f : 0.f;
    case Ew::lt: return x < y ? 1.f : 0.f;
    case Ew::le: return x <= y ? 1.f : 0.f;
    case Ew::gt: return x > y ? 1.f : 0.f;
    case Ew::ge: return x >= y ? 1.f : 0.f;
    case Ew::relu_grad: return y <= 0.f ? 0.f : x;  // a NaN input passes the gradient, as PyTorch's
    case Ew::leaky_relu_grad: return y > 0.f ? x : alpha * x;
    case Ew::masked_fill: return y != 0.f ? alpha : x;
    case Ew::axpby: return alpha * x + beta * y;
    case Ew::sigmoid_grad: return x * y * (1.f - y);
    case Ew::tanh_grad: return x * (1.f - y * y);
    case Ew::where: return x != 0.f ? y : z;
  }
  return NAN;  // unreachable: the launcher refuses unknown codes
}

// out[i] = op(a, b, c) at element i; b and c are null where op does not read them. kContig: every operand read is
// contiguous with out (offset i); else the offsets come from the layout (stride 0 where an operand broadcasts).
template <typename I, bool kContig>
__global__ void elementwise_kernel(float* out, const float* a, const float* b, const float* c, int op, float alpha, float beta, I n,
                                   const Layout<3> l) {
  RG_GUARD();
  RG_FOR_EACH(I, i, n) {
    int64_t at[3] = {static_cast<int64_t>(i), static_cast<int64_t>(i), static_cast<int64_t>(i)};
    if (!kContig) offsets_of<I, 3>(i, l, at);
    out[i] = ew_value(op, a[at[0]], b ? b[at[1]] : 0.f, c ? c[at[2]] : 0.f, alpha, beta);
  }
}

template <typename I>
void elementwise_launch(float* out, const float* a, const float* b, const float* c, int op, float alpha, float beta, int64_t n,
                        const Layout<3>& l, bool contiguous) {
  const int blocks = blocks_for(n);
  if (contiguous) elementwise_kernel<I, true><<<blocks, kThreads, 0, g_stream>>>(out, a, b, c, op, alpha, beta, static_cast<I>(n), l);
  else elementwise_kernel<I, false><<<blocks, kThreads, 0, g_stream>>>(out, a, b, c, op, alpha, beta, static_cast<I>(n), l);
}

// ---- reduce: out[o, i] = op over r of a[o, r, i] ----

// lib/backend.ts's REDUCE codes.
constexpr int kReduceSum = 0, kReduceMax = 1, kReduceMin = 2;

// Whether element (v, r) comes before (w, s) in the order whose first element max (min) returns: a NaN first (it
// propagates, as in PyTorch), then the larger (smaller) value, then the smaller r; the reference's first extreme.
// A strict total order over distinct r, so any tree of pairwise choices finds the same element.
__device__ __forceinline__ bool precedes(bool is_max, float v, int64_t r, float w, int64_t s) {
  if (isnan(v)) return !isnan(w) || r < s;
  if (isnan(w)) return false;
  if (v != w) return is_max ? v > w : v < w;
  return r < s;
}
// Keeps the better of (v, r) and (ov, o_r); r = none marks an empty candidate.
__device__ __forceinline__ void keep_first(bool is_max, float& v, int64_t& r, float ov, int64_t o_r, int64_t none) {
  if (o_r != none && (r == none || precedes(is_max, ov, o_r, v, r))) v = ov, r = o_r;
}

// Rows (inner = 1): G threads take a row (a warp, or the whole block for a few long rows), thread t reading
// r = t, t + G, … (coalesced), then the threads' results combined by a fixed tree of shuffles and, across the
// block's warps, in warp order. The sum is in double.
template <int G>
__global__ void reduce_rows_kernel(float* out, int32_t* idx, const float* a, int op, int64_t rows, int64_t R) {
  RG_GUARD();
  constexpr int kRowsPerBlock = kThreads / G;
  constexpr int kWarps = G / 32;  // warps per row
  __shared__ double part_sum[kWarps];
  __shared__ float part_v[kWarps];
  __shared__ int64_t part_r[kWarps];
  const int t = threadIdx.x % G, lane = threadIdx.x % 32, warp = t / 32;
  const bool is_max = op == kReduceMax;
  // row is the same for the G threads of a row (the whole block when G = kThreads, so its barriers are safe)
  for (int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / G; row < rows;
       row += static_cast<int64_t>(gridDim.x) * kRowsPerBlock) {
    const float* x = a + row * R;
    if (op == kReduceSum) {
      double s = 0;
#pragma unroll 4
      for (int64_t r = t; r < R; r += G) s += x[r];
      for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
      if constexpr (kWarps > 1) {
        if (lane == 0) part_sum[warp] = s;
        __syncthreads();
        s = 0;
        for (int w = 0; w < kWarps; w++) s += part_sum[w];
        __syncthreads();
      }
      if (t == 0) {
        out[row] = static_cast<float>(s);
        if (idx) idx[row] = 0;
      }
    } else {
      float v = 0.f;
      int64_t at = R;  // none yet
      for (int64_t r = t; r < R; r += G) keep_first(is_max, v, at, x[r], r, R);
      for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, v, o);
        const int64_t o_at = __shfl_xor_sync(0xffffffffu, at, o);
        keep_first(is_max, v, at, ov, o_at, R);
      }
      if constexpr (kWarps > 1) {
        if (lane == 0) part_v[warp] = v, part_r[warp] = at;
        __syncthreads();
        v = part_v[0], at = part_r[0];
        for (int w = 1; w < kWarps; w++) keep_first(is_max, v, at, part_v[w], part_r[w], R);
        __syncthreads();
      }
      if (t == 0) {
        out[row] = v;
        if (idx) idx[row] = static_cast<int32_t>(at);
      }
    }
  }
}

// Columns (inner > 1): a block of 32 × 8 threads takes 32 consecutive outputs q = o·inner + i (coalesced along
// i), its 8 thread rows split r (r = ty, ty + 8, …), and thread row 0 combines the 8 results in order.
__global__ void reduce_cols_kernel(float* out, int32_t* idx, const float* a, int op, int64_t outer, int64_t R, int64_t inner) {
  RG_GUARD();
  __shared__ double part_sum[8][32];
  __shared__ float part_v[8][32];
  __shared__ int64_t part_r[8][32];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const bool is_max = op == kReduceMax;
  const int64_t outputs = outer * inner;
  for (int64_t q0 = static_cast<int64_t>(blockIdx.x) * 32; q0 < outputs; q0 += static_cast<int64_t>(gridDim.x) * 32) {
    const int64_t q = q0 + tx;
    const bool live = q < outputs;
    const int64_t o = live ? q / inner : 0, i = live ? q % inner : 0;
    const float* x = a + o * R * inner + i;
    if (op == kReduceSum) {
      double s = 0;
      if (live)
        for (int64_t r = ty; r < R; r += 8) s += x[r * inner];
      part_sum[ty][tx] = s;
    } else {
      float v = 0.f;
      int64_t at = R;
      if (live)
        for (int64_t r = ty; r < R; r += 8) keep_first(is_max, v, at, x[r * inner], r, R);
      part_v[ty][tx] = v;
      part_r[ty][tx] = at;
    }
    __syncthreads();
    if (ty == 0 && live) {
      if (op == kReduceSum) {
        double s = 0;
        for (int w = 0; w < 8; w++) s += part_sum[w][tx];
        out[q] = static_cast<float>(s);
        if (idx) idx[q] = 0;
      } else {
        float v = part_v[0][tx];
        int64_t at = part_r[0][tx];
        for (int w = 1; w < 8; w++) keep_first(is_max, v, at, part_v[w][tx], part_r[w][tx], R);
        out[q] = v;
        if (idx) idx[q] = static_cast<int32_t>(at);
      }
    }
    __syncthreads();
  }
}

// One output of many elements (a tensor summed whole) goes through the two-stage sum of the losses instead, so
// that the whole device reads it; longer than this.
constexpr int64_t kWholeSumFrom = 8 * kThreads;
// A block per row (rather than a warp) for rows at least this long when there are at most kFewRows of them (a
// warp each would leave most of the device idle). Both depend on the shape only, so results repeat on any device.
constexpr int64_t kLongRow = 1024, kFewRows = 256;

// ---- strided copies ----

template <typename I>
__global__ void strided_copy_kernel(uint32_t* out, const uint32_t* a, int64_t offset, I n, const Layout<1> l) {
  RG_GUARD();
  RG_FOR_EACH(I, i, n) {
    int64_t at[1];
    offsets_of<I, 1>(i, l, at);
    out[i] = a[offset + at[0]];
  }
}

// The positions are distinct, so no two threads write one element.
template <typename I>
__global__ void strided_scatter_kernel(float* out, const float* a, int64_t offset, I n, const Layout<1> l, bool accumulate) {
  RG_GUARD();
  RG_FOR_EACH(I, i, n) {
    int64_t at[1];
    offsets_of<I, 1>(i, l, at);
    float* o = out + offset + at[0];
    *o = accumulate ? *o + a[i] : a[i];
  }
}

// ---- bmm ----

// Batched products too small to fill the device alone, or whose matrices do not start on 16-byte boundaries (the
// GEMM kernels load 16-byte vectors): 16 × 16 output tiles of every product in one launch, op(A) staged as
// As[k][m] and op(B) as Bs[k][n] (each loaded along its contiguous index). Each thread owns one output and adds
// its K products in k order with fmaf, zero beyond K: the sums of the exact float32 GEMM kernel.
constexpr int kBmmTile = 16;

template <bool TA, bool TB>
__global__ void __launch_bounds__(kBmmTile * kBmmTile)
    bmm_kernel(float* out, const float* __restrict__ a, const float* __restrict__ b, int64_t batch, int64_t M, int64_t N, int64_t K,
               int64_t stride_a, int64_t stride_b, float alpha, float beta) {
  RG_GUARD();
  constexpr int T = kBmmTile;
  __shared__ float As[T][T + 1];
  __shared__ float Bs[T][T + 1];
  const int tx = threadIdx.x % T, ty = threadIdx.x / T;
  const int64_t tiles_n = (N + T - 1) / T, per_product = (M + T - 1) / T * tiles_n;
  // tile is the same for the whole block, so its barriers are safe
  for (int64_t tile = blockIdx.x; tile < batch * per_product; tile += gridDim.x) {
    const int64_t p = tile / per_product, m0 = tile % per_product / tiles_n * T, n0 = tile % tiles_n * T;
    const float* ap = a + p * stride_a;
    const float* bp = b + p * stride_b;
    float acc = 0.f;
    for (int64_t k0 = 0; k0 < K; k0 += T) {
      if (TA) {  // A [K, M]: op(A)(m, k) = A[k, m]
        const int64_t k = k0 + ty, m = m0 + tx;
        As[ty][tx] = k < K && m < M ? ap[k * M + m] : 0.f;
      } else {  // A [M, K]
        const int64_t m = m0 + ty, k = k0 + tx;
        As[tx][ty] = m < M && k < K ? ap[m * K + k] : 0.f;
      }
      if (TB) {  // B [N, K]: op(B)(k, n) = B[n, k]
        const int64_t n = n0 + ty, k = k0 + tx;
        Bs[tx][ty] = n < N && k < K ? bp[n * K + k] : 0.f;
      } else {  // B [K, N]
        const int64_t k = k0 + ty, n = n0 + tx;
        Bs[ty][tx] = k < K && n < N ? bp[k * N + n] : 0.f;
      }
      __syncthreads();
#pragma unroll
      for (int kk = 0; kk < T; kk++) acc = fmaf(As[kk][ty], Bs[kk][tx], acc);
      __syncthreads();
    }
    const int64_t m = m0 + ty, n = n0 + tx;
    if (m < M && n < N) {
      float* c = out + p * M * N + m * N + n;
      float v = alpha * acc;
      if (beta != 0.f) v += beta * *c;  // beta = 0 ignores what out held (NaN included)
      *c = v;
    }
  }
}

template <bool TA, bool TB>
void bmm_launch(float* out, const float* a, const float* b, int64_t batch, int64_t M, int64_t N, int64_t K, int64_t stride_a,
                int64_t stride_b, float alpha, float beta) {
  const int64_t tiles = batch * ((M + kBmmTile - 1) / kBmmTile) * ((N + kBmmTile - 1) / kBmmTile);
  bmm_kernel<TA, TB><<<blocks_for(tiles, 1), kBmmTile * kBmmTile, 0, g_stream>>>(out, a, b, batch, M, N, K, stride_a, stride_b, alpha, beta);
}

// ---- index kernels along the middle axis ----

// The kernel a bad index is reported for (FailureRecord::value).
enum IndexKernel : int { kIndexSelect = 0, kIndexAdd = 1, kGather = 2, kScatterAdd = 3 };

// Indices are checked in a pass of their own before anything is written, so that a failed call changes nothing
// and names the first bad position, as the reference does: the check leaves the smallest bad position in *first
// (integer atomicMin: the same whatever the order), and the work kernel after it reports that one and returns.
constexpr unsigned long long kNoBadIndex = ~0ull;

__global__ void first_bad_index_kernel(unsigned long long* first, const int32_t* idx, int64_t count, int64_t D) {
  RG_GUARD();
  RG_FOR_EACH(int64_t, e, count) {
    if (idx[e] < 0 || idx[e] >= D) atomicMin(first, static_cast<unsigned long long>(e));
  }
}

// Whether the check found a bad index; if so, thread 0 of block 0 records it (every thread returns). The work
// kernels still skip an index outside [0, D) themselves: the check is skipped while an earlier failure is pending,
// and the host may take that failure (re-enabling the kernels) between the check and the work, so memory outside
// the operands is never touched.
__device__ __forceinline__ bool index_failed(const unsigned long long* first, const int32_t* idx, int64_t D, IndexKernel kernel) {
  const unsigned long long e = *first;
  if (e == kNoBadIndex) return false;
  if (blockIdx.x == 0 && threadIdx.x == 0) record_failure(kIndex, idx[e], static_cast<long long>(e), D, kernel);
  return true;
}

// Queues the check of idx[0…count) against [0, D) into the scratch word; the caller holds g_scratch_mu until its
// work kernel is queued too, and launches that kernel even when it has no elements (it reports the failure).
Status check_indices(const char* name, unsigned long long* first, const int32_t* idx, int64_t count, int64_t D) {
  cudaMemsetAsync(first, 0xff, sizeof(unsigned long long), g_stream);  // kNoBadIndex
  first_bad_index_kernel<<<blocks_for(count), kThreads, 0, g_stream>>>(first, idx, count, D);
  return launched(name);
}
unsigned long long* index_scratch() { return reinterpret_cast<unsigned long long*>(g_partials); }

// index_select (PerElement false: out[o, j, i] = a[o, idx[j], i]) and gather (PerElement true: out[e] = a[o, idx[e], i]),
// for e = (o·n + j)·inner + i, an element per thread.
template <typename I, bool PerElement>
__global__ void take_kernel(uint32_t* out, const uint32_t* a, const int32_t* idx, int64_t D, I n, I inner, I total,
                            const unsigned long long* first, IndexKernel kernel) {
  RG_GUARD();
  if (index_failed(first, idx, D, kernel)) return;
  RG_FOR_EACH(I, e, total) {
    const I i = e % inner, row = e / inner;
    const int64_t k = PerElement ? idx[e] : idx[row % n];
    if (k >= 0 && k < D) out[e] = a[(static_cast<int64_t>(row / n) * D + k) * inner + i];
  }
}

// index_add (PerElement false: index idx[j]) and scatter_add (true: idx[o, j, i]): out[o, k, i] += src[o, j, i]. A thread
// per column (o, i) adds its j in order, so repeated indices need no atomics and the sums repeat.
template <bool PerElement>
__global__ void add_at_kernel(float* out, const float* src, const int32_t* idx, int64_t outer, int64_t D, int64_t n, int64_t inner,
                              const unsigned long long* first, IndexKernel kernel) {
  RG_GUARD();
  if (index_failed(first, idx, D, kernel)) return;
  RG_FOR_EACH(int64_t, col, outer * inner) {
    const int64_t o = col / inner, i = col % inner;
    float* dst = out + o * D * inner + i;
    for (int64_t j = 0; j < n; j++) {
      const int64_t e = (o * n + j) * inner + i, k = PerElement ? idx[e] : idx[j];
      if (k >= 0 && k < D) dst[k * inner] += src[e];
    }
  }
}

}  // namespace

// ---- launchers ----

Status elementwise(ThreadPool&, float* out, const float* a, const float* b, const float* c, int op, float alpha, float beta, int ndim,
                   const int64_t* dims, unsigned amask, unsigned bmask, unsigned cmask) {
  if (ndim < 0 || ndim > kMaxDims)
    return Status::Invalid("elementwise: at most " + std::to_string(kMaxDims) + " dimensions, got " + std::to_string(ndim));
  if (!ew_known(op)) return Status::Invalid("elementwise: unknown op code " + std::to_string(op));
  const int64_t n = element_count(ndim, dims);
  if (n <= 0) return Status::Ok();  // before the operand checks: an empty buffer arrives as a null pointer
  if (ew_reads_b(op) && !b) return Status::Invalid("elementwise: op " + std::to_string(op) + " needs b");
  if (ew_reads_c(op) && !c) return Status::Invalid("elementwise: op " + std::to_string(op) + " needs c");
  if (!ew_reads_b(op)) b = nullptr;
  if (!ew_reads_c(op)) c = nullptr;
  // Each operand's stride along each dimension: 0 where it broadcasts (and for an operand that is not read, so
  // that it never keeps dimensions from merging), else the product of its dimensions to the right.
  int64_t strides[3][kMaxDims] = {};
  const unsigned masks[3] = {amask, bmask, cmask};
  const bool read[3] = {true, b != nullptr, c != nullptr};
  for (int x = 0; x < 3; x++) {
    if (!read[x]) continue;
    int64_t step = 1;
    for (int k = ndim - 1; k >= 0; k--) {
      if ((masks[x] >> k) & 1u) continue;
      strides[x][k] = step;
      step *= dims[k];
    }
  }
  const int64_t* const per_operand[3] = {strides[0], strides[1], strides[2]};
  const Layout<3> l = collapse<3>(ndim, dims, per_operand);
  bool contiguous = l.ndim <= 1;
  for (int x = 0; x < 3 && l.ndim == 1; x++) contiguous = contiguous && (!read[x] || l.strides[x][0] == 1);
  if (fits32(n)) elementwise_launch<uint32_t>(out, a, b, c, op, alpha, beta, n, l, contiguous);
  else elementwise_launch<int64_t>(out, a, b, c, op, alpha, beta, n, l, contiguous);
  return launched("elementwise");
}

Status reduce(ThreadPool&, float* out, int32_t* idx, const float* a, int op, int64_t outer, int64_t R, int64_t inner) {
  if (op != kReduceSum && op != kReduceMax && op != kReduceMin) return Status::Invalid("reduce: unknown op code " + std::to_string(op));
  const int64_t outputs = outer * inner;
  if (outputs <= 0) return Status::Ok();
  if (op != kReduceSum && R <= 0)
    return Status::Invalid(std::string("reduce: ") + (op == kReduceMax ? "max" : "min") + " over an empty dimension has no value");
  if (op == kReduceSum && outputs == 1 && R > kWholeSumFrom) {
    // per-block partials, then one block adds them in order (common.cuh); out[0] = total / 1
    std::lock_guard<std::mutex> lock(g_scratch_mu);
    const int parts = std::min(blocks_for(R), kMaxPartials);
    partials_kernel<false><<<parts, kThreads, 0, g_stream>>>(R, [=] __device__(int64_t r) { return static_cast<double>(a[r]); }, g_partials);
    Status s = launched("reduce");
    if (!s.ok()) return s;
    finish_kernel<false><<<1, kThreads, 0, g_stream>>>(g_partials, parts, out, Into::Mean, 1.0, nullptr);
    if (!(s = launched("reduce")).ok() || !idx) return s;
    return map("reduce", 1, [=] __device__(int64_t) { idx[0] = 0; });
  }
  if (inner == 1) {
    if (R >= kLongRow && outer <= kFewRows) reduce_rows_kernel<kThreads><<<static_cast<int>(outer), kThreads, 0, g_stream>>>(out, idx, a, op, outer, R);
    else reduce_rows_kernel<32><<<blocks_for(outer, kThreads / 32), kThreads, 0, g_stream>>>(out, idx, a, op, outer, R);
  } else {
    reduce_cols_kernel<<<blocks_for(outputs, 32), dim3(32, 8), 0, g_stream>>>(out, idx, a, op, outer, R, inner);
  }
  return launched("reduce");
}

Status strided_copy(ThreadPool&, void* out, const void* a, int ndim, int64_t offset, const int64_t* dims, const int64_t* strides) {
  if (ndim < 0 || ndim > kMaxDims)
    return Status::Invalid("strided_copy: at most " + std::to_string(kMaxDims) + " dimensions, got " + std::to_string(ndim));
  const int64_t n = element_count(ndim, dims);
  if (n <= 0) return Status::Ok();
  const int64_t* const per_operand[1] = {strides};
  const Layout<1> l = collapse<1>(ndim, dims, per_operand);
  uint32_t* o = static_cast<uint32_t*>(out);
  const uint32_t* s = static_cast<const uint32_t*>(a);
  if (fits32(n)) strided_copy_kernel<uint32_t><<<blocks_for(n), kThreads, 0, g_stream>>>(o, s, offset, static_cast<uint32_t>(n), l);
  else strided_copy_kernel<int64_t><<<blocks_for(n), kThreads, 0, g_stream>>>(o, s, offset, n, l);
  return launched("strided_copy");
}

Status strided_scatter(ThreadPool&, float* out, const float* a, int ndim, int64_t offset, const int64_t* dims, const int64_t* strides,
                       bool accumulate) {
  if (ndim < 0 || ndim > kMaxDims)
    return Status::Invalid("strided_scatter: at most " + std::to_string(kMaxDims) + " dimensions, got " + std::to_string(ndim));
  const int64_t n = element_count(ndim, dims);
  if (n <= 0) return Status::Ok();
  const int64_t* const per_operand[1] = {strides};
  const Layout<1> l = collapse<1>(ndim, dims, per_operand);
  if (fits32(n)) strided_scatter_kernel<uint32_t><<<blocks_for(n), kThreads, 0, g_stream>>>(out, a, offset, static_cast<uint32_t>(n), l, accumulate);
  else strided_scatter_kernel<int64_t><<<blocks_for(n), kThreads, 0, g_stream>>>(out, a, offset, n, l, accumulate);
  return launched("strided_scatter");
}

Status bmm(ThreadPool&, float* out, const float* a, const float* b, int64_t batch, int64_t M, int64_t N, int64_t K, bool trans_a,
           bool trans_b, int64_t stride_a, int64_t stride_b, float alpha, float beta) {
  if (batch <= 0 || M <= 0 || N <= 0) return Status::Ok();
  // The GEMM launcher per product (its precision, TF32 or not, as matmul's) where every product starts on a
  // 16-byte boundary and a product alone can fill the device (the test of its 64 × 64 tiles); else one launch of
  // the batched kernel.
  const auto aligned = [batch](const float* p, int64_t stride) {
    return reinterpret_cast<uintptr_t>(p) % 16 == 0 && (batch == 1 || stride % 4 == 0);
  };
  const int64_t tiles64 = (M + 63) / 64 * ((N + 63) / 64);
  if (aligned(a, stride_a) && aligned(b, stride_b) && (batch == 1 || tiles64 >= g_sms / 2)) {
    const Epilogue ep{alpha, beta, 0.f, nullptr, 0};
    for (int64_t p = 0; p < batch; p++) {
      Status s = gemm_launch("bmm", trans_a, trans_b, M, N, K, a + p * stride_a, b + p * stride_b, out + p * M * N, ep);
      if (!s.ok()) return s;
    }
    return Status::Ok();
  }
  if (trans_a) {
    if (trans_b) bmm_launch<true, true>(out, a, b, batch, M, N, K, stride_a, stride_b, alpha, beta);
    else bmm_launch<true, false>(out, a, b, batch, M, N, K, stride_a, stride_b, alpha, beta);
  } else {
    if (trans_b) bmm_launch<false, true>(out, a, b, batch, M, N, K, stride_a, stride_b, alpha, beta);
    else bmm_launch<false, false>(out, a, b, batch, M, N, K, stride_a, stride_b, alpha, beta);
  }
  return launched("bmm");
}

// The launches of take_kernel and add_at_kernel: the indices checked first (idx[0…n) or, per element, all of them).
template <bool PerElement>
Status take(const char* name, IndexKernel kernel, void* out, const void* a, const int32_t* idx, int64_t outer, int64_t D, int64_t n,
            int64_t inner) {
  const int64_t total = outer * n * inner, checked = PerElement ? total : n;
  if (checked <= 0) return Status::Ok();
  std::lock_guard<std::mutex> lock(g_scratch_mu);
  unsigned long long* first = index_scratch();
  if (Status s = check_indices(name, first, idx, checked, D); !s.ok()) return s;
  uint32_t* o = static_cast<uint32_t*>(out);
  const uint32_t* src = static_cast<const uint32_t*>(a);
  if (fits32(total))
    take_kernel<uint32_t, PerElement><<<blocks_for(total), kThreads, 0, g_stream>>>(
        o, src, idx, D, static_cast<uint32_t>(n), static_cast<uint32_t>(inner), static_cast<uint32_t>(total), first, kernel);
  else take_kernel<int64_t, PerElement><<<blocks_for(total), kThreads, 0, g_stream>>>(o, src, idx, D, n, inner, total, first, kernel);
  return launched(name);
}
template <bool PerElement>
Status add_at(const char* name, IndexKernel kernel, float* out, const float* src, const int32_t* idx, int64_t outer, int64_t D, int64_t n,
              int64_t inner) {
  const int64_t checked = PerElement ? outer * n * inner : n;
  if (checked <= 0) return Status::Ok();
  std::lock_guard<std::mutex> lock(g_scratch_mu);
  unsigned long long* first = index_scratch();
  if (Status s = check_indices(name, first, idx, checked, D); !s.ok()) return s;
  add_at_kernel<PerElement><<<blocks_for(outer * inner), kThreads, 0, g_stream>>>(out, src, idx, outer, D, n, inner, first, kernel);
  return launched(name);
}

Status index_select(ThreadPool&, void* out, const void* a, const int32_t* idx, int64_t outer, int64_t D, int64_t inner, int64_t n) {
  return take<false>("index_select", kIndexSelect, out, a, idx, outer, D, n, inner);
}
Status index_add(ThreadPool&, float* out, const float* src, const int32_t* idx, int64_t outer, int64_t D, int64_t inner, int64_t n) {
  return add_at<false>("index_add", kIndexAdd, out, src, idx, outer, D, n, inner);
}
Status gather(ThreadPool&, void* out, const void* a, const int32_t* idx, int64_t outer, int64_t D, int64_t n, int64_t inner) {
  return take<true>("gather", kGather, out, a, idx, outer, D, n, inner);
}
Status scatter_add(ThreadPool&, float* out, const float* src, const int32_t* idx, int64_t outer, int64_t D, int64_t n, int64_t inner) {
  return add_at<true>("scatter_add", kScatterAdd, out, src, idx, outer, D, n, inner);
}

const char* index_kernel_name(int k) {
  static const char* const names[] = {"index_select", "index_add", "gather", "scatter_add"};
  return k >= 0 && k < 4 ? names[k] : "an index kernel";
}

}  // namespace rg::cuda
