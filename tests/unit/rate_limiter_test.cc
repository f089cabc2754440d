// client/rate_limiter.h and its use by P9_LOG for errors and warnings.
#include "client/rate_limiter.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "client/log.h"
#include "gtest/gtest.h"

namespace p9 {
namespace {

TEST(RateLimiter, BurstThenCountsThenReportsInTheNextInterval) {
  RateLimiter rl(absl::Seconds(5), 3);
  absl::Time t = absl::FromUnixSeconds(1000);
  for (int i = 0; i < 3; ++i) {
    RateLimiter::Verdict v = rl.Check(t + absl::Milliseconds(i));
    EXPECT_TRUE(v.print);
    EXPECT_EQ(v.suppressed, 0u);
  }
  for (int i = 0; i < 7; ++i) EXPECT_FALSE(rl.Check(t + absl::Seconds(4)).print);
  // The interval is over: printed again, with the count of what was dropped.
  RateLimiter::Verdict v = rl.Check(t + absl::Seconds(5));
  EXPECT_TRUE(v.print);
  EXPECT_EQ(v.suppressed, 7u);
  // Reported once only.
  v = rl.Check(t + absl::Seconds(5));
  EXPECT_TRUE(v.print);
  EXPECT_EQ(v.suppressed, 0u);
  v = rl.Check(t + absl::Seconds(20));
  EXPECT_TRUE(v.print);
  EXPECT_EQ(v.suppressed, 0u);
}

TEST(RateLimiter, ConcurrentCallersShareOneBurst) {
  RateLimiter rl(absl::Seconds(5), 10);
  const absl::Time t = absl::FromUnixSeconds(1000);
  std::atomic<int> printed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 1000; ++j) printed += rl.Check(t).print ? 1 : 0;
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(printed.load(), 10);
  RateLimiter::Verdict v = rl.Check(t + absl::Seconds(5));
  EXPECT_TRUE(v.print);
  EXPECT_EQ(v.suppressed, 8u * 1000 - 10);
}

TEST(RateLimiter, BurstIsAtLeastOne) {
  RateLimiter rl(absl::Seconds(1), 0);
  EXPECT_TRUE(rl.Check(absl::UnixEpoch()).print);
  EXPECT_FALSE(rl.Check(absl::UnixEpoch()).print);
}

int CountLines(const std::string& text, const std::string& needle) {
  int n = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) n += absl::StrContains(line, needle);
  return n;
}

TEST(P9Log, WarningsAreLimitedPerCallSiteAndInfoIsNot) {
  SetLogLevel(LogLevel::kInfo);
  testing::internal::CaptureStderr();
  for (int i = 0; i < 25; ++i) P9_LOG(kWarning, "same warning %d", i);
  for (int i = 0; i < 3; ++i) P9_LOG(kError, "another site %d", i);
  for (int i = 0; i < 25; ++i) P9_LOG(kInfo, "info %d", i);
  std::string err = testing::internal::GetCapturedStderr();
  SetLogLevel(LogLevel::kWarning);
  EXPECT_EQ(CountLines(err, "warning: same warning"), RateLimiter::kDefaultBurst) << err;
  EXPECT_EQ(CountLines(err, "error: another site"), 3) << err;
  EXPECT_EQ(CountLines(err, "info: info"), 25) << err;
}

TEST(P9Log, TraceIsNeverLimitedOrFiltered) {
  SetLogLevel(LogLevel::kError);
  testing::internal::CaptureStderr();
  for (int i = 0; i < 50; ++i) LogTrace("q0 >>> TCLUNK tag 1 fid 2");
  std::string err = testing::internal::GetCapturedStderr();
  SetLogLevel(LogLevel::kWarning);
  EXPECT_EQ(CountLines(err, "9prdma: trace: q0 >>> TCLUNK"), 50);
}

TEST(P9Log, SuppressedLineNamesTheCallSite) {
  RateLimiter rl(absl::Seconds(5), 10);
  testing::internal::CaptureStderr();
  LogSuppressed(LogLevel::kWarning, "/src/client/session.cc", 123, 42, rl);
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(err,
            "9prdma: warning: 42 messages from session.cc:123 suppressed (at most 10 per 5s)\n");
}

}  // namespace
}  // namespace p9
