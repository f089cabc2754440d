// Abandoning a blocked RPC from another thread: the FUSE layer's answer to
// an INTERRUPT request (a signal to the process that made the syscall).
#ifndef P9_CLIENT_INTERRUPT_H_
#define P9_CLIENT_INTERRUPT_H_

#include <atomic>

namespace p9 {

class Call;

// Told when an Interrupter fires, for an operation nobody waits on (a
// detached read: Session::ReadAsync).
class InterruptListener {
 public:
  // Any thread; must not block.
  virtual void OnInterrupt() = 0;

 protected:
  ~InterruptListener() = default;
};

// One per outstanding operation that may be interrupted. Interrupt() may be
// called from any thread, before, during or after the RPCs it covers; an
// interrupted RPC is flushed (Tflush) and fails with EINTR unless its reply
// arrives first, in which case the reply is used.
class Interrupter {
 public:
  Interrupter() = default;
  Interrupter(const Interrupter&) = delete;
  Interrupter& operator=(const Interrupter&) = delete;

  // Marks the operation interrupted and wakes its waiting call, if any, or
  // tells its listener.
  void Interrupt();
  bool interrupted() const { return interrupted_.load(std::memory_order_seq_cst); }
  // The flag the waiter polls (Call::WaitUntil).
  const std::atomic<bool>* flag() const { return &interrupted_; }

 private:
  friend class Session;
  // Set by the waiting thread around its wait; the interrupting thread wakes
  // it. Call slots live as long as their session, so waking a slot that has
  // moved on is only a spurious wakeup.
  std::atomic<Call*> waiting_{nullptr};
  // Set once by the session a detached read is posted on, which then checks
  // the flag. Both that pair and Interrupt()'s (flag, then listener) are
  // seq_cst, so at least one side sees the other's store: the interrupt is
  // never missed.
  std::atomic<InterruptListener*> listener_{nullptr};
  // An interrupted waiter that sees the flag needs nothing else; seq_cst for
  // the listener pairing above.
  std::atomic<bool> interrupted_{false};
};

// Makes RPCs made by this thread, for the life of the scope, interruptible
// through `i` (scopes nest; the innermost wins).
class ScopedInterruptible {
 public:
  explicit ScopedInterruptible(Interrupter* i);
  ~ScopedInterruptible();
  ScopedInterruptible(const ScopedInterruptible&) = delete;
  ScopedInterruptible& operator=(const ScopedInterruptible&) = delete;

  // The calling thread's current interrupter, or nullptr.
  static Interrupter* Current();

 private:
  Interrupter* const previous_;
};

}  // namespace p9

#endif  // P9_CLIENT_INTERRUPT_H_
