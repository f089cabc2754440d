#include "client/session.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/errors.h"
#include "client/interrupt.h"
#include "client/log.h"
#include "client/trace.h"

namespace p9 {

// Routes one channel's deliveries to the session, tagged with the link, so
// the session can tell the current connection from one it replaced.
struct Session::Conn : ChannelReceiver {
  Conn(Session* s, uint64_t e, std::unique_ptr<Channel> c)
      : session(s), epoch(e), channel(std::move(c)) {}
  void OnMessage(absl::Span<const uint8_t> msg) override { session->OnMessage(this, msg); }
  void OnBadMessage(uint16_t tag, const absl::Status& why) override {
    session->OnBadMessage(this, tag, why);
  }
  void OnClosed(const absl::Status& why) override { session->OnClosed(this, why); }

  Session* const session;
  const uint64_t epoch;
  const std::unique_ptr<Channel> channel;
};

namespace {
// The payload of an Rread (`msg` is a whole message whose size field the
// channel checked) asked for `count` bytes, decoded in place.
absl::StatusOr<absl::Span<const uint8_t>> RreadData(absl::Span<const uint8_t> msg, uint32_t count) {
  if (msg.size() < kHeaderSize) return ProtocolError("Rread is malformed");
  Decoder d(msg.subspan(kHeaderSize));
  uint32_t got = d.U32();
  const uint8_t* data = d.Take(got);
  if (data == nullptr || d.remaining() != 0) return ProtocolError("Rread is malformed");
  if (got > count) {
    return ProtocolError(
        absl::StrCat("Rread returned ", got, " bytes for a ", count, "-byte read"));
  }
  return absl::MakeConstSpan(data, got);
}

// Hands a well-formed Rread's payload to a ReadSink on the delivery thread.
// A malformed one is left to the waiter, which reports it.
class RreadSink final : public ReplySink {
 public:
  RreadSink(uint32_t count, ReadSink* out) : count_(count), out_(out) {}

  bool Consume(absl::Span<const uint8_t> msg) override {
    absl::StatusOr<absl::Span<const uint8_t>> data = RreadData(msg, count_);
    if (!data.ok()) return false;
    out_->Deliver(*data);
    // Read by the waiter after its acquire load of kDone, which the
    // delivery thread's release store (CompleteConsumed) orders after this.
    got_ = data->size();
    return true;
  }
  size_t got() const { return got_; }

 private:
  const uint32_t count_;
  ReadSink* const out_;
  size_t got_ = 0;
};

}  // namespace

// A detached call's sink and bookkeeping. count/read/intr/deadline/rread are
// set before Arm() publishes the sink; the rest is guarded by the session's
// async_mu_.
struct Session::Detached final : ReplySink {
  Detached(uint32_t c, AsyncRead* r, Interrupter* i, absl::Time d)
      : count(c), read(r), intr(i), deadline(d), rread(c, r) {}

  bool Consume(absl::Span<const uint8_t> msg) override { return rread.Consume(msg); }

  const uint32_t count;
  AsyncRead* const read;
  // Valid until Done(): read only under async_mu_ while !finished.
  Interrupter* const intr;
  const absl::Time deadline;
  // Hands the payload to `read`; its got() belongs to the thread that took
  // the call from kWaiting.
  RreadSink rread;
  // Under async_mu_:
  // For the reaper (and the latency histogram); set when the call is
  // registered in detached_.
  Slot slot;
  // The Tread went out: from then on the reaper may flush it (a flush sent
  // before the request would not stop it).
  bool posted = false;
  // Taken from kWaiting and about to run Done() (which may free `read` and
  // `intr`); out of detached_ for good.
  bool finished = false;
  // The call's own reference, the poster's until ReadAsync() returns (the
  // connection may die and end the call before that), and the reaper's
  // while it flushes: the tag goes back when all are gone, so neither the
  // record nor a flush ever names a reused tag.
  int refs = 2;
  bool flushing = false;
};

namespace {
// The session whose recovery thread this is, while it restores: its calls
// may go out on a link that is not yet open to everybody.
thread_local const void* tls_restoring = nullptr;
}  // namespace

Session::Session(std::unique_ptr<Channel> channel, const SessionOptions& options)
    : options_(options),
      // At least one tag, and never NOTAG.
      num_tags_(options.max_tags == 0
                    ? 1
                    : (options.max_tags == kNoTag ? kNoTag - 1 : options.max_tags)) {
  const uint16_t n = num_tags_;
  calls_ = std::make_unique<Call[]>(n);
  MutexLock lock(&mu_);
  link_ = std::make_shared<Conn>(this, 1, std::move(channel));
  description_ = link_->channel->Describe();
  for (uint16_t t = 0; t < n; ++t) {
    calls_[t].set_tag(t);
    free_tags_.push_back(t);
  }
  version_call_.set_tag(kNoTag);
}

Session::~Session() {
  Close(absl::UnavailableError("session closed"));
  if (recovery_thread_.joinable()) recovery_thread_.join();
  std::thread reaper;
  {
    MutexLock lock(&async_mu_);
    reaper_stop_ = true;
    reaper_wake_.SignalAll();
    reaper = std::move(reaper_thread_);
  }
  if (reaper.joinable()) reaper.join();
}

absl::StatusOr<std::unique_ptr<Session>> Session::Connect(std::unique_ptr<Channel> channel,
                                                          const SessionOptions& options) {
  if (channel == nullptr) return absl::InvalidArgumentError("no channel");
  std::unique_ptr<Session> s(new Session(std::move(channel), options));
  std::shared_ptr<Conn> link;
  {
    MutexLock lock(&s->mu_);
    link = s->link_;
  }
  if (absl::Status st = link->channel->Start(link.get()); !st.ok()) return st;
  if (absl::Status st = s->Negotiate(*link, options.msize); !st.ok()) {
    s->Close(st);
    return st;
  }
  return s;
}

absl::Status Session::Negotiate(Conn& link, uint32_t asked) {
  uint32_t want = std::min(asked, link.channel->max_message_size());
  if (want < tunables::kMinMsize) {
    return absl::InvalidArgumentError(
        absl::StrCat("msize ", want, " is below the minimum ", tunables::kMinMsize));
  }
  absl::Time deadline = Deadline();
  {
    MutexLock lock(&mu_);
    if (state_ == State::kClosed) return closed_status_;
    version_call_.Arm(MsgType::kRversion);
  }
  EncodeMessage(kNoTag, Tversion{want, kVersion9P2000L}, &version_call_.request());
  // Replies are checked against this until the server answers.
  msize_.store(want, std::memory_order_relaxed);
  if (options_.debug) Trace(">>>", version_call_.request());
  absl::Status st = link.channel->Send(version_call_.request());
  if (st.ok() && !version_call_.WaitUntil(deadline)) {
    // Nothing to flush before a version is agreed: the server is not
    // answering, so the channel goes and Close() completes the call.
    link.channel->Close(absl::DeadlineExceededError("no answer to Tversion"));
    version_call_.WaitUntil(absl::InfiniteFuture());
  }
  if (!st.ok()) {
    if (!version_call_.Cancel()) version_call_.WaitUntil(absl::InfiniteFuture());
    return st;
  }
  if (!version_call_.result().ok()) return version_call_.result();
  if (absl::Status e = ReplyError(&version_call_, "Tversion"); !e.ok()) return e;
  absl::StatusOr<Rversion> rv = DecodeMessage<Rversion>(version_call_.reply(), want);
  if (!rv.ok()) return ProtocolError(rv.status().message());
  if (rv->version != kVersion9P2000L) {
    return absl::FailedPreconditionError(absl::StrCat(
        "server speaks \"", rv->version, "\", not 9P2000.L (is it a 9P2000.L server?)"));
  }
  if (rv->msize > want) {
    return ProtocolError(absl::StrCat("server raised msize from ", want, " to ", rv->msize));
  }
  if (rv->msize < tunables::kMinMsize) {
    return absl::FailedPreconditionError(
        absl::StrCat("server msize ", rv->msize, " is below the minimum ", tunables::kMinMsize));
  }
  msize_.store(rv->msize, std::memory_order_relaxed);
  link.channel->SetReceiveLimit(rv->msize);
  P9_LOG(kInfo, "%s: %s, msize %u", options_.name, link.channel->Describe(), rv->msize);
  return absl::OkStatus();
}

bool Session::alive() const {
  MutexLock lock(&mu_);
  return state_ == State::kUp;
}

bool Session::closed() const {
  MutexLock lock(&mu_);
  return state_ == State::kClosed;
}

std::string Session::Describe() const {
  MutexLock lock(&mu_);
  return description_;
}

void Session::Close(const absl::Status& why) {
  std::shared_ptr<Conn> link;
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    if (state_ == State::kDown) {
      // No live link to report it: callers waiting for one fail now.
      state_ = State::kClosed;
      closed_status_ = why;
    }
    state_changed_.SignalAll();
    link = link_;
  }
  if (link != nullptr) link->channel->Close(why);
}

