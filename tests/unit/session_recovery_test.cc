// Session recovery (recover=on) against scripted servers on in-process
// channels: each redial makes a new connection to a new scripted server, as
// a restarted 9P server would be.
#include <atomic>
#include <cerrno>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "client/errors.h"
#include "client/interrupt.h"
#include "client/loopback_channel.h"
#include "client/session.h"
#include "gtest/gtest.h"
#include "tests/unit/scripted_server.h"

namespace p9 {
namespace {

using testing::Received;
using testing::ScriptedServer;

constexpr uint32_t kRootFid = 0;

// Servers made by redials, the newest last. Dialing can be switched off to
// play a server that is away.
class Servers {
 public:
  absl::StatusOr<std::unique_ptr<Channel>> Dial() {
    dials_.fetch_add(1, std::memory_order_relaxed);
    if (!reachable_.load(std::memory_order_acquire)) {
      return absl::UnavailableError("connection refused (test)");
    }
    auto [client_end, server_end] = MakeLoopbackPair(1u << 20);
    auto server = std::make_unique<ScriptedServer>(std::move(server_end), 65536);
    MutexLock lock(&mu_);
    servers_.push_back(std::move(server));
    return std::move(client_end);
  }

  // The server of the n-th redial (1-based), once it exists.
  ScriptedServer* Nth(size_t n) {
    MutexLock lock(&mu_);
    mu_.AwaitWithDeadline([&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return servers_.size() >= n; },
                          absl::Now() + absl::Seconds(10));
    return servers_.size() >= n ? servers_[n - 1].get() : nullptr;
  }

  void set_reachable(bool r) { reachable_.store(r, std::memory_order_release); }
  int dials() const { return dials_.load(std::memory_order_relaxed); }

 private:
  Mutex mu_;
  std::vector<std::unique_ptr<ScriptedServer>> servers_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> reachable_{true};
  std::atomic<int> dials_{0};
};

struct RecoveryRig {
  std::unique_ptr<ScriptedServer> first;
  Servers redials;
  std::atomic<int> restores{0};
  std::unique_ptr<Session> session;
};

// A session on `rig->first` whose recovery dials rig->redials and restores
// by attaching kRootFid again.
void Start(RecoveryRig* rig, SessionOptions options = {}) {
  auto [client_end, server_end] = MakeLoopbackPair(1u << 20);
  rig->first = std::make_unique<ScriptedServer>(std::move(server_end), 65536);
  options.flush_timeout = absl::Milliseconds(500);
  absl::StatusOr<std::unique_ptr<Session>> s = Session::Connect(std::move(client_end), options);
  ASSERT_TRUE(s.ok()) << s.status();
  rig->session = *std::move(s);
  RecoveryOptions r;
  r.dial = [rig] { return rig->redials.Dial(); };
  r.restore = [rig](Session& s) {
    rig->restores.fetch_add(1, std::memory_order_relaxed);
    return s.Attach(kRootFid, kNoFid, "root", "/export", 0).status();
  };
  r.first_backoff = absl::Milliseconds(10);
  r.max_backoff = absl::Milliseconds(50);
  rig->session->EnableRecovery(std::move(r));
}

// Waits until the session has noticed its connection is gone.
void AwaitDown(Session* s) {
  absl::Time until = absl::Now() + absl::Seconds(10);
  while (s->alive() && absl::Now() < until) absl::SleepFor(absl::Milliseconds(1));
  ASSERT_FALSE(s->alive());
}

// Starts `rig` with a per-call timeout, then takes its server away for
// good (until the test makes redials reachable again).
void LoseServer(RecoveryRig* rig, absl::Duration timeout) {
  SessionOptions o;
  o.timeout = timeout;
  rig->redials.set_reachable(false);
  Start(rig, o);
  rig->first->Disconnect();
  AwaitDown(rig->session.get());
}

// Answers the restore's Tattach on `server`.
void AnswerAttach(ScriptedServer* server, bool ok = true) {
  ASSERT_NE(server, nullptr);
  std::optional<Received> r = server->Next();
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->header.type, static_cast<uint8_t>(MsgType::kTattach));
  EXPECT_EQ(r->As<Tattach>().fid, kRootFid);
  if (ok) {
    server->Reply(r->header.tag, Rattach{Qid{kQtDir, 0, 1}});
  } else {
    server->Reply(r->header.tag, Rlerror{EACCES});
  }
}

TEST(SessionRecovery, InFlightCallFailsAsLostThenTheNewConnectionCarriesCalls) {
  RecoveryRig rig;
  Start(&rig);
  EXPECT_EQ(rig.session->epoch(), 1u);
  auto call = std::async(std::launch::async, [&] { return rig.session->Readlink(5); });
  std::optional<Received> r = rig.first->Next();
  ASSERT_TRUE(r.has_value());
  rig.first->Disconnect();
  absl::StatusOr<std::string> lost = call.get();
  ASSERT_FALSE(lost.ok());
  // Sent, maybe executed: the caller must not assume either way.
  EXPECT_TRUE(IsConnectionLost(lost.status())) << lost.status();
  EXPECT_EQ(ToErrno(lost.status()), EIO);

  AnswerAttach(rig.redials.Nth(1));
  // A call made now goes out on the new connection once it is restored.
  auto later = std::async(std::launch::async, [&] { return rig.session->Getattr(7); });
  ScriptedServer* second = rig.redials.Nth(1);
  std::optional<Received> g = second->Next();
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->As<Tgetattr>().fid, 7u);
  Rgetattr a;
  a.qid = Qid{0, 0, 42};
  second->Reply(g->header.tag, a);
  absl::StatusOr<Rgetattr> got = later.get();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->qid.path, 42u);
  EXPECT_EQ(rig.session->epoch(), 2u);
  EXPECT_EQ(rig.session->stats().reconnects.load(), 1u);
  EXPECT_EQ(rig.restores.load(), 1);
  EXPECT_TRUE(rig.session->alive());
  EXPECT_EQ(rig.session->stats().in_flight.load(), 0);
}

