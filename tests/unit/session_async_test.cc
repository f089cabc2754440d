// Session::ReadAsync against a scripted server on the in-process channel:
// nobody waits on the call, so each way it can end (reply, Rlerror, bad
// reply, deadline, interrupt, lost connection, unanswered flush, session
// destroyed) must reach Done() exactly once and return the tag, and a flush
// must never name a tag that has been handed to another call.
#include <atomic>
#include <cerrno>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "client/errors.h"
#include "client/interrupt.h"
#include "client/session.h"
#include "gtest/gtest.h"
#include "tests/unit/scripted_server.h"

namespace p9 {
namespace {

using testing::MakeRig;
using testing::Received;
using testing::Rig;
using testing::ScriptedServer;

// Records what the session hands a read, from whichever thread.
class Recorder final : public AsyncRead {
 public:
  void Deliver(absl::Span<const uint8_t> data) override {
    MutexLock lock(&mu_);
    ++delivers_;
    data_.assign(data.begin(), data.end());
  }
  void Done(absl::StatusOr<size_t> n) override {
    {
      MutexLock lock(&mu_);
      ++dones_;
      result_ = std::move(n);
    }
    done_.Notify();
  }

  // Waits for Done(); false if it does not come within `timeout`.
  bool Wait(absl::Duration timeout = absl::Seconds(10)) {
    return done_.WaitForNotificationWithTimeout(timeout);
  }
  absl::StatusOr<size_t> result() {
    MutexLock lock(&mu_);
    return result_;
  }
  std::string data() {
    MutexLock lock(&mu_);
    return data_;
  }
  int delivers() {
    MutexLock lock(&mu_);
    return delivers_;
  }
  int dones() {
    MutexLock lock(&mu_);
    return dones_;
  }

