#include "client/call.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include "client/tunables.h"

namespace p9 {
namespace {

void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

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

void Call::Arm(MsgType expect) {
  expect_ = expect;
  result_ = absl::OkStatus();
  reply_.clear();
  state_.store(kWaiting, std::memory_order_release);
}

bool Call::WaitUntil(absl::Time deadline, const std::atomic<bool>* cancel) {
  // Check before sleeping: the reply may have been published before we ever
  // got here (the delivery thread can beat the sender back from send()).
  // This acquire load is what makes reply_/result_ safe to read on that
  // fast path as well as after a wakeup.
  for (int i = 0; i < tunables::kWaitSpinIterations; ++i) {
    if (state_.load(std::memory_order_acquire) == kDone) return true;
    CpuRelax();
  }
  for (;;) {
    uint32_t s = state_.load(std::memory_order_acquire);
    if (s == kDone) return true;
    if (absl::Now() >= deadline) return false;
    if (cancel != nullptr && cancel->load(std::memory_order_acquire)) return false;
    FutexWait(&state_, s, deadline);
  }
}

void Call::Wake() { FutexWakeAll(&state_); }

bool Call::Cancel() {
  uint32_t expected = kWaiting;
  return state_.compare_exchange_strong(expected, kIdle, std::memory_order_acq_rel);
}

bool Call::Claim() {
  uint32_t expected = kWaiting;
  // Acquire pairs with Arm()'s release store, making expect_ visible.
  return state_.compare_exchange_strong(expected, kClaimed, std::memory_order_acquire);
}

void Call::Complete(absl::Span<const uint8_t> msg) {
  reply_.assign(msg.begin(), msg.end());
  result_ = absl::OkStatus();
  Publish();
}

void Call::Fail(const absl::Status& why) {
  reply_.clear();
  result_ = why;
  Publish();
}

void Call::Publish() {
  // Everything written above happens-before any acquire load that sees kDone.
  state_.store(kDone, std::memory_order_release);
  // The slot outlives the waiter's interest in it (slots live in the
  // session's array), so waking after the waiter may have already returned
  // touches valid memory.
  FutexWakeAll(&state_);
}

}  // namespace p9
