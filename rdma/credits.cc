#include "rdma/credits.h"

#include "absl/strings/str_cat.h"

namespace p9::rdma {

absl::Status CreditGate::Acquire(absl::Time deadline) {
  MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closed_ || available_ > 0; };
  if (!mu_.AwaitWithDeadline(ready, deadline)) {
    return absl::DeadlineExceededError(absl::StrCat("timed out waiting for ", name_));
  }
  if (closed_) return why_;
  --available_;
  return absl::OkStatus();
}

bool CreditGate::TryAcquire() {
  MutexLock lock(&mu_);
  if (closed_ || available_ <= 0) return false;
  --available_;
  return true;
}

void CreditGate::Release(int64_t n) {
  MutexLock lock(&mu_);
  available_ += n;
  if (available_ > total_) {
    over_releases_ += available_ - total_;
    available_ = total_;
  }
}

void CreditGate::Close(const absl::Status& why) {
  MutexLock lock(&mu_);
  if (closed_) return;
  closed_ = true;
  why_ = why;
}

int64_t CreditGate::available() const {
  MutexLock lock(&mu_);
  return available_;
}

int64_t CreditGate::over_releases() const {
  MutexLock lock(&mu_);
  return over_releases_;
}

}  // namespace p9::rdma
