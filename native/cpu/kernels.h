// The CPU kernels of retrograd (native/cpu/): raw pointers and sizes, no Node types. The declarations are the
// shared list in core/kernel_list.h; Activation is the epilogue activation of the GEMM and Linear.
#pragma once
#include <cstdint>

#include "../core/status.h"
#include "../core/thread_pool.h"

namespace rg::cpu {

// Activations the gemm epilogue can apply (the ones whose backward can be taken from the output).
enum class Activation { None, Relu, LeakyRelu };

#define RG_KERNEL void
#include "../core/kernel_list.h"
#undef RG_KERNEL

}  // namespace rg::cpu
