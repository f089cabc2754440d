// FUSE INTERRUPT → the client's Interrupter: while an operation runs, a
// signal to the process that made the syscall flushes (Tflush) the 9P
// request it is waiting for, and the operation fails with EINTR.
#ifndef P9_FUSE_INTERRUPTS_H_
#define P9_FUSE_INTERRUPTS_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "client/interrupt.h"
#include "client/mutex.h"
#include "fuse/fuse_api.h"

namespace p9::fuse {

// Makes the calling thread's RPCs interruptible by FUSE INTERRUPTs for `req`
// for the life of the scope. Must be created before the request is replied
// to; its destructor does not touch `req` (which the reply may have freed).
class ScopedFuseInterrupt {
 public:
  explicit ScopedFuseInterrupt(fuse_req_t req);
  ~ScopedFuseInterrupt();
  ScopedFuseInterrupt(const ScopedFuseInterrupt&) = delete;
  ScopedFuseInterrupt& operator=(const ScopedFuseInterrupt&) = delete;

  bool interrupted() const { return interrupter_.interrupted(); }

 private:
  // libfuse's interrupt callback. It may run on another thread at any time
  // until the request is freed, even after this scope ended, so it finds
  // the operation through a registry instead of a pointer it was given.
  static void OnInterrupt(fuse_req_t req, void* unused);

  Interrupter interrupter_;
  ScopedInterruptible scope_;
  const fuse_req_t req_;
  uint64_t token_ = 0;
};

// Makes `i` receive FUSE INTERRUPTs for `req` until Remove(), for an
// operation that goes on after its worker's ScopedFuseInterrupt ended (a
// read answered on the delivery thread). Create it inside that scope: an
// INTERRUPT that came before is passed on to `i` then.
class FuseInterruptRegistration {
 public:
  FuseInterruptRegistration(fuse_req_t req, Interrupter* i);
  // Remove()s.
  ~FuseInterruptRegistration() { Remove(); }
  FuseInterruptRegistration(const FuseInterruptRegistration&) = delete;
  FuseInterruptRegistration& operator=(const FuseInterruptRegistration&) = delete;

  // Once it returns, `i` is not used again; call it before replying to req
  // (which frees it). Idempotent; not thread-safe against itself.
  void Remove();

 private:
  const fuse_req_t req_;
  uint64_t token_ = 0;
};

}  // namespace p9::fuse

#endif  // P9_FUSE_INTERRUPTS_H_
