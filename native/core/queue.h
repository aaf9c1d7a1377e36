// CommandQueue: the execution model of the native backends (DESIGN.md, "Execution model"). A kernel call
// from JavaScript records one command (its storages held by shared_ptr, its sizes and scalars by value)
// and returns; one native thread runs the commands in order, using the thread pool for the data-parallel
// work. Reading a value waits for the commands enqueued before it.
//
// A command that fails records its Status; the kernels after it are skipped (so a failed step cannot go on
// to update weights with garbage) until a synchronisation takes the error and reports it. Data movement
// (uploads, zero-fills, downloads, settings) always runs, so a tensor created after a failure holds its data on
// every backend; a read takes only an error of a command queued before it.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "status.h"
#include "thread_pool.h"

namespace rg {

class CommandQueue {
 public:
  using Command = std::function<Status(ThreadPool&)>;

  explicit CommandQueue(int threads);
  ~CommandQueue();  // runs what is queued, then stops the thread
  CommandQueue(const CommandQueue&) = delete;
  CommandQueue& operator=(const CommandQueue&) = delete;

  // Queues a command; returns its sequence number (1, 2, ...). `always`: it runs even after a failure.
  uint64_t enqueue(Command command, bool always = false);
  // Sequence number of the last command enqueued (0 when none).
  uint64_t last() const;
  // Blocks until every command with a sequence number <= seq has run (or been skipped).
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

  int threads() const { return pool_.size(); }
  // The most commands waiting to run before enqueue waits for half of them (see enqueue).
  static constexpr size_t kMaxPending = 1024;
  // Empty, or why the queue or its pool could not start every thread it wanted (it runs with what it got).
  std::string start_error() const { return start_error_.empty() ? pool_.start_error() : start_error_; }

 private:
  void run();
  void execute(Command& command, bool always, uint64_t seq);

  ThreadPool pool_;
  mutable std::mutex mu_;
  std::condition_variable has_work_;
  std::condition_variable progressed_;
  struct Entry {
    Command command;
    bool always;
  };
  std::deque<Entry> commands_;
  uint64_t enqueued_ = 0;
  uint64_t popped_ = 0;  // commands taken by the queue's thread (their sequence numbers)
  Status error_;
  uint64_t error_seq_ = 0;  // sequence number of the command that failed
  std::atomic<uint64_t> skip_until_{0};  // commands up to this one are skipped (queued before a failure was reported)
  std::atomic<bool> failed_{false};  // error_ holds a failure (read without the lock by the queue's thread)
  std::atomic<int> waiting_{0};  // readers blocked in wait_for
  std::set<uint64_t> pending_reads_;  // asynchronous reads queued and not yet delivered
  bool stop_ = false;
  // commands_.size(), and the sequence number of the last command run, readable without the lock.
  std::atomic<size_t> pending_{0};
  std::atomic<uint64_t> completed_atomic_{0};
  std::atomic<bool> stopping_{false};
  std::string start_error_;
  std::thread thread_;
};

}  // namespace rg
