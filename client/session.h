// A 9P2000.L session on one Channel: version negotiation, tags, fids, and a
// blocking, thread-safe call for every operation.
#ifndef P9_CLIENT_SESSION_H_
#define P9_CLIENT_SESSION_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "client/call.h"
#include "client/channel.h"
#include "client/codec.h"
#include "client/errors.h"
#include "client/histogram.h"
#include "client/interrupt.h"
#include "client/messages.h"
#include "client/mutex.h"
#include "client/tunables.h"

namespace p9 {

// How a session behaves; every field has a sensible default.
struct SessionOptions {
  // msize asked for in Tversion; the server (and the channel) may lower it.
  uint32_t msize = tunables::kDefaultMsize;
  // Requests in flight at once; callers block for a tag beyond this.
  uint16_t max_tags = tunables::kDefaultMaxTags;
  // Per-RPC deadline; absl::InfiniteDuration() waits forever.
  absl::Duration timeout = absl::Seconds(tunables::kDefaultTimeoutSeconds);
  // How long a flush of a timed-out call may take before the channel is
  // declared dead.
  absl::Duration flush_timeout = absl::Seconds(tunables::kFlushTimeoutSeconds);
  // Trace every message to the log.
  bool debug = false;
  // Name used in log lines ("q0").
  std::string name = "9p";
};

// Counters of one session. Written with relaxed atomics by the threads that
// do the work; read at any time, each value individually consistent.
struct SessionStats {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> bytes_sent{0};
  std::atomic<uint64_t> bytes_received{0};
  std::atomic<uint64_t> errors{0};           // calls that returned non-OK
  std::atomic<uint64_t> protocol_errors{0};  // malformed/unexpected replies
  std::atomic<uint64_t> timeouts{0};
  std::atomic<uint64_t> flushes{0};
  std::atomic<uint64_t> interrupts{0};
  std::atomic<uint64_t> reconnects{0};  // channel re-established after a loss
  std::atomic<int64_t> in_flight{0};
  // Round trip (send to reply) of every RPC that got a reply, Rlerror
  // included; relaxed like the counters above.
  LatencyHistogram latency_us_log2{};
};

class Interrupter;
class Session;

// How a session re-establishes its connection after the channel dies (the
// server restarted, the link flapped, the QP went to error).
struct RecoveryOptions {
  // Opens a new channel to the same server. It should give up within a few
  // seconds: it also bounds how long closing a reconnecting session takes.
  std::function<absl::StatusOr<std::unique_ptr<Channel>>()> dial;
  // Runs on the new connection after Tversion, before any other call may
  // use it, on the recovery thread: re-creates what the owner keeps across
  // connections (Tattach of the root with the same fid number). Calls made
  // from it go through; a failure closes the new connection and retries.
  std::function<absl::Status(Session&)> restore;
  // Delay before the first redial; doubles up to max_backoff.
  absl::Duration first_backoff = absl::Milliseconds(tunables::kReconnectFirstBackoffMs);
  absl::Duration max_backoff = absl::Milliseconds(tunables::kReconnectMaxBackoffMs);
};

// Attributes and identity returned by several create-like calls.
struct OpenResult {
  Qid qid;
  uint32_t iounit = 0;
};

// Where Session::ReadTo() puts the data it read.
class ReadSink {
 public:
  // Runs on the channel's delivery thread with the bytes read (possibly
  // none, at end of file); `data` is valid only during the call. Must not
  // block on anything a 9P reply delivers.
  virtual void Deliver(absl::Span<const uint8_t> data) = 0;

 protected:
  ~ReadSink() = default;
};

// A read Session::ReadAsync() does not wait for: the session hands it the
// data (Deliver) and then its outcome (Done).
class AsyncRead : public ReadSink {
 public:
  // Runs exactly once, when the read is over, on whichever thread ended it
  // (the channel's delivery thread, the session's reaper, or a thread
  // closing the connection): with the byte count after Deliver() took the
  // data, or with the error, Deliver() not having run. Must not block on
  // anything a 9P reply delivers; the session does not touch this object
  // after calling it.
  virtual void Done(absl::StatusOr<size_t> n) = 0;

