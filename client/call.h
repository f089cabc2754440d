// One in-flight request and the hand-off of its reply from the channel's
// delivery thread to the thread waiting for it.
#ifndef P9_CLIENT_CALL_H_
#define P9_CLIENT_CALL_H_

#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "client/protocol.h"

namespace p9 {

// Takes a reply on the delivery thread, straight from the channel's receive
// buffer, before the waiter is woken (see Call::Arm). Consume() returns
// whether it took the reply; if it did, the waiter gets no copy of it.
// Consume() must not block on anything a reply delivers.
class ReplySink {
 public:
  virtual bool Consume(absl::Span<const uint8_t> msg) = 0;

 protected:
  ~ReplySink() = default;
};

// A call slot. Ownership moves between two threads, and the `state_` word
// says who owns the reply fields at any moment:
//
//   kIdle    → owned by the Session's tag table (under its mutex).
//   kWaiting → armed: the waiter owns request(); the delivery thread may
//              claim the slot (CAS to kClaimed) to complete it, and the
//              waiter may cancel it (CAS back to kIdle) after a flush.
//   kClaimed → the delivery thread is writing reply()/result().
//   kDone    → reply()/result() were written by the delivery thread and
//              published; the waiter owns everything.
//
// kSleeping is or'ed into kWaiting/kClaimed by a waiter about to sleep on the
// futex; Publish() makes the wake-up syscall only when it sees it, so a reply
// taken by a spinning waiter costs the delivery thread no syscall.
//
// The two CASes from kWaiting make "complete" and "cancel" mutually
// exclusive, so even a reply that arrives after Rflush (a misbehaving
// server) can never write into a slot that has been handed to a new call.
//
// The delivery thread writes reply()/result() first and only then stores
// kDone with release order; the waiter loads state_ with acquire order before
// it reads them. That pairing is what the kernel's 2014 fix "9P: add memory
// barriers to protect request fields over cb/rpc threads handoff" added with
// smp_wmb()/smp_rmb(): without it a waiter that sees `done` (possibly
// without ever sleeping, because the reply raced ahead of it) could read a
// reply pointer or length from before the write, and parse garbage or NULL.
class Call {
 public:
  enum State : uint32_t { kIdle = 0, kWaiting = 1, kClaimed = 2, kDone = 3, kSleeping = 4 };

  Call() = default;
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;

  uint16_t tag() const { return tag_; }

  // --- Used by the session under its tag-table mutex (state kIdle).
  // Sets the tag once, when the slot is created.
  void set_tag(uint16_t tag) { tag_ = tag; }
  // Arms the slot for a reply of type `expect` (or Rlerror). The release
  // store publishes expect_, sink_ and the cleared fields to the delivery
  // thread. A reply of type `expect` is offered to `sink` (if any) first;
  // the sink must outlive the call (the waiter's frame does: it does not
  // return before kDone or a successful Cancel()).
  // A `detached` call has no waiter: whoever takes it from kWaiting (Claim
  // or Cancel) finishes it through its sink, which is then a
  // Session::Detached (see Session::ReadAsync).
  void Arm(MsgType expect, ReplySink* sink = nullptr, bool detached = false);
  // Returns a completed (kDone) or cancelled slot to kIdle; only the owning
  // waiter calls this, under the tag-table mutex.
  void Disarm() { state_.store(kIdle, std::memory_order_relaxed); }

  // --- Waiter side (the thread that armed it).
  // Buffer the request is encoded into; owned by the waiter.
  std::vector<uint8_t>& request() { return request_; }
  // Waits until the reply is published, `deadline` passes, or `*cancel`
  // (if given) becomes true. Spins up to tunables::kWaitSpinMicros first
  // when another CPU is free to deliver the reply meanwhile. Returns true if done (an acquire load
  // saw kDone, so reply()/result() may be read).
  bool WaitUntil(absl::Time deadline, const std::atomic<bool>* cancel = nullptr);
  // Wakes a waiter so it re-checks its cancel flag; any thread.
  void Wake();
  // Non-blocking acquire check of the same.
  bool IsDone() const { return state_.load(std::memory_order_acquire) == kDone; }
  // Withdraws an armed call whose reply will not come (after Rflush). Returns
  // false if the delivery thread has already claimed it; the caller then
  // waits for kDone (the delivery thread is mid-copy, never blocked) and
  // uses the reply.
  bool Cancel();
  // Valid only after IsDone()/WaitUntil() returned true.
  const std::vector<uint8_t>& reply() const { return reply_; }
  const absl::Status& result() const { return result_; }
  // Valid likewise: the reply went to the sink given to Arm() (result() is
  // OK and reply() is empty).
  bool consumed() const { return consumed_; }

  // --- Delivery side (the channel's single delivery thread).
  // Takes the right to complete an armed call. False if the slot is not
  // waiting for a reply (unknown, cancelled or already completed tag).
  bool Claim();
  // The reply type the call accepts besides Rlerror; read after Claim().
  MsgType expected() const { return expect_; }
  // The sink given to Arm(); read after Claim().
  ReplySink* sink() const { return sink_; }
  // Whether Arm() made it detached; read after Claim() or a successful
  // Cancel().
  bool detached() const { return detached_; }
  // After Claim(): copies `msg` as the reply and publishes it.
  void Complete(absl::Span<const uint8_t> msg);
  // After Claim(), once sink()->Consume() took the reply: publishes that.
  void CompleteConsumed();
  // After Claim(): fails the call with `why` and publishes it.
  void Fail(const absl::Status& why);

 private:
  // CAS from kWaiting (with or without kSleeping) to `to`.
  bool Take(State to, std::memory_order order);
  void Publish();

  uint16_t tag_ = kNoTag;
  // Written by the waiter before Arm(); read by the delivery thread after an
  // acquire load of kWaiting.
  MsgType expect_ = MsgType::kRlerror;
  ReplySink* sink_ = nullptr;
  bool detached_ = false;
  // Owned by the waiter (encoding and sending happen on its thread).
  std::vector<uint8_t> request_;
  // Written by the delivery thread while kWaiting, read by the waiter after
  // an acquire load of kDone. Capacity is kept across calls, so completing a
  // call allocates nothing once the slot has seen a message of that size.
  std::vector<uint8_t> reply_;
  absl::Status result_;
  bool consumed_ = false;
  // The hand-off word; also the futex the waiter sleeps on.
  std::atomic<uint32_t> state_{kIdle};
  static_assert(std::atomic<uint32_t>::is_always_lock_free && sizeof(state_) == 4,
                "futex word must be a plain 32-bit atomic");
};

}  // namespace p9

#endif  // P9_CLIENT_CALL_H_
