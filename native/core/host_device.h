// RG_HOST_DEVICE: a function written once for the CPU and the CUDA kernels (the dropout hash, the optimizers' updates,
// the recurrent cells): host and device code under nvcc, and always inlined, so the loops that call it still vectorise
// on the CPU.
#pragma once

#ifdef __CUDACC__
#define RG_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define RG_HOST_DEVICE inline __attribute__((always_inline))
#endif
