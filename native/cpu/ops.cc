// Generic tensor operations, the glue of models written op by op (lib/ops/): broadcasting elementwise ops, reductions
// over the middle axis of [outer, R, inner], strided copies (permute, narrow, expand, materialising a view) and their
// scatter, batched matrix products over the gemm, and the index kernels. The oracle is
// lib/backends/reference/ops.ts; NaN follows it exactly (relu, clamp, maximum, minimum and sign keep a NaN;
// comparisons with NaN are false except ne).
//
// Gradient contract: every kernel overwrites its output except index_add, scatter_add, strided_scatter with
// accumulate (+=) and bmm with beta ≠ 0 — the backward passes of index_select, gather and slicing add into a
// gradient that other uses of the same tensor also feed.
//
// Deterministic whatever the thread count: elementwise ops and copies write each element once; reduce sums each
// output in r order, in double, on one thread; index_add and scatter_add split over (o, i) columns and add each
// column's j in order (no atomics); bmm's products are the gemm's, which sum each element in k order. The kernels
// that take indices check every index before writing anything, so a failed call changes nothing.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "kernels.h"
#include "simd.h"

namespace rg::cpu {

namespace {

constexpr float kInvSqrt2 = 0.70710678118654752440f;
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;
constexpr float kNaN = __builtin_nanf("");
// Elements per range before a second thread helps: an add over 32K floats takes ~10 µs, about what waking a pool
// thread costs; transcendental ops cost 5-20× more per element, so they split from 4K.
constexpr int64_t kCheapGrain = 32768;
constexpr int64_t kCostlyGrain = 4096;
constexpr int64_t kTile = 1024;  // elements per tile of a broadcasting elementwise op: 3 inputs × 4 KB stay in L1
constexpr int64_t kCols = 256;   // columns per task of the column-wise reductions and index_add / scatter_add

// lib/backend.ts's EW codes.
enum Ew : int {
  kIdentity = 0, kNeg, kExp, kLog, kLog1p, kSqrt, kRsqrt, kAbs, kSign, kSin, kCos, kTanh, kSigmoid, kRelu, kGelu,
  kLeakyRelu, kSoftplus, kClamp, kSquare, kReciprocal, kPowScalar, kAffine, kGeluGrad,
  kAdd = 32, kSub, kMul, kDiv, kPow, kMaximum, kMinimum, kEq, kNe, kLt, kLe, kGt, kGe, kReluGrad, kLeakyReluGrad,
  kMaskedFill, kAxpby, kSigmoidGrad, kTanhGrad,
  kWhere = 64,
};
bool ew_known(int op) { return (op >= kIdentity && op <= kGeluGrad) || (op >= kAdd && op <= kTanhGrad) || op == kWhere; }
int ew_inputs(int op) { return op == kWhere ? 3 : op >= kAdd ? 2 : 1; }
bool ew_costly(int op) {
  switch (op) {
    case kExp: case kLog: case kLog1p: case kSin: case kCos: case kTanh: case kSigmoid: case kGelu: case kSoftplus:
    case kPowScalar: case kGeluGrad: case kPow: return true;
    default: return false;
  }
}

// Math.pow's rules, which the reference follows: x^NaN and (±1)^±∞ are NaN (C's pow gives 1 for 1^y and (−1)^±∞).
inline float js_pow(float x, float y) {
  if (y != y || (std::fabs(x) == 1.f && std::isinf(y))) return kNaN;
  return std::pow(x, y);
}

// ln x (Cephes' logf: x = m·2^e with m in [√½, √2), a degree-8 polynomial in m − 1; ~1 ulp), branch-free so that the
// loop vectorises: glibc's logf, one call per element, took 2.3 ms for 1M floats. Subnormals are scaled into range;
// 0 gives −∞, a negative x NaN, +∞ and NaN themselves.
RG_INLINE float vlog(float x) {
  const bool sub = x < 1.17549435e-38f;
  const float xs = sub ? x * 8388608.f : x;  // 2^23
  const int32_t bits = __builtin_bit_cast(int32_t, xs);
  float e = static_cast<float>(((bits >> 23) & 0xff) - 126) - (sub ? 23.f : 0.f);
  float m = bits_to_float((bits & 0x007fffff) | 0x3f000000);  // [0.5, 1)
  const bool low = m < 0.707106781186547524f;
  e = low ? e - 1.f : e;
  const float f = low ? m + m - 1.f : m - 1.f;
  const float z = f * f;
  float y = 7.0376836292e-2f;
  y = y * f - 1.1514610310e-1f;
  y = y * f + 1.1676998740e-1f;
  y = y * f - 1.2420140846e-1f;
  y = y * f + 1.4249322787e-1f;
  y = y * f - 1.6668057665e-1f;
  y = y * f + 2.0000714765e-1f;
  y = y * f - 2.4999993993e-1f;
  y = y * f + 3.3333331174e-1f;
  y = y * f * z;
  y += -2.12194440e-4f * e;
  y += -0.5f * z;
  const float r = f + y + 0.693359375f * e;
  const float special = x == 0.f ? -INFINITY : x < 0.f ? kNaN : x;  // ±0, negatives, +∞ and NaN
  return x > 0.f && x < INFINITY ? r : special;
}

// Φ(x), the standard normal CDF, as erfc(−x/√2)/2 with relative accuracy in the lower tail: verf's absolute
// 1.5e-7 left gelu(−3) = −0.004 off by 5e-5 relative. erfc(z) = t·e^(−z² + P(t)), t = 1/(1 + z/2), is Numerical
// Recipes' Chebyshev fit (relative error below 1.2e-7; 4.7e-7 evaluated in float, measured against erfc on [0, 9]);
// e^(−z²) is split as e^(−zh²)·e^(−(z − zh)(z + zh)) with zh holding 12 bits, so that z² carries no rounding.
RG_INLINE float vphi(float x) {
  const float za = std::fabs(x) * kInvSqrt2;
  const float z = za < 10.f ? za : 10.f;  // erfc(10) is 0 in float; an infinity would give ∞ − ∞ below (NaN: gelu multiplies by x)
  const float t = 1.f / (1.f + 0.5f * z);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  const float zh = bits_to_float(static_cast<int32_t>(__builtin_bit_cast(uint32_t, z) & 0xfffff000u));
  const float half = 0.5f * t * vexp(-zh * zh) * vexp((zh - z) * (zh + z) + p);
  return x < 0.f ? half : 1.f - half;
}

// o[i] = op(a[i], b[i], c[i]) for i < n over contiguous pointers (b, c unread by the ops that take fewer inputs). Each
// case is one loop so that the compiler vectorises the branch-free ones; log1p, sin, cos and pow stay libm calls.
RG_INLINE void ew_contig(int op, float* o, const float* a, const float* b, const float* c, int64_t n, float alpha, float beta) {
#define RG_EW1(CODE, EXPR) \
  case CODE:               \
    for (int64_t i = 0; i < n; i++) { const float x = a[i]; o[i] = (EXPR); } \
    return
#define RG_EW2(CODE, EXPR) \
  case CODE:               \
    for (int64_t i = 0; i < n; i++) { const float x = a[i], y = b[i]; o[i] = (EXPR); } \
    return
  switch (op) {
    case kIdentity:
      if (o != a) std::memmove(o, a, static_cast<size_t>(n) * 4);
      return;
    RG_EW1(kNeg, -x);
    RG_EW1(kExp, vexp(x));
    RG_EW1(kLog, vlog(x));
    RG_EW1(kLog1p, std::log1p(x));
    RG_EW1(kSqrt, std::sqrt(x));
    RG_EW1(kRsqrt, 1.f / std::sqrt(x));
    RG_EW1(kAbs, std::fabs(x));
    RG_EW1(kSign, x > 0.f ? 1.f : x < 0.f ? -1.f : x == 0.f ? 0.f : x);  // sign(−0) = 0, NaN stays
    RG_EW1(kSin, std::sin(x));
    RG_EW1(kCos, std::cos(x));
    RG_EW1(kTanh, vtanh(x));
    RG_EW1(kSigmoid, vsigmoid(x));
    RG_EW1(kRelu, x < 0.f ? 0.f : x);
    RG_EW1(kGelu, x * vphi(x));
    RG_EW1(kLeakyRelu, x < 0.f ? alpha * x : x);
    // log(1 + e^z) as max(z, 0) + log(1 + e^−|z|): the same value without e^z overflowing for a large threshold.
    RG_EW1(kSoftplus, alpha * x > beta ? x : ((alpha * x > 0.f ? alpha * x : 0.f) + std::log1p(vexp(-std::fabs(alpha * x)))) / alpha);
    RG_EW1(kClamp, x != x ? x : std::min(std::max(x, alpha), beta));
    RG_EW1(kSquare, x * x);
    RG_EW1(kReciprocal, 1.f / x);
    case kPowScalar:
      if (alpha == 2.f) {  // x·x is x² correctly rounded, as the reference's double pow rounded to float
        for (int64_t i = 0; i < n; i++) o[i] = a[i] * a[i];
      } else {
        for (int64_t i = 0; i < n; i++) o[i] = js_pow(a[i], alpha);
      }
      return;
    RG_EW1(kAffine, alpha * x + beta);
    RG_EW1(kGeluGrad, vphi(x) + x * kInvSqrt2Pi * vexp(-0.5f * x * x));
    RG_EW2(kAdd, x + y);
    RG_EW2(kSub, x - y);
    RG_EW2(kMul, x * y);
    RG_EW2(kDiv, x / y);
    RG_EW2(kPow, js_pow(x, y));
    RG_EW2(kMaximum, x > y || x != x ? x : y);  // NaN when either is
    RG_EW2(kMinimum, x < y || x != x ? x : y);
    RG_EW2(kEq, x == y ? 1.f : 0.f);
    RG_EW2(kNe, x != y ? 1.f : 0.f);
    RG_EW2(kLt, x < y ? 1.f : 0.f);
    RG_EW2(kLe, x <= y ? 1.f : 0.f);
    RG_EW2(kGt, x > y ? 1.f : 0.f);
    RG_EW2(kGe, x >= y ? 1.f : 0.f);
    RG_EW2(kReluGrad, y <= 0.f ? 0.f : x);  // a NaN input passes the gradient, as PyTorch's threshold_backward
    RG_EW2(kLeakyReluGrad, y > 0.f ? x : alpha * x);
    RG_EW2(kMaskedFill, y != 0.f ? alpha : x);
    RG_EW2(kAxpby, alpha * x + beta * y);
    RG_EW2(kSigmoidGrad, x * y * (1.f - y));
    RG_EW2(kTanhGrad, x * (1.f - y * y));
    case kWhere:
      for (int64_t i = 0; i < n; i++) {
        const float x = a[i], y = b[i], z = c[i];
        o[i] = x != 0.f ? y : z;
      }
      return;
    default: return;
  }
#undef RG_EW1
#undef RG_EW2
}

// The broadcast shape after dropping the dimensions of size 1 and merging each pair that every input reads as one
// (x[B, C] + bias[C] stays two dimensions, x + y of any rank becomes one). st[s][k]: input s's stride, 0 where it
// broadcasts; the innermost stride of an input is therefore 0 or 1.
struct EwLayout {
  int nd = 0;
  int64_t dims[kMaxDims];
  int64_t st[3][kMaxDims];
};

EwLayout ew_layout(int ndim, const int64_t* dims, const unsigned* masks, int inputs) {
  int64_t st[3][kMaxDims] = {};
  for (int s = 0; s < inputs; s++) {
    int64_t step = 1;
    for (int k = ndim - 1; k >= 0; k--) {
      if (masks[s] >> k & 1) continue;
      st[s][k] = step;
      step *= dims[k];
    }
  }
  EwLayout rev;  // innermost first
  for (int k = ndim - 1; k >= 0; k--) {
    if (dims[k] == 1) continue;
    bool merge = rev.nd > 0;
    for (int s = 0; s < inputs && merge; s++) merge = st[s][k] == rev.st[s][rev.nd - 1] * rev.dims[rev.nd - 1];
    if (merge) {
      rev.dims[rev.nd - 1] *= dims[k];
      continue;
    }
    rev.dims[rev.nd] = dims[k];
    for (int s = 0; s < inputs; s++) rev.st[s][rev.nd] = st[s][k];
    rev.nd++;
  }
  EwLayout l;
  l.nd = std::max(1, rev.nd);
  for (int k = 0; k < l.nd; k++) {
    const bool one = rev.nd == 0;  // a single element: every input is read at 0 like a contiguous one
    l.dims[k] = one ? 1 : rev.dims[rev.nd - 1 - k];
    for (int s = 0; s < 3; s++) l.st[s][k] = one || s >= inputs ? 1 : rev.st[s][rev.nd - 1 - k];
  }
  return l;
}

enum class Read { Direct, Scalar, Tile };

// Input s's elements for output positions [e, e + n) into dst, one row segment (a copy or a fill) at a time.
void gather_tile(float* dst, const float* x, const EwLayout& l, int s, int64_t e, int64_t n) {
  int64_t idx[kMaxDims];
  for (int k = l.nd - 1; k >= 0; k--) idx[k] = e % l.dims[k], e /= l.dims[k];
  const int last = l.nd - 1;
  const int64_t L = l.dims[last];
  for (int64_t pos = 0; pos < n;) {
    int64_t base = 0;
    for (int k = 0; k < last; k++) base += idx[k] * l.st[s][k];
    const int64_t j = idx[last], seg = std::min(L - j, n - pos);
    if (l.st[s][last] == 0) std::fill(dst + pos, dst + pos + seg, x[base]);
    else std::memcpy(dst + pos, x + base + j, static_cast<size_t>(seg) * 4);
    pos += seg;
    idx[last] = 0;
    for (int k = last - 1; k >= 0; k--) {
      if (++idx[k] < l.dims[k]) break;
      idx[k] = 0;
    }
  }
}

// Checks idx[0, count) against [0, D) with one vectorised pass, then finds the first bad one for the message.
Status check_indices(const char* where, const int32_t* idx, int64_t count, int64_t D) {
  const uint32_t d = static_cast<uint32_t>(D);  // D < 2^31; a negative index compares as a large unsigned one
  uint32_t bad = 0;
  for (int64_t e = 0; e < count; e++) bad |= static_cast<uint32_t>(idx[e]) >= d;
  if (!bad) return Status::Ok();
  int64_t e = 0;
  while (static_cast<uint32_t>(idx[e]) < d) e++;
  return Status::Invalid(std::string(where) + ": index " + std::to_string(idx[e]) + " at position " + std::to_string(e) +
                         " is outside [0, " + std::to_string(D) + ")");
}

// Column blocks for the kernels that split [outer, ·, inner] over (o, i) columns: at most kCols wide, narrower when
// that gives each thread a block of a single outer slice.
int64_t column_block(const ThreadPool& pool, int64_t outer, int64_t inner) {
  if (outer >= pool.size()) return std::min(inner, kCols);
  const int64_t per_thread = (inner + pool.size() - 1) / pool.size();
  return std::max<int64_t>(1, std::min({inner, kCols, std::max<int64_t>(64, (per_thread + 15) / 16 * 16)}));
}

// Drops the dimensions of size 1 and merges each pair that the strides read as one; at least one dimension remains.
struct Strided {
  int nd = 0;
  int64_t dims[kMaxDims];
  int64_t st[kMaxDims];
};
Strided collapse(int ndim, const int64_t* dims, const int64_t* strides) {
  Strided rev;
  for (int k = ndim - 1; k >= 0; k--) {
    if (dims[k] == 1) continue;
    if (rev.nd > 0 && strides[k] == rev.st[rev.nd - 1] * rev.dims[rev.nd - 1]) {
      rev.dims[rev.nd - 1] *= dims[k];
      continue;
    }
    rev.dims[rev.nd] = dims[k];
    rev.st[rev.nd++] = strides[k];
  }
  Strided l;
  l.nd = std::max(1, rev.nd);
  for (int k = 0; k < l.nd; k++) {
    l.dims[k] = rev.nd ? rev.dims[rev.nd - 1 - k] : 1;
    l.st[k] = rev.nd ? rev.st[rev.nd - 1 - k] : 1;
  }
  return l;
}

// Calls row(r, base) for the rows [r0, r1) of a collapsed layout (rows: every dimension but the last), base the
// strided position of the row's first element; the multi-index is decoded once and then counted up.
template <typename Row>
void for_rows(const Strided& l, int64_t r0, int64_t r1, Row row) {
  const int outer = l.nd - 1;
  int64_t idx[kMaxDims] = {};
  int64_t rem = r0;
  for (int k = outer - 1; k >= 0; k--) idx[k] = rem % l.dims[k], rem /= l.dims[k];
  for (int64_t r = r0; r < r1; r++) {
    int64_t base = 0;
    for (int k = 0; k < outer; k++) base += idx[k] * l.st[k];
    row(r, base);
    for (int k = outer - 1; k >= 0; k--) {
      if (++idx[k] < l.dims[k]) break;
      idx[k] = 0;
    }
  }
}

int64_t element_count(int ndim, const int64_t* dims) {
  int64_t n = 1;
  for (int k = 0; k < ndim; k++) n *= dims[k];
  return n;
}

}  // namespace

// ---- elementwise: out [dims] = op(a, b?, c?) with broadcasting ----
// All inputs contiguous with out (the common case, every mask 0 or only size-1 dimensions broadcast): one loop per
// range. Otherwise tiles of kTile outputs: an input contiguous with out is read in place, a single value fills its tile
// once per call, and the rest are copied row segment by row segment into their tile — except where the tile lies
// inside one long row, where a row-contiguous input (x[B, C] + bias[C]) is read in place too and a per-row value
// (x[B, C] − mean[B, 1]) fills its tile once per row.
Status elementwise(ThreadPool& pool, float* out, const float* a, const float* b, const float* c, int op, float alpha, float beta,
                   int ndim, const int64_t* dims, unsigned amask, unsigned bmask, unsigned cmask) {
  if (ndim < 0 || ndim > kMaxDims)
    return Status::Invalid("elementwise: at most " + std::to_string(kMaxDims) + " dimensions, got " + std::to_string(ndim));
  if (!ew_known(op)) return Status::Invalid("elementwise: unknown op code " + std::to_string(op));
  const int inputs = ew_inputs(op);
  if (inputs >= 2 && !b) return Status::Invalid("elementwise: op " + std::to_string(op) + " needs b");
  if (inputs == 3 && !c) return Status::Invalid("elementwise: op " + std::to_string(op) + " needs c");
  const int64_t N = element_count(ndim, dims);
  if (N == 0) return Status::Ok();
  const unsigned masks[3] = {amask, bmask, cmask};
  const float* in[3] = {a, inputs >= 2 ? b : a, inputs == 3 ? c : a};  // unread inputs alias a
  const EwLayout l = ew_layout(ndim, dims, masks, inputs);
  const int last = l.nd - 1;
  const int64_t L = l.dims[last];

  Read how[3] = {Read::Direct, Read::Direct, Read::Direct};
  bool all_direct = true;
  for (int s = 0; s < inputs; s++) {
    bool direct = true, scalar = true;
    int64_t step = 1;
    for (int k = last; k >= 0; k--) {
      direct = direct && l.st[s][k] == step;
      scalar = scalar && l.st[s][k] == 0;
      step *= l.dims[k];
    }
    how[s] = direct ? Read::Direct : scalar ? Read::Scalar : Read::Tile;
    all_direct = all_direct && direct;
  }
  const int64_t grain = ew_costly(op) ? kCostlyGrain : kCheapGrain;

  if (all_direct) {
    pool.parallel_for(N, grain, [&](int64_t i0, int64_t i1) {
      dispatch([&]() __attribute__((always_inline)) {
        ew_contig(op, out + i0, in[0] + i0, in[1] + i0, in[2] + i0, i1 - i0, alpha, beta);
      });
    });
    return Status::Ok();
  }

  // Tiles end at a row's end when rows are long enough for an in-place read to pay for a shorter tile.
  const bool row_tiles = L >= kTile / 4;
  pool.parallel_for(N, grain, [&](int64_t e0, int64_t e1) {
    alignas(64) float tile[3][kTile];
    const float* filled[3] = {nullptr, nullptr, nullptr};  // the value each tile holds repeated, and how many times
    int64_t filled_n[3] = {0, 0, 0};
    for (int64_t e = e0; e < e1;) {
      const int64_t j = e % L;
      int64_t n = std::min(kTile, e1 - e);
      if (row_tiles) n = std::min(n, L - j);
      const bool in_row = j + n <= L;
      int64_t row_base[3] = {0, 0, 0};
      if (in_row && l.nd > 1) {
        int64_t rem = e / L;
        for (int k = last - 1; k >= 0; k--) {
          const int64_t i = rem % l.dims[k];
          rem /= l.dims[k];
          for (int s = 0; s < inputs; s++) row_base[s] += i * l.st[s][k];
        }
      }
      const float* p[3] = {in[0], in[0], in[0]};
      for (int s = 0; s < inputs; s++) {
        const float* x = in[s];
        const float* one = how[s] == Read::Scalar ? x : in_row && l.st[s][last] == 0 ? x + row_base[s] : nullptr;
        if (how[s] == Read::Direct) {
          p[s] = x + e;
        } else if (one) {
          if (filled[s] != one || filled_n[s] < n) {
            std::fill(tile[s], tile[s] + (how[s] == Read::Scalar ? kTile : n), *one);
            filled[s] = one;
            filled_n[s] = how[s] == Read::Scalar ? kTile : n;
          }
          p[s] = tile[s];
        } else if (in_row) {
          p[s] = x + row_base[s] + j;
        } else {
          gather_tile(tile[s], x, l, s, e, n);
          filled[s] = nullptr;
          p[s] = tile[s];
        }
      }
      dispatch([&]() __attribute__((always_inline)) { ew_contig(op, out + e, p[0], p[1], p[2], n, alpha, beta); });
      e += n;
    }
  });
  return Status::Ok();
}

// ---- reduce: out[o, i] = op over r of a[o, r, i]; idx[o, i] the r of max / min (0 for sum) ----
namespace {
constexpr int64_t kReduceGrain = 32768;

// The first extreme of x[0, R) and where it is, NaN winning (the first NaN). Eight lanes each keep the first extreme
// of x[l], x[l + 8], …; combining them by value and then by index gives the first extreme overall.
template <bool Max>
RG_INLINE void row_extreme(const float* x, int64_t R, float* value, int32_t* at) {
  auto better = [](float y, float m) __attribute__((always_inline)) { return (Max ? y > m : y < m) || (y != y && m == m); };
  if (R < 16) {
    float m = x[0];
    int32_t w = 0;
    for (int64_t r = 1; r < R; r++)
      if (better(x[r], m)) m = x[r], w = static_cast<int32_t>(r);
    *value = m, *at = w;
    return;
  }
  float mv[8];
  int32_t mi[8];
  for (int l = 0; l < 8; l++) mv[l] = x[l], mi[l] = l;
  int64_t r = 8;
  for (; r + 8 <= R; r += 8) {
    for (int l = 0; l < 8; l++) {
      const float y = x[r + l];
      const bool take = better(y, mv[l]);
      mv[l] = take ? y : mv[l];
      mi[l] = take ? static_cast<int32_t>(r + l) : mi[l];
    }
  }
  for (; r < R; r++)
    if (better(x[r], mv[r % 8])) mv[r % 8] = x[r], mi[r % 8] = static_cast<int32_t>(r);
  int best = 0;
  for (int l = 1; l < 8; l++)
    if (better(mv[l], mv[best]) || ((mv[l] == mv[best] || (mv[l] != mv[l] && mv[best] != mv[best])) && mi[l] < mi[best])) best = l;
  *value = mv[best], *at = mi[best];
}

// Rows (inner = 1): eight rows at a time, each summed in r order — eight independent chains instead of one, so the
// add latency is hidden without changing any row's order.
RG_INLINE void reduce_rows(float* out, int32_t* idx, const float* a, int op, int64_t o0, int64_t o1, int64_t R) {
  for (int64_t o = o0; o < o1;) {
    const int64_t rows = std::min<int64_t>(8, o1 - o);
    const float* x = a + o * R;
    if (op == 0 && rows == 8) {
      double s[8] = {};
      for (int64_t r = 0; r < R; r++)
        for (int l = 0; l < 8; l++) s[l] += x[l * R + r];
      for (int l = 0; l < 8; l++) out[o + l] = static_cast<float>(s[l]);
    } else {
      for (int64_t l = 0; l < rows; l++) {
        const float* y = x + l * R;
        if (op == 0) {
          double s = 0;
          for (int64_t r = 0; r < R; r++) s += y[r];
          out[o + l] = static_cast<float>(s);
        } else {
          int32_t at;
          if (op == 1) row_extreme<true>(y, R, out + o + l, &at);
          else row_extreme<false>(y, R, out + o + l, &at);
          if (idx) idx[o + l] = at;
        }
      }
    }
    if (op == 0 && idx) std::fill(idx + o, idx + o + rows, 0);
    o += rows;
  }
}

// Columns (inner > 1): out[o, i0 : i0 + w] over r in order, vectorised over i.
template <int Op>
RG_INLINE void reduce_cols(float* y, int32_t* at, const float* x, int64_t R, int64_t inner, int64_t w) {
  if (Op == 0) {
    double acc[kCols];
    for (int64_t i = 0; i < w; i++) acc[i] = 0;
    for (int64_t r = 0; r < R; r++)
      for (int64_t i = 0; i < w; i++) acc[i] += x[r * inner + i];
    for (int64_t i = 0; i < w; i++) y[i] = static_cast<float>(acc[i]);
    if (at) std::fill(at, at + w, 0);
    return;
  }
  float mv[kCols];
  int32_t mi[kCols];
  for (int64_t i = 0; i < w; i++) mv[i] = x[i], mi[i] = 0;
  for (int64_t r = 1; r < R; r++) {
    const float* row = x + r * inner;
    for (int64_t i = 0; i < w; i++) {
      const float v = row[i], m = mv[i];
      const bool take = (Op == 1 ? v > m : v < m) || (v != v && m == m);
      mv[i] = take ? v : m;
      mi[i] = take ? static_cast<int32_t>(r) : mi[i];
    }
  }
  for (int64_t i = 0; i < w; i++) y[i] = mv[i];
  if (at) std::copy(mi, mi + w, at);
}
}  // namespace

Status reduce(ThreadPool& pool, float* out, int32_t* idx, const float* a, int op, int64_t outer, int64_t R, int64_t inner) {
  if (op < 0 || op > 2) return Status::Invalid("reduce: unknown op code " + std::to_string(op));
  if (outer == 0 || inner == 0) return Status::Ok();
  if (op != 0 && R == 0)
    return Status::Invalid(std::string("reduce: ") + (op == 1 ? "max" : "min") + " over an empty dimension has no value");
  if (inner == 1) {
    const int64_t groups = (outer + 7) / 8;
    pool.parallel_for(groups, std::max<int64_t>(1, kReduceGrain / std::max<int64_t>(1, 8 * R)), [&](int64_t g0, int64_t g1) {
      dispatch([&]() __attribute__((always_inline)) { reduce_rows(out, idx, a, op, g0 * 8, std::min(outer, g1 * 8), R); });
    });
    return Status::Ok();
  }
  const int64_t cols = column_block(pool, outer, inner);
  const int64_t blocks = (inner + cols - 1) / cols;
  pool.parallel_for(outer * blocks, std::max<int64_t>(1, kReduceGrain / std::max<int64_t>(1, R * cols)), [&](int64_t t0, int64_t t1) {
    dispatch([&]() __attribute__((always_inline)) {
      for (int64_t t = t0; t < t1; t++) {
        const int64_t o = t / blocks, i0 = t % blocks * cols, w = std::min(cols, inner - i0);
        float* y = out + o * inner + i0;
        int32_t* at = idx ? idx + o * inner + i0 : nullptr;
        const float* x = a + o * R * inner + i0;
        if (op == 0) reduce_cols<0>(y, at, x, R, inner, w);
        else if (op == 1) reduce_cols<1>(y, at, x, R, inner, w);
        else reduce_cols<2>(y, at, x, R, inner, w);
      }
    });
  });
  return Status::Ok();
}

// ---- strided_copy / strided_scatter: out [dims] = a[offset + Σ i_k·s_k], and back ----
// Rows of the collapsed layout: a memcpy where the last dimension has stride 1 (narrow, slice, permutes that keep the
// last axis), a fill where it has stride 0 (expand), a strided loop otherwise — in 32 × 32 blocks when the dimension
// before the last has stride 1 (a transpose): a 32 × 32 block is read into a local buffer by source lines and written
// out by destination lines, so that each cache line is used whole at once rather than one element per line visit
// (a 1024 × 1024 transpose: 1.1 ms on one thread, scalar; a copy of as much takes 0.12 ms).
void strided_copy(ThreadPool& pool, void* out, const void* a, int ndim, int64_t offset, const int64_t* dims, const int64_t* strides) {
  if (ndim < 0 || ndim > kMaxDims) return;  // the addon refuses these first
  const int64_t N = element_count(ndim, dims);
  if (N == 0) return;
  const Strided l = collapse(ndim, dims, strides);
  const uint32_t* src = static_cast<const uint32_t*>(a) + offset;
  uint32_t* dst = static_cast<uint32_t*>(out);
  const int last = l.nd - 1;
  const int64_t L = l.dims[last], sl = l.st[last], rows = N / L;
  if (l.nd >= 2 && l.st[last - 1] == 1 && sl > 1) {
    constexpr int64_t T = 32;
    const int64_t P = l.dims[last - 1];
    Strided outer_l = l;  // its rows: the planes, the dimensions before the transposed pair
    outer_l.nd = last;
    const int64_t planes = rows / P, pblocks = (P + T - 1) / T;
    pool.parallel_for(planes * pblocks, std::max<int64_t>(1, kCheapGrain / (T * L)), [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; t++) {
        const int64_t q = t / pblocks, p0 = t % pblocks * T, p1 = std::min(P, p0 + T);
        int64_t base = 0;
        for_rows(outer_l, q, q + 1, [&](int64_t, int64_t b) { base = b; });
        for (int64_t j0 = 0; j0 < L; j0 += T) {
          const int64_t jn = std::min(L - j0, T), pn = p1 - p0;
          uint32_t block[T][T];
          for (int64_t j = 0; j < jn; j++) {
            const uint32_t* s = src + base + (j0 + j) * sl + p0;
            for (int64_t p = 0; p < pn; p++) block[j][p] = s[p];
          }
          for (int64_t p = 0; p < pn; p++) {
            uint32_t* d = dst + (q * P + p0 + p) * L + j0;
            for (int64_t j = 0; j < jn; j++) d[j] = block[j][p];
          }
        }
      }
    });
    return;
  }
  pool.parallel_for(rows, std::max<int64_t>(1, kCheapGrain / L), [&](int64_t r0, int64_t r1) {
    for_rows(l, r0, r1, [&](int64_t r, int64_t base) {
      uint32_t* d = dst + r * L;
      const uint32_t* s = src + base;
      if (sl == 1) std::memcpy(d, s, static_cast<size_t>(L) * 4);
      else if (sl == 0) std::fill(d, d + L, s[0]);
      else for (int64_t j = 0; j < L; j++) d[j] = s[j * sl];
    });
  });
}