void Session::EnableRecovery(RecoveryOptions recovery) {
  {
    MutexLock lock(&mu_);
    if (recovery_enabled_ || stopping_) return;
    recovery_enabled_ = true;
  }
  recovery_ = std::move(recovery);
  recovery_thread_ = std::thread([this] { RecoveryLoop(); });
  // A channel that died before recovery was enabled has left the session
  // closed; nothing to recover then (the owner sees calls fail).
}

void Session::RecoveryLoop() {
  absl::Duration backoff = recovery_.first_backoff;
  int failures = 0;
  for (;;) {
    std::shared_ptr<Conn> old;
    {
      MutexLock lock(&mu_);
      state_changed_.Await(&mu_, [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stopping_ || state_ == State::kDown || state_ == State::kClosed;
      });
      if (stopping_ || state_ == State::kClosed) return;
      old = link_;
    }
    if (old != nullptr) {
      // When Close() returns no delivery from the old connection is left,
      // so none can reach a call armed on the new one.
      old->channel->Close(absl::UnavailableError("replaced by a new connection"));
      // Let its resources go now, not when a redial succeeds: an RDMA
      // device cannot be removed (nor a failed one reset) while a process
      // still holds a QP on it.
      MutexLock lock(&mu_);
      if (link_ == old) link_.reset();
    }
    old.reset();
    {
      // Back off before every attempt but the first after a working link,
      // and wake at once for Close().
      MutexLock lock(&mu_);
      if (failures > 0) {
        state_changed_.AwaitWithDeadline(
            &mu_, [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; },
            absl::Now() + backoff);
      }
      if (stopping_) return;
    }
    absl::Status st = Redial();
    if (st.ok()) {
      P9_LOG(kWarning, "%s: reconnected to %s (connection %llu) after %d failed attempt(s)",
             options_.name, Describe(), static_cast<unsigned long long>(epoch()), failures);
      failures = 0;
      backoff = recovery_.first_backoff;
      continue;
    }
    ++failures;
    // Warn the first time and then about every 30 s, not at every attempt.
    if (failures == 1 || failures % 15 == 0) {
      P9_LOG(kWarning, "%s: reconnect attempt %d failed: %s; retrying", options_.name, failures,
             st.message());
    } else {
      P9_LOG(kInfo, "%s: reconnect attempt %d failed: %s", options_.name, failures, st.message());
    }
    backoff = std::min(backoff * 2, recovery_.max_backoff);
  }
}

absl::Status Session::Redial() {
  absl::StatusOr<std::unique_ptr<Channel>> ch = recovery_.dial();
  if (!ch.ok()) return ch.status();
  auto link = std::make_shared<Conn>(this, epoch() + 1, std::move(*ch));
  {
    MutexLock lock(&mu_);
    if (stopping_ || state_ == State::kClosed) return absl::CancelledError("session closed");
    link_ = link;
    description_ = link->channel->Describe();
    state_ = State::kRestoring;
    epoch_.store(link->epoch, std::memory_order_release);
  }
  absl::Status st = link->channel->Start(link.get());
  bool started = st.ok();
  if (st.ok()) {
    uint32_t before = msize();
    st = Negotiate(*link, before);
    if (st.ok() && msize() < before) {
      st = absl::FailedPreconditionError(
          absl::StrCat("server now offers msize ", msize(), " < ", before));
    }
  }
  if (st.ok() && recovery_.restore) {
    tls_restoring = this;
    st = recovery_.restore(*this);
    tls_restoring = nullptr;
  }
  {
    MutexLock lock(&mu_);
    if (st.ok() && state_ == State::kRestoring && link_ == link) {
      state_ = State::kUp;
      stats_.reconnects.fetch_add(1, std::memory_order_relaxed);
      return absl::OkStatus();
    }
    if (st.ok()) st = ConnectionLost("the new connection died while restoring");
    if (state_ == State::kRestoring && link_ == link) {
      // Close() may have come before the link was started (then no OnClosed
      // reports it): waiting callers must learn now that it is over.
      if (stopping_) {
        state_ = State::kClosed;
        closed_status_ = absl::CancelledError("session closed");
      } else {
        state_ = State::kDown;
      }
      state_changed_.SignalAll();
    }
  }
  if (started) link->channel->Close(st);
  return st;
}