 protected:
  ~AsyncRead() = default;
};

// A 9P2000.L client session. Construct with Connect(); all methods are
// thread-safe and may be called from many threads at once. Every call either
// returns the server's answer, an errno-carrying Status (Rlerror), or fails
// with a Status when the deadline passes or the channel dies; none blocks
// forever unless the timeout is infinite.
//
// With EnableRecovery(), a dead channel is replaced: calls in flight on it
// fail with ConnectionLost (EIO), later calls wait (up to their deadline)
// for the new connection, and epoch() counts connections so owners can tell
// which of their fids the server still knows.
class Session final : private InterruptListener {
 public:
  // Starts `channel`, negotiates the version and msize, and returns the
  // session. Fails with a clear message if the server does not speak
  // 9P2000.L or does not answer within the timeout.
  static absl::StatusOr<std::unique_ptr<Session>> Connect(std::unique_ptr<Channel> channel,
                                                          const SessionOptions& options);
  // Closes the channel; calls still in flight fail.
  ~Session();

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Negotiated msize.
  uint32_t msize() const { return msize_.load(std::memory_order_relaxed); }
  // Largest payload of one Tread/Rread and one Twrite.
  uint32_t max_read() const { return msize() - kIoHeaderSize; }
  uint32_t max_write() const { return msize() - kIoHeaderSize; }
  const SessionOptions& options() const { return options_; }
  const SessionStats& stats() const { return stats_; }
  // True while a connection is up and usable. False while reconnecting
  // (calls then wait) and once closed (calls then fail at once).
  bool alive() const;
  // True once the session is closed for good.
  bool closed() const;
  // Closes the channel and stops recovery; in-flight and later calls fail
  // with `why`.
  void Close(const absl::Status& why);
  // Peer description from the channel.
  std::string Describe() const;

  // Starts replacing the channel whenever it dies, until Close(). Call once,
  // after Connect() and the owner's own setup (its attach).
  void EnableRecovery(RecoveryOptions recovery);
  // The connection's generation: 1 for the first, +1 for each replacement.
  // Fids made on an earlier connection are unknown to the server. A fid is
  // known to be current only if epoch() read before the request that made
  // it equals epoch() now (acquire: pairs with the store made before the new
  // connection carries calls).
  uint64_t epoch() const { return epoch_.load(std::memory_order_acquire); }
  // Waits until a connection is up (true) or the session is closed, the
  // deadline passes, or the calling operation is interrupted (false).
  bool AwaitConnected(absl::Time deadline);

  // Fids are numbers chosen by the client; these hand out unused ones.
  uint32_t AllocFid();
  // Returns a fid the server no longer knows (after Clunk/Remove, or after a
  // failed walk/attach that never created it).
  void FreeFid(uint32_t fid);

  // Sends any T-message and waits for its R-message (R = T's reply type).
  // Rlerror becomes an errno-carrying Status.
  template <typename R, typename T>
  absl::StatusOr<R> Rpc(const T& request);

