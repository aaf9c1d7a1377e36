// Convolution, pooling and batch normalisation on NCHW tensors (the kernel contract in lib/backend.ts says
// exactly what each computes). A convolution is im2col + the packed GEMM + transpose01 (lib/nn/conv.ts);
// its backward is two GEMMs, col2im and channel_sum, by image groups where a batch has several (conv2d_forward).
// Every kernel overwrites its outputs unless it says it accumulates, and every sum runs in a fixed order (per output
// element, over its inputs in index order), so results do not depend on the thread count — but for the weight
// gradient of a batch taken whole, whose product may split its long K among the threads (gemm.cc).
#include "simd.h"  // RG_X86
#if RG_X86
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels.h"

namespace rg::cpu {

namespace {

struct Geometry {
  int64_t B, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW;
  Geometry(int64_t B_, int64_t C_, int64_t H_, int64_t W_, int64_t KH_, int64_t KW_, int64_t SH_, int64_t SW_, int64_t PH_,
           int64_t PW_, int64_t DH_, int64_t DW_)
      : B(B_), C(C_), H(H_), W(W_), KH(KH_), KW(KW_), SH(SH_), SW(SW_), PH(PH_), PW(PW_), DH(DH_), DW(DW_),
        OH((H_ + 2 * PH_ - DH_ * (KH_ - 1) - 1) / SH_ + 1), OW((W_ + 2 * PW_ - DW_ * (KW_ - 1) - 1) / SW_ + 1) {}
};

// The output positions [lo, hi) whose window (size K, stride S, padding P, dilation 1) covers input x.
inline void windows_over(int64_t x, int64_t K, int64_t S, int64_t P, int64_t n, int64_t* lo, int64_t* hi) {
  const int64_t a = x + P - K + 1;
  *lo = a <= 0 ? 0 : (a + S - 1) / S;
  *hi = std::min(n, (x + P) / S + 1);
}

// The output columns [lo, hi) of a row whose input column ow·S + off falls inside [0, W): the loops over them need no
// bounds test per element (with stride 2 and rows of 7 to 14 columns, the per-element test made im2col and col2im
// the largest items of a DCGAN or VAE step's profile, above the GEMM).
inline void valid_columns(int64_t off, int64_t S, int64_t W, int64_t OW, int64_t* lo, int64_t* hi) {
  *lo = std::min(OW, off >= 0 ? int64_t{0} : (-off + S - 1) / S);
  *hi = std::max(*lo, std::min(OW, W - off <= 0 ? int64_t{0} : (W - off + S - 1) / S));
}

// index[oh·OW + ow] = the input position ih·W + iw that kernel tap (i, j) reads for output (oh, ow), or −1 in the
// padding: a strided convolution's im2col and col2im then run over a plane's OH·OW outputs as one loop (a gather),
// instead of rows of 7 or 14 with their bounds.
void tap_index(int32_t* index, const Geometry& g, int64_t i, int64_t j) {
  for (int64_t oh = 0; oh < g.OH; oh++) {
    const int64_t ih = oh * g.SH - g.PH + i * g.DH;
    for (int64_t ow = 0; ow < g.OW; ow++) {
      const int64_t iw = ow * g.SW - g.PW + j * g.DW;
      index[oh * g.OW + ow] = ih >= 0 && ih < g.H && iw >= 0 && iw < g.W ? static_cast<int32_t>(ih * g.W + iw) : -1;
    }
  }
}
thread_local std::vector<int32_t> tls_index;

// tap_index for every tap (i, j), tap i·KW + j at offset (i·KW + j)·OH·OW, into this thread's buffer.
const int32_t* tap_indices(const Geometry& g) {
  const int64_t R = g.OH * g.OW;
  tls_index.resize(static_cast<size_t>(g.KH * g.KW * R));
  for (int64_t tap = 0; tap < g.KH * g.KW; tap++) tap_index(tls_index.data() + tap * R, g, tap / g.KW, tap % g.KW);
  return tls_index.data();
}

#if RG_X86
// The masks of a stride-2 row's n valid outputs: m0 and m1 cover the 2n − 1 input values from the first valid one (16
// per vector), `take` the n outputs.
struct Stride2Masks {
  __mmask16 m0, m1, take;
  explicit Stride2Masks(int64_t n) {
    const int64_t span = n > 0 ? 2 * n - 1 : 0;
    m0 = static_cast<__mmask16>(span >= 16 ? 0xffffu : (1u << span) - 1);
    m1 = static_cast<__mmask16>(span <= 16 ? 0u : (1u << (span - 16)) - 1);
    take = static_cast<__mmask16>((1u << n) - 1);
  }
};

// im2col's rows [r0, r1) for stride 2 across (dilation 1, at most 16 outputs per row) with AVX-512: each output row
// is the even lanes of two masked loads (a permute), written with masked stores. On the DCGAN's strided convolutions,
// whose rows hold 7 or 14 values, im2col went from 15% of the step (a gather per value) to 9%.
RG_TARGET_AVX512 void im2col_rows_stride2(float* col, const float* inp, const Geometry& g, int64_t r0, int64_t r1) {
  const int64_t cols = g.B * g.OH * g.OW;
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __mmask16 row_mask = static_cast<__mmask16>((1u << g.OW) - 1);
  for (int64_t row = r0; row < r1; row++) {
    const int64_t c = row / (g.KH * g.KW), i = row / g.KW % g.KH, j = row % g.KW;
    const int64_t off = j - g.PW;
    int64_t lo, hi;
    valid_columns(off, 2, g.W, g.OW, &lo, &hi);
    const int64_t n = hi - lo;
    const Stride2Masks m(n);
    const __mmask16 store = static_cast<__mmask16>(m.take << lo);
    float* out = col + row * cols;
    for (int64_t b = 0; b < g.B; b++) {
      const float* plane = inp + (b * g.C + c) * g.H * g.W;
      for (int64_t oh = 0; oh < g.OH; oh++, out += g.OW) {
        const int64_t ih = oh * g.SH - g.PH + i * g.DH;
        _mm512_mask_storeu_ps(out, row_mask, _mm512_setzero_ps());
        if (ih < 0 || ih >= g.H || n <= 0) continue;
        const float* src = plane + ih * g.W + 2 * lo + off;
        const __m512 a = _mm512_maskz_loadu_ps(m.m0, src), b2 = _mm512_maskz_loadu_ps(m.m1, src + 16);
        // lane k of the permute is input 2k from src, output column lo + k: expanded into the lanes lo … hi − 1
        _mm512_mask_storeu_ps(out, store, _mm512_maskz_expand_ps(store, _mm512_permutex2var_ps(a, even, b2)));
      }
    }
  }
}

// col2im's planes [p0, p1) for stride 2 across (dilation 1, at most 16 outputs per row) with AVX-512: a row's values
// spread to the even lanes (a permute) and added to the input row through masked loads and stores. Each element still
// takes its contributions in ascending (i, j), as in the scalar rows.
RG_TARGET_AVX512 void col2im_planes_stride2(float* dinp, const float* dcol, const Geometry& g, int64_t p0, int64_t p1) {
  const int64_t cols = g.B * g.OH * g.OW, R = g.OH * g.OW;
  const __m512i spread_lo = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
  const __m512i spread_hi = _mm512_set_epi32(15, 15, 14, 14, 13, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8);
  const __mmask16 even = 0x5555;
  for (int64_t p = p0; p < p1; p++) {
    const int64_t b = p / g.C, c = p % g.C;
    float* plane = dinp + p * g.H * g.W;
    for (int64_t e = 0; e < g.H * g.W; e++) plane[e] = 0.f;
    for (int64_t i = 0; i < g.KH; i++) {
      for (int64_t j = 0; j < g.KW; j++) {
        const float* src = dcol + ((c * g.KH + i) * g.KW + j) * cols + b * R;
        const int64_t off = j - g.PW;
        int64_t lo, hi;
        valid_columns(off, 2, g.W, g.OW, &lo, &hi);
        if (hi <= lo) continue;
        const Stride2Masks m(hi - lo);
        for (int64_t oh = 0; oh < g.OH; oh++) {
          const int64_t ih = oh * g.SH - g.PH + i * g.DH;
          if (ih < 0 || ih >= g.H) continue;
          float* row = plane + ih * g.W + 2 * lo + off;
          const __m512 d = _mm512_maskz_loadu_ps(m.take, src + oh * g.OW + lo);
          _mm512_mask_storeu_ps(row, m.m0, _mm512_add_ps(_mm512_maskz_loadu_ps(m.m0, row), _mm512_maskz_permutexvar_ps(even, spread_lo, d)));
          if (m.m1) _mm512_mask_storeu_ps(row + 16, m.m1, _mm512_add_ps(_mm512_maskz_loadu_ps(m.m1, row + 16), _mm512_maskz_permutexvar_ps(even, spread_hi, d)));
        }
      }
    }
  }
}

// The lanes [lo, hi) of a 16-lane chunk starting at column c0 (clamped to the chunk).
inline __mmask16 lanes(int64_t c0, int64_t lo, int64_t hi) {
  const int64_t a = std::max<int64_t>(lo - c0, 0), b = std::min<int64_t>(hi - c0, 16);
  if (b <= a) return 0;
  return static_cast<__mmask16>(((b >= 16 ? 0x10000u : 1u << b) - 1) & ~((1u << a) - 1));
}

// im2col's rows [r0, r1) for stride 1 across with AVX-512: each output row of OW values is one masked load and one masked
// store per 16 columns (the padding's lanes loaded as zero) instead of a loop per value. W3's 5 × 5 convolution of
// 32 channels on 14 × 14: im2col 55 → 29-35 µs per image, its forward 9.4 → 7.1 ms and weight gradient 10.2 → 8.3 ms for
// the batch of 64 (both measured alternately, the same minutes).
RG_TARGET_AVX512 void im2col_rows_stride1(float* col, const float* inp, const Geometry& g, int64_t r0, int64_t r1) {
  const int64_t cols = g.B * g.OH * g.OW, chunks = (g.OW + 15) / 16;
  std::vector<__mmask16> load(static_cast<size_t>(chunks)), store(static_cast<size_t>(chunks));
  for (int64_t q = 0; q < chunks; q++) store[q] = lanes(16 * q, 0, g.OW);
  for (int64_t row = r0; row < r1; row++) {
    const int64_t c = row / (g.KH * g.KW), i = row / g.KW % g.KH, j = row % g.KW;
    const int64_t off = j * g.DW - g.PW;
    int64_t lo, hi;
    valid_columns(off, 1, g.W, g.OW, &lo, &hi);
    for (int64_t q = 0; q < chunks; q++) load[q] = lanes(16 * q, lo, hi);  // the same for every output row
    float* out = col + row * cols;
    for (int64_t b = 0; b < g.B; b++) {
      const float* plane = inp + (b * g.C + c) * g.H * g.W;
      for (int64_t oh = 0; oh < g.OH; oh++, out += g.OW) {
        const int64_t ih = oh * g.SH - g.PH + i * g.DH;
        if (ih < 0 || ih >= g.H) {
          for (int64_t q = 0; q < chunks; q++) _mm512_mask_storeu_ps(out + 16 * q, store[q], _mm512_setzero_ps());
          continue;
        }
        // input column ow + off of row ih: the masked-off lanes (the padding) are never read
        const float* src = plane + ih * g.W + off;
        for (int64_t q = 0; q < chunks; q++) _mm512_mask_storeu_ps(out + 16 * q, store[q], _mm512_maskz_loadu_ps(load[q], src + 16 * q));
      }
    }
  }
}

// col2im's planes [p0, p1) for stride 1 across with AVX-512. For each kernel row i and output row oh, the input row
// they reach is loaded once, 16 columns at a time, takes the KW taps' shifted rows of dcol in ascending j (masked loads:
// the columns a tap does not reach are not read), and is stored once: each element still receives its contributions in
// ascending (i, j). Adding each tap's row to memory in turn, with the same masked loads and stores, was slower than
// the scalar rows (each load waited on the overlapping store of the tap before).
RG_TARGET_AVX512 void col2im_planes_stride1(float* dinp, const float* dcol, const Geometry& g, int64_t p0, int64_t p1) {
  const int64_t cols = g.B * g.OH * g.OW, R = g.OH * g.OW, chunks = (g.W + 15) / 16;
  // per tap j and chunk q: the lanes it adds to (input columns ow + off for ow in its valid range)
  std::vector<__mmask16> mask(static_cast<size_t>(g.KW * chunks));
  std::vector<int64_t> offs(static_cast<size_t>(g.KW));
  for (int64_t j = 0; j < g.KW; j++) {
    const int64_t off = j * g.DW - g.PW;
    int64_t lo, hi;
    valid_columns(off, 1, g.W, g.OW, &lo, &hi);
    offs[j] = off;
    for (int64_t q = 0; q < chunks; q++) mask[j * chunks + q] = lanes(16 * q, lo + off, hi + off);
  }
  const __mmask16 last = lanes(16 * (chunks - 1), 0, g.W);
  for (int64_t p = p0; p < p1; p++) {
    const int64_t b = p / g.C, c = p % g.C;
    float* plane = dinp + p * g.H * g.W;
    for (int64_t e = 0; e < g.H * g.W; e++) plane[e] = 0.f;
    for (int64_t i = 0; i < g.KH; i++) {
      const float* taps = dcol + (c * g.KH + i) * g.KW * cols + b * R;  // tap (i, j) at + j·cols
      for (int64_t oh = 0; oh < g.OH; oh++) {
        const int64_t ih = oh * g.SH - g.PH + i * g.DH;
        if (ih < 0 || ih >= g.H) continue;
        float* row = plane + ih * g.W;
        for (int64_t q = 0; q < chunks; q++) {
          const __mmask16 keep = q + 1 < chunks ? static_cast<__mmask16>(0xffff) : last;
          __m512 v = _mm512_maskz_loadu_ps(keep, row + 16 * q);
          for (int64_t j = 0; j < g.KW; j++) {
            const __mmask16 m = mask[j * chunks + q];
            // lane k is input column 16q + k, output column 16q + k − off of tap j's row
            if (m) v = _mm512_mask_add_ps(v, m, v, _mm512_maskz_loadu_ps(m, taps + j * cols + oh * g.OW + 16 * q - offs[j]));
          }
          _mm512_mask_storeu_ps(row + 16 * q, keep, v);
        }
      }
    }
  }
}

#endif  // RG_X86

}  // namespace

void im2col(ThreadPool& pool, float* col, const float* inp, int64_t B, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW,
            int64_t SH, int64_t SW, int64_t PH, int64_t PW, int64_t DH, int64_t DW) {
  const Geometry g(B, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW);
  const int64_t cols = B * g.OH * g.OW, R = g.OH * g.OW;
  const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, cols));
  if (SW != 1 || R < 8) {
    // strided, or a few outputs per plane (a kernel as large as its input: a dense layer): each plane's OH·OW values
    // gathered through the tap's index (made once per call: per row, it cost as much as the gather in the DCGAN's
    // image groups), as one loop over the planes' outputs or, for a few, over the batch
#if RG_X86
    if (SW == 2 && DW == 1 && g.OW <= 16 && R >= 8 && isa_level() == IsaLevel::Avx512) {
      pool.parallel_for(C * KH * KW, grain, [&](int64_t r0, int64_t r1) { im2col_rows_stride2(col, inp, g, r0, r1); });
      return;
    }
#endif
    const int64_t plane_size = C * H * W, taps = KH * KW;
    const int32_t* indices = tap_indices(g);
    pool.parallel_for(C * taps, grain, [&](int64_t r0, int64_t r1) {
      for (int64_t row = r0; row < r1; row++) {
        const int64_t c = row / taps;
        const int32_t* t = indices + row % taps * R;
        float* out = col + row * cols;
        if (R < 8) {
          for (int64_t k = 0; k < R; k++) {
            const float* src = inp + c * H * W + t[k];
            float* o = out + k;
            if (t[k] < 0) {
              for (int64_t b = 0; b < B; b++) o[b * R] = 0.f;
            } else {
              dispatch([=]() __attribute__((always_inline)) {
                for (int64_t b = 0; b < B; b++) o[b * R] = src[b * plane_size];
              });
            }
          }
          continue;
        }
        for (int64_t b = 0; b < B; b++, out += R) {
          const float* plane = inp + (b * C + c) * H * W;
          dispatch([=]() __attribute__((always_inline)) {
            for (int64_t k = 0; k < R; k++) out[k] = t[k] >= 0 ? plane[t[k]] : 0.f;
          });
        }
      }
    });
    return;
  }
