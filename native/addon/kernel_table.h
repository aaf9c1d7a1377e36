// The table that maps kernel names to kernels (CPU or CUDA, per addon): for each, the kinds of its arguments (buffers first —
// outputs, then inputs — then sizes and scalars) and the element count each buffer must hold. The addon
// checks every call against its entry before anything is queued; the kernels themselves trust their
// arguments. Nothing numeric happens here.
#pragma once
#include <cstdint>
#include <vector>

#include "../core/status.h"
#include "../core/storage.h"
#include "../core/thread_pool.h"

namespace rg::addon {

enum class Arg : uint8_t {
  F32,      // float32 buffer
  F32Opt,   // float32 buffer or null (a gradient that is not wanted, an absent bias)
  I32Opt,   // int32 buffer or null
  I32,      // int32 buffer
  Any32,    // float32 or int32 buffer
  Size,     // integer in [0, 2^31)
  Int,      // integer in (-2^53, 2^53)
  Float,    // any number
  Bool,     // boolean
  Act,      // activation code: 0 none, 1 ReLU, 2 LeakyReLU
};

constexpr int kMaxArgs = 24;

struct Call {
  StoragePtr buf[kMaxArgs];
  double s[kMaxArgs];  // scalars, in order
  int nbuf = 0;
  int ns = 0;
};

struct KernelDef {
  const char* name;
  std::vector<Arg> args;
  // Elements each buffer must hold, given the scalars (in scalar order).
  std::vector<double> (*need)(const double* s);
  Status (*run)(ThreadPool& pool, Call& c);
};

const std::vector<KernelDef>& kernel_table();

}  // namespace rg::addon
