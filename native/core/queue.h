// CommandQueue: the execution model of the native backends (DESIGN.md, "Execution model"). A kernel call
// from JavaScript records one command (its storages held by shared_ptr, its sizes and scalars by value)
// and returns; one native thread runs the commands in order, using the thread pool for the data-parallel
// work. Reading a value waits for the commands enqueued before it.
//
// The commands live in a ring of slots made once (a single producer, the JavaScript thread, and a single consumer,
// the queue's thread): queuing a kernel allocates nothing. With a heap-allocated command per call, the JavaScript
// thread's mallocs and the queue thread's frees contended for the allocator's lock, and a small kernel call cost
// 2.9 µs, most of it in that lock's system calls.
//
// A command that fails records its Status; the kernels after it are skipped (so a failed step cannot go on
// to update weights with garbage) until a synchronisation takes the error and reports it. Data movement
// (uploads, zero-fills, downloads, settings) always runs, so a tensor created after a failure holds its data on
// every backend; a read takes only an error of a command queued before it.
#pragma once
#include <atomic>
#include <condition_variable>
#include <deque>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "status.h"
#include "storage.h"
#include "thread_pool.h"

namespace rg {

// Storages that JavaScript let go of while commands queued before may still use them: a command holds a plain
// pointer to each of its buffers (no reference count: incrementing one that the queue's thread had just decremented
// cost most of a small kernel call), so a released storage waits here until the queue has run past its release.
// Used on the JavaScript thread only; shared with every storage wrapper, as the queue may be gone before they are.
struct Retired {
  std::deque<std::pair<uint64_t, StoragePtr>> waiting;
  size_t bytes = 0;  // held by `waiting`
  const std::atomic<uint64_t>* head = nullptr;  // the queue's progress; null once the queue is gone
  const std::atomic<uint64_t>* tail = nullptr;
  void retire(StoragePtr s) {
    if (!head || head->load(std::memory_order_acquire) >= tail->load(std::memory_order_relaxed)) return;  // nothing can use it
    bytes += s->bytes();
    waiting.emplace_back(tail->load(std::memory_order_relaxed), std::move(s));
  }
  void sweep() {
    if (waiting.empty()) return;
    const uint64_t done = head ? head->load(std::memory_order_acquire) : UINT64_MAX;
    while (!waiting.empty() && waiting.front().first <= done) {
      bytes -= waiting.front().second->bytes();
      waiting.pop_front();
    }
  }
  void clear() {
    waiting.clear();
    bytes = 0;
  }
};

// One queued command: a kernel with its arguments (buffers, then scalars in the kernel contract's order), or a task
// (data movement, settings) when `kernel` is null.
struct Command {
  static constexpr int kMaxBuffers = 16;
  static constexpr int kMaxScalars = 24;
  using Kernel = Status (*)(ThreadPool& pool, const Command& c);

  Kernel kernel = nullptr;
  const char* name = nullptr;  // the kernel's, prefixed to its failures
  Storage* buf[kMaxBuffers];  // alive until the command has run (see Retired)
  double s[kMaxScalars];
  int nbuf = 0;
  int ns = 0;
  std::function<Status(ThreadPool&)> task;
  bool always = false;  // runs even after a failure

  float* f32(int i) const { return buf[i] ? buf[i]->f32() : nullptr; }
  int32_t* i32(int i) const { return buf[i] ? buf[i]->i32() : nullptr; }
  void* raw(int i) const { return buf[i] ? buf[i]->raw() : nullptr; }
};

class CommandQueue {
 public:
  using Task = std::function<Status(ThreadPool&)>;

  explicit CommandQueue(int threads);
  ~CommandQueue();  // runs what is queued, then stops the thread
  CommandQueue(const CommandQueue&) = delete;
  CommandQueue& operator=(const CommandQueue&) = delete;