#if RG_X86
  if (isa_level() == IsaLevel::Avx512) {
    pool.parallel_for(C * KH * KW, grain, [&](int64_t r0, int64_t r1) { im2col_rows_stride1(col, inp, g, r0, r1); });
    return;
  }
#endif
  pool.parallel_for(C * KH * KW, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; row++) {
      const int64_t c = row / (KH * KW), i = row / KW % KH, j = row % KW;
      const int64_t off = j * DW - PW;
      int64_t lo, hi;
      valid_columns(off, SW, W, g.OW, &lo, &hi);
      float* out = col + row * cols;
      for (int64_t b = 0; b < B; b++) {
        const float* plane = inp + (b * C + c) * H * W;
        for (int64_t oh = 0; oh < g.OH; oh++, out += g.OW) {
          const int64_t ih = oh * SH - PH + i * DH;
          if (ih < 0 || ih >= H) {
            std::memset(out, 0, static_cast<size_t>(g.OW) * 4);
            continue;
          }
          const float* src = plane + ih * W;
          // stride 1: iw = ow + off, inside the row for ow in [lo, hi) (plain loops: rows are short)
          for (int64_t ow = 0; ow < lo; ow++) out[ow] = 0.f;
          for (int64_t ow = lo; ow < hi; ow++) out[ow] = src[ow + off];
          for (int64_t ow = hi; ow < g.OW; ow++) out[ow] = 0.f;
        }
      }
    }
  });
}