// Rows in parallel (the positions are distinct by contract); a layout that repeats a position (a stride 0) runs on one
// thread in order, as the reference, so that a misuse gives a defined result rather than a race.
void strided_scatter(ThreadPool& pool, float* out, const float* a, int ndim, int64_t offset, const int64_t* dims, const int64_t* strides,
                     bool accumulate) {
  if (ndim < 0 || ndim > kMaxDims) return;
  const int64_t N = element_count(ndim, dims);
  if (N == 0) return;
  const Strided l = collapse(ndim, dims, strides);
  float* dst = out + offset;
  const int last = l.nd - 1;
  const int64_t L = l.dims[last], sl = l.st[last], rows = N / L;
  bool repeats = false;
  for (int k = 0; k < l.nd; k++) repeats = repeats || (l.st[k] == 0 && l.dims[k] > 1);
  const int64_t grain = repeats ? rows : std::max<int64_t>(1, kCheapGrain / L);
  pool.parallel_for(rows, grain, [&](int64_t r0, int64_t r1) {
    dispatch([&]() __attribute__((always_inline)) {
      for_rows(l, r0, r1, [&](int64_t r, int64_t base) {
        float* d = dst + base;
        const float* s = a + r * L;
        if (sl == 1 && !accumulate) std::memcpy(d, s, static_cast<size_t>(L) * 4);
        else if (sl == 1) for (int64_t j = 0; j < L; j++) d[j] += s[j];
        else if (accumulate) for (int64_t j = 0; j < L; j++) d[j * sl] += s[j];
        else for (int64_t j = 0; j < L; j++) d[j * sl] = s[j];
      });
    });
  });
}