  // --- Operations. fid arguments must have been established on this session.
  absl::StatusOr<Qid> Auth(uint32_t afid, const std::string& uname, const std::string& aname,
                           uint32_t n_uname);
  absl::StatusOr<Qid> Attach(uint32_t fid, uint32_t afid, const std::string& uname,
                             const std::string& aname, uint32_t n_uname);
  // Walks `names` (at most 16) from fid to newfid. Succeeds only if every
  // name was walked (then newfid exists); a partial walk is ENOENT. An empty
  // `names` clones fid.
  absl::StatusOr<std::vector<Qid>> Walk(uint32_t fid, uint32_t newfid,
                                        const std::vector<std::string>& names);
  absl::StatusOr<Rgetattr> Getattr(uint32_t fid, uint64_t mask = kGetattrBasic);
  absl::Status Setattr(const Tsetattr& request);
  absl::StatusOr<OpenResult> Lopen(uint32_t fid, uint32_t flags);
  // On success `fid` now refers to the new, open file.
  absl::StatusOr<OpenResult> Lcreate(uint32_t fid, const std::string& name, uint32_t flags,
                                     uint32_t mode, uint32_t gid);
  // Reads up to out.size() bytes (capped at max_read()) straight into `out`.
  absl::StatusOr<size_t> Read(uint32_t fid, uint64_t offset, absl::Span<uint8_t> out);
  // Reads up to `count` bytes (capped at max_read()) and hands them to
  // `sink` on the channel's delivery thread, from the receive buffer, before
  // this caller is woken: a reply can go on (e.g. to the kernel) without
  // a copy and without waiting for this thread to be scheduled. On OK the
  // sink was called exactly once, with the returned number of bytes; on an
  // error it was not called.
  absl::StatusOr<size_t> ReadTo(uint32_t fid, uint64_t offset, uint32_t count, ReadSink* sink);
  // ReadTo() without waiting: sends the Tread and returns. On OK,
  // read->Done() runs exactly once, possibly before this returns; on an
  // error nothing was sent and it never runs. The reply is handled on the
  // delivery thread, so no thread sleeps on the call and none is woken for
  // it. A deadline (the session's timeout) or `intr` (if given; it must
  // outlive Done()) makes the session's reaper thread flush the call: Done()
  // then gets DeadlineExceeded or EINTR, unless the reply wins the race.
  // Fails with ConnectionLost like the other calls; Done() may get it too.
  absl::Status ReadAsync(uint32_t fid, uint64_t offset, uint32_t count, AsyncRead* read,
                         Interrupter* intr = nullptr);
  // Writes up to max_write() bytes of `data`; returns how many the server took.
  absl::StatusOr<uint32_t> Write(uint32_t fid, uint64_t offset, absl::Span<const uint8_t> data);
  // Reads out.size() bytes (any amount) as Treads of at most `piece` bytes
  // (0 or more than max_read(): max_read()), up to kMaxPipelinedPieces of
  // them in flight together. Returns the bytes read from `offset` up to the
  // first short piece (end of file); fails if any piece before that fails,
  // so a short count always means end of file.
  absl::StatusOr<size_t> ReadMany(uint32_t fid, uint64_t offset, absl::Span<uint8_t> out,
                                  uint32_t piece = 0);
  // Writes all of `data` as pipelined Twrites likewise. Returns how many
  // bytes from `offset` the server took up to the first short piece; fails
  // if any piece before that fails (pieces around it may have been written:
  // repeat the whole write). The pieces may be applied in any order, so
  // never use it on a file opened O_APPEND.
  absl::StatusOr<size_t> WriteMany(uint32_t fid, uint64_t offset, absl::Span<const uint8_t> data,
                                   uint32_t piece = 0);
  // Clunks and frees fid. The fid is gone even if the server reports an
  // error (9P semantics), so it is always returned to the pool.
  absl::Status Clunk(uint32_t fid);
  // Removes the file and frees fid (likewise always).
  absl::Status Remove(uint32_t fid);
  absl::StatusOr<Rstatfs> Statfs(uint32_t fid);
  absl::StatusOr<Qid> Symlink(uint32_t dfid, const std::string& name, const std::string& target,
                              uint32_t gid);
  absl::StatusOr<Qid> Mknod(uint32_t dfid, const std::string& name, uint32_t mode, uint32_t major,
                            uint32_t minor, uint32_t gid);
  absl::StatusOr<Qid> Mkdir(uint32_t dfid, const std::string& name, uint32_t mode, uint32_t gid);
  absl::Status Rename(uint32_t fid, uint32_t dfid, const std::string& name);
  absl::Status Renameat(uint32_t olddirfid, const std::string& oldname, uint32_t newdirfid,
                        const std::string& newname);
  absl::Status Unlinkat(uint32_t dirfid, const std::string& name, uint32_t flags);
  absl::Status Link(uint32_t dfid, uint32_t fid, const std::string& name);
  absl::StatusOr<std::string> Readlink(uint32_t fid);
  // One Treaddir; an empty result means end of directory.
  absl::StatusOr<std::vector<Dirent>> Readdir(uint32_t fid, uint64_t offset, uint32_t count);
  absl::Status Fsync(uint32_t fid, bool datasync);
  // Returns Rlock.status (kLockSuccess, kLockBlocked, …).
  absl::StatusOr<uint8_t> Lock(const Tlock& request);
  absl::StatusOr<Rgetlock> Getlock(const Tgetlock& request);
  // Txattrwalk: newfid becomes a handle to read `name` ("" lists names).
  absl::StatusOr<uint64_t> Xattrwalk(uint32_t fid, uint32_t newfid, const std::string& name);
  absl::Status Xattrcreate(uint32_t fid, const std::string& name, uint64_t size, uint32_t flags);

  // Convenience sequences built from the calls above.
  // The value of xattr `name`, or with name "" the NUL-separated list.
  absl::StatusOr<std::string> GetXattr(uint32_t fid, const std::string& name);
  // Sets xattr `name` (flags: kXattrCreate/kXattrReplace) via a cloned fid.
  absl::Status SetXattr(uint32_t fid, const std::string& name, absl::Span<const uint8_t> value,
                        uint32_t flags);

 private:
  // One connection: its channel and the receiver that routes its
  // deliveries to the session.
  struct Conn;
  // A call slot taken for one request, and the connection it goes out on.
  struct Slot {
    Call* call = nullptr;
    std::shared_ptr<Conn> link;
    // When Post() sent the request (for the latency histogram).
    std::chrono::steady_clock::time_point sent_at{};
  };
  // One request of a ReadMany/WriteMany (defined in session.cc).
  struct Piece;
  // A ReadAsync() call in flight: its sink, and who may still use its tag.
  struct Detached;
  enum class State {
    kUp,         // the link carries calls
    kDown,       // the link died; the recovery thread is replacing it
    kRestoring,  // a new link is up; only the recovery thread may call
    kClosed,     // for good
  };

