// Runs in the Soft-RoCE guest (P9_RDMA_IP set). Every setup step of both
// sides of a connection is made to fail in turn; after each failure the
// process must hold exactly the fds, threads and verbs resources it held
// before. Then a real connection carries thousands of requests and must end
// with every receive posted and every credit returned.
#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <future>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
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
    EXPECT_EQ(raw->reply_credits(), static_cast<int64_t>(opts_.recv_depth));
    EXPECT_EQ(raw->receives_posted(), static_cast<int>(opts_.recv_depth));
    EXPECT_EQ(raw->credit_over_releases(), 0);
    EXPECT_EQ(raw->counters().sends.load(), 4001u);  // + Tversion
    (*server_ch)->Close(absl::CancelledError("test over"));
  }
  ExpectBackTo(base, "after a full connection's life");
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
