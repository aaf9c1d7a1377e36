#include "queue.h"

#include "spin.h"

#include <exception>
#include <utility>

namespace rg {


CommandQueue::CommandQueue(int threads) : pool_(threads) {
  try {
    thread_ = std::thread([this] { run(); });
  } catch (const std::exception& e) {
    // No thread to be had (a tight `ulimit -v` or process limit): commands then run at enqueue, in order, on the
    // caller's thread. Slower, still correct; start_error() says why.
    start_error_ = std::string("the command queue runs on the calling thread: no thread could be created (") + e.what() + ")";
  }
  pool_.start();  // after the queue's own thread, which matters more than any one worker
}

CommandQueue::~CommandQueue() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    stopping_.store(true);
  }
  has_work_.notify_all();
  if (thread_.joinable()) thread_.join();
}

uint64_t CommandQueue::enqueue(Command command, bool always) {
  uint64_t seq;
  if (!thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      seq = ++enqueued_;
    }
    execute(command, always, seq);
    return seq;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    commands_.push_back({std::move(command), always});
    seq = ++enqueued_;
    pending_.store(commands_.size(), std::memory_order_release);
  }
  has_work_.notify_one();
  // Back-pressure: a caller that queues faster than the kernels run (a model written op by op, with tensors made
  // per operation) would otherwise keep every queued command's output alive at once, each in freshly faulted
  // memory, instead of reusing the storage cache's warm blocks (measured: a 16 K-float ReLU per call 140 µs against
  // 8 µs). A training step of fit queues far fewer commands than this.
  if (seq > kMaxPending && pending_.load(std::memory_order_acquire) >= kMaxPending) wait_for(seq - kMaxPending / 2);
  return seq;
}

uint64_t CommandQueue::last() const {
  std::lock_guard<std::mutex> lock(mu_);
  return enqueued_;
}

void CommandQueue::wait_for(uint64_t seq) {
  // Small inference work completes in microseconds: spin (yielding) before sleeping.
  // Not while the pool runs a kernel on every thread: the spinner would take a core from that kernel
  // (measured: 256³ products at 110 GFLOP/s with the reader spinning, 160 without).
  spin_until([&] { return completed_atomic_.load(std::memory_order_acquire) >= seq || pool_.busy(); });
  std::unique_lock<std::mutex> lock(mu_);
  waiting_.fetch_add(1);  // seq_cst: seen by execute() before it reads waiting_, or completed_ is seen here
  progressed_.wait(lock, [&] { return completed_atomic_.load() >= seq; });
  waiting_.fetch_sub(1);
}

Status CommandQueue::sync() {
  wait_for(last());
  return take_error();
}

Status CommandQueue::take_error(uint64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  if (error_.ok() || error_seq_ > seq) return Status::Ok();
  Status s = std::move(error_);
  error_ = Status::Ok();
  failed_.store(false);
  // The commands queued so far were queued without knowing of the failure (fit queues the next step before it
  // reads this one's loss): they are skipped too, not only those that had not run when the error was taken.
  skip_until_ = enqueued_;
  return s;
}

void CommandQueue::register_read(uint64_t seq) {
  std::lock_guard<std::mutex> lock(mu_);
  pending_reads_.insert(seq);
}

Status CommandQueue::take_read_error(uint64_t seq) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_reads_.erase(seq);
    if (error_.ok() || error_seq_ > seq) return Status::Ok();
    // an earlier read, queued after the failure, is still to be delivered: the error is that read's
    auto earlier = pending_reads_.lower_bound(error_seq_);
    if (earlier != pending_reads_.end() && *earlier < seq) return Status::Ok();
  }
  return take_error(seq);
}

void CommandQueue::run() {
  for (;;) {
    Command command;
    bool always;
    uint64_t seq;
    // The kernels of one forward pass arrive a few microseconds apart: spin (yielding) before sleeping.
    spin_until([&] { return pending_.load(std::memory_order_acquire) != 0 || stopping_.load(); });
    {
      std::unique_lock<std::mutex> lock(mu_);
      has_work_.wait(lock, [&] { return stop_ || !commands_.empty(); });
      if (commands_.empty()) return;  // stopping, and everything has run
      always = commands_.front().always;
      command = std::move(commands_.front().command);
      commands_.pop_front();
      pending_.store(commands_.size(), std::memory_order_release);
      seq = ++popped_;
    }
    execute(command, always, seq);
  }
}

// The lock is taken only to record a failure or to wake a waiting reader: with one queued command per tensor
// operation, three lock round trips per command contended with the enqueuing thread (measured: a kernel call 3.1 µs).
void CommandQueue::execute(Command& command, bool always, uint64_t seq) {
  const bool skip = (failed_.load() || seq <= skip_until_.load()) && !always;
  Status s;
  if (!skip) {
    try {
      s = command(pool_);
    } catch (const std::bad_alloc&) {
      s = Status::OutOfMemory("out of host memory while running a queued kernel");
    } catch (const std::exception& e) {
      s = {Code::Internal, e.what()};
    }
  }
  command = nullptr;  // release the storages it holds before reporting progress
  if (!s.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    if (error_.ok()) {
      error_ = std::move(s);
      error_seq_ = seq;
      failed_.store(true);
    }
  }
  completed_atomic_.store(seq);  // seq_cst, paired with wait_for's waiting_
  if (waiting_.load() > 0) {
    { std::lock_guard<std::mutex> lock(mu_); }
    progressed_.notify_all();
  }
}

}  // namespace rg
