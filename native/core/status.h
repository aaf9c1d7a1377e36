// Status: how the native core reports failure. Nothing below the addon throws across a kernel boundary
// or terminates the process; a kernel returns a Status and the addon turns a failure into a JavaScript
// RetrogradError carrying `code`.
#pragma once
#include <string>
#include <utility>

namespace rg {

enum class Code { Ok, InvalidArgument, OutOfMemory, Internal, CudaError };

struct Status {
  Code code = Code::Ok;
  std::string message;

  bool ok() const { return code == Code::Ok; }
  static Status Ok() { return {}; }
  static Status Invalid(std::string m) { return {Code::InvalidArgument, std::move(m)}; }
  static Status OutOfMemory(std::string m) { return {Code::OutOfMemory, std::move(m)}; }
  static Status Cuda(std::string m) { return {Code::CudaError, std::move(m)}; }
};

// The stable codes of API.md's error section.
inline const char* code_name(Code c) {
  switch (c) {
    case Code::Ok: return "OK";
    case Code::InvalidArgument: return "INVALID_ARGUMENT";
    case Code::OutOfMemory: return "OUT_OF_MEMORY";
    case Code::Internal: return "INTERNAL";
    case Code::CudaError: return "CUDA_ERROR";
  }
  return "INTERNAL";
}

}  // namespace rg
