// ThreadPool: a fixed set of threads that run one function SPMD-style (every thread runs the
// whole forward pass on its share of each op, with barriers between ops), as ggml does. Workers
// spin briefly between jobs, then sleep, so decode steps do not pay a wake-up per op. Barrier
// and completion waits also spin only briefly and then block (futex), so a thread that the OS
// has descheduled on a busy machine does not leave the others burning its CPU time.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ztslm::engine {

class ThreadPool final {
 public:
  // `n_threads` >= 1 threads in all: the caller of run() plus n_threads - 1 workers.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs `fn(ith, nth)` on every thread (the caller is ith = 0) and returns when all returned.
  // Not re-entrant: one run() at a time per pool.
  void run(const std::function<void(int ith, int nth)>& fn);

  // Called by all threads inside run(): returns when every thread has arrived.
  void barrier();

  // Splits [0, n) into `nth` contiguous parts aligned to `granularity`; part `ith` is
  // [*begin, *end).
  static void split(int64_t n, int ith, int nth, int64_t granularity, int64_t* begin, int64_t* end);

 private:
  void worker_loop(int ith);

  const int n_threads_;
  std::vector<std::thread> workers_;
  const std::function<void(int, int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> n_done_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<int> n_sleeping_{0};
  // Threads blocked in run()'s completion wait (at most the caller).
  std::atomic<int> done_sleepers_{0};
  // Barrier state: arrivals counter and a phase that flips when all arrived; sleepers counts
  // the threads blocked on the phase (so the last arrival only pays a wake-up when needed).
  alignas(64) std::atomic<int> barrier_count_{0};
  alignas(64) std::atomic<uint32_t> barrier_phase_{0};
  std::atomic<int> barrier_sleepers_{0};
  // Pause iterations a barrier waiter spins before blocking (adapted by barrier()).
  std::atomic<int> barrier_spin_limit_{1 << 11};
};

}  // namespace ztslm::engine
