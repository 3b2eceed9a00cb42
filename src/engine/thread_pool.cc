#include "engine/thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace ztslm::engine {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// Spins this many iterations (~tens of microseconds) before sleeping between jobs.
constexpr int kSpinIterations = 1 << 16;
// Spins this many iterations in a barrier or completion wait before blocking. Balanced ops
// arrive within a few microseconds of each other; a longer wait means a thread was preempted,
// and spinning would then only take CPU time from it.
constexpr int kWaitSpinIterations = 1 << 11;  // ~75 us on Zen 5 (one PAUSE ~36 ns)
// The barrier's spin adapts between these bounds (see barrier()).
constexpr int kMinWaitSpinIterations = 1 << 5;
constexpr auto kShortBlock = std::chrono::microseconds(200);

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  workers_.reserve(static_cast<size_t>(n_threads_ - 1));
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::worker_loop(int ith) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen = generation_.load(std::memory_order_acquire);
    for (int spin = 0; gen == seen && spin < kSpinIterations; ++spin) {
      cpu_relax();
      gen = generation_.load(std::memory_order_acquire);
    }
    if (gen == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      n_sleeping_.fetch_add(1, std::memory_order_acq_rel);
      cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      n_sleeping_.fetch_sub(1, std::memory_order_acq_rel);
      gen = generation_.load(std::memory_order_acquire);
    }
    seen = gen;
    if (stop_.load(std::memory_order_acquire)) return;
    (*job_)(ith, n_threads_);
    n_done_.fetch_add(1, std::memory_order_seq_cst);
    if (done_sleepers_.load(std::memory_order_seq_cst) > 0) n_done_.notify_all();
  }
}

void ThreadPool::run(const std::function<void(int, int)>& fn) {
  if (n_threads_ == 1) {
    fn(0, 1);
    return;
  }
  job_ = &fn;
  n_done_.store(0, std::memory_order_relaxed);
  {
    // The lock orders the generation bump with a worker that is about to sleep.
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  if (n_sleeping_.load(std::memory_order_acquire) > 0) cv_.notify_all();
  fn(0, n_threads_);
  const int want = n_threads_ - 1;
  int done = n_done_.load(std::memory_order_acquire);
  for (int spin = 0; done != want && spin < kWaitSpinIterations; ++spin) {
    cpu_relax();
    done = n_done_.load(std::memory_order_acquire);
  }
  if (done != want) {
    done_sleepers_.fetch_add(1, std::memory_order_seq_cst);
    while ((done = n_done_.load(std::memory_order_seq_cst)) != want) n_done_.wait(done);
    done_sleepers_.fetch_sub(1, std::memory_order_relaxed);
  }
  job_ = nullptr;
}

void ThreadPool::barrier() {
  if (n_threads_ == 1) return;
  const uint32_t phase = barrier_phase_.load(std::memory_order_acquire);
  if (barrier_count_.fetch_add(1, std::memory_order_acq_rel) == n_threads_ - 1) {
    barrier_count_.store(0, std::memory_order_relaxed);
    barrier_phase_.fetch_add(1, std::memory_order_seq_cst);
    // Pairs with the sleeper's increment then re-check (both seq_cst): either the sleeper sees
    // the new phase, or this load sees the sleeper.
    if (barrier_sleepers_.load(std::memory_order_seq_cst) > 0) barrier_phase_.notify_all();
    return;
  }
  const int limit = barrier_spin_limit_.load(std::memory_order_relaxed);
  for (int spin = 0; spin < limit; ++spin) {
    if (barrier_phase_.load(std::memory_order_acquire) != phase) return;
    cpu_relax();
  }
  const auto t0 = std::chrono::steady_clock::now();
  barrier_sleepers_.fetch_add(1, std::memory_order_seq_cst);
  while (barrier_phase_.load(std::memory_order_seq_cst) == phase) barrier_phase_.wait(phase);
  barrier_sleepers_.fetch_sub(1, std::memory_order_relaxed);
  // Adapt the spin: a short block means the other threads were running and a longer spin
  // would have caught them; a long one means a thread was descheduled (more threads than free
  // CPUs), where every spin only delays it.
  const bool short_block = std::chrono::steady_clock::now() - t0 < kShortBlock;
  barrier_spin_limit_.store(short_block ? std::min(kWaitSpinIterations, 2 * limit)
                                        : std::max(kMinWaitSpinIterations, limit / 2),
                            std::memory_order_relaxed);
}

void ThreadPool::split(int64_t n, int ith, int nth, int64_t granularity, int64_t* begin,
                       int64_t* end) {
  const int64_t g = std::max<int64_t>(1, granularity);
  const int64_t n_chunks = (n + g - 1) / g;
  const int64_t per = n_chunks / nth;
  const int64_t extra = n_chunks % nth;
  const int64_t c0 = ith * per + std::min<int64_t>(ith, extra);
  const int64_t c1 = c0 + per + (ith < extra ? 1 : 0);
  *begin = std::min(n, c0 * g);
  *end = std::min(n, c1 * g);
}

}  // namespace ztslm::engine
