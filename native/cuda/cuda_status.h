// A CUDA runtime error as a Status: Ok, or CUDA_ERROR "what: <error name>: <error text>". Shared by the kernels' launch
// checks (common.cuh), the device (device.cc) and NCCL's streams (collectives.cc).
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "../core/status.h"

namespace rg::cuda {

inline Status cuda_status(const char* what, cudaError_t e) {
  if (e == cudaSuccess) return Status::Ok();
  return Status::Cuda(std::string(what) + ": " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e));
}

}  // namespace rg::cuda
