#include "thread_pool.h"

#include "spin.h"

#if defined(__linux__)
#include <sched.h>
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#endif

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <utility>

namespace rg {

namespace {
thread_local bool in_parallel_region = false;
}  // namespace

int physical_core_count() {
  unsigned hw = std::thread::hardware_concurrency();
#if defined(__APPLE__)
  int physical = 0;
  size_t size = sizeof physical;
  if (sysctlbyname("hw.physicalcpu", &physical, &size, nullptr, 0) == 0 && physical > 0) return physical;
  return hw == 0 ? 1 : static_cast<int>(hw);
#elif !defined(__linux__)
  return hw == 0 ? 1 : static_cast<int>(hw);  // (Windows: logical processors)
#else
  cpu_set_t mask;
  if (sched_getaffinity(0, sizeof(mask), &mask) != 0) return hw == 0 ? 1 : static_cast<int>(hw);
  std::set<std::pair<int, int>> cores;  // (package, core)
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
    if (!CPU_ISSET(cpu, &mask)) continue;
    const std::string dir = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream pkg(dir + "physical_package_id"), core(dir + "core_id");
    int p = -1, c = -1;
    if (!(pkg >> p) || !(core >> c)) return std::max(1, static_cast<int>(CPU_COUNT(&mask)));
    cores.insert({p, c});
  }
  return std::max<int>(1, static_cast<int>(cores.size()));
#endif
}

int default_thread_count() {
  if (const char* env = std::getenv("RETROGRAD_NUM_THREADS")) {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && v > 0 && v <= 1024) return static_cast<int>(v);
  }
  return std::min(physical_core_count(), 256);
}

ThreadPool::ThreadPool(int threads) : requested_(std::max(1, threads)), threads_(1) {}

void ThreadPool::start() {
  // A thread that cannot be created (a tight `ulimit -v` or process limit) is not fatal: the pool runs with the
  // threads it got, and start_error() says why (the addon reports it as a warning). Reaching the limit means the
  // address space is nearly used up by thread stacks, so half of the threads are let go again to leave memory for
  // the kernels' data.
  for (int i = 1; i < requested_; i++) {
    try {
      workers_.emplace_back([this, i] { worker_loop(i); });
    } catch (const std::exception& e) {
      const int keep = std::max(1, i / 2);
      start_error_ = "could create only " + std::to_string(i) + " of " + std::to_string(requested_) + " threads (" +
                     e.what() + "); running with " + std::to_string(keep);
      {
        std::lock_guard<std::mutex> lock(mu_);
        keep_.store(keep);
      }
      wake_.notify_all();
      for (size_t w = keep - 1; w < workers_.size(); w++) workers_[w].join();
      workers_.resize(keep - 1);
      break;
    }
  }
  threads_ = static_cast<int>(workers_.size()) + 1;
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    stopping_.store(true);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

bool ThreadPool::inside() { return in_parallel_region; }

int ThreadPool::ranges_for(int64_t n, int64_t grain) const {
  if (n <= 0) return 0;
  int64_t g = std::max<int64_t>(1, grain);
  int64_t r = std::min<int64_t>(threads_, (n + g - 1) / g);
  return static_cast<int>(std::max<int64_t>(1, r));
}

void ThreadPool::run_chunks(uint32_t job, const RangeFn* fn, int64_t n, int chunks) {
  in_parallel_region = true;
  uint64_t v = next_.load();
  for (;;) {
    if (static_cast<uint32_t>(v >> 32) != job || static_cast<int>(v & 0xffffffffu) >= chunks) break;
    if (!next_.compare_exchange_weak(v, v + 1)) continue;
    int c = static_cast<int>(v & 0xffffffffu);
    (*fn)(n * c / chunks, n * (c + 1) / chunks);
    // the caller sleeps on done_ only after its spin (waiting_): otherwise the last chunk needs no lock or syscall
    if (remaining_.fetch_sub(1) == 1 && waiting_.load()) {
      std::lock_guard<std::mutex> lock(mu_);
      done_.notify_all();
    }
    v = next_.load();
  }
  in_parallel_region = false;
}

void ThreadPool::worker_loop(int index) {
  uint32_t seen = 0;
  for (;;) {
    uint32_t job;
    const RangeFn* fn;
    int64_t n;
    int chunks;
    // Only a brief spin before sleeping: a worker that spun ~20 µs after every job took the core that JavaScript needs to
    // queue the next kernels (2 cores: W1 through fit 0.167 → 0.121 s per epoch, W2 0.415 → 0.354 s, the products of
    // the GEMM benchmark no slower). The caller claims a sleeping worker's ranges itself, so waking late costs little.
    spin_until([&] { return published_job_.load(std::memory_order_acquire) != seen || stopping_.load() || index >= keep_.load(); }, kPoolSpinIterations);
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (!(stop_ || job_ != seen || index >= keep_.load())) {
        sleepers_++;  // under mu_: parallel_for reads it after publishing its job under mu_
        wake_.wait(lock, [&] { return stop_ || job_ != seen || index >= keep_.load(); });
        sleepers_--;
      }
      if (stop_ || index >= keep_.load()) return;
      seen = job = job_;
      fn = fn_;
      n = n_;
      chunks = chunks_;
    }
    run_chunks(job, fn, n, chunks);
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const RangeFn& fn) {
  int chunks = ranges_for(n, grain);
  if (chunks == 0) return;
  if (chunks == 1 || in_parallel_region) {
    fn(0, n);
    return;
  }
  uint32_t job;
  {
    std::lock_guard<std::mutex> lock(mu_);
    job = ++job_;
    published_job_.store(job, std::memory_order_release);
    busy_.store(true, std::memory_order_release);
    fn_ = &fn;
    n_ = n;
    chunks_ = chunks;
    remaining_.store(chunks);
    next_.store(static_cast<uint64_t>(job) << 32);
  }
  // A worker still spinning from the last job sees the new one without a wake-up (a futex broadcast per kernel cost
  // the small products of a transformer step more than their arithmetic).
  if (sleepers_.load() > 0) wake_.notify_all();
  run_chunks(job, &fn, n, chunks);
  if (!spin_until([&] { return remaining_.load() == 0; })) {
    std::unique_lock<std::mutex> lock(mu_);
    waiting_.store(true);
    done_.wait(lock, [&] { return remaining_.load() == 0; });
    waiting_.store(false);
  }
  busy_.store(false, std::memory_order_release);
}

}  // namespace rg
