// p9::Mutex: absl::Mutex, made visible to ThreadSanitizer.
//
// Debian's libabsl is not built with -fsanitize=thread, so TSan cannot see
// the happens-before edges absl::Mutex creates and reports every access
// guarded by one as a race. This wrapper tells TSan about them (release
// before unlocking, acquire after locking, and around Await, which unlocks
// and relocks inside the uninstrumented library). In other builds the
// annotations compile to nothing. Use it, not absl::Mutex, in this project.
#ifndef P9_CLIENT_MUTEX_H_
#define P9_CLIENT_MUTEX_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#if defined(__SANITIZE_THREAD__)
#define P9_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define P9_TSAN 1
#endif
#endif

#ifdef P9_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace p9 {

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    mu_.Lock();
    Acquired();
  }
  void Unlock() ABSL_UNLOCK_FUNCTION() {
    // Like absl::Mutex conditions, waiters re-check their predicate whenever
    // the state they guard may have changed, i.e. on every unlock.
    if (waiters_ > 0) cv_.SignalAll();
    Releasing();
    mu_.Unlock();
  }
  // Blocks until pred() is true; the mutex must be held, and pred reads only
  // state it guards.
  template <typename Pred>
  void Await(Pred&& pred) ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    AwaitWithDeadline(pred, absl::InfiniteFuture());
  }
  // As Await, giving up at `deadline`; returns whether pred() holds.
  template <typename Pred>
  bool AwaitWithDeadline(Pred&& pred, absl::Time deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    return WaitLoop(cv_, /*counted=*/true, pred, deadline);
  }
  template <typename Pred>
  bool AwaitWithTimeout(Pred&& pred, absl::Duration timeout) ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    return AwaitWithDeadline(pred, absl::Now() + timeout);
  }

 private:
  friend class CondVar;

  // The wait of Await() and of CondVar: sleeps on `cv` until pred() holds
  // or `deadline` passes. A `counted` waiter is woken by every Unlock().
  template <typename Pred>
  bool WaitLoop(absl::CondVar& cv, bool counted, Pred&& pred, absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    while (!pred()) {
      if (absl::Now() >= deadline) return false;
      if (counted) ++waiters_;
      Releasing();
      cv.WaitWithDeadline(&mu_, deadline);
      Acquired();
      if (counted) --waiters_;
    }
    return true;
  }

#ifdef P9_TSAN
  void Acquired() { __tsan_acquire(this); }
  void Releasing() { __tsan_release(this); }
#else
  void Acquired() {}
  void Releasing() {}
#endif
  absl::Mutex mu_;
  // Waiting is done with a CondVar, not absl::Condition, because absl runs
  // Condition functions inside its (uninstrumented) unlock path on other
  // threads, where no annotation can describe the ordering to TSan.
  absl::CondVar cv_;
  int waiters_ ABSL_GUARDED_BY(mu_) = 0;
};

// A condition variable for a p9::Mutex, for a thread that sleeps until a
// rare event (a recovery thread waiting for its connection to die):
// Mutex::Await() wakes every waiter at every Unlock(), so a lasting waiter
// on a busy mutex would be woken (and the unlocking thread would make a
// futex call) for every unrelated critical section. A CondVar's waiters
// wake only when it is signalled: whoever changes what they test signals,
// with the mutex held.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // Blocks until pred() is true, re-checking it whenever signalled, or
  // until `deadline`; returns whether pred() holds. `mu` must be held, and
  // pred reads only state it guards.
  template <typename Pred>
  bool AwaitWithDeadline(Mutex* mu, Pred&& pred, absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return mu->WaitLoop(cv_, /*counted=*/false, pred, deadline);
  }
  template <typename Pred>
  void Await(Mutex* mu, Pred&& pred) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    AwaitWithDeadline(mu, pred, absl::InfiniteFuture());
  }
  // Wakes every waiter to re-check its predicate.
  void SignalAll() { cv_.SignalAll(); }

 private:
  absl::CondVar cv_;
};

// Holds a p9::Mutex for the enclosing scope.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

}  // namespace p9

#endif  // P9_CLIENT_MUTEX_H_
