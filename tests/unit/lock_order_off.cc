// Linked into every unit test: absl's own lock-order tracking is off, as in
// the daemon (fuse/mount_main.cc). Debian's libabsl keeps that graph under
// locks ThreadSanitizer cannot see, so a mutex locked for the first time
// while another thread locks one is reported as a race inside absl. The
// tsan build checks lock order itself.
#include "absl/synchronization/mutex.h"

namespace {

const bool kLockOrderTrackingOff = [] {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return true;
}();

}  // namespace