// Each thread owns whole (b, c) planes and adds the dcol entries into them in the order (i, j, oh, ow): every
// element receives its contributions in ascending (i, j), whatever the thread count.
void col2im(ThreadPool& pool, float* dinp, const float* dcol, int64_t B, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW,
            int64_t SH, int64_t SW, int64_t PH, int64_t PW, int64_t DH, int64_t DW) {
  const Geometry g(B, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW);
  const int64_t cols = B * g.OH * g.OW, R = g.OH * g.OW;
  if (R < 8) {
    // a few outputs per plane (a kernel as large as its input): each tap's values added through its index (computed
    // once per tap, for every plane), in the same order (i, j, oh, ow) as the rows below; for larger planes the rows
    // below were faster (0.70 against 0.92 ms for a DCGAN's 4×4 stride-2 convolution of 32 channels, batch 64)
    const int32_t* index = tap_indices(g);
    pool.parallel_for(B * C, 1, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; p++) {
        const int64_t b = p / C, c = p % C;
        float* plane = dinp + p * H * W;
        for (int64_t e = 0; e < H * W; e++) plane[e] = 0.f;
        for (int64_t tap = 0; tap < KH * KW; tap++) {
          const int32_t* t = index + tap * R;
          const float* src = dcol + (c * KH * KW + tap) * cols + b * R;
          for (int64_t k = 0; k < R; k++)
            if (t[k] >= 0) plane[t[k]] += src[k];
        }
      }
    });
    return;
  }
