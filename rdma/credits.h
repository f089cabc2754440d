// Counting gate for the two limits an RDMA sender must respect: send-queue
// slots (a send occupies one until its completion) and reply credits (a
// request may only be sent while a receive is posted for its reply).
#ifndef P9_RDMA_CREDITS_H_
#define P9_RDMA_CREDITS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client/mutex.h"

namespace p9::rdma {

class CreditGate {
 public:
  // `name` is used in errors ("send queue", "reply credits").
  CreditGate(const char* name, int64_t credits)
      : name_(name), available_(credits), total_(credits) {}

  // Takes one credit, waiting until one is free, the gate closes, or the
  // deadline passes.
  absl::Status Acquire(absl::Time deadline);
  // Takes one credit if one is free now.
  bool TryAcquire();
  // Returns `n` credits. Returning more than were taken is a bug in the
  // caller and is refused (counted, never exceeds the total).
  void Release(int64_t n = 1);
  // Wakes every waiter with `why`; later Acquires fail at once.
  void Close(const absl::Status& why);

  int64_t available() const;
  int64_t total() const { return total_; }
  // Releases that would have taken the count above total (should stay 0).
  int64_t over_releases() const;

 private:
  const char* const name_;
  mutable Mutex mu_;
  int64_t available_ ABSL_GUARDED_BY(mu_);
  const int64_t total_;
  int64_t over_releases_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status why_ ABSL_GUARDED_BY(mu_);
};

}  // namespace p9::rdma

#endif  // P9_RDMA_CREDITS_H_
