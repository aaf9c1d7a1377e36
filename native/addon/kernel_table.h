// The table that maps kernel names to kernels (CPU or CUDA, per addon). Each entry is made from the kernel's C++
// prototype (kernel_list.h) by a template over its function pointer: the kind of every argument follows from its
// type, the code that unpacks a queued command into the call is generated, and the entry holds the arguments'
// names (from the prototype, marked `?` where a buffer may be null) for error messages and for the signatures the
// addon exports, which the tests compare with the kernel contract of lib/backend.ts. The addon checks every call
// against its entry before anything is queued; the kernels themselves trust their arguments.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "../core/queue.h"
#include "../core/status.h"
#include "../core/storage.h"
#include "../core/thread_pool.h"

namespace rg::addon {

enum class Arg : uint8_t {
  F32,     // float32 buffer (float*, const float*)
  F32Opt,  // float32 buffer or null (a gradient that is not wanted, an absent bias): a name marked '?'
  I32,     // int32 buffer (int32_t*)
  I32Opt,  // int32 buffer or null
  Any32,   // float32 or int32 buffer (void*)
  Size,    // integer in [0, 2^31) (int64_t, int, unsigned)
  Int,     // integer in (-2^53, 2^53): an int64_t whose name is marked ':int'
  Float,   // any number (float)
  Bool,    // boolean (bool)
  Act,     // activation code: 0 none, 1 ReLU, 2 LeakyReLU (Activation)
  Dims,    // kMaxDims sizes, given as that many numbers (const int64_t*)
};
// The spelling of each kind in the exported signatures: "f32", "f32?", "i32", ...
const char* arg_kind_name(Arg a);

// The most dimensions of the generic kernels (kernel_list.h's kMaxDims): a Dims argument is this many numbers.
constexpr int kMaxDims = 6;

// The elements each buffer of a call must hold (NaN: the sizes give no valid shape). Fixed-size, so that checking a
// call allocates nothing.
struct Sizes {
  double v[Command::kMaxBuffers] = {};
  Sizes(std::initializer_list<double> sizes) {
    int i = 0;
    for (double d : sizes) v[i++] = d;
  }
  double operator[](int i) const { return v[i]; }
};

struct KernelDef {
  const char* name;
  std::vector<Arg> args;           // in the kernel contract's order: outputs, inputs, sizes, scalars
  std::vector<std::string> names;  // one per argument
  // Elements each buffer must hold, given the scalars (in scalar order; a Dims argument is kMaxDims scalars).
  Sizes (*need)(const double* s);
  Command::Kernel run;
};

const std::vector<KernelDef>& kernel_table();

}  // namespace rg::addon
