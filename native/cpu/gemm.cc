// gemm: C[M,N] = act(alpha · op(A) · op(B) + beta · C + bias), for the four transpose combinations that
// Linear's forward (x·Wᵀ) and backward (dy·W, dyᵀ·x) need, without transposed copies of the operands.
//
// BLIS-style blocking, row-major. The output is cut into one rectangle per thread, and each thread runs the whole
// blocked loop over its own rectangle: for each K block of KC, it packs its columns of op(B) into slivers of NR
// columns ([kc][NR], zero-padded) and then each block of MC rows of op(A) into slivers of MR rows ([kc][MR], alpha
// folded in), and runs the register-tiled micro-kernel over the tiles. One parallel region per product, no barrier
// inside it. Every output element is summed in k order by one thread, so the result does not depend on the thread
// count. Operands stored transposed to the slivers' order are packed by 8 × 8 transposes in registers.
//
// Micro-kernels, chosen once at load by CPU feature (RETROGRAD_CPU_ISA=portable|avx2 caps the choice, so
// each path is tested on one machine):
//   avx512   12 × 32 tile: 24 zmm accumulators, 2 loads of B and 12 broadcasts of A per 24 FMAs
//   avx2      6 × 16 tile: 12 ymm accumulators
//   portable  4 ×  8 tile in plain C (SSE2 by the compiler)
// On this project's 2-core Zen 5 machine the AVX-512 kernel runs near the FMA peak (see bench/gemm).
//
// Small M (batch-1 inference, M < kSmallM): packing would cost as much as the product, so op(B) is
// streamed once instead — dot products against B's rows when B is [N,K], row updates when it is [K,N].
//
// The epilogue runs on the last K block of each tile: bias (per column) and ReLU / LeakyReLU, so that
// Linear's forward is one pass over its output.
// GCC 12 warns about _mm512_undefined_ps() inside _mm512_max_ps (a false positive of its own header).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "simd.h"
#if RG_X86
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstdlib>
#include <new>
#include <cstring>

#include "kernels.h"

namespace rg::cpu {

namespace {

constexpr int64_t KC = 384;
// K block of bfloat16 products: a B sliver of 256 words × 32 columns is 32 KB (float32's 384 × 32: 48 KB). Their tile
// is AVX-512's 12 × 32, its columns shared among threads in half slivers of 16.
constexpr int64_t KC_BF16 = 512;
constexpr int kBf16MR = 12, kBf16NR = 32, kBf16NU = 16;
// K blocks per thread from which a small output is split along K: 2 (768 of K each) measured faster than 4 on the
// tiny GPT's weight gradients (K = 2,048 rows: 128 × 128 0.52 → 0.31-0.43 ms, 96 × 128 0.45 → 0.29 ms).
constexpr int64_t SPLITK_KC = 2;
constexpr int64_t MC = 96;  // target rows per A block (adjusted per problem for balance)
constexpr int64_t NC = 3072;  // columns per panel of packed B (384 × 3072 floats: 4.5 MB)
constexpr int64_t kSmallM = 6;

struct Epilogue {
  float beta;          // C = beta·C + acc on the first K block (1 on later blocks)
  const float* bias;   // added on the first K block, per column; may be null
  Activation act;      // applied on the last K block
  float slope;         // LeakyReLU's negative slope
};

inline float activate(float v, Activation act, float slope) {
  switch (act) {
    case Activation::Relu: return v < 0.f ? 0.f : v;  // NaN stays NaN, as in PyTorch
    case Activation::LeakyRelu: return v > 0.f ? v : v * slope;
    default: return v;
  }
}

// Applies the epilogue to an mr × nr tile held in acc (row stride ldacc) and writes it to C.
inline void store_tile_scalar(const float* acc, int64_t ldacc, float* C, int64_t ldc, int mr, int nr,
                              const Epilogue& e) {
  for (int r = 0; r < mr; r++) {
    for (int j = 0; j < nr; j++) {
      float v = acc[r * ldacc + j];
      if (e.beta == 1.f) v += C[r * ldc + j];
      else if (e.beta != 0.f) v += e.beta * C[r * ldc + j];
      if (e.bias) v += e.bias[j];
      C[r * ldc + j] = activate(v, e.act, e.slope);
    }
  }
}

// ---- micro-kernels: C[mr, nr] (+)= Ap[kc][MR]ᵀ · Bp[kc][NR], epilogue applied ----

#if RG_X86
#define RG_AVX512 RG_TARGET_AVX512
#define RG_AVX2 RG_TARGET_AVX2

RG_AVX512 inline __m512 epi512(__m512 v, const float* c, const float* bias, const Epilogue& e) {
  if (e.beta == 1.f) v = _mm512_add_ps(v, _mm512_loadu_ps(c));
  else if (e.beta != 0.f) v = _mm512_fmadd_ps(_mm512_set1_ps(e.beta), _mm512_loadu_ps(c), v);
  if (bias) v = _mm512_add_ps(v, _mm512_loadu_ps(bias));
  // max_ps returns its second operand when either is NaN: zero first, so that NaN stays NaN (PyTorch's ReLU)
  if (e.act == Activation::Relu) v = _mm512_max_ps(_mm512_setzero_ps(), v);
  else if (e.act == Activation::LeakyRelu)
    v = _mm512_mask_mul_ps(v, _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LE_OQ), v, _mm512_set1_ps(e.slope));
  return v;
}

// Writes an R × 16V tile of accumulators to C through the epilogue: whole vectors when the tile is full, else through
// a buffer and the scalar path for the mr × nr corner that lies inside C.
template <int R, int V>
RG_AVX512 RG_INLINE void store_tile512(const __m512 (&c)[R][V], float* C, int64_t ldc, int mr, int nr, const Epilogue& e) {
  if (mr == R && nr == 16 * V) {
#pragma GCC unroll 12
    for (int r = 0; r < R; r++) {
      float* cr = C + r * ldc;
#pragma GCC unroll 2
      for (int v = 0; v < V; v++) _mm512_storeu_ps(cr + 16 * v, epi512(c[r][v], cr + 16 * v, e.bias ? e.bias + 16 * v : nullptr, e));
    }
    return;
  }
  alignas(64) float tile[R * 16 * V];
  for (int r = 0; r < R; r++)
    for (int v = 0; v < V; v++) _mm512_store_ps(tile + r * 16 * V + 16 * v, c[r][v]);
  store_tile_scalar(tile, 16 * V, C, ldc, mr, nr, e);
}

// R rows × V vectors of 16 columns, reading slivers packed for the full 12 × 32 tile (A's rows 12 apart, B's 32): the
// full tile, and narrower ones for the edges of C so that a partial tile does not pay for a whole one (a 64-row
// product is five full row tiles and a 4-row one, a 196-column one six full slivers and a 4-column one).
template <int R, int V>
RG_AVX512 void kernel_avx512_t(int64_t kc, const float* __restrict Ap, const float* __restrict Bp, float* C,
                               int64_t ldc, int mr, int nr, const Epilogue& e) {
  constexpr int MR = 12, NR = 32;
  __m512 c[R][V];
#pragma GCC unroll 12
  for (int r = 0; r < R; r++)
#pragma GCC unroll 2
    for (int v = 0; v < V; v++) c[r][v] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; k++) {
    __m512 b[V];
#pragma GCC unroll 2
    for (int v = 0; v < V; v++) b[v] = _mm512_load_ps(Bp + k * NR + 16 * v);
    const float* a = Ap + k * MR;
#pragma GCC unroll 12
    for (int r = 0; r < R; r++) {
      const __m512 av = _mm512_set1_ps(a[r]);
#pragma GCC unroll 2
      for (int v = 0; v < V; v++) c[r][v] = _mm512_fmadd_ps(av, b[v], c[r][v]);
    }
  }
  store_tile512<R, V>(c, C, ldc, mr, nr, e);
}

