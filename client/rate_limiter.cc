#include "client/rate_limiter.h"

namespace p9 {

RateLimiter::Verdict RateLimiter::Check(absl::Time now) {
  MutexLock lock(&mu_);
  Verdict v;
  if (begin_ == absl::InfinitePast() || now - begin_ >= interval_) {
    // A new interval: its first line carries the count of the last ones.
    v.suppressed = suppressed_;
    begin_ = now;
    printed_ = 0;
    suppressed_ = 0;
  }
  if (printed_ < burst_) {
    ++printed_;
    v.print = true;
  } else {
    ++suppressed_;
  }
  return v;
}

}  // namespace p9
