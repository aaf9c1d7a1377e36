// The CUDA kernels of retrograd: the same functions as native/cpu/kernels.h (names, arguments, semantics),
// so that the addon's kernel table binds either set. Pointers are device memory; every kernel is launched on
// the backend's one stream and returns at once. The ThreadPool argument is unused (the queue's thread only
// launches). A launch that fails returns a CUDA_ERROR status naming the kernel; a kernel that finds bad data
// (a class index out of range, say) records it on the device, the kernels after it do nothing, and the next
// synchronisation reports it (device.cc).
//
// Gradient contract: parameter gradients ACCUMULATE (+=), everything else OVERWRITES, as on the CPU.
#pragma once
#include <cstdint>

#include "../core/status.h"
#include "../core/thread_pool.h"
#include "../core/storage.h"

namespace rg::cuda {

// Activations the gemm epilogue can apply (the ones whose backward can be taken from the output).
enum class Activation { None, Relu, LeakyRelu };

#define RG_KERNEL Status
#include "../core/kernel_list.h"
#undef RG_KERNEL

// ---- runtime (runtime.cu): the stream, the precision of matrix products, device-side failures ----
Status start(void* stream);               // the stream every kernel runs on; the failure record
void set_tf32(bool on);                   // matrix products through TF32 tensor cores (sm_80 and newer)
// A failure that kernels recorded since the last call, as a Status; clears it (so that later kernels run).
// Call only once the device has finished the work in question.
Status take_failure();
// The device word that is nonzero while a failure is pending (copied into a read's buffer in stream order, so
// that a read reports only failures of work queued before it).
const int* failure_flag();
// The stream every kernel runs on (device.cc).
void* main_stream();

}  // namespace rg::cuda