template <typename Pred>
bool Session::AwaitInterruptibly(Pred pred, absl::Time deadline, const Interrupter* intr) {
  // The interrupter wakes only a call it is waiting on, not this mutex:
  // look at it every 100 ms (waiting for a reconnect can be long).
  while (!pred()) {
    absl::Time until = deadline;
    if (intr != nullptr) until = std::min(deadline, absl::Now() + absl::Milliseconds(100));
    if (mu_.AwaitWithDeadline(pred, until)) return true;
    if (absl::Now() >= deadline || (intr != nullptr && intr->interrupted())) return false;
  }
  return true;
}

bool Session::AwaitConnected(absl::Time deadline) {
  Interrupter* intr = ScopedInterruptible::Current();
  MutexLock lock(&mu_);
  auto settled = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return state_ == State::kUp || state_ == State::kClosed;
  };
  return AwaitInterruptibly(settled, deadline, intr) && state_ == State::kUp;
}

absl::Time Session::Deadline() const {
  if (options_.timeout == absl::InfiniteDuration()) return absl::InfiniteFuture();
  return absl::Now() + options_.timeout;
}

uint32_t Session::AllocFid() {
  MutexLock lock(&fid_mu_);
  if (!free_fids_.empty()) {
    uint32_t f = free_fids_.back();
    free_fids_.pop_back();
    return f;
  }
  return next_fid_++;
}

void Session::FreeFid(uint32_t fid) {
  MutexLock lock(&fid_mu_);
  free_fids_.push_back(fid);
}

bool Session::MayCall() const {
  return state_ == State::kUp || (state_ == State::kRestoring && tls_restoring == this);
}

absl::StatusOr<Session::Slot> Session::Acquire(MsgType expect, absl::Time deadline, ReplySink* sink,
                                               bool wait, bool detached) {
  // An operation already interrupted sends nothing more (but flushes, which
  // are made without an interrupter in scope, still go).
  Interrupter* intr = ScopedInterruptible::Current();
  if (intr != nullptr && intr->interrupted() && expect != MsgType::kRflush) {
    return ErrnoError(EINTR, "9P request interrupted");
  }
  MutexLock lock(&mu_);
  auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return state_ == State::kClosed || (MayCall() && !free_tags_.empty());
  };
  if (!wait && !ready()) return absl::ResourceExhaustedError("no free 9P tag");
  if (!AwaitInterruptibly(ready, deadline, expect == MsgType::kRflush ? nullptr : intr)) {
    if (intr != nullptr && intr->interrupted() && expect != MsgType::kRflush) {
      return ErrnoError(EINTR, "9P request interrupted");
    }
    stats_.timeouts.fetch_add(1, std::memory_order_relaxed);
    return state_ == State::kUp
               ? absl::DeadlineExceededError("timed out waiting for a free 9P tag")
               : absl::DeadlineExceededError("timed out waiting for the 9P server to come back");
  }
  // Arming under mu_ while the link may carry calls is what lets OnClosed()
  // find every armed call: it leaves kUp under the same mutex before it scans.
  if (state_ == State::kClosed) return closed_status_;
  Call* call = &calls_[free_tags_.front()];
  free_tags_.pop_front();
  call->Arm(expect, sink, detached);
  stats_.in_flight.fetch_add(1, std::memory_order_relaxed);
  return Slot{call, link_};
}

void Session::Release(const Slot& slot) {
  MutexLock lock(&mu_);
  slot.call->Disarm();
  free_tags_.push_back(slot.call->tag());
  stats_.in_flight.fetch_sub(1, std::memory_order_relaxed);
}

absl::Status Session::Transact(Slot& slot, absl::Time deadline) {
  if (absl::Status st = Post(slot); !st.ok()) return st;
  return Await(slot, deadline);
}

absl::Status Session::Post(Slot& slot) {
  Call* call = slot.call;
  stats_.requests.fetch_add(1, std::memory_order_relaxed);
  stats_.bytes_sent.fetch_add(call->request().size(), std::memory_order_relaxed);
  if (options_.debug) Trace(">>>", call->request());
  slot.sent_at = std::chrono::steady_clock::now();
  if (absl::Status st = slot.link->channel->Send(call->request()); !st.ok()) {
    // Nothing was (fully) sent, so no reply will come; but the channel may
    // have died concurrently and OnClosed may have claimed the call.
    if (!call->Cancel()) call->WaitUntil(absl::InfiniteFuture());
    return ConnectionLost(st.message());
  }
  return absl::OkStatus();
}

absl::Status Session::Await(const Slot& slot, absl::Time deadline) {
  Call* call = slot.call;
  Interrupter* intr = ScopedInterruptible::Current();
  bool done;
  if (intr != nullptr) {
    intr->waiting_.store(call, std::memory_order_release);
    done = call->WaitUntil(deadline, intr->flag());
    intr->waiting_.store(nullptr, std::memory_order_release);
  } else {
    done = call->WaitUntil(deadline);
  }
  if (!done) {
    bool interrupted = intr != nullptr && intr->interrupted();
    if (interrupted) {
      stats_.interrupts.fetch_add(1, std::memory_order_relaxed);
    } else {
      stats_.timeouts.fetch_add(1, std::memory_order_relaxed);
      P9_LOG(kWarning, "%s: tag %u timed out after %s, flushing", options_.name, call->tag(),
             absl::FormatDuration(options_.timeout));
    }
    FlushAndWait(slot);
    if (!call->IsDone()) {
      return interrupted ? ErrnoError(EINTR, "9P request interrupted")
                         : absl::DeadlineExceededError("9P request timed out");
    }
  }
  // OK means a reply arrived (a failed call carries the channel's error).
  if (call->result().ok()) {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - slot.sent_at);
    RecordLatency(stats_.latency_us_log2, static_cast<uint64_t>(us.count()));
  }
  return call->result();
}