  Session(std::unique_ptr<Channel> channel, const SessionOptions& options);

  // Deliveries of `link`'s channel, on its delivery thread.
  void OnMessage(Conn* link, absl::Span<const uint8_t> msg);
  void OnBadMessage(Conn* link, uint16_t tag, const absl::Status& why);
  void OnClosed(Conn* link, const absl::Status& why);

  absl::Status Negotiate(Conn& link, uint32_t want);
  // Takes a free tag (blocking until one is free or the deadline passes;
  // with wait=false failing with ResourceExhausted at once if none is) and
  // arms its call to accept a reply of type `expect`.
  absl::StatusOr<Slot> Acquire(MsgType expect, absl::Time deadline, ReplySink* sink = nullptr,
                               bool wait = true, bool detached = false);
  // Returns a call's tag to the free list.
  void Release(const Slot& slot);
  // Sends the call's request and waits for its reply; on deadline flushes it.
  // On OK, call->reply() holds an R-message of the expected type (or
  // Rlerror) whose header is valid.
  absl::Status Transact(Slot& slot, absl::Time deadline);
  // The two halves of Transact(). Post() sends; if it fails the call is
  // finished (only Release() remains). Await() waits for the reply of a
  // posted call, flushing it on deadline or interrupt.
  absl::Status Post(Slot& slot);
  absl::Status Await(const Slot& slot, absl::Time deadline);
  // Runs pieces[0..n) in order with up to kMaxPipelinedPieces in flight:
  // `encode` fills a piece's request, `finish` judges its reply and returns
  // whether later pieces are still wanted. Every posted piece is awaited
  // (its sink is never used after this returns).
  void Pipeline(std::vector<Piece>& pieces, MsgType expect,
                const std::function<void(Piece&, Call*)>& encode,
                const std::function<bool(Piece&, Call*, absl::Status)>& finish);
  // Sends Tflush(oldtag) and waits for Rflush; closes the channel if that
  // fails, so the flushed call is completed one way or the other.
  void FlushAndWait(const Slot& slot);
  // The part of it that sends the flush: whether Rflush came (false: the
  // link was gone or has been closed, and OnClosed() completes the call).
  bool SendFlush(const Slot& slot);
  // Ends a claimed (or cancelled) call with `why`: publishes it to its
  // waiter, or finishes it if detached.
  void FailClaimed(Call* call, const absl::Status& why);
  // Ends a detached call taken from kWaiting: Done(result), then the tag
  // goes back once the reaper no longer flushes it.
  // `replied`: a reply ended it (its round trip counts in the latency
  // histogram).
  void FinishDetached(Call* call, Detached* d, absl::StatusOr<size_t> result, bool replied);
  // Flushes a detached call for the reaper, which holds a reference.
  void FlushDetached(Detached* d, const Slot& slot, bool interrupted);
  // Drops one of a detached call's references (see Detached::refs); the
  // last returns the tag and frees it.
  void Unref(Call* call, Detached* d);
  // The reaper thread: flushes detached calls past their deadline or
  // interrupted.
  void ReaperLoop();
  void OnInterrupt() override;
  // The recovery thread: waits for kDown, redials with backoff.
  void RecoveryLoop();
  // One attempt: dial, Tversion, restore. On failure the new link is closed.
  absl::Status Redial();
  // Waits under mu_ until pred() (true), or the deadline passes or `intr`
  // is interrupted (false).
  template <typename Pred>
  bool AwaitInterruptibly(Pred pred, absl::Time deadline, const Interrupter* intr)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // May this thread take a tag now?
  bool MayCall() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // A request that cannot be encoded, or is larger than msize, never goes
  // out: E2BIG/ENAMETOOLONG for the caller instead of a malformed message.
  absl::Status CheckEncoded(bool encoded, size_t size, const char* request_name) const;
  // The error of a Tread reply its sink did not take.
  absl::Status UnconsumedRread(absl::Span<const uint8_t> reply, uint32_t count);
  // Checks an Rwrite (or Rlerror) for a Twrite of `count` bytes; on OK *n
  // is how many the server took.
  absl::Status WrittenCount(const Call* call, uint32_t count, uint32_t* n);
  // Turns a received reply into an OK or the Rlerror errno.
  absl::Status ReplyError(const Call* call, const char* request_name) const;
  // The same for a reply still in the receive buffer.
  absl::Status ErrorIn(absl::Span<const uint8_t> reply, const char* request_name) const;
  Call* FindCall(uint16_t tag);
  void Trace(const char* dir, absl::Span<const uint8_t> msg) const;
  absl::Time Deadline() const;

