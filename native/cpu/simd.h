// Run-time instruction-set dispatch and vectorisable float32 math for the elementwise kernels.
//
// dispatch(f) runs the always-inline lambda f compiled three times — for AVX-512, for AVX2+FMA and for
// baseline x86-64 — and picks one by the CPU's features at load (RETROGRAD_CPU_ISA=portable|avx2 caps the
// choice, so each path can be tested on one machine). The loops inside f vectorise for the chosen width.
// Elsewhere (AArch64: NEON is part of the base architecture, so the compiler vectorises the portable code with it)
// there is one path, the portable one, and RG_X86 is 0: x86 intrinsics sit behind `#if RG_X86`.
//
// vexp / vtanh / verf are branch-free (selects only), so the compiler vectorises the loops that call them.
// Accuracy against the float64 reference: vexp ~1 ulp on [−87, 88.7] (Cephes' expf polynomial), vtanh
// ~2 ulp (Cephes' tanhf polynomial below 0.625, exp above), verf within 1.5e-7 absolute (Abramowitz &
// Stegun 7.1.26) — inside the project's 1e-5 normwise tolerance for elementwise kernels.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace rg::cpu {

// The x86 features retrograd dispatches on, as cpuid and the operating system's saved register state (xgetbv) report
// them: an instruction set counts only where the OS saves its registers. Read directly rather than through
// __builtin_cpu_supports, which needs the compiler's runtime library (not linked by clang-cl on Windows). All false
// elsewhere.
struct X86Features {
  bool sse42 = false, avx2 = false, fma = false, avx512f = false, avx512vl = false, avx512bw = false, avx512dq = false,
       avx512bf16 = false;
};
const X86Features& x86_features();

enum class IsaLevel { Portable, Avx2, Avx512 };
IsaLevel isa_level();
const char* isa_name();
// AVX512-BF16 (vdpbf16ps: pairs of bfloat16 products summed into float32) on top of the AVX-512 level, for matrix
// products under rg.autocast('bfloat16'); false where the level is capped below AVX-512 (RETROGRAD_CPU_ISA).
bool has_avx512_bf16();

#if defined(__x86_64__) || defined(__i386__)
#define RG_X86 1
#define RG_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma")))
#define RG_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define RG_TARGET_AVX512BF16 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512bf16,fma")))
#else
#define RG_X86 0
#define RG_TARGET_AVX512
#define RG_TARGET_AVX2
#define RG_TARGET_AVX512BF16
#endif
#define RG_INLINE inline __attribute__((always_inline))

template <typename F>
RG_TARGET_AVX512 void run_avx512(const F& f) { f(); }
template <typename F>
RG_TARGET_AVX2 void run_avx2(const F& f) { f(); }
template <typename F>
void run_portable(const F& f) { f(); }

// f must be declared `[&]() __attribute__((always_inline)) { … }` so that it is compiled into each target.
template <typename F>
void dispatch(const F& f) {
  if constexpr (!RG_X86) return run_portable(f);
  switch (isa_level()) {
    case IsaLevel::Avx512: return run_avx512(f);
    case IsaLevel::Avx2: return run_avx2(f);
    default: return run_portable(f);
  }
}

RG_INLINE float bits_to_float(int32_t i) { return __builtin_bit_cast(float, i); }

// e^xc = p · 2^ni for xc in [−87, 89]: n = round(xc/ln2) by adding 1.5·2^23, whose low mantissa bits then hold n
// (half-way cases to even: two adds where a conversion to integer and back, and a select for the rounding's sign, made
// GELU's kernels twice as slow), r = xc − n ln2 in two parts, p = e^r by the polynomial.
RG_INLINE float exp_parts(float xc, int32_t& ni) {
  const float shifted = xc * 1.44269504088896341f + 12582912.f;
  const float n = shifted - 12582912.f;
  ni = __builtin_bit_cast(int32_t, shifted) - 0x4b400000;  // (the bits of 1.5·2^23)
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  return p * r * r + r + 1.f;
}

// e^x: x = n ln2 + r, |r| ≤ ln2/2, e^r by a degree-7 polynomial, 2^n built in the exponent bits (as 2^(n−1)·2
// so that n = 128 stays representable). Below −87 the result is 0 (a multiply by the comparison, not a select:
// a select after the polynomial kept GCC from vectorising the loop); x is clamped to 89, where p·2^128 overflows
// to +inf by itself. A NaN passes through the arithmetic (and 0·NaN) as NaN. Vectorises with -fno-trapping-math.
RG_INLINE float vexp(float x) {
  const float xc = x < -87.f ? -87.f : (x > 89.f ? 89.f : x);
  int32_t ni;
  const float p = exp_parts(xc, ni);
  const float scale = bits_to_float(static_cast<int32_t>((static_cast<uint32_t>(ni) + 126u) << 23));
  return p * scale * 2.f * static_cast<float>(x >= -87.f);
}

RG_INLINE float vsigmoid(float x) { return 1.f / (1.f + vexp(-x)); }

RG_INLINE float vtanh(float x) {
  const float ax = std::fabs(x);
  const float s = x * x;
  const float small = ((((-5.70498872745e-3f * s + 2.06390887954e-2f) * s - 5.37397155531e-2f) * s +
                        1.33314422036e-1f) * s - 3.33332819422e-1f) * s * x + x;
  const float big = 1.f - 2.f / (vexp(2.f * ax) + 1.f);
  const float signed_big = x < 0.f ? -big : big;
  return ax < 0.625f ? small : signed_big;
}

// e^x for x ≤ 0 (or NaN), as vexp with fewer steps: no overflow to guard; x clamped at −87, where e^x is 1.6e-38 (no
// longer flushed to 0: a term it multiplies is that much below 1 in every use here).
RG_INLINE float vexp_nonpos(float x) {
  int32_t ni;
  const float p = exp_parts(x < -87.f ? -87.f : x, ni);
  return p * bits_to_float(static_cast<int32_t>((static_cast<uint32_t>(ni) + 127u) << 23));
}

// erf(x) given e = e^(−x²), which a caller may share (GELU's backward needs it for φ too).
RG_INLINE float verf_given(float x, float e) {
  const float ax = std::fabs(x);
  const float t = 1.f / (1.f + 0.3275911f * ax);
  const float poly = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t;
  const float y = 1.f - poly * e;
  return x < 0.f ? -y : y;
}
RG_INLINE float verf(float x) { return verf_given(x, vexp_nonpos(-x * x)); }

// Σ term(i) for i < n in L independent partial sums of type Acc (a vector loop, where one running sum is a chain of
// dependent adds), then added in double by halves (lane l + lane l + L/2, then + L/4, …): the result depends on n only.
template <typename Acc, int64_t L, typename F>
RG_INLINE double lane_sum(int64_t n, F term) {
  Acc part[L] = {};
  int64_t i = 0;
  for (; i + L <= n; i += L)
    for (int64_t l = 0; l < L; l++) part[l] += term(i + l);
  double tail = 0;
  for (; i < n; i++) tail += term(i);
  double half[L / 2];
  for (int64_t l = 0; l < L / 2; l++) half[l] = static_cast<double>(part[l]) + static_cast<double>(part[l + L / 2]);
  for (int64_t w = L / 4; w >= 1; w /= 2)
    for (int64_t l = 0; l < w; l++) half[l] += half[l + w];
  return half[0] + tail;
}

}  // namespace rg::cpu