// The narrowest R × 16V variant of a tile kernel K (K::run<R, V>) that covers an mr × nr tile: R 4, 8 or 12, V 1 or 2.
template <typename K, typename T>
RG_INLINE void edge_tile(int64_t kc, const T* __restrict Ap, const T* __restrict Bp, float* C, int64_t ldc, int mr, int nr, const Epilogue& e) {
  if (nr > 16) {
    if (mr > 8) return K::template run<12, 2>(kc, Ap, Bp, C, ldc, mr, nr, e);
    if (mr > 4) return K::template run<8, 2>(kc, Ap, Bp, C, ldc, mr, nr, e);
    return K::template run<4, 2>(kc, Ap, Bp, C, ldc, mr, nr, e);
  }
  if (mr > 8) return K::template run<12, 1>(kc, Ap, Bp, C, ldc, mr, nr, e);
  if (mr > 4) return K::template run<8, 1>(kc, Ap, Bp, C, ldc, mr, nr, e);
  return K::template run<4, 1>(kc, Ap, Bp, C, ldc, mr, nr, e);
}

struct TileF32 {
  template <int R, int V>
  RG_AVX512 static void run(int64_t kc, const float* Ap, const float* Bp, float* C, int64_t ldc, int mr, int nr, const Epilogue& e) {
    kernel_avx512_t<R, V>(kc, Ap, Bp, C, ldc, mr, nr, e);
  }
};

// The 12 × 32 tile: 24 zmm accumulators, 2 loads of B and 12 broadcasts of A per 24 FMAs; edge tiles by the
// narrowest variant that covers them.
RG_AVX512 void kernel_avx512(int64_t kc, const float* __restrict Ap, const float* __restrict Bp, float* C,
                             int64_t ldc, int mr, int nr, const Epilogue& e) {
  edge_tile<TileF32>(kc, Ap, Bp, C, ldc, mr, nr, e);
}

RG_AVX2 inline __m256 epi256(__m256 v, const float* c, const float* bias, const Epilogue& e) {
  if (e.beta == 1.f) v = _mm256_add_ps(v, _mm256_loadu_ps(c));
  else if (e.beta != 0.f) v = _mm256_fmadd_ps(_mm256_set1_ps(e.beta), _mm256_loadu_ps(c), v);
  if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias));
  if (e.act == Activation::Relu) v = _mm256_max_ps(_mm256_setzero_ps(), v);  // NaN stays NaN (see epi512)
  else if (e.act == Activation::LeakyRelu)
    v = _mm256_blendv_ps(v, _mm256_mul_ps(v, _mm256_set1_ps(e.slope)), _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LE_OQ));
  return v;
}

RG_AVX2 void kernel_avx2(int64_t kc, const float* __restrict Ap, const float* __restrict Bp, float* C,
                         int64_t ldc, int mr, int nr, const Epilogue& e) {
  constexpr int R = 6;
  __m256 c[R][2];
#pragma GCC unroll 6
  for (int r = 0; r < R; r++) c[r][0] = c[r][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; k++) {
    const __m256 b0 = _mm256_load_ps(Bp + k * 16);
    const __m256 b1 = _mm256_load_ps(Bp + k * 16 + 8);
    const float* a = Ap + k * R;
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
      const __m256 av = _mm256_broadcast_ss(a + r);
      c[r][0] = _mm256_fmadd_ps(av, b0, c[r][0]);
      c[r][1] = _mm256_fmadd_ps(av, b1, c[r][1]);
    }
  }
  if (mr == R && nr == 16) {
#pragma GCC unroll 6
    for (int r = 0; r < R; r++) {
      float* cr = C + r * ldc;
      _mm256_storeu_ps(cr, epi256(c[r][0], cr, e.bias, e));
      _mm256_storeu_ps(cr + 8, epi256(c[r][1], cr + 8, e.bias ? e.bias + 8 : nullptr, e));
    }
    return;
  }
  alignas(64) float tile[R * 16];
  for (int r = 0; r < R; r++) {
    _mm256_store_ps(tile + r * 16, c[r][0]);
    _mm256_store_ps(tile + r * 16 + 8, c[r][1]);
  }
  store_tile_scalar(tile, 16, C, ldc, mr, nr, e);
}