void Session::FlushAndWait(const Slot& slot) {
  Call* call = slot.call;
  if (!SendFlush(slot)) {
    // OnClosed() has failed (or is about to fail, without blocking) every
    // call on the link: just wait for that.
    call->WaitUntil(absl::InfiniteFuture());
    return;
  }
  // Rflush arrived. A reply that came before it was already delivered (the
  // delivery thread is serial), so the call is either done or never will be.
  if (call->IsDone()) return;
  if (call->Cancel()) {
    // The reply will never come: give back what the transport reserved for
    // it (an RDMA receive credit), or credits would leak one per flush.
    slot.link->channel->ForgetReply();
  } else {
    call->WaitUntil(absl::InfiniteFuture());
  }
}

bool Session::SendFlush(const Slot& slot) {
  Call* call = slot.call;
  stats_.flushes.fetch_add(1, std::memory_order_relaxed);
  absl::Time deadline = absl::Now() + options_.flush_timeout;
  bool link_gone;
  {
    MutexLock lock(&mu_);
    link_gone = link_ != slot.link || state_ != State::kUp;
  }
  // The flush would have to go on the call's own link. That link is no
  // longer current, so it is dead.
  if (link_gone) return false;
  absl::StatusOr<Slot> flush = Acquire(MsgType::kRflush, deadline);
  bool flushed = false;
  if (flush.ok() && flush->link == slot.link) {
    EncodeMessage(flush->call->tag(), Tflush{call->tag()}, &flush->call->request());
    if (options_.debug) Trace(">>>", flush->call->request());
    if (slot.link->channel->Send(flush->call->request()).ok()) {
      flushed = flush->call->WaitUntil(deadline) && flush->call->result().ok();
    }
  }
  if (flush.ok()) {
    if (!flush->call->IsDone() && !flush->call->Cancel()) {
      flush->call->WaitUntil(absl::InfiniteFuture());
    }
    Release(*flush);
  }
  if (!flushed) {
    // The server answers neither the request nor its flush: it is gone or
    // broken. Closing the channel completes every call on it, this one
    // included, so no thread waits forever.
    P9_LOG(kError, "%s: no Rflush for tag %u; closing %s", options_.name, call->tag(),
           slot.link->channel->Describe());
    slot.link->channel->Close(
        absl::UnavailableError("9P server stopped answering (flush timed out)"));
    return false;
  }
  return true;
}

absl::Status Session::CheckEncoded(bool encoded, size_t size, const char* request_name) const {
  if (!encoded) {
    return ErrnoError(ENAMETOOLONG,
                      absl::StrCat(request_name, ": a name or count does not fit its 9P field"));
  }
  if (size > msize()) {
    return ErrnoError(E2BIG,
                      absl::StrCat(request_name, " of ", size, " bytes exceeds msize ", msize()));
  }
  return absl::OkStatus();
}

absl::Status Session::ReplyError(const Call* call, const char* request_name) const {
  return ErrorIn(call->reply(), request_name);
}

absl::Status Session::ErrorIn(absl::Span<const uint8_t> r, const char* request_name) const {
  if (r.size() >= kHeaderSize && r[4] == static_cast<uint8_t>(MsgType::kRlerror)) {
    absl::StatusOr<Rlerror> e = DecodeMessage<Rlerror>(r, static_cast<uint32_t>(r.size()));
    if (!e.ok()) return ProtocolError(e.status().message());
    int err = static_cast<int>(e->ecode);
    if (err <= 0 || err > 4095) return ProtocolError(absl::StrCat("Rlerror with errno ", e->ecode));
    return ErrnoError(err, absl::StrCat(request_name, ": ", strerror(err)));
  }
  return absl::OkStatus();
}

Call* Session::FindCall(uint16_t tag) {
  if (tag == kNoTag) return &version_call_;
  return tag < num_tags_ ? &calls_[tag] : nullptr;
}

void Session::OnMessage(Conn* link, absl::Span<const uint8_t> msg) {
  (void)link;  // calls are armed only on the current link (see OnClosed)
  stats_.bytes_received.fetch_add(msg.size(), std::memory_order_relaxed);
  if (options_.debug) Trace("<<<", msg);
  absl::StatusOr<Header> h = ParseHeader(msg, msize());
  if (!h.ok()) {
    // The transport guarantees size == length, so this is a size over msize.
    stats_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
    P9_LOG(kWarning, "%s: %s", options_.name, h.status().message());
    if (msg.size() >= kHeaderSize) OnBadMessage(link, msg[5] | (msg[6] << 8), h.status());
    return;
  }
  Call* call = FindCall(h->tag);
  if (call == nullptr || !call->Claim()) {
    stats_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
    P9_LOG(kWarning, "%s: %s for tag %u that is not waiting (unknown or duplicate); dropped",
           options_.name, MsgTypeName(h->type), h->tag);
    return;
  }
  if (h->type != static_cast<uint8_t>(call->expected()) &&
      h->type != static_cast<uint8_t>(MsgType::kRlerror)) {
    stats_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
    std::string what =
        absl::StrCat("reply ", MsgTypeName(h->type), " to tag ", h->tag, " which expects ",
                     MsgTypeName(static_cast<uint8_t>(call->expected())));
    P9_LOG(kWarning, "%s: %s", options_.name, what);
    FailClaimed(call, ProtocolError(what));
    return;
  }
  ReplySink* sink = call->sink();
  if (call->detached()) {
    auto* d = static_cast<Detached*>(sink);
    if (h->type == static_cast<uint8_t>(call->expected()) && d->Consume(msg)) {
      FinishDetached(call, d, d->rread.got(), true);
    } else {
      FinishDetached(call, d, UnconsumedRread(msg, d->count), true);
    }
    return;
  }
  if (sink != nullptr && h->type == static_cast<uint8_t>(call->expected()) && sink->Consume(msg)) {
    call->CompleteConsumed();
    return;
  }
  call->Complete(msg);
}

void Session::OnBadMessage(Conn* link, uint16_t tag, const absl::Status& why) {
  (void)link;
  stats_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
  P9_LOG(kWarning, "%s: bad message for tag %u: %s", options_.name, tag, why.message());
  Call* call = FindCall(tag);
  if (call != nullptr && call->Claim()) FailClaimed(call, ProtocolError(why.message()));
}

void Session::FailClaimed(Call* call, const absl::Status& why) {
  if (call->detached()) {
    FinishDetached(call, static_cast<Detached*>(call->sink()), why, false);
  } else {
    call->Fail(why);
  }
}

