// A long-lived process makes and destroys 1,000 sessions to diod (connect,
// Tversion, attach, walk, getattr, clunk, destroy) and must end with the
// descriptors, threads and memory it had: a mount daemon with reconnect,
// or a library user, does this for as long as it runs. diod's own
// descriptors and threads (it keeps them per connection) must come back
// too. Run under with_diod.sh; P9_SESSION_CYCLES overrides the count.
#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/session.h"
#include "client/tcp_channel.h"
#include "gtest/gtest.h"

namespace p9 {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

// Entries of /proc/PID/fd ("self" for this process).
int FdCount(const std::string& pid) {
  DIR* d = opendir(absl::StrCat("/proc/", pid, "/fd").c_str());
  if (d == nullptr) return -1;
  int n = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n - (pid == "self" ? 1 : 0);  // the directory being listed
}

// A "Key:   value" field of /proc/PID/status (Threads, VmRSS in kB).
long StatusField(const std::string& pid, const std::string& key) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) != 0) continue;
    long v = -1;
    std::string rest = line.substr(key.size() + 1);
    size_t start = rest.find_first_not_of(" \t");
    size_t end = rest.find_first_of(" \t", start);
    if (start != std::string::npos && absl::SimpleAtoi(rest.substr(start, end - start), &v)) {
      return v;
    }
  }
  return -1;
}

struct Usage {
  int fds;
  long threads;
  long rss_kb;
};

Usage Measure(const std::string& pid) {
  return {FdCount(pid), StatusField(pid, "Threads"), StatusField(pid, "VmRSS")};
}

// The lowest of a few looks at `pid`: diod drops a closed connection's
// socket, and a little later its thread, after the client has gone (with
// with_diod.sh's probe connection too).
Usage Settled(const std::string& pid) {
  Usage low = Measure(pid);
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    Usage u = Measure(pid);
    low.fds = std::min(low.fds, u.fds);
    low.threads = std::min(low.threads, u.threads);
  }
  return low;
}

// ASan keeps freed memory in quarantine (up to 256 MB) before reusing it,
// so resident memory grows there with no leak at all; LeakSanitizer checks
// for leaks at exit instead.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kRssTellsLeaks = false;
#else
constexpr bool kRssTellsLeaks = true;
#endif

constexpr long kNoLimit = 1L << 30;

// diod closes a connection on its own threads, shortly after the client:
// waits (30 s at most) until it is down to `fds` and `threads`.
bool WaitForDiod(const std::string& pid, int fds, long threads) {
  absl::Time give_up = absl::Now() + absl::Seconds(30);
  for (;;) {
    Usage u = Measure(pid);
    if (u.fds <= fds && u.threads <= threads) return true;
    if (absl::Now() > give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

class SessionCyclesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Env("P9_DIOD_EXPORT").empty()) GTEST_SKIP() << "run under with_diod.sh";
    ASSERT_TRUE(absl::SimpleAtoi(Env("P9_DIOD_PORT"), &port_));
  }

  // One whole session life; every step must succeed.
  void Cycle() {
    auto ch = TcpChannel::Connect(Env("P9_DIOD_HOST"), static_cast<uint16_t>(port_),
                                  absl::Seconds(10), 1 << 20);
    ASSERT_TRUE(ch.ok()) << ch.status();
    SessionOptions o;
    o.msize = 65536;
    o.timeout = absl::Seconds(30);
    auto s = Session::Connect(*std::move(ch), o);
    ASSERT_TRUE(s.ok()) << s.status();
    Session& session = **s;
    uint32_t root = session.AllocFid();
    auto q = session.Attach(root, kNoFid, "root", Env("P9_DIOD_EXPORT"), 0);
    ASSERT_TRUE(q.ok()) << q.status();
    uint32_t file = session.AllocFid();
    auto w = session.Walk(root, file, {"probe"});
    ASSERT_TRUE(w.ok()) << w.status();
    auto a = session.Getattr(file);
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ(a->size, 5u);
    EXPECT_TRUE(session.Clunk(file).ok());
    EXPECT_TRUE(session.Clunk(root).ok());
    EXPECT_TRUE(session.alive());
  }

  int port_ = 0;
};

TEST_F(SessionCyclesTest, ThousandSessionsLeakNothing) {
  {
    std::ofstream probe(Env("P9_DIOD_EXPORT") + "/probe");
    probe << "probe";
  }
  int cycles = 1000;
  if (!Env("P9_SESSION_CYCLES").empty()) {
    ASSERT_TRUE(absl::SimpleAtoi(Env("P9_SESSION_CYCLES"), &cycles));
  }
  // diod's descriptors with no client connected: what every connection it
  // served must have given back in the end.
  const std::string diod = Env("P9_DIOD_PID");
  Usage diod0 = diod.empty() ? Usage{} : Settled(diod);
  // Warm-up: the allocator's arenas, thread stacks and caches that the
  // first sessions create are kept for reuse, and are not leaks; so is the
  // worker pool diod starts with its first client.
  const int warmup = std::max(1, cycles / 10);
  for (int i = 0; i < warmup; ++i) ASSERT_NO_FATAL_FAILURE(Cycle());
  const Usage self0 = Measure("self");
  if (!diod.empty()) {
    ASSERT_TRUE(WaitForDiod(diod, diod0.fds, kNoLimit)) << "diod kept a warm-up connection";
    diod0.threads = Settled(diod).threads;
  }
  absl::Time t0 = absl::Now();
  for (int i = 0; i < cycles; ++i) ASSERT_NO_FATAL_FAILURE(Cycle()) << "cycle " << i;
  absl::Duration took = absl::Now() - t0;
  const Usage self1 = Measure("self");
  std::printf("%d sessions in %s; this process: fds %d→%d, threads %ld→%ld, VmRSS %ld→%ld kB\n",
              cycles, absl::FormatDuration(took).c_str(), self0.fds, self1.fds, self0.threads,
              self1.threads, self0.rss_kb, self1.rss_kb);
  EXPECT_EQ(self1.fds, self0.fds);
  EXPECT_EQ(self1.threads, self0.threads);
  // A session holds at least its call slots and buffers (tens of kB), so
  // leaking one per cycle would add tens of MB; allocator noise is far
  // below the 8 MB allowed.
  if (kRssTellsLeaks) {
    EXPECT_LT(self1.rss_kb - self0.rss_kb, 8 * 1024);
  }
  if (!diod.empty()) {
    WaitForDiod(diod, diod0.fds, diod0.threads);
    const Usage d = Measure(diod);
    std::printf("diod: fds %d→%d, threads %ld→%ld\n", diod0.fds, d.fds, diod0.threads, d.threads);
    EXPECT_LE(d.fds, diod0.fds);
    EXPECT_LE(d.threads, diod0.threads);
  }
}

}  // namespace
}  // namespace p9
