// The client library through p9_fault_proxy to a real diod: for every kind
// of misbehaviour, calls either succeed, or fail with a clear errno within a
// bounded time; the process never crashes and never hangs; where the fault
// is confined to one reply, the session stays usable for the next call.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "client/errors.h"
#include "client/session.h"
#include "client/tcp_channel.h"
#include "gtest/gtest.h"

extern char** environ;

namespace p9 {
namespace {

std::string Env(const char* n) {
  const char* v = std::getenv(n);
  return v ? v : "";
}

// Runs the proxy as a child with one fault; stops it on destruction.
class Proxy {
 public:
  Proxy(const std::string& fault, int every, int after, int delay_ms = 200) {
    port_file_ = absl::StrCat(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp", "/p9proxy.",
                              getpid(), ".", counter_++);
    std::vector<std::string> args = {P9_FAULT_PROXY,
                                     "--listen",
                                     "127.0.0.1:0",
                                     "--to",
                                     absl::StrCat(Env("P9_DIOD_HOST"), ":", Env("P9_DIOD_PORT")),
                                     "--fault",
                                     fault,
                                     "--every",
                                     absl::StrCat(every),
                                     "--after",
                                     absl::StrCat(after),
                                     "--delay-ms",
                                     absl::StrCat(delay_ms),
                                     "--port-file",
                                     port_file_};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, argv[0], nullptr, nullptr, argv.data(), environ) != 0) pid_ = -1;
    for (int i = 0; i < 200 && port_ == 0; ++i) {
      std::ifstream in(port_file_);
      if (!(in >> port_)) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ~Proxy() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
    unlink(port_file_.c_str());
  }
  uint16_t port() const { return static_cast<uint16_t>(port_); }

 private:
  static inline int counter_ = 0;
  pid_t pid_ = -1;
  int port_ = 0;
  std::string port_file_;
};

class FaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Env("P9_DIOD_EXPORT").empty()) GTEST_SKIP() << "run under with_diod.sh";
  }
  // Connects through `proxy` and attaches; the first two replies (Rversion,
  // Rattach) are never faulted.
  void Connect(const Proxy& proxy, absl::Duration timeout = absl::Seconds(5)) {
    ASSERT_NE(proxy.port(), 0) << "proxy did not start";
    auto ch = TcpChannel::Connect("127.0.0.1", proxy.port(), absl::Seconds(5), 1 << 20);
    ASSERT_TRUE(ch.ok()) << ch.status();
    SessionOptions o;
    o.msize = 65536;
    o.timeout = timeout;
    o.flush_timeout = absl::Seconds(2);
    auto s = Session::Connect(*std::move(ch), o);
    ASSERT_TRUE(s.ok()) << s.status();
    session_ = *std::move(s);
    root_ = session_->AllocFid();
    auto q = session_->Attach(root_, kNoFid, "root", Env("P9_DIOD_EXPORT"), 0);
    ASSERT_TRUE(q.ok()) << q.status();
  }
  // One getattr of the root, timed.
  absl::Status Probe(absl::Duration* took = nullptr) {
    absl::Time t0 = absl::Now();
    absl::Status s = session_->Getattr(root_).status();
    if (took) *took = absl::Now() - t0;
    return s;
  }

  std::unique_ptr<Session> session_;
  uint32_t root_ = 0;
};

TEST_F(FaultTest, HarmlessFaultsAreAbsorbed) {
  for (const char* f : {"none", "delay", "reorder", "duplicate", "unknowntag"}) {
    SCOPED_TRACE(f);
    std::string fault = f;
    // A reply sent to an unknown tag leaves its call to time out (5 s) and
    // be flushed, so that fault is injected once only.
    Proxy proxy(f, fault == "unknowntag" ? 100000 : 3, 1, 50);
    Connect(proxy);
    // Several calls in parallel so reordering has something to reorder.
    std::vector<std::thread> threads;
    std::atomic<int> bad{0};
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 20; ++i) {
          if (!Probe().ok()) bad++;
        }
      });
    }
    for (auto& th : threads) th.join();
    if (fault == "unknowntag") {
      // The reply went to a tag nobody waits on: that call times out and is
      // flushed; everything else succeeds and the session lives on.
      EXPECT_EQ(bad.load(), 1);
      EXPECT_EQ(session_->stats().timeouts.load(), 1u);
      EXPECT_GE(session_->stats().protocol_errors.load(), 1u);
    } else {
      EXPECT_EQ(bad.load(), 0);
    }
    if (fault == "duplicate") {
      EXPECT_GE(session_->stats().protocol_errors.load(), 1u);
    }
    EXPECT_TRUE(session_->alive());
    session_.reset();
  }
}

TEST_F(FaultTest, MalformedReplyFailsOneCallOnly) {
  for (const char* f : {"truncate", "corrupt", "wrongtype", "oversize"}) {
    SCOPED_TRACE(f);
    Proxy proxy(f, 5, 1);
    Connect(proxy);
    int failed = 0, ok = 0;
    for (int i = 0; i < 10; ++i) {
      absl::Duration took;
      absl::Status s = Probe(&took);
      EXPECT_LT(took, absl::Seconds(10));
      if (s.ok()) {
        ++ok;
      } else {
        ++failed;
        // corrupt may flip a field into another valid value; the rest must
        // be reported as I/O errors.
        EXPECT_EQ(ToErrno(s), EIO) << s;
      }
    }
    std::string fault = f;
    if (fault != "corrupt") {
      EXPECT_EQ(failed, 2) << "every 5th reply is bad";
      EXPECT_GE(session_->stats().protocol_errors.load(), 2u);
    }
    EXPECT_GE(ok, 8);
    EXPECT_TRUE(session_->alive());
    session_.reset();
  }
}

TEST_F(FaultTest, DroppedConnectionFailsPromptly) {
  Proxy proxy("drop", 1, 3);
  Connect(proxy);
  for (int i = 0; i < 2; ++i) EXPECT_TRUE(Probe().ok());
  absl::Duration took;
  absl::Status s = Probe(&took);
  EXPECT_FALSE(s.ok());
  // In flight when the connection went: it may or may not have run.
  EXPECT_TRUE(IsConnectionLost(s)) << s;
  EXPECT_EQ(ToErrno(s), EIO) << s;
  EXPECT_LT(took, absl::Seconds(5));
  EXPECT_FALSE(session_->alive());
  EXPECT_EQ(ToErrno(Probe()), ENOTCONN);
}

TEST_F(FaultTest, HungServerIsGivenUpWithinTimeoutPlusFlush) {
  Proxy proxy("blackhole", 1, 2);
  Connect(proxy, absl::Seconds(1));
  EXPECT_TRUE(Probe().ok());
  absl::Duration took;
  absl::Status s = Probe(&took);
  EXPECT_FALSE(s.ok());
  // 1 s RPC timeout, then 2 s for the (unanswered) flush, then the channel
  // is closed: bounded, never a hang.
  EXPECT_GE(took, absl::Seconds(1)) << s.ToString();
  EXPECT_LT(took, absl::Seconds(6)) << s;
  EXPECT_FALSE(session_->alive());
}

}  // namespace
}  // namespace p9