#if RG_X86
  if (SW == 2 && DW == 1 && g.OW <= 16 && isa_level() == IsaLevel::Avx512) {
    pool.parallel_for(B * C, 1, [&](int64_t p0, int64_t p1) { col2im_planes_stride2(dinp, dcol, g, p0, p1); });
    return;
  }
  if (SW == 1 && isa_level() == IsaLevel::Avx512) {
    pool.parallel_for(B * C, 1, [&](int64_t p0, int64_t p1) { col2im_planes_stride1(dinp, dcol, g, p0, p1); });
    return;
  }
#endif
  pool.parallel_for(B * C, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
      const int64_t b = p / C, c = p % C;
      float* plane = dinp + p * H * W;
      for (int64_t e = 0; e < H * W; e++) plane[e] = 0.f;
      for (int64_t i = 0; i < KH; i++) {
        for (int64_t j = 0; j < KW; j++) {
          const float* src = dcol + ((c * KH + i) * KW + j) * cols + b * g.OH * g.OW;
          const int64_t off = j * DW - PW;
          int64_t lo, hi;
          valid_columns(off, SW, W, g.OW, &lo, &hi);
          for (int64_t oh = 0; oh < g.OH; oh++) {
            const int64_t ih = oh * SH - PH + i * DH;
            if (ih < 0 || ih >= H) continue;
            float* row = plane + ih * W;
            const float* d = src + oh * g.OW;
            if (SW == 1) {
              for (int64_t ow = lo; ow < hi; ow++) row[ow + off] += d[ow];
            } else {
              for (int64_t ow = lo; ow < hi; ow++) row[ow * SW + off] += d[ow];
            }
          }
        }
      }
    }
  });
}

void transpose01(ThreadPool& pool, float* out, const float* inp, const float* bias, int64_t A, int64_t Bd, int64_t R) {
  pool.parallel_for(A * Bd, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, R)), [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; q++) {
      const int64_t a = q / Bd, b = q % Bd;
      const float* src = inp + q * R;
      float* dst = out + (b * A + a) * R;
      const float add = bias ? bias[a] : 0.f;
      for (int64_t r = 0; r < R; r++) dst[r] = src[r] + add;
    }
  });
}

