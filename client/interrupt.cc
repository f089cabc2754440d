#include "client/interrupt.h"

#include "client/call.h"

namespace p9 {
namespace {
thread_local Interrupter* tls_current = nullptr;
}  // namespace

void Interrupter::Interrupt() {
  interrupted_.store(true, std::memory_order_seq_cst);
  if (Call* c = waiting_.load(std::memory_order_acquire)) c->Wake();
  if (InterruptListener* l = listener_.load(std::memory_order_seq_cst)) l->OnInterrupt();
}

ScopedInterruptible::ScopedInterruptible(Interrupter* i) : previous_(tls_current) {
  tls_current = i;
}

ScopedInterruptible::~ScopedInterruptible() { tls_current = previous_; }

Interrupter* ScopedInterruptible::Current() { return tls_current; }

}  // namespace p9
