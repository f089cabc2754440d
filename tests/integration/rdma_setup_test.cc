// Runs in the Soft-RoCE guest (P9_RDMA_IP set). Every setup step of both
// sides of a connection is made to fail in turn; after each failure the
// process must hold exactly the fds, threads and verbs resources it held
// before. Then a real connection carries thousands of requests (once plain,
// once with interrupts, flushes and timeouts) and must end with every
// receive posted and every credit returned.
#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <future>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "client/interrupt.h"
#include "client/mutex.h"
#include "client/session.h"
#include "gtest/gtest.h"
#include "rdma/listener.h"
#include "rdma/rdma_channel.h"
#include "rdma/resources.h"

namespace p9::rdma {
namespace {

int CountDir(const char* path) {
  int n = 0;
  DIR* d = opendir(path);
  if (d == nullptr) return -1;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n;
}

struct Footprint {
  int fds, threads;
  LiveCounts live;
  bool operator==(const Footprint&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Footprint& f) {
  return os << "fds=" << f.fds << " threads=" << f.threads
            << " event_channels=" << f.live.event_channels << " ids=" << f.live.ids
            << " pds=" << f.live.pds << " comp_channels=" << f.live.comp_channels
            << " cqs=" << f.live.cqs << " qps=" << f.live.qps << " mrs=" << f.live.mrs;
}
Footprint Now() { return {CountDir("/proc/self/fd"), CountDir("/proc/self/task"), Live()}; }

// Waits (bounded) for the footprint to return to `want`: a destroyed
// connection's kernel objects and helper threads go away asynchronously.
void ExpectBackTo(const Footprint& want, const std::string& what) {
  Footprint got = Now();
  for (int i = 0; i < 100 && !(got == want); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    got = Now();
  }
  EXPECT_EQ(got, want) << what;
}

// Every reply credit is back and every receive posted again. The
// completion thread reposts a receive and returns its credit just after
// handing the reply over, so the waiter that got the last reply may look
// before that: allow the counts a moment to settle.
void ExpectCreditsAndReceivesWhole(const RdmaChannel& ch, int depth, const std::string& side) {
  for (int i = 0; i < 100 && (ch.reply_credits() != depth || ch.receives_posted() != depth); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(ch.reply_credits(), depth) << side;
  EXPECT_EQ(ch.receives_posted(), depth) << side;
  EXPECT_EQ(ch.credit_over_releases(), 0) << side;
}

class RdmaSetupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* ip = std::getenv("P9_RDMA_IP");
    if (ip == nullptr) GTEST_SKIP() << "needs the Soft-RoCE guest (tests/vm)";
    ip_ = ip;
    opts_.max_message = 65536;
    opts_.timeout = absl::Seconds(10);
    auto l = RdmaListener::Listen(ip_, 0, opts_);
    ASSERT_TRUE(l.ok()) << l.status();
    listener_ = *std::move(l);
    port_ = listener_->port();
  }
  void TearDown() override { listener_.reset(); }

