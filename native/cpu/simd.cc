#include "simd.h"

#include <cstdlib>

#if RG_X86
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#else
#include <cpuid.h>
#endif
#endif

namespace rg::cpu {

namespace {
#if RG_X86
// cpuid's four registers (eax, ebx, ecx, edx) for a leaf and subleaf.
void cpuid(unsigned leaf, unsigned sub, unsigned r[4]) {
#if defined(_MSC_VER) && !defined(__clang__)
  int v[4];
  __cpuidex(v, static_cast<int>(leaf), static_cast<int>(sub));
  for (int i = 0; i < 4; i++) r[i] = static_cast<unsigned>(v[i]);
#else
  __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
#endif
}

// The register state the OS saves (XCR0); call only where cpuid reports OSXSAVE.
uint64_t saved_state() {
#if defined(_MSC_VER) && !defined(__clang__)
  return _xgetbv(0);
#else
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t{hi} << 32) | lo;
#endif
}

X86Features probe() {
  X86Features f;
  unsigned r[4];
  cpuid(0, 0, r);
  const unsigned max_leaf = r[0];
  if (max_leaf < 1) return f;
  cpuid(1, 0, r);
  const unsigned ecx1 = r[2];
  f.sse42 = (ecx1 >> 20) & 1;
  const bool osxsave = (ecx1 >> 27) & 1, avx = (ecx1 >> 28) & 1;
  const uint64_t xcr0 = osxsave ? saved_state() : 0;
  const bool ymm = avx && (xcr0 & 0x6) == 0x6;    // SSE and AVX registers saved
  const bool zmm = ymm && (xcr0 & 0xE0) == 0xE0;  // and AVX-512's opmask and upper ZMM registers
  f.fma = ymm && ((ecx1 >> 12) & 1);
  if (max_leaf < 7) return f;
  cpuid(7, 0, r);
  const unsigned sub_leaves = r[0], ebx7 = r[1];
  f.avx2 = ymm && ((ebx7 >> 5) & 1);
  f.avx512f = zmm && ((ebx7 >> 16) & 1);
  f.avx512dq = zmm && ((ebx7 >> 17) & 1);
  f.avx512bw = zmm && ((ebx7 >> 30) & 1);
  f.avx512vl = zmm && ((ebx7 >> 31) & 1);
  if (sub_leaves >= 1) {
    cpuid(7, 1, r);
    f.avx512bf16 = f.avx512f && ((r[0] >> 5) & 1);
  }
  return f;
}
#endif

IsaLevel detect() {
  IsaLevel best = IsaLevel::Portable;
  const X86Features& f = x86_features();
  if (f.avx2 && f.fma) best = IsaLevel::Avx2;
  if (best == IsaLevel::Avx2 && f.avx512f && f.avx512vl && f.avx512bw && f.avx512dq) best = IsaLevel::Avx512;
  if (const char* cap = std::getenv("RETROGRAD_CPU_ISA")) {
    if (std::strcmp(cap, "portable") == 0) best = IsaLevel::Portable;
    else if (std::strcmp(cap, "avx2") == 0 && best == IsaLevel::Avx512) best = IsaLevel::Avx2;
  }
  return best;
}
}  // namespace

const X86Features& x86_features() {
#if RG_X86
  static const X86Features features = probe();
#else
  static const X86Features features;
#endif
  return features;
}

IsaLevel isa_level() {
  static const IsaLevel level = detect();
  return level;
}

bool has_avx512_bf16() {
  static const bool bf16 = isa_level() == IsaLevel::Avx512 && x86_features().avx512bf16;
  return bf16;
}

const char* isa_name() {
  switch (isa_level()) {
    case IsaLevel::Avx512: return "avx512";
    case IsaLevel::Avx2: return "avx2";
    default: return "portable";
  }
}

}  // namespace rg::cpu
