// What differs between the CPU addon and the CUDA addon besides the kernels: where a storage's bytes live and
// how they cross to and from the host. addon.cc programs against this; native/cpu/device.cc implements it for
// host memory, native/cuda/device.cc for a CUDA device (one stream, a caching allocator, pinned staging).
//
// Ordering: upload, download, zero and fence run on the command queue's thread, in command order; finish runs
// on the thread that waits for a download. Nothing here throws.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "status.h"
#include "storage.h"

namespace rg::device {

// true when storages are host memory that the JavaScript thread may copy into directly.
extern const bool kHostStorage;

// Host memory for one transfer: pinned on CUDA (so that copies run asynchronously), plain on the CPU.
class HostBuffer {
 public:
  virtual ~HostBuffer() = default;
  virtual void* data() = 0;
  virtual size_t bytes() const = 0;
};
// nullptr when the memory cannot be had.
std::shared_ptr<HostBuffer> host_buffer(size_t bytes);

// Ok when the device can be used, else why not (the addon loads either way and reports it).
Status init();

// dst ← src, dst.bytes() bytes from byte `at` of src
Status upload(Storage& dst, HostBuffer& src, size_t at = 0);
// starts dst ← src, into dst from byte `at`
Status download(HostBuffer& dst, Storage& src, size_t at = 0);
Status zero(Storage& s);
Status fence();                   // returns once the device has done everything issued; reports its errors
Status finish(HostBuffer& dst);   // returns once download's copy has landed; reports device errors
Status set_matmul_tf32(bool on);  // on the queue thread, so that it applies from its place in the order

// ---- collectives on the device itself, between processes (NCCL on CUDA, loaded at run time; none on the CPU) ----
// "" once a communicator is up (device_collectives_init), else why not.
std::string device_collectives_unavailable();
// A new communicator's id (made on one rank, sent to the others; opaque bytes).
Status device_collectives_id(std::string* id);
// Joins communicator `id` as `rank` of `size`; returns once every rank has joined (queue thread).
Status device_collectives_init(const std::string& id, int rank, int size);
// Queue thread: starts the in-place all-reduce (sum, or mean) of the float storages over the ranks, after the work
// issued so far, on the collectives' own stream (work issued later runs alongside); `ticket` is what the wait needs.
Status device_all_reduce_start(const std::vector<StoragePtr>& storages, bool mean, std::shared_ptr<void>* ticket);
// Queue thread: the work issued after this waits for the all-reduce of `ticket`.
Status device_all_reduce_wait(const std::shared_ptr<void>& ticket);

struct Memory {
  int64_t in_use = 0;  // bytes of live storages on the device (0 on the CPU)
  int64_t cached = 0;  // bytes the allocator holds for reuse
};
Memory memory();

// Facts for backends(): a number, a text or a list (comma-separated text) under each name.
struct Fact {
  enum Kind { Number, Text, List } kind;
  std::string key;
  std::string text;
  double number = 0;
};
std::vector<Fact> describe();

}  // namespace rg::device