namespace {
// Σ over channel c's values (B planes of R) of term(offset of the value), in double across eight lanes: value r of a
// plane goes to lane r mod 8 (planes of fewer than 8 values: eight planes at a time, plane b to lane b mod 8), the
// lanes added in a fixed tree. The order depends on the layout alone, and the loops vectorise (one double accumulator
// ran at a quarter of the speed: BatchNorm took 6% of a DCGAN step).
template <typename Term>
RG_INLINE double channel_lanes_sum(int64_t B, int64_t C, int64_t R, int64_t c, Term term) {
  double acc[8] = {};
  int64_t b = 0;
  if (R < 8)
    for (; b + 8 <= B; b += 8)
      for (int64_t r = 0; r < R; r++)
        for (int k = 0; k < 8; k++) acc[k] += term(((b + k) * C + c) * R + r);
  for (; b < B; b++) {
    const int64_t base = (b * C + c) * R;
    int64_t r = 0;
    for (; r + 8 <= R; r += 8)
      for (int k = 0; k < 8; k++) acc[k] += term(base + r + k);
    for (int k = 0; r < R; r++, k++) acc[k] += term(base + r);
  }
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}
}  // namespace

void channel_sum(ThreadPool& pool, float* out, const float* x, int64_t B, int64_t C, int64_t R, bool accumulate) {
  // in eight lanes, as BatchNorm's sums: one chain of dependent additions took 3% of W3's step for its two bias gradients
  pool.parallel_for(C, 1, [&](int64_t c0, int64_t c1) {
    dispatch([&]() __attribute__((always_inline)) {
      for (int64_t c = c0; c < c1; c++) {
        const double sum = channel_lanes_sum(B, C, R, c, [&](int64_t i) { return static_cast<double>(x[i]); });
        out[c] = accumulate ? out[c] + static_cast<float>(sum) : static_cast<float>(sum);
      }
    });
  });
}

void maxpool2d_forward(ThreadPool& pool, float* out, int32_t* argmax, const float* inp, int64_t B, int64_t C, int64_t H, int64_t W,
                       int64_t KH, int64_t KW, int64_t SH, int64_t SW, int64_t PH, int64_t PW) {
  const Geometry g(B, C, H, W, KH, KW, SH, SW, PH, PW, 1, 1);
  pool.parallel_for(B * C, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
      const float* plane = inp + p * H * W;
      float* o = out + p * g.OH * g.OW;
      int32_t* am = argmax + p * g.OH * g.OW;
      if (PH == 0 && PW == 0 && KH == 2 && KW == 2 && SH == 2 && SW == 2) {
        // the common 2 × 2 window of stride 2: two input rows per output row, selects instead of branches
        for (int64_t oh = 0; oh < g.OH; oh++) {
          const float* r0 = plane + 2 * oh * W;
          const float* r1 = r0 + W;
          float* orow = o + oh * g.OW;
          int32_t* arow = am + oh * g.OW;
          const int32_t base = static_cast<int32_t>(2 * oh * W);
          for (int64_t ow = 0; ow < g.OW; ow++) {
            const float a = r0[2 * ow], b = r0[2 * ow + 1], c = r1[2 * ow], d = r1[2 * ow + 1];
            float best = a;
            int32_t at = base + static_cast<int32_t>(2 * ow);
            bool take = b > best || b != b;
            best = take ? b : best, at = take ? base + static_cast<int32_t>(2 * ow + 1) : at;
            take = c > best || c != c;
            best = take ? c : best, at = take ? base + static_cast<int32_t>(W + 2 * ow) : at;
            take = d > best || d != d;
            best = take ? d : best, at = take ? base + static_cast<int32_t>(W + 2 * ow + 1) : at;
            orow[ow] = best;
            arow[ow] = at;
          }
        }
        continue;
      }
      if (PH == 0 && PW == 0) {
        // every window lies inside the plane: no bounds to test
        for (int64_t oh = 0; oh < g.OH; oh++) {
          for (int64_t ow = 0; ow < g.OW; ow++) {
            const int64_t h0 = oh * SH, w0 = ow * SW;
            float best = plane[h0 * W + w0];
            int64_t at = h0 * W + w0;
            for (int64_t i = 0; i < KH; i++)
              for (int64_t j = 0; j < KW; j++) {
                const float v = plane[(h0 + i) * W + w0 + j];
                if (v > best || v != v) best = v, at = (h0 + i) * W + w0 + j;
              }
            o[oh * g.OW + ow] = best;
            am[oh * g.OW + ow] = static_cast<int32_t>(at);
          }
        }
        continue;
      }
      for (int64_t oh = 0; oh < g.OH; oh++) {
        for (int64_t ow = 0; ow < g.OW; ow++) {
          float best = -INFINITY;
          int64_t at = -1;
          for (int64_t i = 0; i < KH; i++) {
            const int64_t h = oh * SH - PH + i;
            if (h < 0 || h >= H) continue;
            for (int64_t j = 0; j < KW; j++) {
              const int64_t w = ow * SW - PW + j;
              if (w < 0 || w >= W) continue;
              const float v = plane[h * W + w];
              if (at < 0 || v > best || std::isnan(v)) best = v, at = h * W + w;
            }
          }
          o[oh * g.OW + ow] = best;
          am[oh * g.OW + ow] = static_cast<int32_t>(at);
        }
      }
    }
  });
}

