// The CUDA runtime of the kernels: the stream they run on, the scratch the reductions share, and the device-side
// failure record (common.cuh) with the host's reading of it.
#include <string>
#include <vector>

#include "common.cuh"

namespace rg::cuda {

// The one definition of common.cuh's host globals.
cudaStream_t g_stream = nullptr;
bool g_tf32 = false;
int g_sms = 132;
FailureRecord* h_record = nullptr;
int* d_failed_addr = nullptr;
double* g_partials = nullptr;
int* g_counter = nullptr;
std::mutex g_scratch_mu;

std::vector<FailureBinder>& failure_binders() {
  static std::vector<FailureBinder> binders;  // filled while the addon loads, before start()
  return binders;
}

Status start(void* stream) {
  g_stream = static_cast<cudaStream_t>(stream);
  int dev = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&g_sms, cudaDevAttrMultiProcessorCount, dev);
  void* mapped = nullptr;
  if (cudaMalloc(&g_partials, kMaxPartials * sizeof(double)) != cudaSuccess ||
      cudaMalloc(&g_counter, sizeof(int)) != cudaSuccess ||
      cudaMalloc(&d_failed_addr, sizeof(int)) != cudaSuccess ||
      cudaMemset(d_failed_addr, 0, sizeof(int)) != cudaSuccess ||
      cudaHostAlloc(reinterpret_cast<void**>(&h_record), sizeof(FailureRecord), cudaHostAllocMapped) != cudaSuccess ||
      cudaHostGetDevicePointer(&mapped, h_record, 0) != cudaSuccess) {
    return launched("start");
  }
  for (FailureBinder bind : failure_binders())
    if (bind(d_failed_addr, static_cast<FailureRecord*>(mapped)) != cudaSuccess) return launched("start");
  *h_record = FailureRecord{};
  return Status::Ok();
}

void set_tf32(bool on) { g_tf32 = on; }

const int* failure_flag() { return d_failed_addr; }

Status take_failure() {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  if (!h_record) return Status::Ok();
  const int kind = reinterpret_cast<volatile int*>(&h_record->kind)[0];
  if (kind == kNone) return Status::Ok();
  const FailureRecord r = *h_record;
  reinterpret_cast<volatile int*>(&h_record->kind)[0] = kNone;
  cudaMemsetAsync(d_failed_addr, 0, sizeof(int), g_stream);
  switch (kind) {
    case kClassIndex:
      return Status::Invalid("CrossEntropyLoss: target " + std::to_string(r.a) + " at position " + std::to_string(r.b) +
                             " is outside [0, " + std::to_string(r.c) + ")");
    case kRowIndex:
      return Status::Invalid("gather_rows: row index " + std::to_string(r.a) + " is outside [0, " + std::to_string(r.c) + ")");
    case kEmbeddingIndex:
      return Status::Invalid("embedding_backward: index " + std::to_string(r.a) + " at position " + std::to_string(r.b) + " is outside [0, " +
                             std::to_string(r.c) + ")");
    case kNonFinite:
      return r.c == 1 ? non_finite_before(r.a, r.b) : non_finite(r.a, r.b, static_cast<float>(r.value));
    case kIndex:
      return Status::Invalid(std::string(index_kernel_name(static_cast<int>(r.value))) + ": index " + std::to_string(r.a) + " at position " +
                             std::to_string(r.b) + " is outside [0, " + std::to_string(r.c) + ")");
    case kProbability:
      return Status::Invalid("BCELoss: every input must be between 0 and 1, got " + std::to_string(r.value) + " at index " +
                             std::to_string(r.a));
    default:
      return Status::Invalid("a kernel found invalid data (failure " + std::to_string(kind) + ")");
  }
}

}  // namespace rg::cuda
