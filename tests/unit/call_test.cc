// The Call hand-off word on its own: replies that arrive before the wait,
// during the spin, and after the waiter went to sleep on the futex (the
// kSleeping flag must make Publish() wake it), cancel and claim racing a
// sleeping waiter, and the wake that makes a waiter re-check its cancel flag.
#include "client/call.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace p9 {
namespace {

const std::vector<uint8_t> kReply = {7, 0, 0, 0, 101, 1, 0};

absl::Time In(absl::Duration d) { return absl::Now() + d; }

TEST(Call, ReplyBeforeWaitIsTakenAtOnce) {
  Call c;
  c.Arm(MsgType::kRversion);
  ASSERT_TRUE(c.Claim());
  c.Complete(kReply);
  EXPECT_TRUE(c.WaitUntil(absl::InfinitePast()));  // no time to wait at all
  EXPECT_EQ(c.reply(), kReply);
}

TEST(Call, SleepingWaiterIsWokenByPublish) {
  Call c;
  c.Arm(MsgType::kRversion);
  std::thread t([&] {
    // Far beyond the spin: the waiter is asleep on the futex by now.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_TRUE(c.Claim());
    c.Complete(kReply);
  });
  const absl::Time start = absl::Now();
  ASSERT_TRUE(c.WaitUntil(In(absl::Seconds(30))));
  // Woken by the publish, not by the deadline.
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));
  EXPECT_EQ(c.reply(), kReply);
  t.join();
}

TEST(Call, ClaimedWhileAsleepThenFailedWakesWaiter) {
  Call c;
  c.Arm(MsgType::kRversion);
  std::atomic<bool> claimed{false};
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_TRUE(c.Claim());
    claimed.store(true, std::memory_order_release);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    c.Fail(absl::UnavailableError("gone"));
  });
  ASSERT_TRUE(c.WaitUntil(In(absl::Seconds(30))));
  EXPECT_TRUE(claimed.load(std::memory_order_acquire));
  EXPECT_EQ(c.result().code(), absl::StatusCode::kUnavailable);
  t.join();
}

TEST(Call, CancelAfterSleepingTimeoutWinsOverLateReply) {
  Call c;
  c.Arm(MsgType::kRversion);
  EXPECT_FALSE(c.WaitUntil(In(absl::Milliseconds(30))));  // slept, timed out
  EXPECT_TRUE(c.Cancel());
  EXPECT_FALSE(c.Claim());  // a late reply finds nothing to complete
  EXPECT_FALSE(c.IsDone());
}

TEST(Call, CancelLosesToClaimedReply) {
  Call c;
  c.Arm(MsgType::kRversion);
  EXPECT_FALSE(c.WaitUntil(In(absl::Milliseconds(10))));
  ASSERT_TRUE(c.Claim());
  EXPECT_FALSE(c.Cancel());
  c.Complete(kReply);
  EXPECT_TRUE(c.WaitUntil(In(absl::Seconds(30))));
  EXPECT_EQ(c.reply(), kReply);
}

TEST(Call, WakeMakesWaiterSeeCancelFlag) {
  Call c;
  c.Arm(MsgType::kRversion);
  std::atomic<bool> cancel{false};
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    cancel.store(true, std::memory_order_release);
    c.Wake();
  });
  const absl::Time start = absl::Now();
  EXPECT_FALSE(c.WaitUntil(In(absl::Seconds(30)), &cancel));
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));
  EXPECT_TRUE(c.Cancel());
  t.join();
}

// Two threads complete each other's calls many times, with delays that land
// replies before the wait, inside the spin and after the sleep.
TEST(Call, PingPongWithMixedDelaysNeverLosesAWakeup) {
  Call a, b;
  constexpr int kRounds = 3000;
  std::atomic<bool> b_armed{false};
  b.Arm(MsgType::kRversion);
  b_armed.store(true, std::memory_order_release);
  auto pause = [](std::mt19937& rng) {
    switch (rng() % 4) {
      case 0:
        break;
      case 1:
        std::this_thread::yield();
        break;
      case 2:
        std::this_thread::sleep_for(std::chrono::microseconds(5));
        break;
      default:
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  };
  std::thread t([&] {
    std::mt19937 rng(2);
    for (int i = 0; i < kRounds; ++i) {
      ASSERT_TRUE(b.WaitUntil(In(absl::Seconds(30)))) << "round " << i;
      EXPECT_EQ(b.reply()[4], static_cast<uint8_t>(i));
      b.Disarm();
      b.Arm(MsgType::kRversion);
      pause(rng);
      while (!a.Claim()) std::this_thread::yield();
      std::vector<uint8_t> r = kReply;
      r[4] = static_cast<uint8_t>(i + 1);
      a.Complete(r);
    }
  });
  std::mt19937 rng(1);
  for (int i = 0; i < kRounds; ++i) {
    a.Arm(MsgType::kRversion);
    pause(rng);
    while (!b.Claim()) std::this_thread::yield();
    std::vector<uint8_t> r = kReply;
    r[4] = static_cast<uint8_t>(i);
    b.Complete(r);
    ASSERT_TRUE(a.WaitUntil(In(absl::Seconds(30)))) << "round " << i;
    EXPECT_EQ(a.reply()[4], static_cast<uint8_t>(i + 1));
    a.Disarm();
  }
  t.join();
}

}  // namespace
}  // namespace p9