// bfloat16 products (rg.autocast('bfloat16')): the same 12 × 32 tile over slivers of bfloat16 pairs, one 32-bit
// word per row (A) or column (B) and pair of k: vdpbf16ps multiplies 16 columns by two k at once, summing the two
// products into the float32 accumulator (AVX512-BF16), so a K block takes half the instructions of float32's.
#define RG_BF16 RG_TARGET_AVX512BF16
template <int R, int V>
RG_BF16 void kernel_bf16_t(int64_t kp, const uint32_t* __restrict Ap, const uint32_t* __restrict Bp, float* C, int64_t ldc,
                           int mr, int nr, const Epilogue& e) {
  constexpr int MR = kBf16MR, NR = kBf16NR;
  __m512 c[R][V];
#pragma GCC unroll 12
  for (int r = 0; r < R; r++)
#pragma GCC unroll 2
    for (int v = 0; v < V; v++) c[r][v] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kp; k++) {
    __m512bh b[V];
#pragma GCC unroll 2
    for (int v = 0; v < V; v++) b[v] = (__m512bh)_mm512_load_si512(Bp + k * NR + 16 * v);
    const uint32_t* a = Ap + k * MR;
#pragma GCC unroll 12
    for (int r = 0; r < R; r++) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(static_cast<int>(a[r]));
#pragma GCC unroll 2
      for (int v = 0; v < V; v++) c[r][v] = _mm512_dpbf16_ps(c[r][v], av, b[v]);
    }
  }
  store_tile512<R, V>(c, C, ldc, mr, nr, e);
}

struct TileBf16 {
  template <int R, int V>
  RG_BF16 static void run(int64_t kp, const uint32_t* Ap, const uint32_t* Bp, float* C, int64_t ldc, int mr, int nr, const Epilogue& e) {
    kernel_bf16_t<R, V>(kp, Ap, Bp, C, ldc, mr, nr, e);
  }
};

RG_BF16 void kernel_bf16(int64_t kp, const uint32_t* __restrict Ap, const uint32_t* __restrict Bp, float* C, int64_t ldc, int mr,
                         int nr, const Epilogue& e) {
  edge_tile<TileBf16>(kp, Ap, Bp, C, ldc, mr, nr, e);
}
#endif  // RG_X86

void kernel_portable(int64_t kc, const float* __restrict Ap, const float* __restrict Bp, float* C, int64_t ldc,
                     int mr, int nr, const Epilogue& e) {
  constexpr int R = 4, NR = 8;
  float acc[R][NR] = {};
  for (int64_t k = 0; k < kc; k++) {
    const float* b = Bp + k * NR;
    const float* a = Ap + k * R;
    for (int r = 0; r < R; r++)
      for (int j = 0; j < NR; j++) acc[r][j] += a[r] * b[j];
  }
  store_tile_scalar(&acc[0][0], NR, C, ldc, mr, nr, e);
}

using KernelFn = void (*)(int64_t, const float*, const float*, float*, int64_t, int, int, const Epilogue&);

struct Isa {
  int mr, nr;
  int nu;  // the narrowest column count the kernel multiplies without computing a wider tile
  KernelFn kernel;
};

Isa select_kernel() {
#if RG_X86
  switch (isa_level()) {
    case IsaLevel::Avx512: return {12, 32, 16, kernel_avx512};
    case IsaLevel::Avx2: return {6, 16, 16, kernel_avx2};
    default: return {4, 8, 8, kernel_portable};
  }
#else
  return {4, 8, 8, kernel_portable};
#endif
}

const Isa kIsa = select_kernel();

// Packing buffers, one set per thread: the queue thread of each Node environment packs B, every pool
// thread packs its A blocks. They grow to the largest problem seen and are then reused: no allocation in
// the steady state.
struct AlignedBuffer {
  float* data = nullptr;
  size_t capacity = 0;
  // Throws std::bad_alloc when the memory cannot be had (the command queue reports it as OUT_OF_MEMORY).
  float* get(size_t n) {
    if (n > capacity) {
      const size_t want = std::max(n, capacity * 2);
      // (aligned operator new: std::aligned_alloc is missing from the Windows C runtime)
      float* fresh = static_cast<float*>(::operator new(want * sizeof(float), std::align_val_t{64}));
      ::operator delete(data, std::align_val_t{64});
      data = fresh;
      capacity = want;
    }
    return data;
  }
  ~AlignedBuffer() { ::operator delete(data, std::align_val_t{64}); }
};
thread_local AlignedBuffer tls_bpack;
thread_local AlignedBuffer tls_apack;
thread_local AlignedBuffer tls_arow;
thread_local AlignedBuffer tls_swap;
thread_local AlignedBuffer tls_split;

// ---- transposing packs: rows of a row-major matrix into [k][width] slivers ----

