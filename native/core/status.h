// Status: how the native core reports failure. Nothing below the addon throws across a kernel boundary
// or terminates the process; a kernel returns a Status and the addon turns a failure into a JavaScript
// RetrogradError carrying `code`.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

namespace rg {

enum class Code { Ok, InvalidArgument, OutOfMemory, Internal, CudaError, NonFinite };

struct Status {
  Code code = Code::Ok;
  std::string message;

  bool ok() const { return code == Code::Ok; }
  static Status Ok() { return {}; }
  static Status Invalid(std::string m) { return {Code::InvalidArgument, std::move(m)}; }
  static Status OutOfMemory(std::string m) { return {Code::OutOfMemory, std::move(m)}; }
  static Status Cuda(std::string m) { return {Code::CudaError, std::move(m)}; }
  static Status NonFinite(std::string m) { return {Code::NonFinite, std::move(m)}; }
};

// check_finite's failure: "check_finite: tensor <tag> holds NaN at element <i>" (lib/train/fit.ts reads tag and i).
inline Status non_finite(int64_t tag, int64_t index, float value) {
  return Status::NonFinite("check_finite: tensor " + std::to_string(tag) + " holds " +
                           (std::isnan(value) ? "NaN" : value > 0 ? "+Infinity" : "-Infinity") + " at element " +
                           std::to_string(index));
}

// check_finite's failure when an earlier check on the same flag failed.
inline Status non_finite_before(int64_t tag, int64_t index) {
  return Status::NonFinite("check_finite: tensor " + std::to_string(tag) + " follows a failed check (element " + std::to_string(index) +
                           " of an earlier tensor was not finite)");
}

// The stable codes of API.md's error section.
inline const char* code_name(Code c) {
  switch (c) {
    case Code::Ok: return "OK";
    case Code::InvalidArgument: return "INVALID_ARGUMENT";
    case Code::OutOfMemory: return "OUT_OF_MEMORY";
    case Code::Internal: return "INTERNAL";
    case Code::CudaError: return "CUDA_ERROR";
    case Code::NonFinite: return "NON_FINITE";
  }
  return "INTERNAL";
}

}  // namespace rg
