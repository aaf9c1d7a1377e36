// The dropout draw, one definition for the CPU and the CUDA kernels (the reference backend writes the same in
// TypeScript): element i of a mask with seed s keeps its value when uniform(s, i) >= p, a pure function of
// (seed, i), so every backend and every thread count draws the same mask.
#pragma once
#include <cstdint>

#include "host_device.h"

namespace rg {

// MurmurHash3's 32-bit finaliser.
RG_HOST_DEVICE uint32_t fmix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

// A uniform value in [0, 1) for element i; mixed_seed is fmix32(seed), computed once per kernel.
RG_HOST_DEVICE float dropout_uniform(uint32_t mixed_seed, int64_t i) {
  const uint32_t h = fmix32((static_cast<uint32_t>(i) * 0x9E3779B9u) ^ mixed_seed);
  return static_cast<float>(h >> 8) * (1.f / 16777216.f);
}

}  // namespace rg