  const SessionOptions options_;
  // Number of tags (call slots): options_.max_tags made valid.
  const uint16_t num_tags_;
  // Set by Negotiate() before any other call can start; read by the delivery
  // thread to bound replies. Relaxed: it is a limit, not a publication.
  std::atomic<uint32_t> msize_{0};
  SessionStats stats_;

  // Call slots, indexed by tag; the Tversion call (tag NOTAG) is separate.
  // The array never moves, so a completion may wake a call's futex even
  // after the waiter has returned (the slot is still valid memory).
  std::unique_ptr<Call[]> calls_;
  Call version_call_;

  // Written under mu_ when a new link is installed, before it carries
  // calls; see epoch().
  std::atomic<uint64_t> epoch_{1};

  mutable Mutex mu_;
  // The current connection. Senders copy it when they take a tag, so a
  // link stays valid while anyone still uses it.
  std::shared_ptr<Conn> link_ ABSL_GUARDED_BY(mu_);
  // Null while reconnecting between redials (the dead link's resources
  // are released at once); the last link's description stays.
  std::string description_ ABSL_GUARDED_BY(mu_);
  // Free tags, oldest-freed first, so a late duplicate reply is unlikely to
  // hit a reused tag.
  std::deque<uint16_t> free_tags_ ABSL_GUARDED_BY(mu_);
  // No call is armed on a link once it left kUp (kRestoring: only by the
  // recovery thread), so OnClosed() finds every call armed on its link.
  State state_ ABSL_GUARDED_BY(mu_) = State::kUp;
  absl::Status closed_status_ ABSL_GUARDED_BY(mu_);
  // Close() was called: never recover again.
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Signalled (under mu_) when stopping_ is set or state_ becomes kDown or
  // kClosed: the recovery thread waits on it rather than with mu_.Await(),
  // which would wake it at every tag taken or returned.
  CondVar state_changed_;
  bool recovery_enabled_ ABSL_GUARDED_BY(mu_) = false;
  // Set by EnableRecovery() before the thread starts; then only that thread
  // reads it.
  RecoveryOptions recovery_;
  std::thread recovery_thread_;

  // Detached calls (ReadAsync) and their reaper.
  Mutex async_mu_;
  // By tag, while not finished.
  absl::flat_hash_map<uint16_t, Detached*> detached_ ABSL_GUARDED_BY(async_mu_);
  // Until when the reaper sleeps: a call due earlier must wake it.
  absl::Time reaper_until_ ABSL_GUARDED_BY(async_mu_) = absl::InfiniteFuture();
  bool reaper_poked_ ABSL_GUARDED_BY(async_mu_) = false;
  bool reaper_stop_ ABSL_GUARDED_BY(async_mu_) = false;
  CondVar reaper_wake_;
  // Started with the first ReadAsync(); joined by the destructor.
  std::thread reaper_thread_ ABSL_GUARDED_BY(async_mu_);

  Mutex fid_mu_;
  std::vector<uint32_t> free_fids_ ABSL_GUARDED_BY(fid_mu_);
  uint32_t next_fid_ ABSL_GUARDED_BY(fid_mu_) = 0;
};

// Implementation of the template.
template <typename R, typename T>
absl::StatusOr<R> Session::Rpc(const T& request) {
  static_assert(static_cast<uint8_t>(R::kType) == static_cast<uint8_t>(T::kType) + 1,
                "R must be the reply type of T");
  absl::Time deadline = Deadline();
  absl::StatusOr<Slot> slot = Acquire(R::kType, deadline);
  if (!slot.ok()) return slot.status();
  Call* call = slot->call;
  bool encoded = EncodeMessage(call->tag(), request, &call->request());
  absl::Status st = CheckEncoded(encoded, call->request().size(), T::kName);
  if (st.ok()) st = Transact(*slot, deadline);
  if (st.ok()) st = ReplyError(call, T::kName);
  absl::StatusOr<R> out = absl::UnknownError("unset");
  if (!st.ok()) {
    out = st;
  } else {
    out = DecodeMessage<R>(call->reply(), msize());
    if (!out.ok()) {
      stats_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
      out = ProtocolError(out.status().message());
    }
  }
  Release(*slot);
  if (!out.ok()) stats_.errors.fetch_add(1, std::memory_order_relaxed);
  return out;
}

}  // namespace p9

#endif  // P9_CLIENT_SESSION_H_
