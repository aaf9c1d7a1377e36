// ThreadPool: a fixed set of worker threads that the command queue's thread uses for data-parallel
// kernels. Work is split statically into contiguous ranges (the same split for the same n, grain and
// thread count), so every reduction that combines per-range partial results does so in a fixed order and
// results are reproducible run to run.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace rg {

class ThreadPool {
 public:
  using RangeFn = std::function<void(int64_t begin, int64_t end)>;

  // Asks for `threads` threads (the caller's included); start() creates the workers.
  explicit ThreadPool(int threads);
  void start();
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return threads_; }
  // Empty, or why the pool has fewer threads than it was asked for.
  const std::string& start_error() const { return start_error_; }
  // true while a parallel_for runs on more than one thread (every core is taken).
  bool busy() const { return busy_.load(std::memory_order_acquire); }

  // true on a thread that is running one of parallel_for's ranges (a nested parallel_for runs serially there).
  static bool inside();

  // Matrix products with bfloat16 operands and float32 sums (rg.autocast('bfloat16')): a setting of the queue this
  // pool serves, changed by a queued task so that it applies from its place in the order, and read by every matrix
  // product where it starts (the products nested in a convolution's parallel region included).
  bool bf16_products() const { return bf16_products_; }
  void set_bf16_products(bool on) { bf16_products_ = on; }

  // Number of ranges parallel_for will use for n items when each range should hold at least `grain`.
  int ranges_for(int64_t n, int64_t grain) const;

  // Calls fn(begin, end) for ranges_for(n, grain) contiguous ranges covering [0, n) and returns when all
  // are done. Called from inside a range, it runs serially on the calling thread.
  void parallel_for(int64_t n, int64_t grain, const RangeFn& fn);

 private:
  void worker_loop(int index);
  // Claims and runs chunks of job `job` until none is left. A claim succeeds only while next_ still
  // carries that job's number in its high 32 bits, so a worker that wakes late never runs a chunk of a
  // later job with an earlier job's function.
  void run_chunks(uint32_t job, const RangeFn* fn, int64_t n, int chunks);

  int requested_;
  int threads_;
  bool bf16_products_ = false;
  std::string start_error_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable done_;
  bool stop_ = false;

  // The current job, written under mu_.
  uint32_t job_ = 0;
  const RangeFn* fn_ = nullptr;
  int64_t n_ = 0;
  int chunks_ = 0;
  std::atomic<uint64_t> next_{0};  // (job << 32) | next unclaimed chunk
  std::atomic<int> remaining_{0};
  std::atomic<uint32_t> published_job_{0};  // job_, readable without the lock by spinning workers
  std::atomic<bool> stopping_{false};
  std::atomic<bool> busy_{false};
  std::atomic<int> sleepers_{0};       // workers asleep on wake_ (changed under mu_)
  std::atomic<bool> waiting_{false};   // parallel_for's caller asleep on done_ (set under mu_)
  std::atomic<int> keep_{1 << 30};  // workers with an index at or above this one end (see start())
};

// Physical cores this process may run on (SMT siblings counted once), from the CPU affinity mask and
// /sys/devices/system/cpu/*/topology; the hardware thread count when that cannot be read.
int physical_core_count();

// Thread count for a new pool: RETROGRAD_NUM_THREADS when set to a positive integer, else the physical
// cores (a second hyperthread per core only competes for the same FMA units).
int default_thread_count();

}  // namespace rg
