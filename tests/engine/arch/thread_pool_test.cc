// ThreadPool: barriers order every thread's writes before any thread's reads of the next phase,
// run() returns only after every thread finished, for the spinning path and for the blocking
// path (a thread that arrives late, or more threads than CPUs).
#include "engine/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace ztslm::engine {
namespace {

// Each phase every thread writes its slot, then (after a barrier) checks all slots.
void check_phases(ThreadPool& pool, int n_phases, bool late_thread) {
  const int nth = pool.size();
  std::vector<std::atomic<int>> slot(static_cast<size_t>(nth));
  std::atomic<int> errors{0};
  pool.run([&](int ith, int n) {
    EXPECT_EQ(n, nth);
    for (int p = 1; p <= n_phases; ++p) {
      if (late_thread && ith == n - 1 && p % 16 == 0) {
        // Longer than the barrier spin: the others block and must be woken.
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      slot[static_cast<size_t>(ith)].store(p, std::memory_order_relaxed);
      pool.barrier();
      for (int k = 0; k < n; ++k) {
        if (slot[static_cast<size_t>(k)].load(std::memory_order_relaxed) != p) ++errors;
      }
      pool.barrier();
    }
  });
  EXPECT_EQ(errors.load(), 0);
}

TEST(ThreadPoolTest, BarrierOrdersPhases) {
  for (int nth : {1, 2, 3}) {
    ThreadPool pool(nth);
    check_phases(pool, 2000, false);
  }
}

TEST(ThreadPoolTest, BarrierWakesBlockedThreads) {
  ThreadPool pool(2);
  check_phases(pool, 64, true);
}

TEST(ThreadPoolTest, MoreThreadsThanCpusStillCorrect) {
  const int nth = 2 * static_cast<int>(std::max(1u, std::thread::hardware_concurrency())) + 1;
  ThreadPool pool(nth);
  check_phases(pool, 200, false);
}

TEST(ThreadPoolTest, RunReturnsAfterEveryThread) {
  ThreadPool pool(3);
  std::atomic<int> count{0};
  for (int rep = 0; rep < 500; ++rep) {
    pool.run([&](int ith, int) {
      if (ith == 2 && rep % 50 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      count.fetch_add(1, std::memory_order_relaxed);
    });
    ASSERT_EQ(count.load(), 3 * (rep + 1));
  }
}

TEST(ThreadPoolTest, SplitCoversRangeInGranules) {
  for (int nth : {1, 2, 3, 7}) {
    for (int64_t n : {0, 1, 5, 64, 100}) {
      int64_t expect = 0;
      for (int ith = 0; ith < nth; ++ith) {
        int64_t b = 0, e = 0;
        ThreadPool::split(n, ith, nth, 4, &b, &e);
        EXPECT_EQ(b, expect);
        EXPECT_TRUE(b % 4 == 0 || b == n);
        expect = e;
      }
      EXPECT_EQ(expect, n);
    }
  }
}

}  // namespace
}  // namespace ztslm::engine
