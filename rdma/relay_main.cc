// 9prdma-relay: accepts 9P connections over RDMA and relays each to its own
// TCP connection to a 9P server, so a server without an RDMA transport (or
// one, like stock diod, with per-user credentials that its RDMA mode lacks)
// can be reached by RDMA clients, including the kernel's trans=rdma.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <list>
#include <memory>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/log.h"
#include "client/tcp_channel.h"
#include "client/tunables.h"
#include "rdma/listener.h"
#include "rdma/relay_bridge.h"

namespace {

constexpr char kUsage[] =
    "usage: 9prdma-relay --listen ADDR[:PORT] --to HOST[:PORT] [options]\n"
    "\n"
    "Accepts 9P2000.L connections over RDMA (default port 5640) and relays\n"
    "each one to its own TCP connection to a 9P server (default port 564).\n"
    "\n"
    "options:\n"
    "  --listen ADDR[:PORT]  RDMA address to listen on (0.0.0.0 for any)\n"
    "  --to HOST[:PORT]      9P server to relay to over TCP\n"
    "  --msize BYTES         largest message; Tversion/Rversion are capped to it\n"
    "                        (default 131072)\n"
    "  --rq N                receives posted per connection (default 64, at least\n"
    "                        the deepest client's send queue)\n"
    "  --sq N                sends in flight per connection (default 64)\n"
    "  --timeout SECONDS     connect timeout (default 30)\n"
    "  -v, --verbose         log connections (twice: debug)\n"
    "  -h, --help            this text\n";

volatile sig_atomic_t g_stop = 0;
p9::rdma::RdmaListener* g_listener = nullptr;

void OnSignal(int) {
  g_stop = 1;
  if (g_listener != nullptr) g_listener->Shutdown();  // write() to an eventfd: signal-safe
}

// Splits HOST[:PORT] / [V6]:PORT.
bool SplitHostPort(const std::string& s, uint16_t default_port, std::string* host, uint16_t* port) {
  *port = default_port;
  std::string h = s;
  size_t colon = std::string::npos;
  if (!s.empty() && s.front() == '[') {
    size_t close = s.find(']');
    if (close == std::string::npos) return false;
    h = s.substr(1, close - 1);
    if (close + 1 < s.size()) {
      if (s[close + 1] != ':') return false;
      colon = close + 1;
    }
  } else if (std::count(s.begin(), s.end(), ':') == 1) {
    colon = s.find(':');
    h = s.substr(0, colon);
  }
  if (colon != std::string::npos) {
    int p = 0;
    if (!absl::SimpleAtoi(s.substr(colon + 1), &p) || p <= 0 || p > 65535) return false;
    *port = static_cast<uint16_t>(p);
  }
  *host = h;
  return !h.empty();
}

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "9prdma-relay: %s\n", msg.c_str());
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  std::string listen, to;
  uint32_t msize = p9::tunables::kDefaultRdmaMsize;
  uint32_t rq = p9::tunables::kRelayRecvDepth, sq = p9::tunables::kRelayRecvDepth;
  int timeout_s = 30, verbose = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> std::string {
      if (i + 1 >= argc) Die(absl::StrCat(name, " needs a value"));
      return argv[++i];
    };
    auto number = [&](const char* name, uint32_t lo, uint32_t hi) -> uint32_t {
      std::string v = value(name);
      uint32_t n = 0;
      if (!absl::SimpleAtoi(v, &n) || n < lo || n > hi) {
        Die(absl::StrCat(name, " must be a number from ", lo, " to ", hi, ", not '", v, "'"));
      }
      return n;
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--listen") {
      listen = value("--listen");
    } else if (a == "--to") {
      to = value("--to");
    } else if (a == "--msize") {
      msize = number("--msize", p9::tunables::kMinMsize, p9::tunables::kMaxMsize);
    } else if (a == "--rq") {
      rq = number("--rq", 1, 4096);
    } else if (a == "--sq") {
      sq = number("--sq", 1, 4096);
    } else if (a == "--timeout") {
      timeout_s = static_cast<int>(number("--timeout", 1, 3600));
    } else if (a == "-v" || a == "--verbose") {
      ++verbose;
    } else if (a == "-vv") {
      verbose += 2;
    } else {
      Die(absl::StrCat("unknown argument '", a, "' (see --help)"));
    }
  }
  if (listen.empty() || to.empty()) Die("--listen and --to are required (see --help)");
  std::string lhost, thost;
  uint16_t lport = 0, tport = 0;
  if (!SplitHostPort(listen, p9::tunables::kDefaultRdmaPort, &lhost, &lport)) {
    Die(absl::StrCat("bad --listen address '", listen, "'"));
  }
  if (!SplitHostPort(to, p9::tunables::kDefaultTcpPort, &thost, &tport)) {
    Die(absl::StrCat("bad --to address '", to, "'"));
  }
  p9::SetLogLevel(verbose >= 2   ? p9::LogLevel::kDebug
                  : verbose == 1 ? p9::LogLevel::kInfo
                                 : p9::LogLevel::kWarning);

  p9::rdma::RdmaOptions opts;
  opts.max_message = msize;
  opts.recv_depth = rq;
  opts.send_depth = sq;
  opts.timeout = absl::Seconds(timeout_s);
  auto listener = p9::rdma::RdmaListener::Listen(lhost == "0.0.0.0" ? "" : lhost, lport, opts);
  if (!listener.ok()) Die(std::string(listener.status().message()));
  g_listener = listener->get();
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  P9_LOG(kWarning, "listening on rdma %s:%u, relaying to tcp %s:%u (msize %u, rq %u)", lhost,
         (*listener)->port(), thost, tport, msize, rq);

  std::list<std::unique_ptr<p9::rdma::RelayBridge>> bridges;
  while (!g_stop) {
    auto ch = (*listener)->AcceptOne(absl::Now() + absl::Milliseconds(500));
    // Reap finished bridges: closing here, on the main thread, never joins a
    // delivery thread from inside another one.
    bridges.remove_if([](const auto& b) { return b->finished(); });
    if (!ch.ok()) {
      if (ch.status().code() == absl::StatusCode::kDeadlineExceeded ||
          ch.status().code() == absl::StatusCode::kCancelled) {
        continue;
      }
      P9_LOG(kWarning, "accept failed: %s", ch.status().message());
      continue;
    }
    auto tcp = p9::TcpChannel::Connect(thost, tport, opts.timeout, msize);
    if (!tcp.ok()) {
      P9_LOG(kError, "cannot reach the 9P server: %s", tcp.status().message());
      continue;  // dropping the RDMA channel disconnects the client
    }
    auto bridge = p9::rdma::RelayBridge::Create(*std::move(ch), *std::move(tcp), msize);
    if (!bridge.ok()) {
      P9_LOG(kError, "relay setup failed: %s", bridge.status().message());
      continue;
    }
    P9_LOG(kInfo, "relaying %s", (*bridge)->Describe());
    bridges.push_back(*std::move(bridge));
  }
  bridges.clear();
  g_listener = nullptr;
  return 0;
}
