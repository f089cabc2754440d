// A server fid owned by the FUSE layer: one number on one session, clunked
// when the last reference to it goes away.
#ifndef P9_FUSE_FID_H_
#define P9_FUSE_FID_H_

#include <atomic>
#include <cstdint>
#include <memory>

#include "client/session.h"

namespace p9::fuse {

class Fid {
 public:
  // Takes ownership of `fid`, already established on `session`.
  Fid(Session* session, int channel, uint32_t fid)
      : session_(session), channel_(channel), fid_(fid) {}
  // Clunks the fid unless MarkGone() was called.
  ~Fid();
  Fid(const Fid&) = delete;
  Fid& operator=(const Fid&) = delete;

  Session* session() const { return session_; }
  int channel() const { return channel_; }
  uint32_t num() const { return fid_; }
  // The server has already forgotten the fid (Tremove clunks it even when
  // the remove fails): the destructor only returns the number to the pool.
  void MarkGone() { gone_.store(true, std::memory_order_relaxed); }

 private:
  Session* const session_;
  const int channel_;
  const uint32_t fid_;
  // Set by the one thread that removes through this fid, read by the
  // destructor after the last reference (shared_ptr release/acquire orders it).
  std::atomic<bool> gone_{false};
};

using FidRef = std::shared_ptr<Fid>;

}  // namespace p9::fuse

#endif  // P9_FUSE_FID_H_
