#include "client/call.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include "client/spin.h"
#include "client/tunables.h"

namespace p9 {
namespace {

// Sleeps while *word == expected, at most until `deadline`. Spurious wakeups
// are fine: the caller re-checks with an acquire load.
void FutexWait(std::atomic<uint32_t>* word, uint32_t expected, absl::Time deadline) {
  timespec ts;
  timespec* tsp = nullptr;
  if (deadline != absl::InfiniteFuture()) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return;
    ts = absl::ToTimespec(left);
    tsp = &ts;
  }
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, tsp, nullptr,
          0);
}

void FutexWakeAll(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr,
          nullptr, 0);
}

}  // namespace

void Call::Arm(MsgType expect, ReplySink* sink, bool detached) {
  expect_ = expect;
  sink_ = sink;
  detached_ = detached;
  result_ = absl::OkStatus();
  consumed_ = false;
  reply_.clear();
  state_.store(kWaiting, std::memory_order_release);
}

bool Call::WaitUntil(absl::Time deadline, const std::atomic<bool>* cancel) {
  // Check before sleeping: the reply may have been published before we ever
  // got here (the delivery thread can beat the sender back from send()).
  // This acquire load is what makes reply_/result_ safe to read on that
  // fast path as well as after a wakeup.
  if (state_.load(std::memory_order_acquire) == kDone) return true;
  if (SpinFor(tunables::kWaitSpinMicros,
              [this] { return state_.load(std::memory_order_acquire) == kDone; })) {
    return true;
  }
  for (;;) {
    uint32_t s = state_.load(std::memory_order_acquire);
    if (s == kDone) return true;
    if (absl::Now() >= deadline) return false;
    if (cancel != nullptr && cancel->load(std::memory_order_acquire)) return false;
    if ((s & kSleeping) == 0) {
      // Announce the sleep, so Publish() knows to wake us. Failing means the
      // state moved on (claimed or done): look again.
      if (!state_.compare_exchange_weak(s, s | kSleeping, std::memory_order_acquire)) continue;
      s |= kSleeping;
      // A Wake() since the check above cleared nothing yet (we had no bit)
      // and its flag store is visible after this acquire: look again.
      if (cancel != nullptr && cancel->load(std::memory_order_acquire)) return false;
    }
    FutexWait(&state_, s, deadline);
  }
}

void Call::Wake() {
  // Clearing the bit makes a waiter between its cancel check and its futex
  // sleep find the word changed (the sleep returns at once), so the wake-up
  // cannot be lost; a waiter already asleep is woken. Release: a waiter that
  // sets the bit again after this sees the cancel flag stored before it.
  state_.fetch_and(~static_cast<uint32_t>(kSleeping), std::memory_order_release);
  FutexWakeAll(&state_);
}

bool Call::Cancel() { return Take(kIdle, std::memory_order_acq_rel); }

bool Call::Claim() {
  // Acquire pairs with Arm()'s release store, making expect_ and sink_
  // visible.
  return Take(kClaimed, std::memory_order_acquire);
}

bool Call::Take(State to, std::memory_order order) {
  uint32_t s = state_.load(std::memory_order_relaxed);
  while ((s & ~kSleeping) == kWaiting) {
    // A sleeping waiter's flag moves to kClaimed with it, so Publish() wakes
    // it; kIdle is only ever taken by the waiter itself (it is awake).
    const uint32_t next = to == kIdle ? kIdle : (to | (s & kSleeping));
    if (state_.compare_exchange_weak(s, next, order, std::memory_order_relaxed)) return true;
  }
  return false;
}

void Call::Complete(absl::Span<const uint8_t> msg) {
  reply_.assign(msg.begin(), msg.end());
  result_ = absl::OkStatus();
  Publish();
}

void Call::CompleteConsumed() {
  reply_.clear();
  result_ = absl::OkStatus();
  consumed_ = true;
  Publish();
}

void Call::Fail(const absl::Status& why) {
  reply_.clear();
  result_ = why;
  Publish();
}

void Call::Publish() {
  // Everything written above happens-before any acquire load that sees kDone.
  const uint32_t was = state_.exchange(kDone, std::memory_order_release);
  // Only a waiter that announced its sleep needs the syscall; one still
  // spinning (or not yet waiting) sees kDone by itself. The slot outlives
  // the waiter's interest in it (slots live in the session's array), so
  // waking after the waiter may have already returned touches valid memory.
  if ((was & kSleeping) != 0) FutexWakeAll(&state_);
}

}  // namespace p9