void maxpool2d_backward(ThreadPool& pool, float* dinp, const float* dout, const int32_t* argmax, int64_t B, int64_t C, int64_t H,
                        int64_t W, int64_t KH, int64_t KW, int64_t SH, int64_t SW, int64_t PH, int64_t PW) {
  const Geometry g(B, C, H, W, KH, KW, SH, SW, PH, PW, 1, 1);
  pool.parallel_for(B * C, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
      const float* d = dout + p * g.OH * g.OW;
      const int32_t* am = argmax + p * g.OH * g.OW;
      float* plane = dinp + p * H * W;
      if (SH >= KH && SW >= KW) {
        // windows do not overlap: each element takes at most one gradient
        for (int64_t e = 0; e < H * W; e++) plane[e] = 0.f;
        for (int64_t q = 0; q < g.OH * g.OW; q++)
          if (am[q] >= 0 && am[q] < H * W) plane[am[q]] = d[q];  // (a window wholly in the padding has none)
        continue;
      }
      for (int64_t h = 0; h < H; h++) {
        int64_t oh0, oh1;
        windows_over(h, KH, SH, PH, g.OH, &oh0, &oh1);
        for (int64_t w = 0; w < W; w++) {
          int64_t ow0, ow1;
          windows_over(w, KW, SW, PW, g.OW, &ow0, &ow1);
          float sum = 0.f;
          for (int64_t oh = oh0; oh < oh1; oh++)
            for (int64_t ow = ow0; ow < ow1; ow++)
              if (am[oh * g.OW + ow] == h * W + w) sum += d[oh * g.OW + ow];
          plane[h * W + w] = sum;
        }
      }
    }
  });
}

namespace {
// The divisor of an average-pooling window.
inline float window_divisor(int64_t oh, int64_t ow, const Geometry& g, bool count_include_pad) {
  if (count_include_pad) return static_cast<float>(g.KH * g.KW);
  const int64_t h0 = std::max<int64_t>(0, oh * g.SH - g.PH), h1 = std::min(g.H, oh * g.SH - g.PH + g.KH);
  const int64_t w0 = std::max<int64_t>(0, ow * g.SW - g.PW), w1 = std::min(g.W, ow * g.SW - g.PW + g.KW);
  return static_cast<float>((h1 - h0) * (w1 - w0));
}
}  // namespace

void avgpool2d_forward(ThreadPool& pool, float* out, const float* inp, int64_t B, int64_t C, int64_t H, int64_t W, int64_t KH,
                       int64_t KW, int64_t SH, int64_t SW, int64_t PH, int64_t PW, bool count_include_pad) {
  const Geometry g(B, C, H, W, KH, KW, SH, SW, PH, PW, 1, 1);
  pool.parallel_for(B * C, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
      const float* plane = inp + p * H * W;
      float* o = out + p * g.OH * g.OW;
      for (int64_t oh = 0; oh < g.OH; oh++) {
        const int64_t h0 = std::max<int64_t>(0, oh * SH - PH), h1 = std::min(H, oh * SH - PH + KH);
        for (int64_t ow = 0; ow < g.OW; ow++) {
          const int64_t w0 = std::max<int64_t>(0, ow * SW - PW), w1 = std::min(W, ow * SW - PW + KW);
          double sum = 0;
          for (int64_t h = h0; h < h1; h++)
            for (int64_t w = w0; w < w1; w++) sum += plane[h * W + w];
          o[oh * g.OW + ow] = static_cast<float>(sum / window_divisor(oh, ow, g, count_include_pad));
        }
      }
    }
  });
}

void avgpool2d_backward(ThreadPool& pool, float* dinp, const float* dout, int64_t B, int64_t C, int64_t H, int64_t W, int64_t KH,
                        int64_t KW, int64_t SH, int64_t SW, int64_t PH, int64_t PW, bool count_include_pad) {
  const Geometry g(B, C, H, W, KH, KW, SH, SW, PH, PW, 1, 1);
  pool.parallel_for(B * C, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; p++) {
      const float* d = dout + p * g.OH * g.OW;
      float* plane = dinp + p * H * W;
      for (int64_t h = 0; h < H; h++) {
        int64_t oh0, oh1;
        windows_over(h, KH, SH, PH, g.OH, &oh0, &oh1);
        for (int64_t w = 0; w < W; w++) {
          int64_t ow0, ow1;
          windows_over(w, KW, SW, PW, g.OW, &ow0, &ow1);
          double sum = 0;
          for (int64_t oh = oh0; oh < oh1; oh++)
            for (int64_t ow = ow0; ow < ow1; ow++) sum += d[oh * g.OW + ow] / window_divisor(oh, ow, g, count_include_pad);
          plane[h * W + w] = static_cast<float>(sum);
        }
      }
    }
  });
}

void batchnorm_forward(ThreadPool& pool, float* out, float* save_mean, float* save_invstd, float* run_mean, float* run_var,
                       const float* inp, const float* weight, const float* bias, int64_t B, int64_t C, int64_t R, float momentum,
                       float eps, bool training) {
  const int64_t n = B * R;
  pool.parallel_for(C, 1, [&](int64_t c0, int64_t c1) {
    dispatch([&]() __attribute__((always_inline)) {
      for (int64_t c = c0; c < c1; c++) {
        float mean, invstd;
        if (training) {
          const double sum = channel_lanes_sum(B, C, R, c, [&](int64_t i) { return static_cast<double>(inp[i]); });
          const double m = n ? sum / static_cast<double>(n) : 0.0;
          const double sq = channel_lanes_sum(B, C, R, c, [&](int64_t i) {
            const double d = inp[i] - m;
            return d * d;
          });
          const double var = n ? sq / static_cast<double>(n) : 0.0;
          mean = static_cast<float>(m);
          invstd = static_cast<float>(1.0 / std::sqrt(var + static_cast<double>(eps)));
          run_mean[c] = (1.f - momentum) * run_mean[c] + momentum * mean;
          run_var[c] = (1.f - momentum) * run_var[c] + momentum * static_cast<float>(var * static_cast<double>(n) / static_cast<double>(std::max<int64_t>(n - 1, 1)));
        } else {
          mean = run_mean[c];
          invstd = static_cast<float>(1.0 / std::sqrt(static_cast<double>(run_var[c]) + static_cast<double>(eps)));
        }
        save_mean[c] = mean;
        save_invstd[c] = invstd;
        const float scale = (weight ? weight[c] : 1.f) * invstd, shift = bias ? bias[c] : 0.f;
        for (int64_t b = 0; b < B; b++) {
          const float* x = inp + (b * C + c) * R;
          float* y = out + (b * C + c) * R;
          for (int64_t r = 0; r < R; r++) y[r] = (x[r] - mean) * scale + shift;
        }
      }
    });
  });
}