TEST(SessionRecovery, CallsWaitForTheServerUpToTheirDeadline) {
  RecoveryRig rig;
  LoseServer(&rig, absl::Milliseconds(300));
  absl::Time start = absl::Now();
  absl::StatusOr<Rgetattr> a = rig.session->Getattr(7);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(ToErrno(a.status()), ETIMEDOUT) << a.status();
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(250));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_FALSE(rig.session->alive());
  EXPECT_FALSE(rig.session->closed());
  // It keeps trying, with backoff.
  int before = rig.redials.dials();
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_GT(rig.redials.dials(), before);

  // The server comes back: the next call succeeds.
  rig.redials.set_reachable(true);
  AnswerAttach(rig.redials.Nth(1));
  auto later = std::async(std::launch::async, [&] { return rig.session->Readlink(3); });
  ScriptedServer* back = rig.redials.Nth(1);
  std::optional<Received> r = back->Next();
  ASSERT_TRUE(r.has_value());
  back->Reply(r->header.tag, Rreadlink{"there"});
  absl::StatusOr<std::string> t = later.get();
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, "there");
}

TEST(SessionRecovery, CloseWhileReconnectingFailsWaitersPromptly) {
  RecoveryRig rig;
  LoseServer(&rig, absl::Seconds(60));
  auto waiting = std::async(std::launch::async, [&] { return rig.session->Getattr(7); });
  absl::SleepFor(absl::Milliseconds(100));
  absl::Time start = absl::Now();
  rig.session->Close(absl::CancelledError("unmounted"));
  absl::StatusOr<Rgetattr> a = waiting.get();
  EXPECT_FALSE(a.ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_TRUE(rig.session->closed());
  rig.session.reset();  // joins the recovery thread
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST(SessionRecovery, AnInterruptEndsTheWaitForTheServer) {
  RecoveryRig rig;
  LoseServer(&rig, absl::Seconds(60));
  Interrupter intr;
  auto waiting = std::async(std::launch::async, [&] {
    ScopedInterruptible scope(&intr);
    return rig.session->Getattr(7);
  });
  absl::SleepFor(absl::Milliseconds(150));
  absl::Time start = absl::Now();
  intr.Interrupt();
  absl::StatusOr<Rgetattr> a = waiting.get();
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(ToErrno(a.status()), EINTR) << a.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST(SessionRecovery, AFailedRestoreIsRetriedOnAFreshConnection) {
  RecoveryRig rig;
  Start(&rig);
  rig.first->Disconnect();
  AnswerAttach(rig.redials.Nth(1), /*ok=*/false);
  AnswerAttach(rig.redials.Nth(2), /*ok=*/true);
  ASSERT_TRUE(rig.session->AwaitConnected(absl::Now() + absl::Seconds(10)));
  EXPECT_EQ(rig.restores.load(), 2);
  // Two new connections, one reconnect that took.
  EXPECT_EQ(rig.session->epoch(), 3u);
  EXPECT_EQ(rig.session->stats().reconnects.load(), 1u);
}

TEST(SessionRecovery, ClosedByTheOwnerNeverReconnects) {
  RecoveryRig rig;
  Start(&rig);
  rig.session->Close(absl::CancelledError("unmounted"));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(rig.redials.dials(), 0);
  EXPECT_TRUE(rig.session->closed());
  EXPECT_FALSE(rig.session->Getattr(1).ok());
}

// Many callers, a connection killed under them again and again: every call
// ends (OK, or lost/timed out), tags are never lost, nothing hangs.
TEST(SessionRecovery, RepeatedLossesUnderLoadLoseNoTags) {
  RecoveryRig rig;
  SessionOptions o;
  o.timeout = absl::Seconds(5);
  o.max_tags = 8;
  Start(&rig, o);
  std::atomic<bool> stop{false}, stop_callers{false};
  // Each server answers every Tattach and Treadlink; the test kills them.
  auto serve = [&](ScriptedServer* s) {
    while (!stop.load(std::memory_order_acquire)) {
      std::optional<Received> r = s->Next(absl::Milliseconds(20));
      if (!r.has_value()) continue;
      if (r->header.type == static_cast<uint8_t>(MsgType::kTattach)) {
        s->Reply(r->header.tag, Rattach{Qid{kQtDir, 0, 1}});
      } else if (r->header.type == static_cast<uint8_t>(MsgType::kTreadlink)) {
        s->Reply(r->header.tag, Rreadlink{"ok"});
      }
    }
  };
  std::vector<std::thread> servers;
  servers.emplace_back(serve, rig.first.get());
  std::atomic<int> ok{0}, lost{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 6; ++t) {
    callers.emplace_back([&] {
      while (!stop_callers.load(std::memory_order_acquire)) {
        absl::StatusOr<std::string> r = rig.session->Readlink(1);
        (r.ok() ? ok : lost).fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  ScriptedServer* current = rig.first.get();
  for (size_t round = 1; round <= 5; ++round) {
    absl::SleepFor(absl::Milliseconds(60));
    current->Disconnect();
    current = rig.redials.Nth(round);
    ASSERT_NE(current, nullptr);
    servers.emplace_back(serve, current);
    // Killed only once restored, so every redial is one reconnect.
    absl::Time until = absl::Now() + absl::Seconds(10);
    while (!(rig.session->epoch() > round && rig.session->alive()) && absl::Now() < until) {
      absl::SleepFor(absl::Milliseconds(1));
    }
    ASSERT_TRUE(rig.session->alive());
  }
  absl::SleepFor(absl::Milliseconds(100));
  stop_callers.store(true, std::memory_order_release);
  for (auto& c : callers) c.join();
  stop.store(true, std::memory_order_release);
  for (auto& s : servers) s.join();
  EXPECT_GT(ok.load(), 0);
  EXPECT_EQ(rig.session->stats().reconnects.load(), 5u);
  EXPECT_EQ(rig.session->stats().in_flight.load(), 0);
  // All 8 tags are free again: 8 calls at once can still be made.
  EXPECT_TRUE(rig.session->alive());
}

}  // namespace
}  // namespace p9
