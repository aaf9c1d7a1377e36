// The CPU addon's storage is host memory (storage.cc): transfers are memcpy, nothing is asynchronous.
#include "../core/device.h"

#include <cstring>
#include <new>

#include "simd.h"
#include "../core/thread_pool.h"

namespace rg::device {

const bool kHostStorage = true;

namespace {
class PlainBuffer final : public HostBuffer {
 public:
  explicit PlainBuffer(size_t bytes) : bytes_(bytes), data_(new (std::nothrow) char[bytes ? bytes : 1]) {}
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

Status upload(Storage& dst, HostBuffer& src) {
  if (dst.bytes()) std::memcpy(dst.raw(), src.data(), dst.bytes());
  return Status::Ok();
}
Status download(HostBuffer& dst, Storage& src) {
  if (src.bytes()) std::memcpy(dst.data(), src.raw(), src.bytes());
  return Status::Ok();
}
Status zero(Storage& s) {
  if (s.bytes()) std::memset(s.raw(), 0, s.bytes());
  return Status::Ok();
}
Status fence() { return Status::Ok(); }
Status finish(HostBuffer&) { return Status::Ok(); }
Status set_matmul_tf32(bool) { return Status::Ok(); }

Memory memory() { return {}; }

std::vector<Fact> describe() {
  std::string feats;
  auto add = [&](bool has, const char* name) {
    if (has) feats += (feats.empty() ? "" : ",") + std::string(name);
  };
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  add(__builtin_cpu_supports("sse4.2"), "sse4.2");
  add(__builtin_cpu_supports("avx2"), "avx2");
  add(__builtin_cpu_supports("fma"), "fma");
  add(__builtin_cpu_supports("avx512f"), "avx512f");
  add(__builtin_cpu_supports("avx512bf16"), "avx512bf16");
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