void Session::OnClosed(Conn* link, const absl::Status& why) {
  absl::Status reason = why.ok() ? absl::UnavailableError("9P connection closed") : why;
  bool recovering = false;
  {
    MutexLock lock(&mu_);
    if (link_.get() != link) return;  // a link that never carried calls
    if (state_ != State::kClosed) {
      if (recovery_enabled_ && !stopping_) {
        recovering = state_ == State::kUp;
        state_ = State::kDown;
      } else {
        state_ = State::kClosed;
        closed_status_ = reason;
      }
      state_changed_.SignalAll();
    }
  }
  // Every call armed on this link before it left kUp is visible here (mu_
  // orders them); none can be armed on it after. Fail each one still
  // waiting: the server may or may not have executed it.
  absl::Status lost = ConnectionLost(reason.message());
  for (uint16_t t = 0; t < num_tags_; ++t) {
    if (calls_[t].Claim()) FailClaimed(&calls_[t], lost);
  }
  if (version_call_.Claim()) version_call_.Fail(reason);
  if (recovering) {
    P9_LOG(kWarning, "%s: connection to %s lost (%s); reconnecting", options_.name,
           link->channel->Describe(), reason.message());
  } else {
    P9_LOG(kInfo, "%s: %s closed: %s", options_.name, link->channel->Describe(), reason.message());
  }
}

void Session::Trace(const char* dir, absl::Span<const uint8_t> msg) const {
  // Not through P9_LOG: `debug` shows every message whatever the log level,
  // and a trace is never rate-limited.
  LogTrace(absl::StrCat(options_.name, " ", dir, " ", FormatMessage(msg)));
}

// --- Operations.

absl::StatusOr<Qid> Session::Auth(uint32_t afid, const std::string& uname, const std::string& aname,
                                  uint32_t n_uname) {
  absl::StatusOr<Rauth> r = Rpc<Rauth>(Tauth{afid, uname, aname, n_uname});
  if (!r.ok()) return r.status();
  return r->aqid;
}

absl::StatusOr<Qid> Session::Attach(uint32_t fid, uint32_t afid, const std::string& uname,
                                    const std::string& aname, uint32_t n_uname) {
  absl::StatusOr<Rattach> r = Rpc<Rattach>(Tattach{fid, afid, uname, aname, n_uname});
  if (!r.ok()) return r.status();
  return r->qid;
}

absl::StatusOr<std::vector<Qid>> Session::Walk(uint32_t fid, uint32_t newfid,
                                               const std::vector<std::string>& names) {
  if (names.size() > kMaxWalkElements) {
    return absl::InvalidArgumentError(absl::StrCat("walk of ", names.size(), " names (max 16)"));
  }
  absl::StatusOr<Rwalk> r = Rpc<Rwalk>(Twalk{fid, newfid, WalkNames{names}});
  if (!r.ok()) return r.status();
  if (r->wqids.qids.size() > names.size()) {
    stats_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
    return ProtocolError("Rwalk returned more qids than names");
  }
  if (r->wqids.qids.size() < names.size()) {
    // 9P: a partial walk does not create newfid.
    return ErrnoError(ENOENT, absl::StrCat("Twalk: ", names[r->wqids.qids.size()]));
  }
  return std::move(r->wqids.qids);
}

absl::StatusOr<Rgetattr> Session::Getattr(uint32_t fid, uint64_t mask) {
  return Rpc<Rgetattr>(Tgetattr{fid, mask});
}

absl::Status Session::Setattr(const Tsetattr& request) { return Rpc<Rsetattr>(request).status(); }

absl::StatusOr<OpenResult> Session::Lopen(uint32_t fid, uint32_t flags) {
  absl::StatusOr<Rlopen> r = Rpc<Rlopen>(Tlopen{fid, flags});
  if (!r.ok()) return r.status();
  return OpenResult{r->qid, r->iounit};
}

absl::StatusOr<OpenResult> Session::Lcreate(uint32_t fid, const std::string& name, uint32_t flags,
                                            uint32_t mode, uint32_t gid) {
  absl::StatusOr<Rlcreate> r = Rpc<Rlcreate>(Tlcreate{fid, name, flags, mode, gid});
  if (!r.ok()) return r.status();
  return OpenResult{r->qid, r->iounit};
}

namespace {

// Copies a read's payload into the caller's buffer, on the delivery thread.
class CopyTo final : public ReadSink {
 public:
  explicit CopyTo(absl::Span<uint8_t> out) : out_(out) {}
  void Deliver(absl::Span<const uint8_t> data) override {
    if (!data.empty()) std::memcpy(out_.data(), data.data(), data.size());
  }

 private:
  const absl::Span<uint8_t> out_;
};

// Appends a Twrite of `data` to `req` (cleared first), encoded by hand so
// the payload is copied once, into the request buffer.
void EncodeTwrite(uint16_t tag, uint32_t fid, uint64_t offset, absl::Span<const uint8_t> data,
                  std::vector<uint8_t>* req) {
  const auto count = static_cast<uint32_t>(data.size());
  req->clear();
  Encoder e(req);
  e.U32(kWriteHeaderSize + count);
  e.U8(static_cast<uint8_t>(MsgType::kTwrite));
  e.U16(tag);
  e.U32(fid);
  e.U64(offset);
  e.U32(count);
  e.Raw(data.data(), count);
}

}  // namespace

absl::Status Session::ReadAsync(uint32_t fid, uint64_t offset, uint32_t count, AsyncRead* read,
                                Interrupter* intr) {
  // Before the call exists: once it is armed, a dying connection may end it
  // (and the caller free `intr`) at any moment.
  if (intr != nullptr) intr->listener_.store(this, std::memory_order_seq_cst);
  count = std::min(count, max_read());
  absl::Time deadline = Deadline();
  auto owned = std::make_unique<Detached>(count, read, intr, deadline);
  absl::StatusOr<Slot> slot = Acquire(MsgType::kRread, deadline, owned.get(), true, true);
  if (!slot.ok()) return slot.status();
  Detached* d = owned.release();  // the call's now, and this thread's (refs = 2)
  Call* call = slot->call;
  EncodeMessage(call->tag(), Tread{fid, offset, count}, &call->request());
  slot->sent_at = std::chrono::steady_clock::now();
  {
    MutexLock lock(&async_mu_);
    if (!d->finished) {
      d->slot = *slot;
      detached_[call->tag()] = d;
      if (!reaper_thread_.joinable()) reaper_thread_ = std::thread([this] { ReaperLoop(); });
    }
  }
  stats_.requests.fetch_add(1, std::memory_order_relaxed);
  stats_.bytes_sent.fetch_add(call->request().size(), std::memory_order_relaxed);
  if (options_.debug) Trace(">>>", call->request());
  if (absl::Status st = slot->link->channel->Send(call->request()); !st.ok()) {
    // Nothing (fully) went out. Unless the channel died meanwhile and
    // OnClosed() took the call (then Done() reports that), undo it.
    const bool ours = call->Cancel();
    if (ours) {
      {
        MutexLock lock(&async_mu_);
        d->finished = true;
        detached_.erase(call->tag());
      }
      Unref(call, d);
    }
    Unref(call, d);
    return ours ? ConnectionLost(st.message()) : absl::OkStatus();
  }
  {
    MutexLock lock(&async_mu_);
    if (!d->finished) {
      d->posted = true;
      // The reaper sleeps until reaper_until_; wake it if this call is due
      // before, or was interrupted before it could be flushed. Otherwise
      // posting costs no wake-up (reads at depth 1 would each pay one).
      if (deadline < reaper_until_ || (intr != nullptr && intr->interrupted())) {
        reaper_poked_ = true;
        reaper_wake_.SignalAll();
      }
    }
  }
  Unref(call, d);
  return absl::OkStatus();
}