// ---- bmm: out_p = alpha·op(a_p)·op(b_p) + beta·out_p over the gemm ----
// Products below the gemm's own threading threshold (~8 MFLOP) run one per thread, in parallel over the batch: a
// gemm called inside a range runs on that thread alone. Larger ones run one after another, each on every thread.
void bmm(ThreadPool& pool, float* out, const float* a, const float* b, int64_t batch, int64_t M, int64_t N, int64_t K, bool trans_a,
         bool trans_b, int64_t stride_a, int64_t stride_b, float alpha, float beta) {
  if (batch <= 0 || M <= 0 || N <= 0) return;
  const double flops = 2.0 * M * N * std::max<int64_t>(1, K);
  auto product = [&](int64_t p) {
    gemm(pool, trans_a, trans_b, M, N, K, alpha, a + p * stride_a, b + p * stride_b, beta, out + p * M * N);
  };
  if (flops < (8 << 20)) {
    pool.parallel_for(batch, std::max<int64_t>(1, static_cast<int64_t>((1 << 20) / flops)), [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; p++) product(p);
    });
  } else {
    for (int64_t p = 0; p < batch; p++) product(p);
  }
}

// ---- index kernels along the middle axis of [outer, D, inner] ----
Status index_select(ThreadPool& pool, void* out, const void* a, const int32_t* idx, int64_t outer, int64_t D, int64_t inner, int64_t n) {
  if (Status s = check_indices("index_select", idx, n, D); !s.ok()) return s;
  const uint32_t* src = static_cast<const uint32_t*>(a);
  uint32_t* dst = static_cast<uint32_t*>(out);
  pool.parallel_for(outer * n, std::max<int64_t>(1, kCheapGrain / std::max<int64_t>(1, inner)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const int64_t o = r / n, j = r % n;
      const uint32_t* s = src + (o * D + idx[j]) * inner;
      if (inner == 1) dst[r] = *s;
      else std::memcpy(dst + r * inner, s, static_cast<size_t>(inner) * 4);
    }
  });
  return Status::Ok();
}