void batchnorm_backward(ThreadPool& pool, float* dinp, float* dweight, float* dbias, const float* dout, const float* inp,
                        const float* weight, const float* save_mean, const float* save_invstd, int64_t B, int64_t C, int64_t R,
                        bool training, bool accumulate) {
  const int64_t n = B * R;
  pool.parallel_for(C, 1, [&](int64_t c0, int64_t c1) {
    dispatch([&]() __attribute__((always_inline)) {
      for (int64_t c = c0; c < c1; c++) {
        const float mean = save_mean[c], invstd = save_invstd[c];
        // Σ dout, Σ dout·x̂
        const double sd = channel_lanes_sum(B, C, R, c, [&](int64_t i) { return static_cast<double>(dout[i]); });
        const double sdx = channel_lanes_sum(B, C, R, c, [&](int64_t i) { return static_cast<double>(dout[i]) * ((inp[i] - mean) * invstd); });
        if (dweight) dweight[c] = (accumulate ? dweight[c] : 0.f) + static_cast<float>(sdx);
        if (dbias) dbias[c] = (accumulate ? dbias[c] : 0.f) + static_cast<float>(sd);
        if (!dinp) continue;
        const float k = (weight ? weight[c] : 1.f) * invstd;
        const float md = training && n ? static_cast<float>(sd / static_cast<double>(n)) : 0.f;
        const float mdx = training && n ? static_cast<float>(sdx / static_cast<double>(n)) : 0.f;
        for (int64_t b = 0; b < B; b++) {
          const float* x = inp + (b * C + c) * R;
          const float* d = dout + (b * C + c) * R;
          float* dx = dinp + (b * C + c) * R;
          for (int64_t r = 0; r < R; r++) dx[r] = k * (d[r] - md - (x[r] - mean) * invstd * mdx);
        }
      }
    });
  });
}

}  // namespace rg::cpu