void Session::FinishDetached(Call* call, Detached* d, absl::StatusOr<size_t> result, bool replied) {
  std::chrono::steady_clock::time_point sent_at;
  {
    MutexLock lock(&async_mu_);
    d->finished = true;
    // The tag is not reused while d holds it, so an entry for it is d's.
    detached_.erase(call->tag());
    sent_at = d->slot.sent_at;
  }
  if (replied) {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - sent_at);
    RecordLatency(stats_.latency_us_log2, static_cast<uint64_t>(us.count()));
  }
  if (!result.ok()) stats_.errors.fetch_add(1, std::memory_order_relaxed);
  d->read->Done(std::move(result));
  Unref(call, d);
}

void Session::Unref(Call* call, Detached* d) {
  {
    MutexLock lock(&async_mu_);
    if (--d->refs > 0) return;
  }
  delete d;
  Release(Slot{call, nullptr});
}

void Session::FlushDetached(Detached* d, const Slot& slot, bool interrupted) {
  if (interrupted) {
    stats_.interrupts.fetch_add(1, std::memory_order_relaxed);
  } else {
    stats_.timeouts.fetch_add(1, std::memory_order_relaxed);
    P9_LOG(kWarning, "%s: tag %u timed out after %s, flushing", options_.name, slot.call->tag(),
           absl::FormatDuration(options_.timeout));
  }
  // Without an Rflush the link is closed, and OnClosed() ends the call; with
  // one, a reply that came first has been delivered, so a call still
  // waiting never gets one.
  if (SendFlush(slot) && slot.call->Cancel()) {
    slot.link->channel->ForgetReply();
    FinishDetached(slot.call, d,
                   interrupted ? ErrnoError(EINTR, "9P request interrupted")
                               : absl::DeadlineExceededError("9P request timed out"),
                   false);
  }
  {
    MutexLock lock(&async_mu_);
    d->flushing = false;
  }
  Unref(slot.call, d);
}

void Session::ReaperLoop() {
  for (;;) {
    Detached* due = nullptr;
    Slot slot;
    bool interrupted = false;
    {
      MutexLock lock(&async_mu_);
      for (;;) {
        if (reaper_stop_) return;
        const absl::Time now = absl::Now();
        absl::Time next = absl::InfiniteFuture();
        for (auto& [tag, d] : detached_) {
          if (!d->posted || d->flushing) continue;
          if (d->deadline <= now || (d->intr != nullptr && d->intr->interrupted())) {
            due = d;
            break;
          }
          next = std::min(next, d->deadline);
        }
        if (due != nullptr) break;
        reaper_until_ = next;
        reaper_poked_ = false;
        reaper_wake_.AwaitWithDeadline(
            &async_mu_,
            [this]()
                ABSL_EXCLUSIVE_LOCKS_REQUIRED(async_mu_) { return reaper_stop_ || reaper_poked_; },
            next);
        // Awake, it looks at every call before sleeping again: no pokes.
        reaper_until_ = absl::InfinitePast();
      }
      due->flushing = true;
      ++due->refs;
      slot = due->slot;
      interrupted = due->intr != nullptr && due->intr->interrupted();
    }
    FlushDetached(due, slot, interrupted);
  }
}

void Session::OnInterrupt() {
  MutexLock lock(&async_mu_);
  reaper_poked_ = true;
  reaper_wake_.SignalAll();
}

absl::StatusOr<size_t> Session::Read(uint32_t fid, uint64_t offset, absl::Span<uint8_t> out) {
  // The delivery thread copies the payload straight into `out`: one copy,
  // where a reply kept in the call would take two.
  CopyTo copy(out);
  return ReadTo(fid, offset, static_cast<uint32_t>(std::min<size_t>(out.size(), max_read())),
                &copy);
}

absl::StatusOr<size_t> Session::ReadTo(uint32_t fid, uint64_t offset, uint32_t count,
                                       ReadSink* sink) {
  count = std::min(count, max_read());
  RreadSink rread(count, sink);
  absl::Time deadline = Deadline();
  absl::StatusOr<Slot> slot = Acquire(MsgType::kRread, deadline, &rread);
  if (!slot.ok()) return slot.status();
  Call* call = slot->call;
  EncodeMessage(call->tag(), Tread{fid, offset, count}, &call->request());
  absl::Status st = Transact(*slot, deadline);
  size_t n = 0;
  if (st.ok() && call->consumed()) {
    n = rread.got();
  } else if (st.ok()) {
    st = UnconsumedRread(call->reply(), count);
  }
  Release(*slot);
  if (!st.ok()) {
    stats_.errors.fetch_add(1, std::memory_order_relaxed);
    return st;
  }
  return n;
}

absl::StatusOr<uint32_t> Session::Write(uint32_t fid, uint64_t offset,
                                        absl::Span<const uint8_t> data) {
  uint32_t count = static_cast<uint32_t>(std::min<size_t>(data.size(), max_write()));
  absl::Time deadline = Deadline();
  absl::StatusOr<Slot> slot = Acquire(MsgType::kRwrite, deadline);
  if (!slot.ok()) return slot.status();
  Call* call = slot->call;
  EncodeTwrite(call->tag(), fid, offset, data.first(count), &call->request());
  absl::Status st = Transact(*slot, deadline);
  uint32_t n = 0;
  if (st.ok()) st = WrittenCount(call, count, &n);
  Release(*slot);
  if (!st.ok()) {
    stats_.errors.fetch_add(1, std::memory_order_relaxed);
    return st;
  }
  return n;
}

