#include "storage.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace rg {

MemoryStats& memory_stats() {
  static MemoryStats stats;
  return stats;
}

std::shared_ptr<Storage> Storage::create(DType dtype, size_t size) {
  // calloc rather than aligned_alloc + memset: large blocks come from fresh zero pages that are only
  // touched when used. 64 bytes of slack give the alignment.
  size_t bytes = size * 4 + 64;
  void* base = std::calloc(1, bytes);
  if (!base) return nullptr;
  void* data = reinterpret_cast<void*>((reinterpret_cast<uintptr_t>(base) + 63) & ~uintptr_t(63));
  Storage* s = new (std::nothrow) Storage(dtype, size, base, data);
  if (!s) {
    std::free(base);
    return nullptr;
  }
  memory_stats().storages++;
  memory_stats().bytes += static_cast<int64_t>(size * 4);
  return std::shared_ptr<Storage>(s);
}

Storage::~Storage() {
  memory_stats().storages--;
  memory_stats().bytes -= static_cast<int64_t>(size_ * 4);
  std::free(base_);
}

}  // namespace rg
