// spin_until: the short busy-wait the queue, the pool and synchronous reads do before sleeping on a
// condition variable. The kernels of one training step or one forward pass arrive microseconds apart,
// while waking a sleeping thread costs tens of microseconds on a virtual machine (measured on the 2-core
// build machine: batch-1 inference 68 µs → 33 µs). The pool's workers spin only briefly (kPoolSpinIterations).
// Pause instructions only: a variant that called sched_yield() measured slower on every workload.
#pragma once

namespace rg {

// About 20 µs of pause instructions.
constexpr int kSpinIterations = 8000;
// A pool worker's spin after a job: about half a microsecond (see ThreadPool::worker_loop).
constexpr int kPoolSpinIterations = 200;

template <typename Ready>
bool spin_until(Ready ready, int iterations = kSpinIterations) {
  for (int i = 0; i < iterations; i++) {
    if (ready()) return true;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
  }
  return ready();
}

}  // namespace rg