absl::Status Session::UnconsumedRread(absl::Span<const uint8_t> reply, uint32_t count) {
  // Not taken by its sink: an Rlerror, or an Rread the sink refused as
  // malformed.
  absl::Status st = ErrorIn(reply, "Tread");
  if (st.ok()) {
    st = RreadData(reply, count).status();
    if (st.ok()) st = ProtocolError("Rread was not delivered");
    stats_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
  }
  return st;
}

absl::Status Session::WrittenCount(const Call* call, uint32_t count, uint32_t* n) {
  absl::Status st = ReplyError(call, "Twrite");
  if (!st.ok()) return st;
  absl::StatusOr<Rwrite> r = DecodeMessage<Rwrite>(call->reply(), msize());
  if (!r.ok()) {
    st = ProtocolError(r.status().message());
  } else if (r->count > count) {
    st = ProtocolError(absl::StrCat("Rwrite claims ", r->count, " of ", count, " bytes"));
  } else {
    *n = r->count;
  }
  if (!st.ok()) stats_.protocol_errors.fetch_add(1, std::memory_order_relaxed);
  return st;
}

struct Session::Piece {
  uint64_t offset = 0;
  uint32_t count = 0;
  // A write's bytes (in the caller's buffer).
  const uint8_t* data = nullptr;
  // Takes a read's reply (see Acquire).
  ReplySink* sink = nullptr;
  // What the server did: bytes read/written, or why not.
  size_t done = 0;
  absl::Status status = absl::UnknownError("not sent");
};

void Session::Pipeline(std::vector<Piece>& pieces, MsgType expect,
                       const std::function<void(Piece&, Call*)>& encode,
                       const std::function<bool(Piece&, Call*, absl::Status)>& finish) {
  struct Posted {
    Piece* piece;
    Slot slot;
    absl::Time deadline;
  };
  std::deque<Posted> window;
  size_t next = 0;
  bool wanted = true;
  while (true) {
    // The oldest piece may wait for a tag; the others take free tags only,
    // so callers that each hold some tags never wait on one another.
    while (wanted && next < pieces.size() && window.size() < tunables::kMaxPipelinedPieces) {
      Piece& p = pieces[next];
      absl::Time deadline = Deadline();
      absl::StatusOr<Slot> slot = Acquire(expect, deadline, p.sink, window.empty());
      if (!slot.ok()) {
        if (window.empty()) {
          p.status = slot.status();
          wanted = false;
        }
        break;
      }
      encode(p, slot->call);
      if (absl::Status st = Post(*slot); !st.ok()) {
        Release(*slot);
        p.status = st;
        wanted = false;
        break;
      }
      window.push_back(Posted{&p, *slot, deadline});
      ++next;
    }
    if (window.empty()) break;
    Posted w = std::move(window.front());
    window.pop_front();
    absl::Status st = Await(w.slot, w.deadline);
    if (!finish(*w.piece, w.slot.call, st)) wanted = false;
    Release(w.slot);
    if (!w.piece->status.ok()) stats_.errors.fetch_add(1, std::memory_order_relaxed);
  }
}

namespace {

// Splits [offset, offset + size) into pieces of at most `max` bytes.
template <typename Piece>
std::vector<Piece> Split(uint64_t offset, size_t size, uint32_t max) {
  std::vector<Piece> pieces((size + max - 1) / max);
  for (size_t i = 0; i < pieces.size(); ++i) {
    pieces[i].offset = offset + i * uint64_t{max};
    pieces[i].count = static_cast<uint32_t>(std::min<size_t>(max, size - i * size_t{max}));
  }
  return pieces;
}

// Bytes done from the first piece up to the first short one, or the error
// of a piece before that. A failed piece in the middle is an error, not a
// short count: the kernel takes a short read for end of file (and shrinks
// its idea of the file's size), and ignores a short count from writeback.
template <typename Piece>
absl::StatusOr<size_t> Contiguous(const std::vector<Piece>& pieces) {
  size_t total = 0;
  for (const Piece& p : pieces) {
    if (!p.status.ok()) return p.status;
    total += p.done;
    if (p.done < p.count) break;
  }
  return total;
}

}  // namespace

absl::StatusOr<size_t> Session::ReadMany(uint32_t fid, uint64_t offset, absl::Span<uint8_t> out,
                                         uint32_t piece) {
  if (piece == 0 || piece > max_read()) piece = max_read();
  if (out.size() <= piece) return Read(fid, offset, out);
  std::vector<Piece> pieces = Split<Piece>(offset, out.size(), piece);
  // Each piece's reply is copied straight into its part of `out`. A deque
  // never moves what it holds, so the sinks' pointers stay valid.
  struct Sinks {
    Sinks(absl::Span<uint8_t> to, uint32_t count) : copy(to), rread(count, &copy) {}
    CopyTo copy;
    RreadSink rread;
  };
  std::deque<Sinks> sinks;
  for (Piece& p : pieces) {
    sinks.emplace_back(out.subspan(p.offset - offset, p.count), p.count);
    p.sink = &sinks.back().rread;
  }
  Pipeline(
      pieces, MsgType::kRread,
      [fid](Piece& p, Call* call) {
        EncodeMessage(call->tag(), Tread{fid, p.offset, p.count}, &call->request());
      },
      [this](Piece& p, Call* call, absl::Status st) {
        if (st.ok() && call->consumed()) {
          p.done = static_cast<RreadSink*>(p.sink)->got();
        } else if (st.ok()) {
          st = UnconsumedRread(call->reply(), p.count);
        }
        p.status = st;
        return st.ok() && p.done == p.count;
      });
  return Contiguous(pieces);
}

absl::StatusOr<size_t> Session::WriteMany(uint32_t fid, uint64_t offset,
                                          absl::Span<const uint8_t> data, uint32_t piece) {
  if (piece == 0 || piece > max_write()) piece = max_write();
  if (data.size() <= piece) return Write(fid, offset, data);
  std::vector<Piece> pieces = Split<Piece>(offset, data.size(), piece);
  for (Piece& p : pieces) p.data = data.data() + (p.offset - offset);
  Pipeline(
      pieces, MsgType::kRwrite,
      [fid](Piece& p, Call* call) {
        EncodeTwrite(call->tag(), fid, p.offset, absl::MakeConstSpan(p.data, p.count),
                     &call->request());
      },
      [this](Piece& p, Call* call, absl::Status st) {
        uint32_t n = 0;
        if (st.ok()) st = WrittenCount(call, p.count, &n);
        p.done = n;
        p.status = st;
        return st.ok() && n == p.count;
      });
  return Contiguous(pieces);
}

