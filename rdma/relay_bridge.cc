#include "rdma/relay_bridge.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "client/log.h"

namespace p9::rdma {
namespace {
constexpr uint8_t kTversion = 100;
constexpr uint8_t kRversion = 101;
}  // namespace

void CapVersionMsize(absl::Span<uint8_t> msg, uint32_t cap) {
  if (msg.size() < 11 || (msg[4] != kTversion && msg[4] != kRversion)) return;
  uint32_t m = msg[7] | (msg[8] << 8) | (msg[9] << 16) | (uint32_t{msg[10]} << 24);
  if (m <= cap) return;
  for (int i = 0; i < 4; ++i) msg[7 + i] = static_cast<uint8_t>(cap >> (8 * i));
}

absl::StatusOr<std::unique_ptr<RelayBridge>> RelayBridge::Create(std::unique_ptr<Channel> client,
                                                                 std::unique_ptr<Channel> server,
                                                                 uint32_t max_msize) {
  std::unique_ptr<RelayBridge> b(new RelayBridge(std::move(client), std::move(server), max_msize));
  // The server side first: a request can only arrive once the client side
  // runs, and it must have somewhere to go.
  if (absl::Status s = b->server_->Start(&b->from_server_); !s.ok()) return s;
  if (absl::Status s = b->client_->Start(&b->from_client_); !s.ok()) return s;
  return b;
}

RelayBridge::RelayBridge(std::unique_ptr<Channel> client, std::unique_ptr<Channel> server,
                         uint32_t max_msize)
    : client_(std::move(client)), server_(std::move(server)), max_msize_(max_msize) {}

RelayBridge::~RelayBridge() {
  client_->Close(absl::CancelledError("relay closing"));
  server_->Close(absl::CancelledError("relay closing"));
}

std::string RelayBridge::Describe() const {
  return absl::StrCat(client_->Describe(), " <-> ", server_->Describe());
}

void RelayBridge::Side::OnMessage(absl::Span<const uint8_t> msg) {
  RelayBridge* b = bridge_;
  // Copied so the version patch never writes into a transport's buffer.
  thread_local std::vector<uint8_t> copy;
  copy.assign(msg.begin(), msg.end());
  CapVersionMsize(absl::MakeSpan(copy), b->max_msize_);
  Channel* to = from_client_ ? b->server_.get() : b->client_.get();
  b->messages_.fetch_add(1, std::memory_order_relaxed);
  if (absl::Status s = to->Send(copy); !s.ok()) {
    P9_LOG(kWarning, "relay %s: forwarding failed: %s", b->Describe(), s.message());
    b->finished_.store(true, std::memory_order_release);
  }
}

void RelayBridge::Side::OnBadMessage(uint16_t tag, const absl::Status& why) {
  // Transparent relays do not invent replies; the peer's own timeout and
  // flush handle the lost message.
  P9_LOG(kWarning, "relay %s: dropped message for tag %u: %s", bridge_->Describe(), tag,
         why.message());
}

void RelayBridge::Side::OnClosed(const absl::Status& why) {
  P9_LOG(kInfo, "relay %s: %s side closed: %s", bridge_->Describe(),
         from_client_ ? "client" : "server", why.message());
  // The owner closes the other side: doing it here could join a thread that
  // is itself waiting to close this side.
  bridge_->finished_.store(true, std::memory_order_release);
}

}  // namespace p9::rdma
