// p9::Mutex and p9::CondVar: Mutex::Await() re-checks at every unlock; a
// CondVar waiter only when signalled, so a lasting waiter costs a busy
// mutex nothing (the session's recovery thread was woken at every tag
// taken or returned before it waited on a CondVar).
#include "client/mutex.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace p9 {
namespace {

// Waits until `evaluations` reaches at least `n` (the waiter has checked
// its predicate and is about to sleep, or asleep).
void WaitForEvaluations(const std::atomic<int>& evaluations, int n) {
  while (evaluations.load(std::memory_order_relaxed) < n) absl::SleepFor(absl::Milliseconds(1));
}

TEST(CondVar, WaiterIsNotWokenByUnrelatedUnlocks) {
  Mutex mu;
  CondVar cv;
  bool ready = false;  // guarded by mu
  std::atomic<int> evaluations{0};
  std::thread waiter([&] {
    MutexLock lock(&mu);
    cv.Await(&mu, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      evaluations.fetch_add(1, std::memory_order_relaxed);
      return ready;
    });
  });
  WaitForEvaluations(evaluations, 1);
  absl::SleepFor(absl::Milliseconds(20));  // asleep in the CondVar by now
  for (int i = 0; i < 1000; ++i) {
    MutexLock lock(&mu);  // other work under the same mutex
  }
  // Spurious wake-ups are allowed, but not one per unlock.
  EXPECT_LE(evaluations.load(std::memory_order_relaxed), 3);
  {
    MutexLock lock(&mu);
    ready = true;
    cv.SignalAll();
  }
  waiter.join();
  EXPECT_GE(evaluations.load(std::memory_order_relaxed), 2);
}

TEST(CondVar, MutexAwaitReChecksAtUnlocks) {
  // The contrast: a Mutex::Await() waiter sees each unlock.
  Mutex mu;
  int counter = 0;  // guarded by mu
  std::thread waiter([&] {
    MutexLock lock(&mu);
    mu.Await([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return counter >= 50; });
  });
  for (int i = 0; i < 50; ++i) {
    MutexLock lock(&mu);
    ++counter;
  }
  waiter.join();  // no signal needed: the unlocks woke it
}

TEST(CondVar, DeadlinePassesWithoutSignal) {
  Mutex mu;
  CondVar cv;
  MutexLock lock(&mu);
  const absl::Time start = absl::Now();
  EXPECT_FALSE(cv.AwaitWithDeadline(
      &mu, []() { return false; }, start + absl::Milliseconds(30)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(30));
  EXPECT_TRUE(cv.AwaitWithDeadline(
      &mu, []() { return true; }, absl::InfinitePast()));
}

TEST(CondVar, SignalWakesEveryWaiter) {
  Mutex mu;
  CondVar cv;
  bool go = false;  // guarded by mu
  std::atomic<int> evaluations{0};
  std::vector<std::thread> waiters;
  for (int i = 0; i < 4; ++i) {
    waiters.emplace_back([&] {
      MutexLock lock(&mu);
      cv.Await(&mu, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
        evaluations.fetch_add(1, std::memory_order_relaxed);
        return go;
      });
    });
  }
  WaitForEvaluations(evaluations, 4);
  {
    MutexLock lock(&mu);
    go = true;
    cv.SignalAll();
  }
  for (std::thread& t : waiters) t.join();
}

}  // namespace
}  // namespace p9
