// The CUDA addon's side of core/device.h: one device, one stream, and the memory behind storages.
//
// Storages come from a caching allocator: a freed block goes back to a size-keyed cache and the next storage
// of a fitting size takes it, so a training step that allocates the same buffers every batch calls cudaMalloc
// only in its first step. Reuse is safe without waiting because every use of device memory is ordered on the
// one stream: a block is freed only after the commands that use it were issued, and whatever takes it next is
// issued after that. When cudaMalloc fails the cache is emptied and the allocation tried once more.
//
// Host transfers go through pinned staging buffers, pooled, each with an event that says when its last copy
// has finished, so that uploads and downloads run asynchronously on the stream.
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <vector>

#include "../core/device.h"
#include "cuda_status.h"
#include "kernels.h"

namespace rg {

MemoryStats& memory_stats() {
  static MemoryStats stats;
  return stats;
}

using cuda::cuda_status;

namespace {

cudaStream_t g_stream = nullptr;
std::atomic<int64_t> g_in_use{0};
std::atomic<int64_t> g_cached{0};

// Rounded block sizes: 512-byte steps up to 1 MiB, then 2 MiB steps (few distinct sizes, little waste).
size_t block_size(size_t bytes) {
  if (bytes <= (1u << 20)) return (bytes + 511) & ~size_t(511);
  return (bytes + (2u << 20) - 1) & ~size_t((2u << 20) - 1);
}

class Allocator {
 public:
  void* take(size_t size) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(size);
      if (it != free_.end()) {
        void* p = it->second;
        free_.erase(it);
        g_cached -= static_cast<int64_t>(size);
        return p;
      }
    }
    void* p = nullptr;
    if (cudaMalloc(&p, size) == cudaSuccess) return p;
    cudaGetLastError();  // clear the allocation error
    empty();
    if (cudaMalloc(&p, size) == cudaSuccess) return p;
    cudaGetLastError();
    return nullptr;
  }
  void give(void* p, size_t size) {
    std::lock_guard<std::mutex> lock(mu_);
    free_.emplace(size, p);
    g_cached += static_cast<int64_t>(size);
  }
  // Frees every cached block (cudaFree waits for the device: blocks in the cache may still be read by
  // issued work only until then).
  void empty() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [size, p] : free_) {
      cudaFree(p);
      g_cached -= static_cast<int64_t>(size);
    }
    free_.clear();
  }

 private:
  std::mutex mu_;
  std::multimap<size_t, void*> free_;
};

Allocator& allocator() {
  static Allocator* a = new Allocator();  // never destroyed: the driver may be gone at process exit
  return *a;
}

// A pinned host block and the event recorded after the last copy that used it.
struct Pinned {
  void* data = nullptr;
  size_t capacity = 0;
  cudaEvent_t done = nullptr;
};

class PinnedPool {
 public:
  Pinned* take(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = 0; i < free_.size(); i++) {
        Pinned* p = free_[i];
        if (p->capacity >= bytes && p->capacity <= 4 * std::max<size_t>(bytes, 65536) && cudaEventQuery(p->done) == cudaSuccess) {
          free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(i));
          return p;
        }
      }
    }
    cudaGetLastError();  // cudaEventQuery's cudaErrorNotReady is not an error
    auto* p = new (std::nothrow) Pinned();
    if (!p) return nullptr;
    p->capacity = std::max<size_t>(65536, bytes);
    if (cudaHostAlloc(&p->data, p->capacity, cudaHostAllocDefault) != cudaSuccess ||
        cudaEventCreateWithFlags(&p->done, cudaEventDisableTiming) != cudaSuccess) {
      cudaGetLastError();
      if (p->data) cudaFreeHost(p->data);
      delete p;
      return nullptr;
    }
    return p;
  }
  void give(Pinned* p) {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(p);
    // Keep the pool small: the oldest blocks beyond 64 go back to the system.
    while (free_.size() > 64) {
      Pinned* old = free_.front();
      free_.erase(free_.begin());
      cudaEventSynchronize(old->done);
      cudaEventDestroy(old->done);
      cudaFreeHost(old->data);
      delete old;
    }
  }

 private:
  std::mutex mu_;
  std::vector<Pinned*> free_;
};

PinnedPool& pinned_pool() {
  static PinnedPool* p = new PinnedPool();
  return *p;
}

// Host memory for one transfer, and after it a word that a download fills with the device's failure flag.
constexpr size_t kFlagSlot = 16;
size_t flag_offset(size_t bytes) { return (bytes + 15) & ~size_t(15); }

class PinnedBuffer final : public device::HostBuffer {
 public:
  PinnedBuffer(Pinned* p, size_t bytes) : p_(p), bytes_(bytes) {}
  ~PinnedBuffer() override { pinned_pool().give(p_); }
  void* data() override { return p_->data; }
  size_t bytes() const override { return bytes_; }
  Pinned& pinned() { return *p_; }
  int* flag() { return reinterpret_cast<int*>(static_cast<char*>(p_->data) + flag_offset(bytes_)); }

 private:
  Pinned* p_;
  size_t bytes_;
};

Status g_init;
std::once_flag g_init_once;
cudaDeviceProp g_props{};
int g_device = 0;

