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
  // Round up to whole cache lines; at least one line so that a zero-size tensor still has a valid pointer.
  size_t bytes = (size * 4 + 63) / 64 * 64;
  if (bytes == 0) bytes = 64;
  void* data = std::aligned_alloc(64, bytes);
  if (!data) return nullptr;
  std::memset(data, 0, bytes);
  Storage* s = new (std::nothrow) Storage(dtype, size, data);
  if (!s) {
    std::free(data);
    return nullptr;
  }
  memory_stats().storages++;
  memory_stats().bytes += static_cast<int64_t>(size * 4);
  return std::shared_ptr<Storage>(s);
}

Storage::~Storage() {
  memory_stats().storages--;
  memory_stats().bytes -= static_cast<int64_t>(size_ * 4);
  std::free(data_);
}

}  // namespace rg