namespace rg::cpu {

namespace {
// Images per chunk of the whole-batch path: enough that the GEMMs have work for every thread, few enough that the
// chunk's column matrix (C·KH·KW × images·OH·OW floats) stays bounded.
int64_t conv_chunk(int64_t ck, int64_t r, int64_t B) {
  const char* env = std::getenv("RETROGRAD_CONV_CHUNK_FLOATS");
  const int64_t target = env ? std::max<int64_t>(1, std::atoll(env)) : (int64_t{1} << 22);
  return std::max<int64_t>(1, std::min(B, target / std::max<int64_t>(1, ck * r)));
}

// Scratch buffers of each thread, kept between calls (a training step reuses them).
float* scratch(std::vector<float>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}
// (tls_partial: the weight gradient's per-slot partial sums, on the thread that runs the kernel — each Node environment
// has its own queue thread)
thread_local std::vector<float> tls_col, tls_y, tls_dcol, tls_partial;

// A product of a convolution's slice: `alone` inside an image group (`packed` on this thread only, its blocking and
// so its sums fixed by the sizes), else gemm over every thread for a whole-batch chunk.
void product(ThreadPool& pool, bool alone, bool transA, bool transB, int64_t M, int64_t N, int64_t K, const float* A, const float* B,
             float beta, float* C) {
  if (alone) packed(pool, transA, transB, M, N, K, 0, K, 1.f, A, B, beta, C, nullptr, Activation::None, 0.f);
  else gemm(pool, transA, transB, M, N, K, 1.f, A, B, beta, C);
}

// Convolution by image groups. A group's column matrix (C·KH·KW × g·OH·OW) is sized to stay in a core's L2 cache;
// each thread takes whole groups and runs im2col, the product (packed on that thread alone), col2im and the
// layout copies in cache, with no barrier between them. The whole-batch path instead wrote the column matrix of
// every image to memory and read it back, each step a parallel pass of its own: a DCGAN's 4×4 stride-2
// convolution of 32 → 64 channels on 14×14 (batch 64) moved 6.4 MB through memory twice per pass, and im2col,
// col2im and the packing of B took more of its step than the micro-kernel.
//
// Every choice here depends on the sizes alone, never on the thread count: an output element's sum runs over K
// in the same order whichever thread computes it, and the weight gradient is summed per slot (a fixed range of
// groups, in order) and then over the slots in order.
constexpr int64_t kGroupFloats = int64_t{1} << 17;  // 512 KB of columns per group
constexpr int64_t kMaxSlots = 16;
constexpr int64_t kPartialFloats = int64_t{1} << 22;  // the slots' partial weight gradients: at most 16 MB

struct Groups {
  int64_t size = 0, count = 0;  // images per group; groups (0: use the whole-batch path)
};

// Images per group: as many as fit the cache target, at most an eighth of the batch (work for every thread), and
// enough for 64 output columns (a product narrower than two of the micro-kernel's 32-column slivers wastes it).
Groups image_groups(int64_t ck, int64_t r, int64_t B) {
  int64_t g = std::min(kGroupFloats / std::max<int64_t>(1, ck * r), (B + 7) / 8);
  g = std::min(B, std::max({g, (64 + r - 1) / std::max<int64_t>(1, r), int64_t{1}}));
  const int64_t count = g ? (B + g - 1) / g : 0;
  // Fewer than four groups leaves threads idle; a single image's columns far past the cache gain nothing.
  if (count < 4 || ck * r > 4 * kGroupFloats) return {};
  return {g, count};
}

}  // namespace

void conv2d_forward(ThreadPool& pool, float* out, const float* inp, const float* weight, const float* bias, int64_t B, int64_t C,
                    int64_t H, int64_t W, int64_t OC, int64_t KH, int64_t KW, int64_t SH, int64_t SW, int64_t PH, int64_t PW, int64_t DH,
                    int64_t DW) {
  const Geometry g(B, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW);
  const int64_t ck = C * KH * KW, r = g.OH * g.OW;
  // images [b0, b0 + nb): columns, the product, the output's layout (with the bias)
  auto images = [&](int64_t b0, int64_t nb, bool alone) {
    float* col = scratch(tls_col, static_cast<size_t>(ck * nb * r));
    float* y = scratch(tls_y, static_cast<size_t>(OC * nb * r));
    im2col(pool, col, inp + b0 * C * H * W, nb, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW);
    product(pool, alone, false, false, OC, nb * r, ck, weight, col, 0.f, y);
    transpose01(pool, out + b0 * OC * r, y, bias, OC, nb, r);
  };
  const Groups groups = image_groups(ck, r, B);
  if (groups.count) {
    pool.parallel_for(groups.count, 1, [&](int64_t q0, int64_t q1) {
      for (int64_t q = q0; q < q1; q++) images(q * groups.size, std::min(groups.size, B - q * groups.size), true);
    });
    return;
  }
  const int64_t chunk = conv_chunk(ck, r, B);
  for (int64_t b0 = 0; b0 < B; b0 += chunk) images(b0, std::min(chunk, B - b0), false);
}

void conv2d_backward(ThreadPool& pool, float* dinp, float* dweight, float* dbias, const float* dout, const float* inp, const float* weight,
                     int64_t B, int64_t C, int64_t H, int64_t W, int64_t OC, int64_t KH, int64_t KW, int64_t SH, int64_t SW, int64_t PH,
                     int64_t PW, int64_t DH, int64_t DW, bool accumulate) {
  const Geometry g(B, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW);
  const int64_t ck = C * KH * KW, r = g.OH * g.OW;
  if (dbias) channel_sum(pool, dbias, dout, B, OC, r, accumulate);
  if (!dweight && !dinp) return;
  if (dweight && !accumulate && B == 0) std::memset(dweight, 0, static_cast<size_t>(OC * ck) * 4);
  // images [b0, b0 + nb): dout as [OC, nb·r]; dw = beta·dw + dy·colᵀ (when dw is given); their slice of dinp
  auto images = [&](int64_t b0, int64_t nb, bool alone, float* dw, float beta) {
    float* dy = scratch(tls_y, static_cast<size_t>(OC * nb * r));
    transpose01(pool, dy, dout + b0 * OC * r, nullptr, nb, OC, r);
    if (dw) {
      float* col = scratch(tls_col, static_cast<size_t>(ck * nb * r));
      im2col(pool, col, inp + b0 * C * H * W, nb, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW);
      product(pool, alone, false, true, OC, ck, nb * r, dy, col, beta, dw);
    }
    if (dinp) {
      float* dcol = scratch(tls_dcol, static_cast<size_t>(ck * nb * r));
      product(pool, alone, true, false, ck, nb * r, OC, weight, dy, 0.f, dcol);
      col2im(pool, dinp + b0 * C * H * W, dcol, nb, C, H, W, KH, KW, SH, SW, PH, PW, DH, DW);
    }
  };
  const Groups groups = image_groups(ck, r, B);
  const int64_t slots = std::min(kMaxSlots, groups.count);
  if (groups.count && (!dweight || slots * OC * ck <= kPartialFloats)) {
    float* partial = dweight ? scratch(tls_partial, static_cast<size_t>(slots * OC * ck)) : nullptr;
    pool.parallel_for(slots, 1, [&](int64_t s0, int64_t s1) {
      for (int64_t s = s0; s < s1; s++) {
        const int64_t q0 = groups.count * s / slots, q1 = groups.count * (s + 1) / slots;
        for (int64_t q = q0; q < q1; q++)
          images(q * groups.size, std::min(groups.size, B - q * groups.size), true, partial ? partial + s * OC * ck : nullptr, q == q0 ? 0.f : 1.f);
      }
    });
    if (dweight) {
      const int64_t n = OC * ck;
      pool.parallel_for(n, 4096, [&](int64_t e0, int64_t e1) {
        for (int64_t e = e0; e < e1; e++) {
          float v = accumulate ? dweight[e] : 0.f;
          for (int64_t s = 0; s < slots; s++) v += partial[s * n + e];
          dweight[e] = v;
        }
      });
    }
    return;
  }
  const int64_t chunk = conv_chunk(ck, r, B);
  for (int64_t b0 = 0; b0 < B; b0 += chunk) images(b0, std::min(chunk, B - b0), false, dweight, accumulate || b0 > 0 ? 1.f : 0.f);
}

}  // namespace rg::cpu
