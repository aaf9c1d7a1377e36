#include "simd.h"

#include <cstdlib>

namespace rg::cpu {

namespace {
IsaLevel detect() {
  IsaLevel best = IsaLevel::Portable;
#if RG_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = IsaLevel::Avx2;
  if (best == IsaLevel::Avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
    best = IsaLevel::Avx512;
#endif
  if (const char* cap = std::getenv("RETROGRAD_CPU_ISA")) {
    if (std::strcmp(cap, "portable") == 0) best = IsaLevel::Portable;
    else if (std::strcmp(cap, "avx2") == 0 && best == IsaLevel::Avx512) best = IsaLevel::Avx2;
  }
  return best;
}
}  // namespace

IsaLevel isa_level() {
  static const IsaLevel level = detect();
  return level;
}

bool has_avx512_bf16() {
#if RG_X86
  static const bool bf16 = isa_level() == IsaLevel::Avx512 && __builtin_cpu_supports("avx512bf16");
  return bf16;
#else
  return false;
#endif
}

const char* isa_name() {
  switch (isa_level()) {
    case IsaLevel::Avx512: return "avx512";
    case IsaLevel::Avx2: return "avx2";
    default: return "portable";
  }
}

}  // namespace rg::cpu
