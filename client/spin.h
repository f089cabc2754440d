// Bounded polling before sleeping, shared by every waiter in the process.
#ifndef P9_CLIENT_SPIN_H_
#define P9_CLIENT_SPIN_H_

#include <atomic>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace p9 {

// Pause instruction for busy-wait loops (lets the sibling hyperthread run).
inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Takes one of the process's spin slots: at most one fewer than the CPUs
// spin at once, and on one CPU nobody does. A spinner only wins if the
// thread that will satisfy it can run meanwhile; on a single CPU the spin
// would only delay that thread.
bool TakeSpinSlot();
// Returns a slot taken with TakeSpinSlot().
void ReturnSpinSlot();

// Polls `ready` (which must do its own acquire load) for up to `micros`
// microseconds if a spin slot is free. Returns whether it became true; false
// means "go to sleep" (it may become true meanwhile: the caller re-checks).
template <typename Ready>
bool SpinFor(int micros, Ready&& ready) {
  if (!TakeSpinSlot()) return false;
  const absl::Time until = absl::Now() + absl::Microseconds(micros);
  bool done = false;
  for (int i = 1;; ++i) {
    if ((done = ready())) break;
    if (i % 32 == 0 && absl::Now() >= until) break;
    CpuRelax();
  }
  ReturnSpinSlot();
  return done;
}

}  // namespace p9

#endif  // P9_CLIENT_SPIN_H_