  // Queuing a kernel: begin() returns a cleared slot to fill (waiting while the ring is full), commit() queues it and
  // returns its sequence number (1, 2, ...), abandon() gives it back unqueued (an argument was refused).
  Command& begin();
  uint64_t commit();
  void abandon();
  // Queues a task; returns its sequence number. `always`: it runs even after a failure.
  uint64_t enqueue(Task task, bool always = false);
  // Sequence number of the last command enqueued (0 when none).
  uint64_t last() const { return tail_.load(std::memory_order_acquire); }
  // Blocks until every command with a sequence number <= seq has run (or been skipped). Any thread.
  void wait_for(uint64_t seq);
  // Waits for everything queued so far, then returns and clears the first error since the last take.
  Status sync();
  // Returns and clears the recorded error of a command with a sequence number <= seq, without waiting (an
  // error of a later command stays for a later read). Call it on the thread that enqueues (JavaScript's): every
  // command queued before the error is taken is skipped, as it was queued without knowing of the failure.
  Status take_error(uint64_t seq = UINT64_MAX);
  // Asynchronous reads resolve in any order (libuv's pool), but a failure belongs to the first read queued after
  // it: a read registers its sequence number when queued, and take_read_error(seq) hands it the error only when no
  // earlier read that could claim it is still to be delivered; it also unregisters the read.
  void register_read(uint64_t seq);
  Status take_read_error(uint64_t seq);

  // Where a storage goes when JavaScript lets go of it.
  const std::shared_ptr<Retired>& retired() const { return retired_; }
  // Called before a storage is made (JavaScript's thread): while storages that JavaScript has let go of but queued
  // commands still use hold more than kRetiredBudget bytes, waits for the queue to run past the oldest of them, so
  // that they come back to the storage cache instead of fresh memory being touched. A loop written op by op that
  // never reads a value runs ahead of the kernels by as many steps as the ring holds: W3's training step by hand
  // (its tensors freed by the garbage collector, each step's 60 MB of activations and gradients still queued) kept
  // 1.8 GB alive and faulted in fresh pages for every step (6.2 s per epoch against 3.5 s through fit).
  void throttle();
  static constexpr size_t kRetiredBudget = size_t{256} << 20;

  int threads() const { return pool_.size(); }
  // The ring's slots: a caller that queues faster than the kernels run (a model written op by op, with tensors made
  // per operation) waits for half of them to run rather than keep every queued command's output alive at once, each
  // in freshly faulted memory, instead of reusing the storage cache's warm blocks (measured: a 16 K-float ReLU per
  // call 140 µs against 8 µs). A training step of fit queues far fewer commands than this.
  static constexpr uint64_t kSlots = 1024;
  // Empty, or why the queue or its pool could not start every thread it wanted (it runs with what it got).
  std::string start_error() const { return start_error_.empty() ? pool_.start_error() : start_error_; }

 private:
  void run();
  void execute(Command& c, uint64_t seq);

  ThreadPool pool_;
  std::unique_ptr<Command[]> ring_;
  std::shared_ptr<Retired> retired_;
  bool begun_ = false;  // begin() handed out the slot after the tail (the JavaScript thread's; not yet committed)
  // tail_: commands committed (the last sequence number); head_: commands run or skipped. Slot of seq: (seq - 1) % kSlots.
  // (each on its own cache line: the two threads write them, and sharing one line cost every command a transfer of it)
  alignas(64) std::atomic<uint64_t> tail_{0};
  alignas(64) std::atomic<uint64_t> head_{0};
  alignas(64) std::atomic<bool> asleep_{false};

  mutable std::mutex mu_;
  std::condition_variable has_work_;    // the queue's thread sleeps on it (asleep_ set)
  std::condition_variable progressed_;  // readers and a producer waiting for a free slot sleep on it (waiting_ > 0)
  std::atomic<int> waiting_{0};
  std::atomic<uint64_t> wake_at_{UINT64_MAX};  // the smallest sequence number a waiter waits for (set under mu_)
  std::atomic<bool> stopping_{false};

  Status error_;
  uint64_t error_seq_ = 0;  // sequence number of the command that failed
  std::atomic<uint64_t> skip_until_{0};  // commands up to this one are skipped (queued before a failure was reported)
  std::atomic<bool> failed_{false};  // error_ holds a failure (read without the lock by the queue's thread)
  std::set<uint64_t> pending_reads_;  // asynchronous reads queued and not yet delivered
  std::string start_error_;
  std::thread thread_;
};

}  // namespace rg
