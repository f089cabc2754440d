// p9_fault_proxy: a 9P proxy that misbehaves on purpose, between a client
// and a real server, to test that the client never hangs, never crashes, and
// fails (or survives) each fault the way it should.
//
//   p9_fault_proxy --listen 127.0.0.1:PORT --to 127.0.0.1:564 --fault KIND
//                  [--every N] [--after N] [--delay-ms MS] [--port-file F]
//
// SIGUSR1 heals it: from then on every reply is forwarded unchanged (and
// replies held by slowread go out at once), so a test can check that the
// client recovers once the fault is gone.
//
// Faults apply to replies (server → client) except `drop`:
//   none        forward unchanged
//   delay       hold each chosen reply MS milliseconds
//   slowread    hold each chosen Rread MS milliseconds while other replies
//               pass; a Tflush of a held reply's tag discards it, as a
//               server that abandons a flushed request would, so the
//               Rflush is the only answer (a slow disk, not a dead server)
//   reorder     hold a chosen reply until the next reply has gone first
//               (at most 50 ms)
//   duplicate   send a chosen reply twice
//   truncate    cut a chosen reply's body in half (size field adjusted)
//   corrupt     invert one byte of a chosen reply's body
//   wrongtype   change a chosen reply's type byte to another R-message
//   unknowntag  change a chosen reply's tag to one nobody used
//   oversize    pad a chosen reply past the negotiated msize
//   drop        close the client's connection at a chosen message
//   blackhole   stop forwarding replies at a chosen one (server "hangs")
// Replies are counted from 1, Tversion/Rversion not included. The first
// --after (default 1: Rattach) pass; the next one is faulted, and then every
// --every'th (default 1) after it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <list>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/channel.h"
#include "client/mutex.h"
#include "client/protocol.h"
#include "client/tcp_channel.h"

namespace {

enum class Fault {
  kNone,
  kDelay,
  kSlowRead,
  kReorder,
  kDuplicate,
  kTruncate,
  kCorrupt,
  kWrongType,
  kUnknownTag,
  kOversize,
  kDrop,
  kBlackhole
};

struct Config {
  Fault fault = Fault::kNone;
  uint64_t every = 1;
  uint64_t after = 1;
  int delay_ms = 200;
};

bool ParseFault(const std::string& s, Fault* f) {
  static const std::pair<const char*, Fault> kNames[] = {{"none", Fault::kNone},
                                                         {"delay", Fault::kDelay},
                                                         {"slowread", Fault::kSlowRead},
                                                         {"reorder", Fault::kReorder},
                                                         {"duplicate", Fault::kDuplicate},
                                                         {"truncate", Fault::kTruncate},
                                                         {"corrupt", Fault::kCorrupt},
                                                         {"wrongtype", Fault::kWrongType},
                                                         {"unknowntag", Fault::kUnknownTag},
                                                         {"oversize", Fault::kOversize},
                                                         {"drop", Fault::kDrop},
                                                         {"blackhole", Fault::kBlackhole}};
  for (const auto& [name, value] : kNames) {
    if (s == name) {
      *f = value;
      return true;
    }
  }
  return false;
}

// Set by SIGUSR1: stop injecting faults. Atomic (lock-free, so
// async-signal-safe) because every link's delivery threads read it; relaxed:
// it publishes nothing but itself.
std::atomic<bool> g_healed{false};
void OnHeal(int) { g_healed.store(true, std::memory_order_relaxed); }

uint16_t TagOf(const std::vector<uint8_t>& m) { return static_cast<uint16_t>(m[5] | (m[6] << 8)); }

void SetSize(std::vector<uint8_t>& m) {
  uint32_t n = static_cast<uint32_t>(m.size());
  for (int i = 0; i < 4; ++i) m[i] = static_cast<uint8_t>(n >> (8 * i));
}

// One proxied connection: client side and server side, each a TcpChannel.
class Link {
 public:
  Link(std::unique_ptr<p9::Channel> client, std::unique_ptr<p9::Channel> server, const Config& c)
      : client_(std::move(client)), server_(std::move(server)), config_(c) {
    // A reordered reply waits for the next reply, but never more than 50 ms:
    // when it is the only one outstanding no next reply would ever come.
    releaser_ = std::thread([this] {
      while (!stopping_.load(std::memory_order_acquire)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        std::vector<std::vector<uint8_t>> release;
        {
          p9::MutexLock lock(&mu_);
          release.swap(held_);
        }
        for (const auto& h : release) (void)client_->Send(h);
      }
    });
    if (config_.fault == Fault::kSlowRead) {
      slow_releaser_ = std::thread([this] {
        while (!stopping_.load(std::memory_order_acquire)) {
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
          // Sent under mu_ so that FromClient either discards a reply
          // before it goes or forwards the Tflush after it went: the
          // client never sees an Rread after the Rflush of its tag.
          p9::MutexLock lock(&mu_);
          absl::Time now = absl::Now();
          bool heal = g_healed.load(std::memory_order_relaxed);
          while (!slow_.empty() && (heal || slow_.front().due <= now)) {
            (void)client_->Send(slow_.front().msg);
            slow_.pop_front();
          }
        }
      });
    }
  }
  ~Link() {
    stopping_.store(true, std::memory_order_release);
    releaser_.join();
    if (slow_releaser_.joinable()) slow_releaser_.join();
    client_->Close(absl::CancelledError("proxy closing"));
    server_->Close(absl::CancelledError("proxy closing"));
  }
  bool Start() { return server_->Start(&from_server_).ok() && client_->Start(&from_client_).ok(); }
  bool finished() const { return finished_.load(std::memory_order_acquire); }

