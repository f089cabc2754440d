// A fixed log2 histogram of latencies in microseconds: 32 buckets of
// counters, cheap enough to bump on every RPC, and small enough to publish
// whole in the stats file, where `9prdma stats` turns it (or the difference
// of two readings) into percentiles.
#ifndef P9_CLIENT_HISTOGRAM_H_
#define P9_CLIENT_HISTOGRAM_H_

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>

#include "absl/types/span.h"

namespace p9 {

// Bucket 0 holds 0 us; bucket i >= 1 holds [2^(i-1), 2^i) us; the last
// bucket also holds everything above (2^30 us is about 18 minutes, far
// past any RPC timeout).
inline constexpr int kLatencyBuckets = 32;

// The counters themselves. Relaxed atomics: each is an independent count,
// read while being written; a reader may see one RPC in the total of one
// bucket and not yet in another, which percentiles tolerate.
using LatencyHistogram = std::array<std::atomic<uint64_t>, kLatencyBuckets>;

// The bucket that `us` falls in.
constexpr int LatencyBucket(uint64_t us) {
  int b = static_cast<int>(std::bit_width(us));  // 0 for 0, i for [2^(i-1), 2^i)
  return b < kLatencyBuckets ? b : kLatencyBuckets - 1;
}

// The smallest latency that is above every value of bucket `b`: what a
// percentile that lands in `b` is reported as (an upper bound, so a
// reported p99 is never better than the truth). For bucket 0 that is 1 us.
constexpr uint64_t LatencyBucketUpperBound(int b) { return uint64_t{1} << b; }

// Counts one latency of `us` microseconds.
inline void RecordLatency(LatencyHistogram& h, uint64_t us) {
  h[LatencyBucket(us)].fetch_add(1, std::memory_order_relaxed);
}

// The upper bound of the bucket holding the `fraction` quantile (0.5 for
// p50, 1.0 for the maximum) of the counts, or 0 when there are none.
inline uint64_t LatencyPercentile(absl::Span<const uint64_t> counts, double fraction) {
  uint64_t total = 0;
  for (uint64_t c : counts) total += c;
  if (total == 0) return 0;
  // The rank of the quantile, 1-based and at least 1, rounded up: p50 of
  // 3 samples is the 2nd, p99 of 10 is the 10th.
  double want = fraction * static_cast<double>(total);
  uint64_t rank = static_cast<uint64_t>(want);
  if (static_cast<double>(rank) < want) ++rank;
  if (rank == 0) rank = 1;
  if (rank > total) rank = total;
  uint64_t seen = 0;
  for (size_t b = 0; b < counts.size(); ++b) {
    seen += counts[b];
    if (seen >= rank) return LatencyBucketUpperBound(static_cast<int>(b));
  }
  return LatencyBucketUpperBound(static_cast<int>(counts.size()) - 1);
}

}  // namespace p9

#endif  // P9_CLIENT_HISTOGRAM_H_