void init_once() {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e == cudaErrorInsufficientDriver) {
    g_init = Status::Cuda("no NVIDIA driver (or one too old for this build's CUDA " +
                          std::to_string(CUDART_VERSION / 1000) + "." + std::to_string(CUDART_VERSION % 1000 / 10) + " runtime)");
    return;
  }
  if (e == cudaErrorNoDevice || (e == cudaSuccess && count == 0)) {
    g_init = Status::Cuda("no CUDA device");
    return;
  }
  if (e != cudaSuccess) {
    g_init = cuda_status("CUDA unavailable", e);
    return;
  }
  g_device = 0;  // the first device (the queue's and libuv's threads use the runtime's default device)
  if ((e = cudaSetDevice(g_device)) != cudaSuccess || (e = cudaGetDeviceProperties(&g_props, g_device)) != cudaSuccess) {
    g_init = cuda_status("CUDA unavailable", e);
    return;
  }
  if (g_props.major < 8) {
    g_init = Status::Cuda(std::string(g_props.name) + " has compute capability " + std::to_string(g_props.major) +
                          "." + std::to_string(g_props.minor) + "; this build carries code for 8.0 and newer");
    return;
  }
  if ((e = cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking)) != cudaSuccess) {
    g_init = cuda_status("CUDA unavailable", e);
    return;
  }
  g_init = cuda::start(g_stream);
}

// The first failure of the stream's work: an error of the CUDA runtime, or bad data a kernel found.
Status device_errors(const char* what, cudaError_t e) {
  if (e != cudaSuccess) return cuda_status(what, e);
  return cuda::take_failure();
}

}  // namespace

std::shared_ptr<Storage> Storage::create(DType dtype, size_t size, bool /* zero: the addon queues it */) {
  if (!device::init().ok()) return nullptr;
  void* p = nullptr;
  const size_t bytes = size * 4;
  const size_t block = bytes ? block_size(bytes) : 0;
  if (block) {
    p = allocator().take(block);
    if (!p) return nullptr;
  }
  Storage* s = new (std::nothrow) Storage(dtype, size, p, p);
  if (!s) {
    if (p) allocator().give(p, block);
    return nullptr;
  }
  memory_stats().storages++;
  memory_stats().bytes += static_cast<int64_t>(bytes);
  g_in_use += static_cast<int64_t>(block);
  return std::shared_ptr<Storage>(s);
}

Storage::~Storage() {
  memory_stats().storages--;
  memory_stats().bytes -= static_cast<int64_t>(size_ * 4);
  if (base_) {
    const size_t block = block_size(size_ * 4);
    g_in_use -= static_cast<int64_t>(block);
    allocator().give(base_, block);
  }
}

namespace device {

const bool kHostStorage = false;

Status init() {
  std::call_once(g_init_once, init_once);
  return g_init;
}

std::shared_ptr<HostBuffer> host_buffer(size_t bytes) {
  if (!init().ok()) return nullptr;
  Pinned* p = pinned_pool().take(flag_offset(bytes) + kFlagSlot);
  if (!p) return nullptr;
  return std::make_shared<PinnedBuffer>(p, bytes);
}

Status upload(Storage& dst, HostBuffer& src, size_t at) {
  auto& pinned = static_cast<PinnedBuffer&>(src).pinned();
  if (!dst.bytes()) return Status::Ok();
  cudaError_t e = cudaMemcpyAsync(dst.raw(), static_cast<char*>(pinned.data) + at, dst.bytes(), cudaMemcpyHostToDevice, g_stream);
  if (e == cudaSuccess) e = cudaEventRecord(pinned.done, g_stream);
  return cuda_status("upload", e);
}

Status download(HostBuffer& dst, Storage& src, size_t at) {
  auto& buffer = static_cast<PinnedBuffer&>(dst);
  auto& pinned = buffer.pinned();
  cudaError_t e = cudaSuccess;
  if (src.bytes()) e = cudaMemcpyAsync(static_cast<char*>(pinned.data) + at, src.raw(), src.bytes(), cudaMemcpyDeviceToHost, g_stream);
  // the failure flag as it stands after the work queued before this read (not after later work)
  if (e == cudaSuccess) e = cudaMemcpyAsync(buffer.flag(), cuda::failure_flag(), sizeof(int), cudaMemcpyDeviceToHost, g_stream);
  if (e == cudaSuccess) e = cudaEventRecord(pinned.done, g_stream);
  return cuda_status("download", e);
}

Status zero(Storage& s) {
  if (!s.bytes()) return Status::Ok();
  return cuda_status("alloc", cudaMemsetAsync(s.raw(), 0, s.bytes(), g_stream));
}

Status fence() { return device_errors("synchronize", cudaStreamSynchronize(g_stream)); }

Status finish(HostBuffer& dst) {
  auto& buffer = static_cast<PinnedBuffer&>(dst);
  cudaError_t e = cudaEventSynchronize(buffer.pinned().done);
  if (e != cudaSuccess) return cuda_status("read", e);
  return *buffer.flag() ? cuda::take_failure() : Status::Ok();
}

Status set_matmul_tf32(bool on) {
  cuda::set_tf32(on && g_props.major >= 8);
  return Status::Ok();
}

Memory memory() { return {g_in_use.load(), g_cached.load()}; }

std::vector<Fact> describe() {
  size_t free_bytes = 0, total_bytes = 0;
  cudaMemGetInfo(&free_bytes, &total_bytes);
  int driver = 0;
  cudaDriverGetVersion(&driver);
  auto version = [](int v) { return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10); };
  return {
      {Fact::Text, "device", g_props.name},
      {Fact::Number, "deviceIndex", "", static_cast<double>(g_device)},
      {Fact::Text, "computeCapability", std::to_string(g_props.major) + "." + std::to_string(g_props.minor)},
      {Fact::Number, "multiprocessors", "", static_cast<double>(g_props.multiProcessorCount)},
      {Fact::Number, "memoryBytes", "", static_cast<double>(total_bytes)},
      {Fact::Number, "memoryFreeBytes", "", static_cast<double>(free_bytes)},
      {Fact::Text, "driver", version(driver)},
      {Fact::Text, "runtime", version(CUDART_VERSION)},
  };
}

}  // namespace device

namespace cuda {
void* main_stream() { return g_stream; }
}  // namespace cuda

}  // namespace rg