absl::Status Session::Clunk(uint32_t fid) {
  absl::Status st = Rpc<Rclunk>(Tclunk{fid}).status();
  FreeFid(fid);
  return st;
}

absl::Status Session::Remove(uint32_t fid) {
  absl::Status st = Rpc<Rremove>(Tremove{fid}).status();
  FreeFid(fid);
  return st;
}

absl::StatusOr<Rstatfs> Session::Statfs(uint32_t fid) { return Rpc<Rstatfs>(Tstatfs{fid}); }

absl::StatusOr<Qid> Session::Symlink(uint32_t dfid, const std::string& name,
                                     const std::string& target, uint32_t gid) {
  absl::StatusOr<Rsymlink> r = Rpc<Rsymlink>(Tsymlink{dfid, name, target, gid});
  if (!r.ok()) return r.status();
  return r->qid;
}

absl::StatusOr<Qid> Session::Mknod(uint32_t dfid, const std::string& name, uint32_t mode,
                                   uint32_t major, uint32_t minor, uint32_t gid) {
  absl::StatusOr<Rmknod> r = Rpc<Rmknod>(Tmknod{dfid, name, mode, major, minor, gid});
  if (!r.ok()) return r.status();
  return r->qid;
}

absl::StatusOr<Qid> Session::Mkdir(uint32_t dfid, const std::string& name, uint32_t mode,
                                   uint32_t gid) {
  absl::StatusOr<Rmkdir> r = Rpc<Rmkdir>(Tmkdir{dfid, name, mode, gid});
  if (!r.ok()) return r.status();
  return r->qid;
}

absl::Status Session::Rename(uint32_t fid, uint32_t dfid, const std::string& name) {
  return Rpc<Rrename>(Trename{fid, dfid, name}).status();
}

absl::Status Session::Renameat(uint32_t olddirfid, const std::string& oldname, uint32_t newdirfid,
                               const std::string& newname) {
  return Rpc<Rrenameat>(Trenameat{olddirfid, oldname, newdirfid, newname}).status();
}

absl::Status Session::Unlinkat(uint32_t dirfid, const std::string& name, uint32_t flags) {
  return Rpc<Runlinkat>(Tunlinkat{dirfid, name, flags}).status();
}

absl::Status Session::Link(uint32_t dfid, uint32_t fid, const std::string& name) {
  return Rpc<Rlink>(Tlink{dfid, fid, name}).status();
}

absl::StatusOr<std::string> Session::Readlink(uint32_t fid) {
  absl::StatusOr<Rreadlink> r = Rpc<Rreadlink>(Treadlink{fid});
  if (!r.ok()) return r.status();
  return std::move(r->target);
}

absl::StatusOr<std::vector<Dirent>> Session::Readdir(uint32_t fid, uint64_t offset,
                                                     uint32_t count) {
  count = std::min(count, max_read());
  absl::StatusOr<Rreaddir> r = Rpc<Rreaddir>(Treaddir{fid, offset, count});
  if (!r.ok()) return r.status();
  return std::move(r->entries.entries);
}

absl::Status Session::Fsync(uint32_t fid, bool datasync) {
  return Rpc<Rfsync>(Tfsync{fid, datasync ? 1u : 0u}).status();
}

absl::StatusOr<uint8_t> Session::Lock(const Tlock& request) {
  absl::StatusOr<Rlock> r = Rpc<Rlock>(request);
  if (!r.ok()) return r.status();
  return r->status;
}

absl::StatusOr<Rgetlock> Session::Getlock(const Tgetlock& request) {
  return Rpc<Rgetlock>(request);
}

absl::StatusOr<uint64_t> Session::Xattrwalk(uint32_t fid, uint32_t newfid,
                                            const std::string& name) {
  absl::StatusOr<Rxattrwalk> r = Rpc<Rxattrwalk>(Txattrwalk{fid, newfid, name});
  if (!r.ok()) return r.status();
  return r->size;
}

absl::Status Session::Xattrcreate(uint32_t fid, const std::string& name, uint64_t size,
                                  uint32_t flags) {
  return Rpc<Rxattrcreate>(Txattrcreate{fid, name, size, flags}).status();
}

absl::StatusOr<std::string> Session::GetXattr(uint32_t fid, const std::string& name) {
  uint32_t xfid = AllocFid();
  absl::StatusOr<uint64_t> size = Xattrwalk(fid, xfid, name);
  if (!size.ok()) {
    FreeFid(xfid);
    return size.status();
  }
  // An xattr value is bounded by XATTR_SIZE_MAX (64 KiB); a larger size is
  // not something a sane server sends, and we will not allocate for it.
  constexpr uint64_t kXattrSizeMax = 65536;
  absl::Status st;
  std::string value;
  if (*size > kXattrSizeMax) {
    st = ErrnoError(E2BIG, "Txattrwalk: value too large");
  } else {
    value.resize(*size);
    size_t got = 0;
    while (got < value.size()) {
      absl::StatusOr<size_t> n =
          Read(xfid, got,
               absl::MakeSpan(reinterpret_cast<uint8_t*>(value.data()) + got, value.size() - got));
      if (!n.ok()) {
        st = n.status();
        break;
      }
      if (*n == 0) break;
      got += *n;
    }
    value.resize(got);
  }
  absl::Status cst = Clunk(xfid);
  if (!st.ok()) return st;
  if (!cst.ok()) return cst;
  return value;
}

absl::Status Session::SetXattr(uint32_t fid, const std::string& name,
                               absl::Span<const uint8_t> value, uint32_t flags) {
  uint32_t xfid = AllocFid();
  if (absl::StatusOr<std::vector<Qid>> w = Walk(fid, xfid, {}); !w.ok()) {
    FreeFid(xfid);
    return w.status();
  }
  absl::Status st = Xattrcreate(xfid, name, value.size(), flags);
  size_t sent = 0;
  while (st.ok() && sent < value.size()) {
    absl::StatusOr<uint32_t> n = Write(xfid, sent, value.subspan(sent));
    if (!n.ok()) {
      st = n.status();
    } else if (*n == 0) {
      st = ErrnoError(EIO, "Twrite of xattr made no progress");
    } else {
      sent += *n;
    }
  }
  // The server applies the attribute when the fid is clunked.
  absl::Status cst = Clunk(xfid);
  return st.ok() ? cst : st;
}

}  // namespace p9
