// A server fid owned by the FUSE layer: one number on one session, clunked
// when the last reference to it goes away.
#ifndef P9_FUSE_FID_H_
#define P9_FUSE_FID_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "client/mutex.h"
#include "client/session.h"

namespace p9::fuse {

// Sends Tclunk for fids nobody needs any more, on its own thread, so the
// FUSE request that dropped the last reference (a lookup replacing an older
// fid, a forget, a release) does not wait a round trip for it. Clunks are
// sent in the order they were queued. Nothing waits for a clunk: fids are
// independent on the server, and a fid number returns to the session's pool
// only once its Tclunk has been answered.
class Clunker {
 public:
  Clunker();
  // Drain()s, then stops the thread.
  ~Clunker();
  Clunker(const Clunker&) = delete;
  Clunker& operator=(const Clunker&) = delete;

  // Queues the clunk of `fid`, made on connection `epoch` of `session`.
  void Push(Session* session, uint32_t fid, uint64_t epoch);
  // Returns once every fid queued so far has been clunked.
  void Drain();
  // For unmounting, just before the sessions close: closing a connection
  // makes the server release all of its fids at once, so the queued clunks
  // are dropped and later Pushes do nothing. Clunking each fid the kernel
  // still held would cost a round trip apiece, one after another, before
  // the daemon could exit.
  void Abandon();

 private:
  void Loop();

  Mutex mu_;
  struct Pending {
    Session* session;
    uint32_t fid;
    uint64_t epoch;
  };
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  // Queued fids whose Tclunk has not been answered yet (queue + in flight).
  size_t pending_ ABSL_GUARDED_BY(mu_) = 0;
  bool abandoned_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// The epoch of a fid the session re-creates on every new connection (the
// root, attached again by the session's restore step).
inline constexpr uint64_t kEveryEpoch = 0;

class Fid {
 public:
  // Takes ownership of `fid`, established on `session` by a request made
  // when session->epoch() was `epoch` (read before the request was sent, so
  // a reconnect in between makes the fid look stale, never the reverse).
  // With a clunker the Tclunk is sent from its thread, else synchronously.
  // `principal`: whose attach the fid descends from (access=user; 0 is the
  // mount's own attach, see Filesystem::FidIndex).
  Fid(Session* session, int channel, uint32_t fid, uint64_t epoch, Clunker* clunker = nullptr,
      int principal = 0)
      : session_(session),
        channel_(channel),
        fid_(fid),
        epoch_(epoch),
        clunker_(clunker),
        principal_(principal) {}
  // Clunks the fid unless MarkGone() was called.
  ~Fid();
  Fid(const Fid&) = delete;
  Fid& operator=(const Fid&) = delete;

  Session* session() const { return session_; }
  int channel() const { return channel_; }
  uint32_t num() const { return fid_; }
  uint64_t epoch() const { return epoch_; }
  int principal() const { return principal_; }
  // False once the connection the fid was made on has been replaced: the
  // server no longer knows it, and its owner must walk or open a new one.
  bool current() const { return epoch_ == kEveryEpoch || epoch_ == session_->epoch(); }
  // The server has already forgotten the fid (Tremove clunks it even when
  // the remove fails): the destructor does nothing.
  void MarkGone() { gone_.store(true, std::memory_order_relaxed); }

 private:
  Session* const session_;
  const int channel_;
  const uint32_t fid_;
  const uint64_t epoch_;
  Clunker* const clunker_;
  const int principal_;
  // Set by the one thread that removes through this fid, read by the
  // destructor after the last reference (shared_ptr release/acquire orders it).
  std::atomic<bool> gone_{false};
};

using FidRef = std::shared_ptr<Fid>;

// An opened fid kept after its handle was released (see Inode::parked),
// counted against a mount-wide cap while it exists.
class ParkedFid {
 public:
  ParkedFid(FidRef fid, uint32_t iounit, absl::Time parked_at,
            std::shared_ptr<std::atomic<int>> count)
      : fid_(std::move(fid)), iounit_(iounit), parked_at_(parked_at), count_(std::move(count)) {
    count_->fetch_add(1, std::memory_order_relaxed);
  }
  ~ParkedFid() {
    if (count_ != nullptr) count_->fetch_sub(1, std::memory_order_relaxed);
  }
  ParkedFid(ParkedFid&& o) noexcept = default;
  ParkedFid& operator=(ParkedFid&& o) noexcept {
    if (count_ != nullptr) count_->fetch_sub(1, std::memory_order_relaxed);
    fid_ = std::move(o.fid_);
    iounit_ = o.iounit_;
    parked_at_ = o.parked_at_;
    count_ = std::move(o.count_);
    return *this;
  }

  const FidRef& fid() const { return fid_; }
  // Moves the fid out; the entry then no longer counts.
  FidRef Take() {
    if (count_ != nullptr) count_->fetch_sub(1, std::memory_order_relaxed);
    count_.reset();
    return std::move(fid_);
  }
  uint32_t iounit() const { return iounit_; }
  // When its handle was released.
  absl::Time parked_at() const { return parked_at_; }

 private:
  FidRef fid_;
  uint32_t iounit_;
  absl::Time parked_at_;
  // Relaxed: a cap on resources, nothing is published through it.
  std::shared_ptr<std::atomic<int>> count_;
};

}  // namespace p9::fuse

#endif  // P9_FUSE_FID_H_
