// fuse/work_pool: every index runs exactly once, calls really overlap, and
// concurrent Runs from many threads all complete.
#include "fuse/work_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace p9::fuse {
namespace {

TEST(WorkPool, EveryIndexOnce) {
  WorkPool pool(4);
  for (size_t n : {0u, 1u, 2u, 7u, 100u}) {
    std::vector<std::atomic<int>> seen(n);
    pool.Run(n, [&](size_t i) { seen[i].fetch_add(1, std::memory_order_relaxed); });
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(seen[i].load(), 1) << n << " " << i;
  }
}

TEST(WorkPool, CallsOverlap) {
  // Five calls that each wait (up to 10 s) for all five to have started
  // see all five at once only if they run side by side: 4 workers + the
  // caller.
  WorkPool pool(4);
  std::atomic<int> started{0};
  std::atomic<int> max_together{0};
  pool.Run(5, [&](size_t) {
    int now = started.fetch_add(1) + 1;
    int m = max_together.load();
    while (now > m && !max_together.compare_exchange_weak(m, now)) {
    }
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (started.load() < 5 && std::chrono::steady_clock::now() < until) {
      std::this_thread::yield();
    }
  });
  EXPECT_EQ(max_together.load(), 5);
}

TEST(WorkPool, NoWorkersRunsOnTheCaller) {
  WorkPool pool(0);
  std::thread::id me = std::this_thread::get_id();
  int n = 0;
  pool.Run(10, [&](size_t) {
    EXPECT_EQ(std::this_thread::get_id(), me);
    ++n;
  });
  EXPECT_EQ(n, 10);
}

TEST(WorkPool, ManyCallersAtOnce) {
  WorkPool pool(3);
  std::atomic<long> total{0};
  std::vector<std::thread> callers;
  for (int k = 0; k < 6; ++k) {
    callers.emplace_back([&] {
      for (int r = 0; r < 200; ++r) {
        std::atomic<int> here{0};
        pool.Run(9, [&](size_t i) {
          here.fetch_add(1);
          total.fetch_add(static_cast<long>(i));
        });
        EXPECT_EQ(here.load(), 9);
      }
    });
  }
  for (std::thread& t : callers) t.join();
  EXPECT_EQ(total.load(), 6L * 200 * 36);
}

}  // namespace
}  // namespace p9::fuse