  std::string ip_;
  RdmaOptions opts_;
  std::unique_ptr<RdmaListener> listener_;
  uint16_t port_ = 0;
};

TEST_F(RdmaSetupTest, EveryClientSetupFailureReleasesEverything) {
  // Warm up once so lazily created library state (device contexts, the
  // librdmacm/libibverbs internals) is in the baseline.
  {
    auto server = std::async(std::launch::async,
                             [&] { return listener_->AcceptOne(absl::Now() + absl::Seconds(10)); });
    auto c = RdmaChannel::Connect(ip_, port_, opts_);
    ASSERT_TRUE(c.ok()) << c.status();
    auto s = server.get();
    ASSERT_TRUE(s.ok()) << s.status();
  }
  const Footprint base = Now();
  for (Step step : {Step::kEventChannel, Step::kCreateId, Step::kResolveAddr, Step::kResolveRoute,
                    Step::kAllocPd, Step::kCompChannel, Step::kCreateCq, Step::kRegisterMemory,
                    Step::kCreateQp, Step::kPostRecv, Step::kConnect}) {
    InjectFailureAt(step);
    auto c = RdmaChannel::Connect(ip_, port_, opts_);
    ASSERT_FALSE(c.ok()) << StepName(step);
    EXPECT_NE(c.status().message().find(StepName(step)), absl::string_view::npos) << c.status();
    ExpectBackTo(base, absl::StrCat("after failing ", StepName(step)));
  }
  InjectFailureAt(Step::kCount);
}

TEST_F(RdmaSetupTest, EveryServerSetupFailureRejectsAndReleasesEverything) {
  {
    auto server = std::async(std::launch::async,
                             [&] { return listener_->AcceptOne(absl::Now() + absl::Seconds(10)); });
    auto c = RdmaChannel::Connect(ip_, port_, opts_);
    ASSERT_TRUE(c.ok()) << c.status();
    ASSERT_TRUE(server.get().ok());
  }
  const Footprint base = Now();
  for (Step step : {Step::kEventChannel, Step::kAllocPd, Step::kCompChannel, Step::kCreateCq,
                    Step::kRegisterMemory, Step::kCreateQp, Step::kPostRecv, Step::kAccept}) {
    auto server = std::async(std::launch::async, [&] {
      InjectFailureAt(step);  // on the accepting thread only
      auto ch = listener_->AcceptOne(absl::Now() + absl::Seconds(10));
      InjectFailureAt(Step::kCount);
      return ch;
    });
    auto c = RdmaChannel::Connect(ip_, port_, opts_);
    EXPECT_FALSE(c.ok()) << StepName(step);
    auto s = server.get();
    ASSERT_FALSE(s.ok()) << StepName(step);
    EXPECT_NE(s.status().message().find(StepName(step)), absl::string_view::npos) << s.status();
    ExpectBackTo(base, absl::StrCat("after failing server-side ", StepName(step)));
  }
}

// An in-process 9P "server" on the passive channel: answers Tversion and
// Treadlink, so a client Session can run thousands of requests over RDMA.
class EchoServer : public ChannelReceiver {
 public:
  explicit EchoServer(Channel* ch) : ch_(ch) {}
  void OnMessage(absl::Span<const uint8_t> msg) override {
    auto h = ParseHeader(msg, 1u << 20);
    if (!h.ok()) return;
    std::vector<uint8_t> out;
    if (h->type == static_cast<uint8_t>(MsgType::kTversion)) {
      auto tv = DecodeMessage<Tversion>(msg, 1u << 20);
      EncodeMessage(h->tag, Rversion{tv->msize, "9P2000.L"}, &out);
    } else if (h->type == static_cast<uint8_t>(MsgType::kTreadlink)) {
      auto t = DecodeMessage<Treadlink>(msg, 1u << 20);
      EncodeMessage(h->tag, Rreadlink{absl::StrCat("t", t->fid)}, &out);
    } else {
      return;
    }
    (void)ch_->Send(out);
  }
  void OnBadMessage(uint16_t, const absl::Status&) override {}
  void OnClosed(const absl::Status&) override {}

