// Rate limiting of repeated log lines, like the kernel's printk_ratelimit:
// per call site, the first `burst` lines of each interval are printed, the
// rest are counted, and the count is reported with the first line printed
// in a later interval. A server that fails every request must not turn the
// log (or syslog) into a flood of one line per request.
#ifndef P9_CLIENT_RATE_LIMITER_H_
#define P9_CLIENT_RATE_LIMITER_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "client/mutex.h"

namespace p9 {

// One call site's limiter (P9_LOG keeps one per site).
class RateLimiter {
 public:
  // The kernel's defaults (DEFAULT_RATELIMIT_INTERVAL/BURST): 10 per 5 s.
  static constexpr int kDefaultBurst = 10;
  static constexpr absl::Duration kDefaultInterval = absl::Seconds(5);

  explicit RateLimiter(absl::Duration interval = kDefaultInterval, int burst = kDefaultBurst)
      : interval_(interval), burst_(burst < 1 ? 1 : burst) {}

  // What to do with one line.
  struct Verdict {
    // Print the line.
    bool print = false;
    // Lines dropped in earlier intervals and not reported yet: say so
    // (before this line) when non-zero. Only ever non-zero with print.
    uint64_t suppressed = 0;
  };
  // Decides about a line logged at `now`. Thread-safe.
  Verdict Check(absl::Time now);

  // The length of an interval, and the lines printed in each at most.
  absl::Duration interval() const { return interval_; }
  int burst() const { return burst_; }

 private:
  const absl::Duration interval_;
  const int burst_;
  Mutex mu_;
  // Start of the current interval; InfinitePast: nothing logged yet.
  absl::Time begin_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int printed_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t suppressed_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace p9

#endif  // P9_CLIENT_RATE_LIMITER_H_
