// The CPU addon's storage is host memory (storage.cc): transfers are memcpy, nothing is asynchronous.
#include "../core/device.h"

#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include "simd.h"
#include "../core/thread_pool.h"

namespace rg::device {

const bool kHostStorage = true;

namespace {
// Host buffers of 64 KiB and more are kept for the next buffer of the same size, up to kCachedMax bytes in all: a
// fresh large allocation is mapped anew and page-faulted on first touch (in a VM that costs more than the copy itself),
// and the same sizes come back every step (a bucket of gradients handed to MPI, the reads of one tensor).
constexpr size_t kCachedFrom = size_t{64} << 10;
constexpr size_t kCachedMax = size_t{128} << 20;

class BufferCache {
 public:
  std::unique_ptr<char[]> take(size_t bytes) {
    if (bytes >= kCachedFrom) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.empty()) {
        std::unique_ptr<char[]> p = std::move(it->second.back());
        it->second.pop_back();
        cached_ -= bytes;
        return p;
      }
    }
    return std::unique_ptr<char[]>(new (std::nothrow) char[bytes ? bytes : 1]);
  }
  void give(std::unique_ptr<char[]> p, size_t bytes) {
    if (!p || bytes < kCachedFrom) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (cached_ + bytes > kCachedMax) return;  // freed
    free_[bytes].push_back(std::move(p));
    cached_ += bytes;
  }

 private:
  std::mutex mu_;
  std::unordered_map<size_t, std::vector<std::unique_ptr<char[]>>> free_;
  size_t cached_ = 0;
};

BufferCache& buffer_cache() {
  static BufferCache* cache = new BufferCache;  // never destroyed: buffers may be given back during exit
  return *cache;
}

class PlainBuffer final : public HostBuffer {
 public:
  explicit PlainBuffer(size_t bytes) : bytes_(bytes), data_(buffer_cache().take(bytes)) {}
  ~PlainBuffer() override { buffer_cache().give(std::move(data_), bytes_); }
  void* data() override { return data_.get(); }
  size_t bytes() const override { return bytes_; }
  bool ok() const { return data_ != nullptr; }

 private:
  size_t bytes_;
  std::unique_ptr<char[]> data_;
};
}  // namespace

std::shared_ptr<HostBuffer> host_buffer(size_t bytes) {
  auto b = std::make_shared<PlainBuffer>(bytes);
  return b->ok() ? b : nullptr;
}

Status init() { return Status::Ok(); }

Status upload(Storage& dst, HostBuffer& src, size_t at) {
  if (dst.bytes()) std::memcpy(dst.raw(), static_cast<char*>(src.data()) + at, dst.bytes());
  return Status::Ok();
}
Status download(HostBuffer& dst, Storage& src, size_t at) {
  if (src.bytes()) std::memcpy(static_cast<char*>(dst.data()) + at, src.raw(), src.bytes());
  return Status::Ok();
}
Status zero(Storage& s) {
  if (s.bytes()) std::memset(s.raw(), 0, s.bytes());
  return Status::Ok();
}
Status fence() { return Status::Ok(); }
Status finish(HostBuffer&) { return Status::Ok(); }
Status set_matmul_tf32(bool) { return Status::Ok(); }

std::string device_collectives_unavailable() { return "the CPU's collectives go through MPI"; }
Status device_collectives_id(std::string*) { return Status::Invalid(device_collectives_unavailable()); }
Status device_collectives_init(const std::string&, int, int) { return Status::Invalid(device_collectives_unavailable()); }
Status device_all_reduce_start(const std::vector<StoragePtr>&, bool, std::shared_ptr<void>*) {
  return Status::Invalid(device_collectives_unavailable());
}
Status device_all_reduce_wait(const std::shared_ptr<void>&) { return Status::Invalid(device_collectives_unavailable()); }

Memory memory() { return {}; }

std::vector<Fact> describe() {
  std::string feats;
  auto add = [&](bool has, const char* name) {
    if (has) feats += (feats.empty() ? "" : ",") + std::string(name);
  };
#if RG_X86
  const cpu::X86Features& f = cpu::x86_features();
  add(f.sse42, "sse4.2");
  add(f.avx2, "avx2");
  add(f.fma, "fma");
  add(f.avx512f, "avx512f");
  add(f.avx512bf16, "avx512bf16");
#elif defined(__aarch64__)
  add(true, "neon");  // Advanced SIMD is part of every AArch64 CPU
#endif
  return {{Fact::Text, "isa", cpu::isa_name()},
          {Fact::Number, "physicalCores", "", static_cast<double>(physical_core_count())},
          {Fact::List, "features", feats},
          // how rg.autocast('bfloat16') runs matrix products here: bfloat16 pairs (vdpbf16ps), or float32
          {Fact::Text, "bf16Products", cpu::has_avx512_bf16() ? "avx512bf16" : "float32"}};
}

}  // namespace rg::device