 private:
  Channel* ch_;
};

TEST_F(RdmaSetupTest, ThousandsOfRequestsLeaveCreditsAndReceivesWhole) {
  const Footprint base = Now();
  {
    auto accepted = std::async(
        std::launch::async, [&] { return listener_->AcceptOne(absl::Now() + absl::Seconds(10)); });
    auto client = RdmaChannel::Connect(ip_, port_, opts_);
    ASSERT_TRUE(client.ok()) << client.status();
    auto server_ch = accepted.get();
    ASSERT_TRUE(server_ch.ok()) << server_ch.status();
    EchoServer echo(server_ch->get());
    ASSERT_TRUE((*server_ch)->Start(&echo).ok());
    RdmaChannel* raw = client->get();
    SessionOptions so;
    so.msize = opts_.max_message;
    so.max_tags = static_cast<uint16_t>(opts_.recv_depth);
    auto session = Session::Connect(*std::move(client), so);
    ASSERT_TRUE(session.ok()) << session.status();
    std::vector<std::thread> threads;
    std::atomic<int> bad{0};
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 500; ++i) {
          uint32_t fid = static_cast<uint32_t>(t * 100000 + i);
          auto r = (*session)->Readlink(fid);
          if (!r.ok() || *r != absl::StrCat("t", fid)) bad++;
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(bad.load(), 0);
    ExpectCreditsAndReceivesWhole(*raw, static_cast<int>(opts_.recv_depth), "client");
    EXPECT_EQ(raw->counters().sends.load(), 4001u);  // + Tversion
    (*server_ch)->Close(absl::CancelledError("test over"));
  }
  ExpectBackTo(base, "after a full connection's life");
}

// A 9P "server" on the passive channel that answers Treadlink in every
// order the protocol allows relative to a Tflush: at once, late (from a
// timer thread), after the client's deadline, or never (flushed first), and
// answers a Tflush of a held request either with the reply first or with
// Rflush alone. Only ever a reply before its Rflush, never after.
class FlushingServer : public ChannelReceiver {
 public:
  explicit FlushingServer(Channel* ch) : ch_(ch), timer_([this] { TimerLoop(); }) {}
  ~FlushingServer() override {
    {
      MutexLock lock(&mu_);
      stop_ = true;
    }
    timer_.join();
  }

  void OnMessage(absl::Span<const uint8_t> msg) override {
    auto h = ParseHeader(msg, 1u << 20);
    if (!h.ok()) return;
    MutexLock lock(&mu_);
    ++received_;
    if (h->type == static_cast<uint8_t>(MsgType::kTversion)) {
      auto tv = DecodeMessage<Tversion>(msg, 1u << 20);
      SendLocked(h->tag, Rversion{tv->msize, "9P2000.L"});
    } else if (h->type == static_cast<uint8_t>(MsgType::kTreadlink)) {
      auto t = DecodeMessage<Treadlink>(msg, 1u << 20);
      uint32_t roll = static_cast<uint32_t>(rng_() % 64);
      if (roll < 20 || at_once_) {
        SendLocked(h->tag, Rreadlink{absl::StrCat("t", t->fid)});
        return;
      }
      // Most late replies race the interrupts; one in 32 outlives the
      // client's deadline and is flushed by the timeout path.
      absl::Duration delay = roll >= 62 ? kPastDeadline : absl::Milliseconds(roll - 20);
      held_[h->tag] = Held{t->fid, absl::Now() + delay};
    } else if (h->type == static_cast<uint8_t>(MsgType::kTflush)) {
      auto f = DecodeMessage<Tflush>(msg, 1u << 20);
      ++flushes_;
      auto it = held_.find(f->oldtag);
      if (it != held_.end()) {
        if (rng_() % 2 == 0) {
          SendLocked(it->first, Rreadlink{absl::StrCat("t", it->second.fid)});
          ++replied_before_rflush_;
        } else {
          ++dropped_;
        }
        held_.erase(it);
      }
      SendLocked(h->tag, Rflush{});
    }
  }
  void OnBadMessage(uint16_t, const absl::Status&) override {}
  void OnClosed(const absl::Status&) override {}

  // From now on every request is answered at once.
  void AnswerAtOnce() {
    MutexLock lock(&mu_);
    at_once_ = true;
  }
  size_t held() {
    MutexLock lock(&mu_);
    return held_.size();
  }
  uint64_t received() {
    MutexLock lock(&mu_);
    return received_;
  }
  uint64_t flushes() {
    MutexLock lock(&mu_);
    return flushes_;
  }
  uint64_t dropped() {
    MutexLock lock(&mu_);
    return dropped_;
  }
  uint64_t replied_before_rflush() {
    MutexLock lock(&mu_);
    return replied_before_rflush_;
  }

  static constexpr absl::Duration kPastDeadline = absl::Milliseconds(600);

 private:
  struct Held {
    uint32_t fid;
    absl::Time due;
  };