 private:
  struct Side : p9::ChannelReceiver {
    Link* link;
    bool from_client;
    Side(Link* l, bool c) : link(l), from_client(c) {}
    void OnMessage(absl::Span<const uint8_t> msg) override {
      std::vector<uint8_t> m(msg.begin(), msg.end());
      if (from_client) {
        link->FromClient(std::move(m));
      } else {
        link->FromServer(std::move(m));
      }
    }
    void OnBadMessage(uint16_t, const absl::Status&) override {}
    void OnClosed(const absl::Status& why) override {
      if (getenv("P9_PROXY_VERBOSE") != nullptr) {
        std::fprintf(stderr, "p9_fault_proxy: %s side closed: %s\n",
                     from_client ? "client" : "server", why.ToString().c_str());
      }
      link->finished_.store(true, std::memory_order_release);
    }
  };

  void FromClient(std::vector<uint8_t> m) {
    if (m.size() >= 11 && m[4] == static_cast<uint8_t>(p9::MsgType::kTversion)) {
      msize_.store(m[7] | (m[8] << 8) | (m[9] << 16) | (uint32_t{m[10]} << 24));
    }
    if (config_.fault == Fault::kSlowRead && m.size() >= 9 &&
        m[4] == static_cast<uint8_t>(p9::MsgType::kTflush)) {
      uint16_t oldtag = static_cast<uint16_t>(m[7] | (m[8] << 8));
      p9::MutexLock lock(&mu_);
      std::erase_if(slow_, [oldtag](const Slow& s) { return TagOf(s.msg) == oldtag; });
    }
    (void)server_->Send(m);
  }

  void FromServer(std::vector<uint8_t> m) {
    if (m.size() < p9::kHeaderSize) return;
    if (m[4] == static_cast<uint8_t>(p9::MsgType::kRversion)) {
      if (m.size() >= 11) {
        uint32_t granted = m[7] | (m[8] << 8) | (m[9] << 16) | (uint32_t{m[10]} << 24);
        msize_.store(std::min(msize_.load(), granted));
      }
      (void)client_->Send(m);
      return;
    }
    uint64_t n = ++replies_;
    bool chosen = n > config_.after && (n - config_.after - 1) % config_.every == 0 &&
                  !g_healed.load(std::memory_order_relaxed);
    if (!chosen || config_.fault == Fault::kNone) {
      Forward(m);
      return;
    }
    switch (config_.fault) {
      case Fault::kDelay:
        std::this_thread::sleep_for(std::chrono::milliseconds(config_.delay_ms));
        Forward(m);
        return;
      case Fault::kSlowRead:
        if (m[4] == static_cast<uint8_t>(p9::MsgType::kRread)) {
          p9::MutexLock lock(&mu_);
          slow_.push_back({absl::Now() + absl::Milliseconds(config_.delay_ms), std::move(m)});
        } else {
          Forward(m);
        }
        return;
      case Fault::kReorder: {
        p9::MutexLock lock(&mu_);
        held_.push_back(std::move(m));  // goes out after the next reply
        return;
      }
      case Fault::kDuplicate:
        Forward(m);
        Forward(m);
        return;
      case Fault::kTruncate:
        m.resize(p9::kHeaderSize + (m.size() - p9::kHeaderSize) / 2);
        SetSize(m);
        Forward(m);
        return;
      case Fault::kCorrupt:
        if (m.size() > p9::kHeaderSize) m[p9::kHeaderSize] ^= 0xFF;
        Forward(m);
        return;
      case Fault::kWrongType:
        m[4] = m[4] == static_cast<uint8_t>(p9::MsgType::kRgetattr)
                   ? static_cast<uint8_t>(p9::MsgType::kRclunk)
                   : static_cast<uint8_t>(p9::MsgType::kRgetattr);
        Forward(m);
        return;
      case Fault::kUnknownTag:
        m[5] = 0xFE;  // tag 0xFFFE: never allocated by a client this small
        m[6] = 0xFF;
        Forward(m);
        return;
      case Fault::kOversize:
        m.resize(std::max<size_t>(m.size(), msize_.load() + 1), 0);
        SetSize(m);
        Forward(m);
        return;
      case Fault::kDrop:
        client_->Close(absl::UnavailableError("fault: drop"));
        finished_.store(true, std::memory_order_release);
        return;
      case Fault::kBlackhole:
        blackholed_.store(true, std::memory_order_release);
        return;
      case Fault::kNone:
        return;
    }
  }