 private:
  Mutex mu_;
  int delivers_ ABSL_GUARDED_BY(mu_) = 0;
  int dones_ ABSL_GUARDED_BY(mu_) = 0;
  std::string data_ ABSL_GUARDED_BY(mu_);
  absl::StatusOr<size_t> result_ ABSL_GUARDED_BY(mu_) = absl::UnknownError("no Done()");
  absl::Notification done_;
};

// The tag goes back just after Done() returns, on the thread that called it.
bool TagsAllBack(Session* s, absl::Duration timeout = absl::Seconds(10)) {
  absl::Time deadline = absl::Now() + timeout;
  while (s->stats().in_flight.load() != 0) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

Received NextOf(ScriptedServer* server, MsgType type) {
  std::optional<Received> r = server->Next();
  if (!r.has_value()) {
    ADD_FAILURE() << "no request came";
    return Received{};
  }
  EXPECT_EQ(r->header.type, static_cast<uint8_t>(type));
  return *r;
}

TEST(SessionReadAsync, ReturnsBeforeTheReplyWhichIsDeliveredWithoutAWaiter) {
  Rig rig = MakeRig();
  Recorder rec;
  ASSERT_TRUE(rig.session->ReadAsync(7, 100, 4, &rec).ok());
  Received r = NextOf(rig.server.get(), MsgType::kTread);
  Tread t = r.As<Tread>();
  EXPECT_EQ(t.fid, 7u);
  EXPECT_EQ(t.offset, 100u);
  EXPECT_EQ(t.count, 4u);
  EXPECT_EQ(rec.dones(), 0);  // nothing has answered it yet
  EXPECT_EQ(rig.session->stats().in_flight.load(), 1);
  rig.server->Reply(r.header.tag, Rread{Bytes{"abcd"}});
  ASSERT_TRUE(rec.Wait());
  ASSERT_TRUE(rec.result().ok()) << rec.result().status();
  EXPECT_EQ(*rec.result(), 4u);
  EXPECT_EQ(rec.data(), "abcd");
  EXPECT_TRUE(TagsAllBack(rig.session.get()));
  EXPECT_EQ(rec.dones(), 1);
  EXPECT_EQ(rec.delivers(), 1);
  uint64_t rounds = 0;
  for (const auto& b : rig.session->stats().latency_us_log2) rounds += b.load();
  EXPECT_EQ(rounds, 1u);
}

TEST(SessionReadAsync, RlerrorIsTheErrnoWithNothingDelivered) {
  Rig rig = MakeRig();
  Recorder rec;
  ASSERT_TRUE(rig.session->ReadAsync(7, 0, 4, &rec).ok());
  Received r = NextOf(rig.server.get(), MsgType::kTread);
  rig.server->Reply(r.header.tag, Rlerror{EACCES});
  ASSERT_TRUE(rec.Wait());
  EXPECT_EQ(ToErrno(rec.result().status()), EACCES);
  EXPECT_EQ(rec.delivers(), 0);
  EXPECT_TRUE(TagsAllBack(rig.session.get()));
  EXPECT_TRUE(rig.session->alive());
}

TEST(SessionReadAsync, OverlongOrMistypedReplyFailsTheCallNotTheSession) {
  Rig rig = MakeRig();
  Recorder overlong;
  ASSERT_TRUE(rig.session->ReadAsync(7, 0, 2, &overlong).ok());
  Received r = NextOf(rig.server.get(), MsgType::kTread);
  rig.server->Reply(r.header.tag, Rread{Bytes{"abcd"}});  // 4 bytes for a 2-byte read
  ASSERT_TRUE(overlong.Wait());
  EXPECT_EQ(ToErrno(overlong.result().status()), EIO);
  EXPECT_EQ(overlong.delivers(), 0);

  Recorder mistyped;
  ASSERT_TRUE(rig.session->ReadAsync(7, 0, 2, &mistyped).ok());
  r = NextOf(rig.server.get(), MsgType::kTread);
  rig.server->Reply(r.header.tag, Rwrite{2});
  ASSERT_TRUE(mistyped.Wait());
  EXPECT_FALSE(mistyped.result().ok());
  EXPECT_EQ(mistyped.delivers(), 0);

  EXPECT_TRUE(TagsAllBack(rig.session.get()));
  EXPECT_TRUE(rig.session->alive());
  EXPECT_GE(rig.session->stats().protocol_errors.load(), 2u);
  // The session still works.
  Recorder after;
  ASSERT_TRUE(rig.session->ReadAsync(7, 0, 2, &after).ok());
  r = NextOf(rig.server.get(), MsgType::kTread);
  rig.server->Reply(r.header.tag, Rread{Bytes{"ok"}});
  ASSERT_TRUE(after.Wait());
  EXPECT_EQ(after.data(), "ok");
}

TEST(SessionReadAsync, DeadlineFlushesTheCall) {
  SessionOptions o;
  o.timeout = absl::Milliseconds(300);
  Rig rig = MakeRig(o);
  Recorder rec;
  absl::Time start = absl::Now();
  ASSERT_TRUE(rig.session->ReadAsync(7, 0, 4, &rec).ok());
  Received r = NextOf(rig.server.get(), MsgType::kTread);
  Received f = NextOf(rig.server.get(), MsgType::kTflush);
  EXPECT_EQ(f.As<Tflush>().oldtag, r.header.tag);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(250));
  EXPECT_EQ(rec.dones(), 0);  // not before the Rflush
  rig.server->Reply(f.header.tag, Rflush{});
  ASSERT_TRUE(rec.Wait());
  EXPECT_EQ(rec.result().status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(TagsAllBack(rig.session.get()));
  EXPECT_EQ(rig.session->stats().timeouts.load(), 1u);
  EXPECT_TRUE(rig.session->alive());
}

TEST(SessionReadAsync, InterruptFlushesTheCall) {
  Rig rig = MakeRig();
  Recorder rec;
  Interrupter intr;
  ASSERT_TRUE(rig.session->ReadAsync(7, 0, 4, &rec, &intr).ok());
  Received r = NextOf(rig.server.get(), MsgType::kTread);
  intr.Interrupt();
  Received f = NextOf(rig.server.get(), MsgType::kTflush);
  EXPECT_EQ(f.As<Tflush>().oldtag, r.header.tag);
  rig.server->Reply(f.header.tag, Rflush{});
  ASSERT_TRUE(rec.Wait());
  EXPECT_EQ(ToErrno(rec.result().status()), EINTR);
  EXPECT_TRUE(TagsAllBack(rig.session.get()));
  EXPECT_EQ(rig.session->stats().interrupts.load(), 1u);
}

TEST(SessionReadAsync, InterruptBeforeTheCallIsNotMissed) {
  Rig rig = MakeRig();
  Recorder rec;
  Interrupter intr;
  intr.Interrupt();
  ASSERT_TRUE(rig.session->ReadAsync(7, 0, 4, &rec, &intr).ok());
  // The flush follows the read (a flush sent first would not stop it).
  Received r = NextOf(rig.server.get(), MsgType::kTread);
  Received f = NextOf(rig.server.get(), MsgType::kTflush);
  EXPECT_EQ(f.As<Tflush>().oldtag, r.header.tag);
  rig.server->Reply(f.header.tag, Rflush{});
  ASSERT_TRUE(rec.Wait());
  EXPECT_EQ(ToErrno(rec.result().status()), EINTR);
}

TEST(SessionReadAsync, AReplyBeforeTheRflushWins) {
  Rig rig = MakeRig();
  Recorder rec;
  Interrupter intr;
  ASSERT_TRUE(rig.session->ReadAsync(7, 0, 4, &rec, &intr).ok());
  Received r = NextOf(rig.server.get(), MsgType::kTread);
  intr.Interrupt();
  Received f = NextOf(rig.server.get(), MsgType::kTflush);
  rig.server->Reply(r.header.tag, Rread{Bytes{"late"}});
  rig.server->Reply(f.header.tag, Rflush{});
  ASSERT_TRUE(rec.Wait());
  ASSERT_TRUE(rec.result().ok()) << rec.result().status();
  EXPECT_EQ(rec.data(), "late");
  EXPECT_TRUE(TagsAllBack(rig.session.get()));
  EXPECT_EQ(rec.dones(), 1);
}

TEST(SessionReadAsync, TheFlushedTagIsNotReusedBeforeTheRflush) {
  SessionOptions o;
  o.max_tags = 2;  // one for the read, one for its flush
  Rig rig = MakeRig(o);
  Recorder first;
  Interrupter intr;
  ASSERT_TRUE(rig.session->ReadAsync(7, 0, 4, &first, &intr).ok());
  Received r = NextOf(rig.server.get(), MsgType::kTread);
  intr.Interrupt();
  Received f = NextOf(rig.server.get(), MsgType::kTflush);
  // The reply beats the flush: the read is over, but its tag must stay out
  // of use until the Rflush, or the flush could cancel whatever took it.
  rig.server->Reply(r.header.tag, Rread{Bytes{"data"}});
  ASSERT_TRUE(first.Wait());
  Recorder second;
  std::thread t([&] { ASSERT_TRUE(rig.session->ReadAsync(7, 0, 4, &second).ok()); });
  EXPECT_FALSE(rig.server->Next(absl::Milliseconds(200)).has_value());
  rig.server->Reply(f.header.tag, Rflush{});
  Received r2 = NextOf(rig.server.get(), MsgType::kTread);
  t.join();
  rig.server->Reply(r2.header.tag, Rread{Bytes{"next"}});
  ASSERT_TRUE(second.Wait());
  EXPECT_EQ(second.data(), "next");
  EXPECT_TRUE(TagsAllBack(rig.session.get()));
}

TEST(SessionReadAsync, UnansweredFlushClosesTheConnection) {
  SessionOptions o;
  o.timeout = absl::Milliseconds(200);
  o.flush_timeout = absl::Milliseconds(200);
  Rig rig = MakeRig(o);
  Recorder rec;
  ASSERT_TRUE(rig.session->ReadAsync(7, 0, 4, &rec).ok());
  NextOf(rig.server.get(), MsgType::kTread);
  NextOf(rig.server.get(), MsgType::kTflush);
  ASSERT_TRUE(rec.Wait());
  EXPECT_TRUE(IsConnectionLost(rec.result().status())) << rec.result().status();
  EXPECT_FALSE(rig.session->alive());
}

TEST(SessionReadAsync, ConnectionLossEndsEveryCallWithConnectionLost) {
  Rig rig = MakeRig();
  std::vector<std::unique_ptr<Recorder>> recs;
  for (int i = 0; i < 3; ++i) {
    recs.push_back(std::make_unique<Recorder>());
    ASSERT_TRUE(rig.session->ReadAsync(7, 0, 4, recs.back().get()).ok());
    NextOf(rig.server.get(), MsgType::kTread);
  }
  rig.server->Disconnect();
  for (auto& r : recs) {
    ASSERT_TRUE(r->Wait());
    EXPECT_TRUE(IsConnectionLost(r->result().status())) << r->result().status();
    EXPECT_EQ(r->dones(), 1);
  }
  EXPECT_TRUE(TagsAllBack(rig.session.get()));
  // Later calls fail at once, and nothing runs Done() for them.
  Recorder later;
  EXPECT_FALSE(rig.session->ReadAsync(7, 0, 4, &later).ok());
  EXPECT_EQ(later.dones(), 0);
}

TEST(SessionReadAsync, DestroyingTheSessionEndsCallsInFlight) {
  Rig rig = MakeRig();
  Recorder rec;
  ASSERT_TRUE(rig.session->ReadAsync(7, 0, 4, &rec).ok());
  NextOf(rig.server.get(), MsgType::kTread);
  rig.session.reset();
  ASSERT_TRUE(rec.Wait(absl::ZeroDuration()));
  EXPECT_FALSE(rec.result().ok());
  EXPECT_EQ(rec.dones(), 1);
}

// Frees itself, and the interrupter it was posted with, in Done(): what
// the FUSE layer does. ASan catches the session touching either afterwards.
class SelfFreeing final : public AsyncRead {
 public:
  explicit SelfFreeing(std::atomic<int>* done) : done_(done) {}
  Interrupter* interrupter() { return &intr_; }
  void Deliver(absl::Span<const uint8_t>) override {}
  void Done(absl::StatusOr<size_t>) override {
    done_->fetch_add(1);
    delete this;
  }

 private:
  std::atomic<int>* const done_;
  Interrupter intr_;
};

TEST(SessionReadAsync, DoneMayFreeTheReadAndItsInterrupterAtOnce) {
  Rig rig = MakeRig();
  std::atomic<bool> stop{false};
  // Answers as fast as it can, so replies often beat ReadAsync's return.
  std::thread answerer([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      std::optional<Received> r = rig.server->Next(absl::Milliseconds(5));
      if (r.has_value()) rig.server->Reply(r->header.tag, Rread{Bytes{"x"}});
    }
  });
  std::atomic<int> done{0};
  constexpr int kReads = 300;
  for (int i = 0; i < kReads; ++i) {
    auto* r = new SelfFreeing(&done);
    ASSERT_TRUE(rig.session->ReadAsync(7, 0, 1, r, r->interrupter()).ok());
  }
  absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (done.load() < kReads && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
  EXPECT_EQ(done.load(), kReads);
  EXPECT_TRUE(TagsAllBack(rig.session.get()));
  stop.store(true);
  answerer.join();
}

TEST(SessionReadAsync, ALossBeforeTheSendEndsTheCallOnceAndFreesNothingTwice) {
  // The connection dies while reads are being posted: some are taken by
  // OnClosed before ReadAsync has registered or sent them.
  for (int round = 0; round < 20; ++round) {
    Rig rig = MakeRig();
    std::atomic<int> done{0};
    int posted = 0;
    std::thread killer([&] { rig.server->Disconnect(); });
    for (int i = 0; i < 20; ++i) {
      auto* r = new SelfFreeing(&done);
      if (rig.session->ReadAsync(7, 0, 1, r, r->interrupter()).ok()) {
        ++posted;
      } else {
        delete r;  // nothing was sent: still ours
      }
    }
    killer.join();
    absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (done.load() < posted && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
    EXPECT_EQ(done.load(), posted);
    EXPECT_TRUE(TagsAllBack(rig.session.get()));
  }
}

// Many threads, few tags, replies in any order: every read gets its own
// bytes once and every tag comes back (the run TSan checks).
TEST(SessionReadAsync, ManyCallersFewTags) {
  SessionOptions o;
  o.max_tags = 3;
  o.timeout = absl::Seconds(30);
  Rig rig = MakeRig(o);
  std::atomic<bool> stop{false};
  std::thread answerer([&] {
    std::vector<Received> held;
    while (!stop.load(std::memory_order_relaxed)) {
      std::optional<Received> r = rig.server->Next(absl::Milliseconds(5));
      if (r.has_value()) held.push_back(std::move(*r));
      // Answer newest first when two are waiting: out of order.
      if (held.size() >= 2 || (!r.has_value() && !held.empty())) {
        Received q = std::move(held.back());
        held.pop_back();
        Tread t = q.As<Tread>();
        rig.server->Reply(q.header.tag, Rread{Bytes{std::to_string(t.offset)}});
      }
    }
  });
  constexpr int kThreads = 4, kEach = 50;
  std::vector<std::unique_ptr<Recorder>> recs(kThreads * kEach);
  for (auto& r : recs) r = std::make_unique<Recorder>();
  std::vector<std::thread> callers;
  for (int t = 0; t < kThreads; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const int k = t * kEach + i;
        absl::Status st = rig.session->ReadAsync(7, 1000 + k, 16, recs[k].get());
        EXPECT_TRUE(st.ok()) << st;
      }
    });
  }
  for (auto& c : callers) c.join();
  for (int k = 0; k < kThreads * kEach; ++k) {
    ASSERT_TRUE(recs[k]->Wait()) << "read " << k;
    ASSERT_TRUE(recs[k]->result().ok()) << recs[k]->result().status();
    EXPECT_EQ(recs[k]->data(), std::to_string(1000 + k));
    EXPECT_EQ(recs[k]->dones(), 1);
  }
  EXPECT_TRUE(TagsAllBack(rig.session.get()));
  stop.store(true);
  answerer.join();
}

}  // namespace
}  // namespace p9
