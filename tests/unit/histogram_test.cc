// client/histogram.h: bucket boundaries and percentiles.
#include "client/histogram.h"

#include <array>
#include <cstdint>

#include "gtest/gtest.h"

namespace p9 {
namespace {

TEST(LatencyBucket, PowersOfTwo) {
  EXPECT_EQ(LatencyBucket(0), 0);
  EXPECT_EQ(LatencyBucket(1), 1);
  EXPECT_EQ(LatencyBucket(2), 2);
  EXPECT_EQ(LatencyBucket(3), 2);
  EXPECT_EQ(LatencyBucket(4), 3);
  EXPECT_EQ(LatencyBucket(1023), 10);
  EXPECT_EQ(LatencyBucket(1024), 11);
  EXPECT_EQ(LatencyBucket(uint64_t{1} << 40), kLatencyBuckets - 1);
  EXPECT_EQ(LatencyBucket(UINT64_MAX), kLatencyBuckets - 1);
  // Every value is below its bucket's upper bound (but the overflow bucket).
  for (uint64_t us : {0ull, 1ull, 5ull, 64ull, 100ull, 65535ull, 1000000ull}) {
    EXPECT_LT(us, LatencyBucketUpperBound(LatencyBucket(us))) << us;
    if (LatencyBucket(us) > 0) {
      EXPECT_GE(us, LatencyBucketUpperBound(LatencyBucket(us) - 1)) << us;
    }
  }
}

TEST(LatencyPercentile, FromCounts) {
  std::array<uint64_t, kLatencyBuckets> c{};
  EXPECT_EQ(LatencyPercentile(c, 0.5), 0u);  // no samples
  c[LatencyBucket(100)] = 90;                // 90 requests of ~100 us
  c[LatencyBucket(5000)] = 9;                // 9 of ~5 ms
  c[LatencyBucket(300000)] = 1;              // one of 0.3 s
  EXPECT_EQ(LatencyPercentile(c, 0.5), 128u);
  EXPECT_EQ(LatencyPercentile(c, 0.9), 128u);    // the 90th of 100 is still fast
  EXPECT_EQ(LatencyPercentile(c, 0.91), 8192u);  // the 91st is not
  EXPECT_EQ(LatencyPercentile(c, 0.99), 8192u);
  EXPECT_EQ(LatencyPercentile(c, 1.0), 524288u);  // the maximum
  EXPECT_EQ(LatencyPercentile(c, 0.0), 128u);     // the minimum's bucket
  std::array<uint64_t, kLatencyBuckets> one{};
  one[0] = 1;
  EXPECT_EQ(LatencyPercentile(one, 0.99), 1u);  // 0 us: below 1 us
}

TEST(RecordLatency, CountsIntoTheBucket) {
  LatencyHistogram h{};
  RecordLatency(h, 100);
  RecordLatency(h, 127);
  RecordLatency(h, 128);
  EXPECT_EQ(h[7].load(), 2u);
  EXPECT_EQ(h[8].load(), 1u);
}

}  // namespace
}  // namespace p9
