#include "queue.h"

#include <exception>
#include <utility>

#include "spin.h"

namespace rg {

namespace {

// Leaves a slot as begin() hands it out: no storages held, no task.
void clear(Command& c) {
  if (c.task) c.task = nullptr;
  c.kernel = nullptr;
  c.name = nullptr;
  c.nbuf = 0;
  c.ns = 0;
  c.always = false;
}

}  // namespace

CommandQueue::CommandQueue(int threads) : pool_(threads), ring_(new Command[kSlots]), retired_(std::make_shared<Retired>()) {
  retired_->head = &head_;
  retired_->tail = &tail_;
  try {
    thread_ = std::thread([this] { run(); });
  } catch (const std::exception& e) {
    // No thread to be had (a tight `ulimit -v` or process limit): commands then run at commit, in order, on the
    // caller's thread. Slower, still correct; start_error() says why.
    start_error_ = std::string("the command queue runs on the calling thread: no thread could be created (") + e.what() + ")";
  }
  pool_.start();  // after the queue's own thread, which matters more than any one worker
}

CommandQueue::~CommandQueue() {
  stopping_.store(true);
  {
    std::lock_guard<std::mutex> lock(mu_);
  }
  has_work_.notify_all();
  if (thread_.joinable()) thread_.join();
  // everything has run: the storages waiting on it go, and those released from now on go at once
  retired_->head = nullptr;
  retired_->clear();
}

Command& CommandQueue::begin() {
  const uint64_t seq = tail_.load(std::memory_order_relaxed) + 1;
  // The slot is free once the command kSlots before it has run; a full ring waits for half of it.
  if (seq > kSlots && head_.load(std::memory_order_acquire) < seq - kSlots) wait_for(seq - kSlots / 2);
  retired_->sweep();
  Command& c = ring_[(seq - 1) % kSlots];  // cleared when its last command ran, or by abandon()
  if (begun_) clear(c);  // begun again without a commit or an abandon: it starts over
  begun_ = true;
  return c;
}

void CommandQueue::abandon() {
  if (!begun_) return;  // begin() did not return a slot: the one after the tail may still hold a queued command
  begun_ = false;
  clear(ring_[tail_.load(std::memory_order_relaxed) % kSlots]);
}

uint64_t CommandQueue::commit() {
  const uint64_t seq = tail_.load(std::memory_order_relaxed) + 1;
  begun_ = false;
  tail_.store(seq);  // seq_cst, paired with run()'s asleep_
  if (!thread_.joinable()) {
    execute(ring_[(seq - 1) % kSlots], seq);
  } else if (asleep_.load()) {
    { std::lock_guard<std::mutex> lock(mu_); }
    has_work_.notify_one();
  }
  return seq;
}

uint64_t CommandQueue::enqueue(Task task, bool always) {
  Command& c = begin();
  c.task = std::move(task);
  c.always = always;
  return commit();
}

void CommandQueue::wait_for(uint64_t seq) {
  // Small inference work completes in microseconds: spin (pause instructions) before sleeping.
  // Not while the pool runs a kernel on every thread: the spinner would take a core from that kernel
  // (measured: 256³ products at 110 GFLOP/s with the reader spinning, 160 without).
  spin_until([&] { return head_.load(std::memory_order_acquire) >= seq || pool_.busy(); });
  std::unique_lock<std::mutex> lock(mu_);
  waiting_.fetch_add(1);
  for (;;) {
    // the earliest command anyone waits for, published before head_ is read (seq_cst, paired with execute()'s store
    // of head_ and load of wake_at_): execute() sees it, or this sees head_ past it
    uint64_t w = wake_at_.load();
    while (seq < w && !wake_at_.compare_exchange_weak(w, seq)) {}
    if (head_.load() >= seq) break;
    progressed_.wait(lock);  // woken with every waiter, each registers again
  }
  waiting_.fetch_sub(1);
}

void CommandQueue::throttle() {
  Retired& r = *retired_;
  r.sweep();
  while (r.bytes > kRetiredBudget && !r.waiting.empty()) {
    wait_for(r.waiting.front().first);
    r.sweep();
  }
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
  skip_until_ = tail_.load();
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
    const uint64_t next = head_.load(std::memory_order_relaxed) + 1;
    // The kernels of one forward pass arrive a few microseconds apart: spin before sleeping.
    spin_until([&] { return tail_.load(std::memory_order_acquire) >= next || stopping_.load(); });
    if (tail_.load(std::memory_order_acquire) < next) {
      std::unique_lock<std::mutex> lock(mu_);
      asleep_.store(true);  // seq_cst: commit() sees it, or the predicate sees commit()'s tail_
      has_work_.wait(lock, [&] { return tail_.load() >= next || stopping_.load(); });
      asleep_.store(false);
      if (tail_.load() < next) return;  // stopping, and everything has run
    }
    execute(ring_[(next - 1) % kSlots], next);
  }
}

// The lock is taken only to record a failure or to wake a waiting reader.
void CommandQueue::execute(Command& c, uint64_t seq) {
  const bool skip = (failed_.load() || seq <= skip_until_.load()) && !c.always;
  Status s;
  if (!skip) {
    try {
      s = c.kernel ? c.kernel(pool_, c) : c.task(pool_);
    } catch (const std::bad_alloc&) {
      s = Status::OutOfMemory("out of host memory while running a queued kernel");
    } catch (const std::exception& e) {
      s = {Code::Internal, e.what()};
    }
    // a kernel's failure names the kernel, unless its message already names where it comes from
    if (!s.ok() && c.name && s.message.rfind(c.name, 0) != 0 && s.message.find(':') == std::string::npos)
      s.message = std::string(c.name) + ": " + s.message;
  }
  clear(c);  // release the storages it holds before reporting progress
  if (!s.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    if (error_.ok()) {
      error_ = std::move(s);
      error_seq_ = seq;
      failed_.store(true);
    }
  }
  head_.store(seq);  // seq_cst, paired with wait_for's wake_at_
  // Wakes the waiters only once the earliest of them can go on: a producer waiting for half of a full ring to drain
  // was woken by every command before (a futex call each, 5–8 µs of kernel time per 64³ product on this VM).
  if (waiting_.load() > 0 && seq >= wake_at_.load()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      wake_at_.store(UINT64_MAX);
    }
    progressed_.notify_all();
  }
}

}  // namespace rg