// Parallel over (o, i) columns; each column adds its rows j in order.
Status index_add(ThreadPool& pool, float* out, const float* src, const int32_t* idx, int64_t outer, int64_t D, int64_t inner, int64_t n) {
  if (Status s = check_indices("index_add", idx, n, D); !s.ok()) return s;
  if (outer == 0 || inner == 0 || n == 0) return Status::Ok();
  const int64_t cols = column_block(pool, outer, inner);
  const int64_t blocks = (inner + cols - 1) / cols;
  pool.parallel_for(outer * blocks, std::max<int64_t>(1, kCheapGrain / (n * cols)), [&](int64_t t0, int64_t t1) {
    dispatch([&]() __attribute__((always_inline)) {
      for (int64_t t = t0; t < t1; t++) {
        const int64_t o = t / blocks, i0 = t % blocks * cols, w = std::min(cols, inner - i0);
        for (int64_t j = 0; j < n; j++) {
          float* d = out + (o * D + idx[j]) * inner + i0;
          const float* s = src + (o * n + j) * inner + i0;
          for (int64_t i = 0; i < w; i++) d[i] += s[i];
        }
      }
    });
  });
  return Status::Ok();
}

Status gather(ThreadPool& pool, void* out, const void* a, const int32_t* idx, int64_t outer, int64_t D, int64_t n, int64_t inner) {
  if (Status s = check_indices("gather", idx, outer * n * inner, D); !s.ok()) return s;
  const uint32_t* src = static_cast<const uint32_t*>(a);
  uint32_t* dst = static_cast<uint32_t*>(out);
  pool.parallel_for(outer * n, std::max<int64_t>(1, kCheapGrain / std::max<int64_t>(1, inner)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
      const uint32_t* s = src + r / n * D * inner;
      const int32_t* ix = idx + r * inner;
      uint32_t* d = dst + r * inner;
      for (int64_t i = 0; i < inner; i++) d[i] = s[ix[i] * inner + i];
    }
  });
  return Status::Ok();
}

// Parallel over (o, i) columns as index_add: the j of one column land in order, whatever their indices.
Status scatter_add(ThreadPool& pool, float* out, const float* src, const int32_t* idx, int64_t outer, int64_t D, int64_t n, int64_t inner) {
  if (Status s = check_indices("scatter_add", idx, outer * n * inner, D); !s.ok()) return s;
  if (outer == 0 || inner == 0 || n == 0) return Status::Ok();
  const int64_t cols = column_block(pool, outer, inner);
  const int64_t blocks = (inner + cols - 1) / cols;
  pool.parallel_for(outer * blocks, std::max<int64_t>(1, kCheapGrain / (n * cols)), [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) {
      const int64_t o = t / blocks, i0 = t % blocks * cols, w = std::min(cols, inner - i0);
      float* d = out + o * D * inner + i0;
      for (int64_t j = 0; j < n; j++) {
        const int64_t row = (o * n + j) * inner + i0;
        for (int64_t i = 0; i < w; i++) d[idx[row + i] * inner + i] += src[row + i];
      }
    }
  });
  return Status::Ok();
}

}  // namespace rg::cpu