  void Forward(const std::vector<uint8_t>& m) {
    if (blackholed_.load(std::memory_order_acquire)) return;
    (void)client_->Send(m);
    std::vector<std::vector<uint8_t>> release;
    {
      p9::MutexLock lock(&mu_);
      release.swap(held_);
    }
    for (const auto& h : release) (void)client_->Send(h);
  }

  const std::unique_ptr<p9::Channel> client_;
  const std::unique_ptr<p9::Channel> server_;
  const Config config_;
  Side from_client_{this, true};
  Side from_server_{this, false};
  std::atomic<bool> finished_{false};
  std::atomic<bool> blackholed_{false};
  std::atomic<bool> stopping_{false};
  std::thread releaser_;
  std::thread slow_releaser_;  // slowread only
  // Replies seen; only the server side's delivery thread counts.
  std::atomic<uint64_t> replies_{0};
  std::atomic<uint32_t> msize_{1u << 20};
  p9::Mutex mu_;
  std::vector<std::vector<uint8_t>> held_ ABSL_GUARDED_BY(mu_);
  // slowread: Rreads not yet due, oldest (and so earliest due) first.
  struct Slow {
    absl::Time due;
    std::vector<uint8_t> msg;
  };
  std::deque<Slow> slow_ ABSL_GUARDED_BY(mu_);
};

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

[[noreturn]] void Die(const std::string& m) {
  std::fprintf(stderr, "p9_fault_proxy: %s\n", m.c_str());
  std::exit(2);
}

bool SplitHostPort(const std::string& s, std::string* host, int* port) {
  size_t c = s.rfind(':');
  if (c == std::string::npos) return false;
  *host = s.substr(0, c);
  return absl::SimpleAtoi(s.substr(c + 1), port) && *port >= 0 && *port < 65536;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  std::string listen = "127.0.0.1:0", to, port_file;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) Die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--listen") {
      listen = val();
    } else if (a == "--to") {
      to = val();
    } else if (a == "--fault") {
      if (!ParseFault(val(), &cfg.fault)) Die("unknown fault");
    } else if (a == "--every") {
      if (!absl::SimpleAtoi(val(), &cfg.every) || cfg.every == 0) Die("bad --every");
    } else if (a == "--after") {
      if (!absl::SimpleAtoi(val(), &cfg.after)) Die("bad --after");
    } else if (a == "--delay-ms") {
      if (!absl::SimpleAtoi(val(), &cfg.delay_ms)) Die("bad --delay-ms");
    } else if (a == "--port-file") {
      port_file = val();
    } else {
      Die("unknown argument " + a);
    }
  }
  std::string lhost, thost;
  int lport = 0, tport = 0;
  if (!SplitHostPort(listen, &lhost, &lport) || !SplitHostPort(to, &thost, &tport)) {
    Die("usage: p9_fault_proxy --listen HOST:PORT --to HOST:PORT --fault KIND");
  }
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(lport));
  if (inet_pton(AF_INET, lhost.c_str(), &sa.sin_addr) != 1) Die("--listen takes an IPv4 address");
  if (bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 || ::listen(lfd, 64) != 0) {
    Die(absl::StrCat("cannot listen on ", listen, ": ", strerror(errno)));
  }
  socklen_t len = sizeof(sa);
  getsockname(lfd, reinterpret_cast<sockaddr*>(&sa), &len);
  if (!port_file.empty()) {
    std::ofstream(port_file + ".tmp") << ntohs(sa.sin_port) << "\n";
    std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  }
  struct sigaction act {};
  act.sa_handler = OnSignal;
  sigaction(SIGTERM, &act, nullptr);
  sigaction(SIGINT, &act, nullptr);
  act.sa_handler = OnHeal;
  sigaction(SIGUSR1, &act, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::list<std::unique_ptr<Link>> links;
  while (!g_stop) {
    // poll, not SO_RCVTIMEO: accepted sockets would inherit the timeout.
    pollfd p{lfd, POLLIN, 0};
    int ready = poll(&p, 1, 200);
    links.remove_if([](const auto& l) { return l->finished(); });
    if (ready <= 0) continue;
    int cfd = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (cfd < 0) continue;
    auto server =
        p9::TcpChannel::Connect(thost, static_cast<uint16_t>(tport), absl::Seconds(10), 2u << 20);
    if (!server.ok()) {
      close(cfd);
      continue;
    }
    auto link = std::make_unique<Link>(std::make_unique<p9::TcpChannel>(cfd, "client", 2u << 20),
                                       *std::move(server), cfg);
    if (link->Start()) links.push_back(std::move(link));
  }
  links.clear();
  close(lfd);
  return 0;
}