#if RG_X86
// o = the 8 × 8 transpose of r (32-bit lanes moved, never computed on).
RG_TARGET_AVX2 RG_INLINE void transpose8x8(const __m256 r[8], __m256 o[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  o[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  o[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  o[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  o[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  o[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  o[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  o[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  o[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// The first `width` lanes of v to d.
RG_TARGET_AVX2 RG_INLINE void store_row8(float* d, __m256 v, int width) {
  if (width == 8) {
    _mm256_storeu_ps(d, v);
  } else if (width == 4) {
    _mm_storeu_ps(d, _mm256_castps256_ps128(v));
  } else {
    alignas(32) float t[8];
    _mm256_store_ps(t, v);
    for (int c = 0; c < width; c++) d[c] = t[c];
  }
}

// dst[k * ld + c] = scale · rows[c][k] for c < width (≤ 8) and k < kc: 8 × 8 blocks transposed in ymm registers
// (8 loads, 24 shuffles, 8 stores per 64 floats; the scalar loop it replaces wrote one float at a time and cost as
// much as the product itself when the other operand has only ~64 rows, as in W1's forward). All eight rows are read:
// the caller points those it does not have at a row of zeros.
RG_TARGET_AVX2 void transpose_pack8(float* dst, int64_t ld, const float* const rows[8], int width, int64_t kc, float scale) {
  const __m256 sc = _mm256_set1_ps(scale);
  int64_t k = 0;
  for (; k + 8 <= kc; k += 8) {
    __m256 r[8];
    for (int c = 0; c < 8; c++) r[c] = _mm256_loadu_ps(rows[c] + k);
    __m256 o[8];
    transpose8x8(r, o);
    for (int i = 0; i < 8; i++) store_row8(dst + (k + i) * ld, scale == 1.f ? o[i] : _mm256_mul_ps(o[i], sc), width);
  }
  for (; k < kc; k++)
    for (int c = 0; c < width; c++) dst[k * ld + c] = scale * rows[c][k];
}
#endif

const float kZeroRow[std::max(KC, KC_BF16)] = {};  // (a bfloat16 K block reads as many floats)

// dst[k * ld + c] = scale · src[(r0 + c) · stride + k0 + k] for c < width (rows past `rows` zero), k < kc.
void transpose_pack(float* dst, int64_t ld, const float* src, int64_t stride, int rows, int width, int64_t kc, float scale) {
#if RG_X86
  if (isa_level() != IsaLevel::Portable) {
    for (int c0 = 0; c0 < width; c0 += 8) {
      const float* ptr[8];
      for (int c = 0; c < 8; c++) ptr[c] = c0 + c < rows ? src + (c0 + c) * stride : kZeroRow;
      transpose_pack8(dst + c0, ld, ptr, std::min(8, width - c0), kc, scale);
    }
    return;
  }
#endif
  for (int64_t kb = 0; kb < kc; kb += 64) {  // blocks of 64 k, so that reads and writes stay in L1
    const int64_t ke = std::min<int64_t>(kc, kb + 64);
    for (int c = 0; c < rows; c++)
      for (int64_t k = kb; k < ke; k++) dst[k * ld + c] = scale * src[c * stride + k];
  }
  for (int c = rows; c < width; c++)
    for (int64_t k = 0; k < kc; k++) dst[k * ld + c] = 0.f;
}

// Packs op(A)[i0:i0+mc, k0:k0+kc] · alpha into slivers of MR rows: Ap[s][k][r], rows past M zero.
void pack_a(float* Ap, const float* A, bool transA, int64_t M, int64_t K, int64_t i0, int64_t mc, int64_t k0,
            int64_t kc, float alpha, int MR) {
  for (int64_t s = 0; s < mc; s += MR) {
    float* dst = Ap + s * kc;
    const int rows = static_cast<int>(std::min<int64_t>(MR, mc - s));
    if (transA) {  // A stored [K, M]: MR consecutive values per k
      for (int64_t k = 0; k < kc; k++) {
        const float* src = A + (k0 + k) * M + i0 + s;
        float* d = dst + k * MR;
        for (int r = 0; r < rows; r++) d[r] = alpha * src[r];
        for (int r = rows; r < MR; r++) d[r] = 0.f;
      }
    } else {  // A stored [M, K]: a transpose
      transpose_pack(dst, MR, A + (i0 + s) * K + k0, K, rows, MR, kc, alpha);
    }
  }
}

// Packs the sliver of NR columns from j0 of op(B)[k0:k0+kc, :] into dst as [k][NR], columns past N zero.
void pack_b_sliver(float* dst, const float* B, bool transB, int64_t N, int64_t K, int64_t j0, int64_t k0, int64_t kc,
                   int NR) {
  const int cols = static_cast<int>(std::min<int64_t>(NR, N - j0));
  if (!transB) {  // B stored [K, N]: NR consecutive values per k (a fixed-size copy, inlined, no memcpy call)
    if (cols == NR) {
      for (int64_t k = 0; k < kc; k++) {
        const float* __restrict src = B + (k0 + k) * N + j0;
        float* __restrict d = dst + k * NR;
        for (int j = 0; j < NR; j++) d[j] = src[j];
      }
    } else {
      for (int64_t k = 0; k < kc; k++) {
        const float* src = B + (k0 + k) * N + j0;
        float* d = dst + k * NR;
        for (int j = 0; j < cols; j++) d[j] = src[j];
        for (int j = cols; j < NR; j++) d[j] = 0.f;
      }
    }
  } else {  // B stored [N, K]: a transpose
    transpose_pack(dst, NR, B + j0 * K + k0, K, cols, NR, kc, 1.f);
  }
}

// rowsum[i] += Σ_k A[k, i] for i in [i0, i0 + mc), k in [k0, k0 + kc), A stored [K, M] (op(A) = Aᵀ): each row's
// terms in ascending k, as a separate pass over A would add them (the bias gradient of a Linear, Σ over the batch of
// its output gradient, taken while the weight gradient's product has that block of A in cache).
void add_row_sums_t(float* rowsum, const float* A, int64_t M, int64_t i0, int64_t mc, int64_t k0, int64_t kc) {
  dispatch([&]() __attribute__((always_inline)) {
    float* __restrict acc = rowsum + i0;
    for (int64_t k = 0; k < kc; k++) {
      const float* __restrict src = A + (k0 + k) * M + i0;
      for (int64_t i = 0; i < mc; i++) acc[i] += src[i];
    }
  });
}

// ---- bfloat16 packing (rg.autocast('bfloat16')) ----
#if RG_X86

// float32 → bfloat16 by rounding to nearest even, as PyTorch's conversion (NaN stays a quiet NaN); the vector paths
// below use vcvtneps2bf16, which rounds the same way.
RG_INLINE uint32_t bf16_bits(float f) {
  const uint32_t u = __builtin_bit_cast(uint32_t, f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x40u;
  return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}
// One 32-bit word of a sliver: x at k (low half) and y at k + 1 (high half).
RG_INLINE uint32_t bf16_pair(float x, float y) { return bf16_bits(x) | (bf16_bits(y) << 16); }

// 16 words from two rows of 16 values at k and k + 1 (lanes past `mask` zero): both rows rounded by one conversion
// (row k in the low 16 halves, row k + 1 in the high), then the halves interleaved by one permutation.
RG_BF16 RG_INLINE __m512i bf16_pairs_of_rows(const float* r0, const float* r1, __mmask16 mask) {
  const __m512i both = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(mask, r1), _mm512_maskz_loadu_ps(mask, r0));
  const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3,
                                              18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(interleave, both);
}

// dst[p · ld + c] = pair(scale·rows[c][2p], scale·rows[c][2p + 1]) for c < width (≤ 8), p < ⌈kc/2⌉: 16 values of a row
// convert to 8 words in order, and 8 × 8 blocks of words are transposed as transpose_pack8's floats are.
RG_BF16 void transpose_pack8_bf16(uint32_t* dst, int64_t ld, const float* const rows[8], int width, int64_t kc, float scale) {
  const __m512 sc = _mm512_set1_ps(scale);
  const int64_t kp = (kc + 1) / 2;
  int64_t p = 0;
  for (; 2 * (p + 8) <= kc; p += 8) {
    __m256 r[8];
    for (int c = 0; c < 8; c++) {
      __m512 v = _mm512_loadu_ps(rows[c] + 2 * p);
      if (scale != 1.f) v = _mm512_mul_ps(v, sc);
      r[c] = _mm256_castsi256_ps((__m256i)_mm512_cvtneps_pbh(v));
    }
    __m256 o[8];
    transpose8x8(r, o);
    for (int i = 0; i < 8; i++) store_row8(reinterpret_cast<float*>(dst + (p + i) * ld), o[i], width);
  }
  for (; p < kp; p++)
    for (int c = 0; c < width; c++) dst[p * ld + c] = bf16_pair(scale * rows[c][2 * p], 2 * p + 1 < kc ? scale * rows[c][2 * p + 1] : 0.f);
}

// transpose_pack in bfloat16 words: dst[p · ld + c] = the pair of src[(c · stride + 2p, 2p + 1)] · scale, rows past `rows`
// zero.
RG_BF16 void transpose_pack_bf16(uint32_t* dst, int64_t ld, const float* src, int64_t stride, int rows, int width, int64_t kc, float scale) {
  for (int c0 = 0; c0 < width; c0 += 8) {
    const float* ptr[8];
    for (int c = 0; c < 8; c++) ptr[c] = c0 + c < rows ? src + (c0 + c) * stride : kZeroRow;
    transpose_pack8_bf16(dst + c0, ld, ptr, std::min(8, width - c0), kc, scale);
  }
}

// As pack_a, in bfloat16 words: Ap[s][p][r] holds row r of op(A)·alpha at k = 2p and 2p + 1 (an odd kc's last k
// paired with 0).
RG_BF16 void pack_a_bf16(uint32_t* Ap, const float* A, bool transA, int64_t M, int64_t K, int64_t i0, int64_t mc, int64_t k0,
                         int64_t kc, float alpha, int MR) {
  const int64_t kp = (kc + 1) / 2;
  const __m512 sc = _mm512_set1_ps(alpha);
  for (int64_t s = 0; s < mc; s += MR) {
    uint32_t* dst = Ap + s * kp;
    const int rows = static_cast<int>(std::min<int64_t>(MR, mc - s));
    if (transA) {  // A stored [K, M]: MR consecutive values per k, a pair of rows per word
      const __mmask16 mask = static_cast<__mmask16>((1u << rows) - 1), all = static_cast<__mmask16>((1u << MR) - 1);
      for (int64_t p = 0; p < kp; p++) {
        const float* r0 = A + (k0 + 2 * p) * M + i0 + s;
        const float* r1 = 2 * p + 1 < kc ? r0 + M : kZeroRow;
        __m512i w;
        if (alpha == 1.f) {
          w = bf16_pairs_of_rows(r0, r1, mask);
        } else {
          alignas(64) float a0[16], a1[16];
          _mm512_store_ps(a0, _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, r0), sc));
          _mm512_store_ps(a1, _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, r1), sc));
          w = bf16_pairs_of_rows(a0, a1, 0xffff);
        }
        _mm512_mask_storeu_epi32(dst + p * MR, all, w);  // rows past `rows` are zero words
      }
    } else {  // A stored [M, K]: a transpose
      transpose_pack_bf16(dst, MR, A + (i0 + s) * K + k0, K, rows, MR, kc, alpha);
    }
  }
}

// As pack_b_sliver, in bfloat16 words: dst[p][j] holds column j of op(B) at k = 2p and 2p + 1.
RG_BF16 void pack_b_sliver_bf16(uint32_t* dst, const float* B, bool transB, int64_t N, int64_t K, int64_t j0, int64_t k0, int64_t kc,
                                int NR) {
  const int cols = static_cast<int>(std::min<int64_t>(NR, N - j0));
  const int64_t kp = (kc + 1) / 2;
  if (!transB) {  // B stored [K, N]: two rows of NR consecutive values per word
    for (int64_t p = 0; p < kp; p++) {
      const float* r0 = B + (k0 + 2 * p) * N + j0;
      const float* r1 = 2 * p + 1 < kc ? r0 + N : kZeroRow;
      for (int v = 0; v < NR; v += 16) {
        const int n = std::max(0, std::min(16, cols - v));
        const __mmask16 mask = static_cast<__mmask16>((1u << n) - 1);
        _mm512_store_si512(dst + p * NR + v, bf16_pairs_of_rows(r0 + v, r1 + v, mask));
      }
    }
  } else {  // B stored [N, K]: a transpose
    transpose_pack_bf16(dst, NR, B + j0 * K + k0, K, cols, NR, kc, 1.f);
  }
}

#endif
// ---- small M: stream op(B) once ----

// C[i, j] = alpha Σ_k op(A)[i,k] B[j,k] (+ epilogue), B stored [N, K]: dot products against four rows of B
// at a time in 16-lane vectors (GCC vector extensions: one zmm, two ymm or four xmm by target), four
// independent accumulators to hide the FMA latency — one accumulator chain ran at a third of the speed.
// Lanes are summed in a fixed order.
typedef float v16 __attribute__((vector_size(64)));
RG_INLINE v16 load16(const float* p) {
  v16 v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
RG_INLINE float lane_sum(v16 v) {
  float s = 0.f;
  for (int l = 0; l < 16; l++) s += v[l];
  return s;
}

RG_INLINE void small_m_dots(const float* A, bool transA, const float* B, float* C, int64_t M, int64_t K, int64_t j0,
                            int64_t j1, int64_t N, float alpha, const Epilogue& e) {
  for (int64_t i = 0; i < M; i++) {
    // op(A)'s row i, contiguous: a gathered copy when A is stored transposed.
    const float* a = A + i * K;
    if (transA) {
      float* row = tls_arow.get(static_cast<size_t>(K));
      for (int64_t k = 0; k < K; k++) row[k] = A[k * M + i];
      a = row;
    }
    for (int64_t j = j0; j < j1; j += 4) {
      const int rows = static_cast<int>(std::min<int64_t>(4, j1 - j));
      const float* b0 = B + j * K;
      const float* b1 = B + (j + (rows > 1 ? 1 : 0)) * K;
      const float* b2 = B + (j + (rows > 2 ? 2 : 0)) * K;
      const float* b3 = B + (j + (rows > 3 ? 3 : 0)) * K;
      v16 s0 = {}, s1 = {}, s2 = {}, s3 = {};
      int64_t k = 0;
      for (; k + 16 <= K; k += 16) {
        const v16 av = load16(a + k);
        s0 += av * load16(b0 + k);
        s1 += av * load16(b1 + k);
        s2 += av * load16(b2 + k);
        s3 += av * load16(b3 + k);
      }
      float t[4] = {lane_sum(s0), lane_sum(s1), lane_sum(s2), lane_sum(s3)};
      for (; k < K; k++) {
        t[0] += a[k] * b0[k];
        t[1] += a[k] * b1[k];
        t[2] += a[k] * b2[k];
        t[3] += a[k] * b3[k];
      }
      for (int r = 0; r < rows; r++) {
        float v = alpha * t[r];
        float* c = C + i * N + j + r;
        if (e.beta == 1.f) v += *c;
        else if (e.beta != 0.f) v += e.beta * *c;
        if (e.bias) v += e.bias[j + r];
        *c = activate(v, e.act, e.slope);
      }
    }
  }
}

// C[i, j0:j1] = alpha Σ_k op(A)[i,k] B[k, j0:j1] (+ epilogue), B stored [K, N]: row updates.
RG_INLINE void small_m_rows(const float* A, bool transA, const float* B, float* C, int64_t M, int64_t K, int64_t j0,
                  int64_t j1, int64_t N, float alpha, const Epilogue& e) {
  for (int64_t i = 0; i < M; i++) {
    float* c = C + i * N;
    for (int64_t j = j0; j < j1; j++) c[j] = e.beta == 0.f ? 0.f : e.beta * c[j];
    for (int64_t k = 0; k < K; k++) {
      const float a = alpha * (transA ? A[k * M + i] : A[i * K + k]);
      const float* b = B + k * N;
      for (int64_t j = j0; j < j1; j++) c[j] += a * b[j];
    }
    for (int64_t j = j0; j < j1; j++) c[j] = activate(c[j] + (e.bias ? e.bias[j] : 0.f), e.act, e.slope);
  }
}

}  // namespace

namespace {

// How one precision packs and multiplies: float32 (a word per k, the CPU's micro-kernel) or bfloat16 (a 32-bit word per
// pair of k, the AVX512-BF16 kernel, K blocks of KC_BF16).
struct F32Packing {
  using Word = float;
  int mr = kIsa.mr, nr = kIsa.nr;
  int64_t kc_block = KC;
  static int64_t words(int64_t kc) { return kc; }
  static void pack_a_block(Word* Ap, const float* A, bool transA, int64_t M, int64_t K, int64_t i0, int64_t mc, int64_t k0, int64_t kc,
                           float alpha, int MR) {
    pack_a(Ap, A, transA, M, K, i0, mc, k0, kc, alpha, MR);
  }
  static void pack_b(Word* dst, const float* B, bool transB, int64_t N, int64_t K, int64_t j0, int64_t k0, int64_t kc, int NR) {
    pack_b_sliver(dst, B, transB, N, K, j0, k0, kc, NR);
  }
  static void kernel(int64_t w, const Word* Ap, const Word* Bp, float* C, int64_t ldc, int mr, int nr, const Epilogue& e) {
    kIsa.kernel(w, Ap, Bp, C, ldc, mr, nr, e);
  }
};
#if RG_X86
struct Bf16Packing {
  using Word = uint32_t;
  int mr = kBf16MR, nr = kBf16NR;
  int64_t kc_block = KC_BF16;
  static int64_t words(int64_t kc) { return (kc + 1) / 2; }
  static void pack_a_block(Word* Ap, const float* A, bool transA, int64_t M, int64_t K, int64_t i0, int64_t mc, int64_t k0, int64_t kc,
                           float alpha, int MR) {
    pack_a_bf16(Ap, A, transA, M, K, i0, mc, k0, kc, alpha, MR);
  }
  static void pack_b(Word* dst, const float* B, bool transB, int64_t N, int64_t K, int64_t j0, int64_t k0, int64_t kc, int NR) {
    pack_b_sliver_bf16(dst, B, transB, N, K, j0, k0, kc, NR);
  }
  static void kernel(int64_t w, const Word* Ap, const Word* Bp, float* C, int64_t ldc, int mr, int nr, const Epilogue& e) {
    kernel_bf16(w, Ap, Bp, C, ldc, mr, nr, e);
  }
};
#endif

// The serial BLIS loop over one rectangle of C, rows [i0, i1) × columns [j0, j1), K in [kbeg, kend): for each panel of
// at most NC columns and each K block, this thread packs its own slivers of op(B), then each block of MC rows of op(A),
// and runs the micro-kernel over the tiles, sliver of B outer (it stays in L1) and sliver of A inner (the A block stays
// in L2). Every element of the rectangle is summed in k order.
template <typename P>
void packed_rect_as(const P& pk, bool transA, bool transB, int64_t M, int64_t N, int64_t K, int64_t kbeg, int64_t kend, float alpha,
                    const float* A, const float* B, float beta, float* C, const float* bias, Activation act, float slope, int64_t i0,
                    int64_t i1, int64_t j0, int64_t j1, int64_t mc_rows, float* rowsum) {
  using Word = typename P::Word;
  const int MR = pk.mr, NR = pk.nr;
  const int64_t w_max = P::words(std::min(kend - kbeg, pk.kc_block));
  const int64_t panel = std::max<int64_t>(NR, NC / NR * NR);
  const int64_t panel_cols = std::min(panel, j1 - j0);
  // (the buffers hold 4-byte words of either kind)
  Word* Bp = reinterpret_cast<Word*>(tls_bpack.get(static_cast<size_t>((panel_cols + NR - 1) / NR * NR * w_max)));
  Word* Ap = reinterpret_cast<Word*>(tls_apack.get(static_cast<size_t>(std::min(mc_rows, i1 - i0 + MR) * w_max)));
  for (int64_t p0 = j0; p0 < j1; p0 += panel) {
    const int64_t p1 = std::min(j1, p0 + panel);
    const int64_t slivers = (p1 - p0 + NR - 1) / NR;
    for (int64_t k0 = kbeg; k0 < kend; k0 += pk.kc_block) {
      const int64_t kc = std::min(pk.kc_block, kend - k0), w = P::words(kc);
      const bool first = k0 == kbeg, last = k0 + kc >= kend;
      const Epilogue e{first ? beta : 1.f, first ? bias : nullptr, last ? act : Activation::None, slope};
      for (int64_t s = 0; s < slivers; s++) P::pack_b(Bp + s * w * NR, B, transB, N, K, p0 + s * NR, k0, kc, NR);
      for (int64_t r = i0; r < i1; r += mc_rows) {
        const int64_t mc = std::min(mc_rows, i1 - r);
        P::pack_a_block(Ap, A, transA, M, K, r, mc, k0, kc, alpha, MR);
        if (rowsum && p0 == j0) add_row_sums_t(rowsum, A, M, r, mc, k0, kc);  // (transA only: see gemm_rowsum)
        for (int64_t s = 0; s < slivers; s++) {
          const int64_t j = p0 + s * NR;
          const int nr = static_cast<int>(std::min<int64_t>(NR, p1 - j));
          Epilogue te = e;
          if (te.bias) te.bias += j;
          for (int64_t r0 = 0; r0 < mc; r0 += MR) {
            const int mr = static_cast<int>(std::min<int64_t>(MR, mc - r0));
            P::kernel(w, Ap + r0 * w, Bp + s * w * NR, C + (r + r0) * N + j, N, mr, nr, te);
          }
        }
      }
    }
  }
}

void packed_rect(bool transA, bool transB, int64_t M, int64_t N, int64_t K, int64_t kbeg, int64_t kend, float alpha,
                 const float* A, const float* B, float beta, float* C, const float* bias, Activation act, float slope,
                 int64_t i0, int64_t i1, int64_t j0, int64_t j1, int64_t mc_rows, bool bf16, float* rowsum) {
#if RG_X86
  if (bf16)
    return packed_rect_as(Bf16Packing{}, transA, transB, M, N, K, kbeg, kend, alpha, A, B, beta, C, bias, act, slope, i0, i1, j0, j1, mc_rows,
                          rowsum);
#endif
  packed_rect_as(F32Packing{}, transA, transB, M, N, K, kbeg, kend, alpha, A, B, beta, C, bias, act, slope, i0, i1, j0, j1, mc_rows, rowsum);
}

// Splits `count` units (rows or slivers) into `parts` near-equal contiguous ranges: the start of range p.
inline int64_t part_start(int64_t count, int64_t parts, int64_t p) { return count * p / parts; }

}  // namespace

bool bf16_products(const ThreadPool& pool) { return pool.bf16_products() && has_avx512_bf16(); }

// The packed product over K in [kbeg, kend) of a product whose whole K sets the leading dimensions (a slice of K
// for split-K, else all of it): C = act(alpha · op(A)[:, kbeg:kend] · op(B)[kbeg:kend, :] + beta · C + bias).
//
// C is cut into one rectangle per thread (a grid of tr × tc), and each thread runs the serial loop over its own with
// its own packing: one parallel region per product, with no barrier between packing and multiplying or between K
// blocks (the shared-panel design it replaces waited on the pool twice per K block, and on a 784-deep product of W1's
// MLP those barriers cost as much as the arithmetic). The price is packing twice what two threads share: tc copies
// of op(A) and tr of op(B), so the grid is the one that packs least (columns split when M < N, rows when M ≥ N).
//
// With rowsum (op(A) = Aᵀ only), rowsum[i] += Σ_k op(A)[i, k] over [kbeg, kend), added by the thread whose rectangle
// holds row i in the first column block, while it packs that block of A.
void packed(ThreadPool& pool, bool transA, bool transB, int64_t M, int64_t N, int64_t K, int64_t kbeg, int64_t kend, float alpha,
            const float* A, const float* B, float beta, float* C, const float* bias, Activation act, float slope, float* rowsum) {
  const bool bf16 = bf16_products(pool);
  const int MR = bf16 ? kBf16MR : kIsa.mr;
  const int64_t flops = 2 * M * N * (kend - kbeg);
  // Columns are shared out in units of kIsa.nu, half a sliver where the micro-kernel has a half-width variant
  // (AVX-512): a 196-column product split 112 : 84 columns rather than 128 : 68 (four slivers against three, the last
  // of 4 columns).
  const int64_t CU = bf16 ? kBf16NU : kIsa.nu;
  const int64_t row_units = (M + MR - 1) / MR, col_units = (N + CU - 1) / CU;
  // A second thread from ~8 MFLOP of work each: below that, waking it cost more than it saved (128³ ran at 148
  // GFLOP/s on one thread, 64 on two).
  int64_t threads = pool.inside() ? 1 : std::min<int64_t>(pool.size(), std::max<int64_t>(1, flops / (8 << 20)));
  threads = std::min(threads, row_units * col_units);
  int64_t tr = 1, tc = threads;
  if (threads > 1) {
    int64_t best = INT64_MAX;
    for (int64_t r = 1; r <= threads; r++) {
      if (threads % r) continue;
      const int64_t c = threads / r;
      if (r > row_units || c > col_units) continue;
      const int64_t cost = c * M + r * N;  // floats of op(A) and op(B) packed per K row
      if (cost < best) best = cost, tr = r, tc = c;
    }
    if (best == INT64_MAX) tr = 1, tc = std::min(threads, col_units), threads = tc;
  }
  const int64_t rows_per = (row_units + tr - 1) / tr;
  // Row blocks of about MC rows, equal in size within a rectangle.
  const int64_t blocks = std::max<int64_t>(1, (rows_per * MR + MC / 2) / MC);
  const int64_t mc_rows = ((rows_per + blocks - 1) / blocks) * MR;
  auto rect = [&](int64_t t) {
    const int64_t pr = t / tc, pc = t % tc;
    const int64_t i0 = part_start(row_units, tr, pr) * MR, i1 = std::min(M, part_start(row_units, tr, pr + 1) * MR);
    const int64_t j0 = part_start(col_units, tc, pc) * CU, j1 = std::min(N, part_start(col_units, tc, pc + 1) * CU);
    if (i0 < i1 && j0 < j1)
      packed_rect(transA, transB, M, N, K, kbeg, kend, alpha, A, B, beta, C, bias, act, slope, i0, i1, j0, j1, mc_rows, bf16,
                  pc == 0 ? rowsum : nullptr);
  };
  if (threads == 1) return rect(0);
  pool.parallel_for(threads, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) rect(t);
  });
}

// gemm_ex, and with rowsum (transA only: gemm_rowsum, A stored [K, M]) rowsum[i] += Σ_k A[k, i]: inside the packing
// where the product packs A, else by a pass of its own (the same sums in the same order).
static void gemm_rows(ThreadPool& pool, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                      const float* A, const float* B, float beta, float* C, const float* bias, Activation act, float slope, float* rowsum) {
  if (M <= 0) return;
  auto own_pass = [&] {
    if (!rowsum || K <= 0) return;
    pool.parallel_for(M, std::max<int64_t>(16, 65536 / K), [&](int64_t i0, int64_t i1) { add_row_sums_t(rowsum, A, M, i0, i1 - i0, 0, K); });
  };
  if (N <= 0) return own_pass();
  if (K <= 0 || alpha == 0.f) {
    own_pass();
    // Nothing to multiply: C = act(beta·C + bias).
    const Epilogue e{beta, bias, act, slope};
    pool.parallel_for(M, std::max<int64_t>(1, 16384 / N), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i++)
        for (int64_t j = 0; j < N; j++) {
          float v = e.beta == 0.f ? 0.f : e.beta * C[i * N + j];
          C[i * N + j] = activate(v + (bias ? bias[j] : 0.f), act, slope);
        }
    });
    return;
  }
  // Keep at least ~1 MFLOP per thread: below that, waking a thread costs more than it saves.
  const int64_t min_flops_per_range = 1 << 20;

  // rg.autocast('bfloat16'): operands rounded to bfloat16 as they are packed, sums in float32 (where the CPU has
  // AVX512-BF16; elsewhere the products stay float32). Always packed: the small-M path streams float32 operands.
  const bool bf16 = bf16_products(pool);

  if (M < kSmallM && !bf16) {
    own_pass();
    const Epilogue e{beta, bias, act, slope};
    // One thread up to ~1 MFLOP: batch-1 inference of a 784×256 layer takes ~10 µs, less than waking a
    // sleeping pool thread.
    const int64_t grain = std::max<int64_t>(16, min_flops_per_range / std::max<int64_t>(1, 2 * M * K));
    pool.parallel_for(N, grain, [&](int64_t j0, int64_t j1) {
      dispatch([&]() __attribute__((always_inline)) {
        if (transB) small_m_dots(A, transA, B, C, M, K, j0, j1, N, alpha, e);
        else small_m_rows(A, transA, B, C, M, K, j0, j1, N, alpha, e);
      });
    });
    return;
  }

  // Much wider than tall: compute Cᵀ = op(B)ᵀ·op(A)ᵀ instead and transpose it back through the epilogue. The
  // blocking below splits rows among the threads and streams the packed B panel past them, which suits M ≥ N: a
  // convolution's 64 × 12544 × 800 product ran at 142 GFLOP/s as it is and 180 swapped (the CNN's training step
  // 50 → 44 ms). Not for products that are only somewhat wider (W2's 256 × 1024, no faster swapped) nor short
  // ones (K below one KC block: 32 × 50176 × 25 went from 55 to 31 GFLOP/s): the transpose costs a pass over C.
  if (N > 4 * M && K >= KC) {  // (the swapped problem has N < M, so this happens once)
    own_pass();
    float* T = tls_swap.get(static_cast<size_t>(M * N));
    gemm_ex(pool, !transB, !transA, N, M, K, alpha, B, A, 0.f, T, nullptr, Activation::None, 0.f);
    const Epilogue e{beta, bias, act, slope};
    constexpr int64_t kTile = 32;
    pool.parallel_for((M + kTile - 1) / kTile, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t ib = b0; ib < b1; ib++) {
        const int64_t i0 = ib * kTile, i1 = std::min(M, i0 + kTile);
        for (int64_t j0 = 0; j0 < N; j0 += kTile) {
          const int64_t j1 = std::min(N, j0 + kTile);
          for (int64_t i = i0; i < i1; i++) {
            float* c = C + i * N;
            for (int64_t j = j0; j < j1; j++) {
              const float v = T[j * M + i] + (e.beta == 0.f ? 0.f : e.beta * c[j]);
              c[j] = activate(v + (e.bias ? e.bias[j] : 0.f), e.act, e.slope);
            }
          }
        }
      }
    });
    return;
  }

  // A small output over a long K (a weight gradient summed over every position of a batch: 32 × 25 × 50176 in a
  // convolution's backward) gives each K block too little work to share, and two barriers per block dominated
  // (20–30 GFLOP/s). Split K instead: each thread multiplies its own contiguous slice of K alone, into a partial
  // product, and the partials are added in thread order through the epilogue (the result depends only on the
  // thread count, as everything here).
  const int64_t split_threads = std::min<int64_t>(pool.size(), K / (SPLITK_KC * KC));
  if (M * N <= 65536 && split_threads > 1 && pool.ranges_for(split_threads, 1) == split_threads) {
    const int64_t slice = (K + split_threads - 1) / split_threads;
    // (with rowsum, each slice's row sums after its products, from 0, added to rowsum in slice order below)
    float* partial = tls_split.get(static_cast<size_t>(split_threads * M * (N + (rowsum ? 1 : 0))));
    float* partial_rows = partial + split_threads * M * N;
    if (rowsum) std::fill(partial_rows, partial_rows + split_threads * M, 0.f);
    pool.parallel_for(split_threads, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; t++) {
        const int64_t k0 = t * slice, ks = std::min(slice, K - k0);
        // a nested call runs on this thread alone
        packed(pool, transA, transB, M, N, K, k0, k0 + ks, alpha, A, B, 0.f, partial + t * M * N, nullptr, Activation::None, 0.f,
               rowsum ? partial_rows + t * M : nullptr);
      }
    });
    if (rowsum)
      for (int64_t t = 0; t < split_threads; t++)
        for (int64_t i = 0; i < M; i++) rowsum[i] += partial_rows[t * M + i];
    const Epilogue e{beta, bias, act, slope};
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) {
        float v = 0.f;
        for (int64_t t = 0; t < split_threads; t++) v += partial[t * M * N + i * N + j];
        float* c = C + i * N + j;
        *c = activate(v + (e.beta == 0.f ? 0.f : e.beta * *c) + (e.bias ? e.bias[j] : 0.f), e.act, e.slope);
      }
    return;
  }

  packed(pool, transA, transB, M, N, K, 0, K, alpha, A, B, beta, C, bias, act, slope, rowsum);
}

void gemm_ex(ThreadPool& pool, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
             const float* A, const float* B, float beta, float* C, const float* bias, Activation act, float slope) {
  gemm_rows(pool, transA, transB, M, N, K, alpha, A, B, beta, C, bias, act, slope, nullptr);
}

void gemm_rowsum(ThreadPool& pool, int64_t M, int64_t N, int64_t K, const float* A, const float* B, float beta, float* C, float* rowsum) {
  gemm_rows(pool, true, false, M, N, K, 1.f, A, B, beta, C, nullptr, Activation::None, 0.f, rowsum);
}

void gemm(ThreadPool& pool, bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
          const float* A, const float* B, float beta, float* C) {
  gemm_ex(pool, transA, transB, M, N, K, alpha, A, B, beta, C, nullptr, Activation::None, 0.f);
}

}  // namespace rg::cpu
