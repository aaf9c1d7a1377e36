// Storage: one native buffer of 4-byte elements (float32 or int32), 64-byte aligned so that every SIMD
// load of a row start is aligned when the row length is a multiple of 16. Owned through shared_ptr: the
// JavaScript wrapper holds one reference and every queued command holds one more, so a tensor disposed
// while its kernels are still queued stays alive until they have run.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace rg {

enum class DType : uint8_t { F32 = 0, I32 = 1 };

struct MemoryStats {
  std::atomic<int64_t> storages{0};
  std::atomic<int64_t> bytes{0};
  std::atomic<int64_t> cached{0};  // host bytes the storage cache holds for reuse
};
MemoryStats& memory_stats();

class Storage {
 public:
  // Returns nullptr when the allocation fails (the caller reports OUT_OF_MEMORY). `zero`: host storage is
  // zero-filled (a device storage is zeroed by a queued command, see the addon's alloc); without it the contents are
  // whatever the allocator's cache held, for outputs a kernel overwrites.
  static std::shared_ptr<Storage> create(DType dtype, size_t size, bool zero = true);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  DType dtype() const { return dtype_; }
  size_t size() const { return size_; }
  size_t bytes() const { return size_ * 4; }
  float* f32() { return static_cast<float*>(data_); }
  int32_t* i32() { return static_cast<int32_t*>(data_); }
  void* raw() { return data_; }

 private:
  Storage(DType dtype, size_t size, void* base, void* data) : dtype_(dtype), size_(size), base_(base), data_(data) {}
  DType dtype_;
  size_t size_;
  void* base_;  // the block from the host storage cache (storage.cc), 64-byte aligned
  void* data_;  // the elements: base_ on the host
};

using StoragePtr = std::shared_ptr<Storage>;

}  // namespace rg
