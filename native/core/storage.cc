#include "storage.h"

#if defined(_WIN32)
#include <windows.h>
#else
#include <sys/mman.h>
#endif

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace rg {

MemoryStats& memory_stats() {
  static MemoryStats stats;
  return stats;
}

namespace {

// Host memory for storages. Two costs matter on the machines retrograd runs on: fresh memory is slow to touch the
// first time (a page fault per 4 KB: 64 MB took 176 ms on the 2-core build VM, 28 ms as 2 MB huge pages), and code
// that makes a tensor per operation (models written op by op) asks for the same sizes at every step. So:
// - blocks come in size classes (multiples of 64 bytes up to 4 KB, then eight classes per power of two: at most
//   12.5% unused), and a freed block waits in its class's free list to be handed out again, warm;
// - blocks up to kSlabMax are carved from 32 MB chunks mapped with MADV_HUGEPAGE; larger ones get their own huge-page
//   mapping. Memory from chunks stays in the cache; a large block is unmapped when the cache holds more than
//   kCapacity.
// Shared by every Node environment of the process (worker threads), under one mutex; never destroyed (storages may
// be freed by any thread until the very end of the process).
constexpr size_t kHuge = size_t{2} << 20;
constexpr size_t kChunk = size_t{32} << 20;
constexpr size_t kSlabMax = size_t{4} << 20;
constexpr size_t kCapacity = size_t{1} << 30;

size_t block_bytes(size_t size) {
  const size_t n = std::max<size_t>(size * 4, 64);
  if (n <= 4096) return (n + 63) & ~size_t(63);
  const size_t step = size_t{1} << (63 - __builtin_clzll(n) - 3);
  return (n + step - 1) / step * step;
}

// Fresh zeroed pages from the system (Windows: VirtualAlloc; elsewhere mmap, with huge pages advised where Linux has them).
void* map_huge(size_t bytes) {
#if defined(_WIN32)
  return VirtualAlloc(nullptr, bytes, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
#else
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
#ifdef MADV_HUGEPAGE
  if (bytes >= kHuge) madvise(p, bytes, MADV_HUGEPAGE);  // advice only: without it the memory still works
#endif
  return p;
#endif
}

// Gives back a mapping that map_huge made (all of it).
void unmap(void* p, size_t bytes) {
#if defined(_WIN32)
  (void)bytes;
  VirtualFree(p, 0, MEM_RELEASE);
#else
  munmap(p, bytes);
#endif
}

struct HostCache {
  std::mutex mu;
  std::unordered_map<size_t, std::vector<void*>> free;
  char* chunk = nullptr;
  size_t chunk_left = 0;
  size_t cached = 0;  // bytes in the free lists

  // A block of `bytes` (a size class); `fresh` tells whether it is untouched (and so already zero).
  void* take(size_t bytes, bool* fresh) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = free.find(bytes);
    if (it != free.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      cached -= bytes;
      memory_stats().cached = static_cast<int64_t>(cached);
      *fresh = false;
      return p;
    }
    *fresh = true;
    if (bytes > kSlabMax) return map_huge(bytes);
    if (chunk_left < bytes) {
      char* c = static_cast<char*>(map_huge(kChunk));
      if (!c) return nullptr;
      chunk = c;
      chunk_left = kChunk;
    }
    void* p = chunk;
    chunk += bytes;
    chunk_left -= bytes;
    return p;
  }

  void give(void* p, size_t bytes) {
    std::lock_guard<std::mutex> lock(mu);
    if (bytes > kSlabMax && cached + bytes > kCapacity) {
      unmap(p, bytes);
      return;
    }
    try {
      free[bytes].push_back(p);
    } catch (...) {
      if (bytes > kSlabMax) unmap(p, bytes);  // a chunk's block is lost to the cache, not to the process
      return;
    }
    cached += bytes;
    memory_stats().cached = static_cast<int64_t>(cached);
  }
};

HostCache& host_cache() {
  static HostCache* cache = new HostCache;
  return *cache;
}

}  // namespace

std::shared_ptr<Storage> Storage::create(DType dtype, size_t size, bool zero) {
  const size_t bytes = block_bytes(size);
  bool fresh = false;
  void* base = host_cache().take(bytes, &fresh);
  if (!base) return nullptr;
  if (zero && !fresh && size) std::memset(base, 0, size * 4);  // fresh mappings are zero already
  Storage* s = new (std::nothrow) Storage(dtype, size, base, base);
  if (!s) {
    host_cache().give(base, bytes);
    return nullptr;
  }
  memory_stats().storages++;
  memory_stats().bytes += static_cast<int64_t>(size * 4);
  return std::shared_ptr<Storage>(s);
}

Storage::~Storage() {
  memory_stats().storages--;
  memory_stats().bytes -= static_cast<int64_t>(size_ * 4);
  host_cache().give(base_, block_bytes(size_));
}

}  // namespace rg