  // Sending under mu_ orders a held reply before the Rflush of its tag.
  template <typename R>
  void SendLocked(uint16_t tag, const R& reply) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<uint8_t> out;
    EncodeMessage(tag, reply, &out);
    (void)ch_->Send(out);
  }

  void TimerLoop() {
    MutexLock lock(&mu_);
    while (!stop_) {
      absl::Time now = absl::Now();
      for (auto it = held_.begin(); it != held_.end();) {
        if (it->second.due <= now) {
          SendLocked(it->first, Rreadlink{absl::StrCat("t", it->second.fid)});
          it = held_.erase(it);
        } else {
          ++it;
        }
      }
      mu_.AwaitWithTimeout([this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; },
                           absl::Milliseconds(1));
    }
  }

  Channel* const ch_;
  Mutex mu_;
  std::minstd_rand rng_ ABSL_GUARDED_BY(mu_);
  // Treadlink requests whose reply is held back, by tag.
  std::map<uint16_t, Held> held_ ABSL_GUARDED_BY(mu_);
  uint64_t received_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t flushes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t replied_before_rflush_ ABSL_GUARDED_BY(mu_) = 0;
  bool at_once_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread timer_;
};

// The operation a worker thread is running, for the interrupting thread.
struct WorkerSlot {
  Mutex mu;
  Interrupter* current ABSL_GUARDED_BY(mu) = nullptr;
};

// Thousands of requests over real RDMA while interrupts fire at random and
// some replies outlive their deadline: every one ends with its reply,
// EINTR or a timeout, and afterwards every reply credit is back, every
// receive is posted again (flushed requests whose reply never came gave
// theirs back), nothing was released twice and the session still works.
TEST_F(RdmaSetupTest, InterruptsAndFlushesLeaveCreditsAndReceivesWhole) {
  const Footprint base = Now();
  {
    auto accepted = std::async(
        std::launch::async, [&] { return listener_->AcceptOne(absl::Now() + absl::Seconds(10)); });
    auto client = RdmaChannel::Connect(ip_, port_, opts_);
    ASSERT_TRUE(client.ok()) << client.status();
    auto server_ch = accepted.get();
    ASSERT_TRUE(server_ch.ok()) << server_ch.status();
    RdmaChannel* raw = client->get();
    RdmaChannel* server_raw = server_ch->get();
    auto server = std::make_unique<FlushingServer>(server_raw);
    ASSERT_TRUE(server_raw->Start(server.get()).ok());
    SessionOptions so;
    so.msize = opts_.max_message;
    so.max_tags = static_cast<uint16_t>(opts_.recv_depth);
    // Well under FlushingServer::kPastDeadline, well over a late reply.
    so.timeout = absl::Milliseconds(300);
    auto session = Session::Connect(*std::move(client), so);
    ASSERT_TRUE(session.ok()) << session.status();

    constexpr int kThreads = 8;
    constexpr int kPerThread = 400;
    constexpr int kSpared = 2;
    std::vector<WorkerSlot> slots(kThreads);
    std::atomic<int> ok{0}, eintr{0}, timed_out{0}, wrong{0};
    std::atomic<int> running{kThreads};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          uint32_t fid = static_cast<uint32_t>(t * 100000 + i);
          Interrupter intr;
          {
            MutexLock lock(&slots[t].mu);
            slots[t].current = &intr;
          }
          absl::StatusOr<std::string> r;
          {
            ScopedInterruptible scope(&intr);
            r = (*session)->Readlink(fid);
          }
          {
            MutexLock lock(&slots[t].mu);
            slots[t].current = nullptr;
          }
          if (r.ok()) {
            (*r == absl::StrCat("t", fid) ? ok : wrong)++;
          } else if (ToErrno(r.status()) == EINTR) {
            eintr++;
          } else if (r.status().code() == absl::StatusCode::kDeadlineExceeded) {
            timed_out++;
          } else {
            ADD_FAILURE() << "request " << fid << ": " << r.status();
            wrong++;
          }
        }
        running--;
      });
    }
    std::thread interrupter([&] {
      std::minstd_rand rng(42);
      while (running.load() > 0) {
        absl::SleepFor(absl::Microseconds(rng() % 4000));
        // Interrupts come every few milliseconds; threads 0 and 1 are
        // spared so that their requests held past the deadline time out.
        WorkerSlot& s = slots[kSpared + rng() % (kThreads - kSpared)];
        MutexLock lock(&s.mu);
        if (s.current != nullptr) s.current->Interrupt();
      }
    });
    for (auto& th : threads) th.join();
    interrupter.join();

    EXPECT_EQ(wrong.load(), 0);
    EXPECT_EQ(ok + eintr + timed_out, kThreads * kPerThread);
    // Every path was taken, so the counts below mean something.
    EXPECT_GT(ok.load(), 0);
    EXPECT_GT(eintr.load(), 0);
    EXPECT_GT(timed_out.load(), 0);
    EXPECT_GT(server->dropped(), 0u);
    EXPECT_GT(server->replied_before_rflush(), 0u);
    const SessionStats& st = (*session)->stats();
    EXPECT_EQ(st.flushes.load(), server->flushes());
    EXPECT_EQ(st.protocol_errors.load(), 0u);
    EXPECT_EQ(st.in_flight.load(), 0);
    // No request is left waiting on the server, and nothing was lost.
    EXPECT_EQ(server->held(), 0u);
    EXPECT_EQ(raw->counters().sends.load(), server->received());
    ExpectCreditsAndReceivesWhole(*raw, static_cast<int>(opts_.recv_depth), "client");
    ExpectCreditsAndReceivesWhole(*server_raw, static_cast<int>(opts_.recv_depth), "server");
    // The server counts a send just after posting it, so its last one may
    // be counted a moment after the client received it.
    for (int i = 0;
         i < 100 && server_raw->counters().sends.load() != raw->counters().receives.load(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_EQ(server_raw->counters().sends.load(), raw->counters().receives.load());
    ASSERT_TRUE((*session)->alive());
    server->AnswerAtOnce();
    absl::StatusOr<std::string> after = (*session)->Readlink(7);
    ASSERT_TRUE(after.ok()) << after.status();
    EXPECT_EQ(*after, "t7");
    std::cout << "ok=" << ok << " eintr=" << eintr << " timed_out=" << timed_out
              << " flushes=" << server->flushes() << " dropped=" << server->dropped()
              << " replied_before_rflush=" << server->replied_before_rflush() << "\n";
    session->reset();
    (*server_ch)->Close(absl::CancelledError("test over"));
    server.reset();
  }
  ExpectBackTo(base, "after interrupts and flushes");
}

// The server going away mid-call fails the waiter promptly.
TEST_F(RdmaSetupTest, PeerDisconnectFailsWaiters) {
  auto accepted = std::async(std::launch::async,
                             [&] { return listener_->AcceptOne(absl::Now() + absl::Seconds(10)); });
  auto client = RdmaChannel::Connect(ip_, port_, opts_);
  ASSERT_TRUE(client.ok()) << client.status();
  auto server_ch = accepted.get();
  ASSERT_TRUE(server_ch.ok());
  EchoServer echo(server_ch->get());
  ASSERT_TRUE((*server_ch)->Start(&echo).ok());
  auto session = Session::Connect(*std::move(client), SessionOptions{.msize = 65536});
  ASSERT_TRUE(session.ok()) << session.status();
  // Tgetattr is not answered by the echo server: the call waits until the
  // server side disconnects.
  auto call = std::async(std::launch::async, [&] { return (*session)->Getattr(1); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  absl::Time start = absl::Now();
  server_ch->reset();
  ASSERT_EQ(call.wait_for(std::chrono::seconds(20)), std::future_status::ready);
  EXPECT_FALSE(call.get().ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));
  EXPECT_FALSE((*session)->alive());
}

}  // namespace
}  // namespace p9::rdma
