// The server side of an in-process channel, driven by a test: it queues the
// requests it receives and sends whatever replies the test script chooses,
// in any order, well-formed or not.
#ifndef P9_TESTS_UNIT_SCRIPTED_SERVER_H_
#define P9_TESTS_UNIT_SCRIPTED_SERVER_H_

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "client/channel.h"
#include "client/codec.h"
#include "client/loopback_channel.h"
#include "client/mutex.h"
#include "client/session.h"

namespace p9::testing {

// A request as the server received it.
struct Received {
  Header header;
  std::vector<uint8_t> bytes;
  // Decodes the request as message type M (the test knows what it expects).
  template <typename M>
  M As() const {
    absl::StatusOr<M> m = DecodeMessage<M>(bytes, 1u << 30);
    if (!m.ok()) abort();
    return *m;
  }
};

class ScriptedServer : public ChannelReceiver {
 public:
  // Takes the server end of a loopback pair and starts receiving. If
  // `version_msize` is non-zero, Tversion is answered automatically with
  // min(requested, version_msize) and `version`.
  explicit ScriptedServer(std::unique_ptr<Channel> channel, uint32_t version_msize = 65536,
                          std::string version = "9P2000.L")
      : channel_(std::move(channel)), version_msize_(version_msize), version_(std::move(version)) {
    if (!channel_->Start(this).ok()) abort();
  }
  ~ScriptedServer() override { channel_->Close(absl::CancelledError("test over")); }

  // Next request received (other than auto-answered Tversion), waiting up to
  // `timeout`.
  std::optional<Received> Next(absl::Duration timeout = absl::Seconds(10)) {
    MutexLock lock(&mu_);
    auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !queue_.empty() || closed_; };
    mu_.AwaitWithTimeout(ready, timeout);
    if (queue_.empty()) return std::nullopt;
    Received r = std::move(queue_.front());
    queue_.pop_front();
    return r;
  }

  // Sends message `m` with `tag`.
  template <typename M>
  void Reply(uint16_t tag, const M& m) {
    std::vector<uint8_t> out;
    EncodeMessage(tag, m, &out);
    SendRaw(out);
  }
  // Sends arbitrary bytes as one message.
  void SendRaw(const std::vector<uint8_t>& bytes) { (void)channel_->Send(bytes); }
  // Drops the connection, as a crashing server would.
  void Disconnect() { channel_->Close(absl::UnavailableError("server went away")); }

  bool closed() {
    MutexLock lock(&mu_);
    return closed_;
  }

 private:
  void OnMessage(absl::Span<const uint8_t> msg) override {
    absl::StatusOr<Header> h = ParseHeader(msg, 1u << 30);
    if (!h.ok()) return;
    if (h->type == static_cast<uint8_t>(MsgType::kTversion) && version_msize_ != 0) {
      absl::StatusOr<Tversion> tv = DecodeMessage<Tversion>(msg, 1u << 30);
      if (!tv.ok()) return;
      Reply(h->tag, Rversion{std::min(tv->msize, version_msize_), version_});
      return;
    }
    MutexLock lock(&mu_);
    queue_.push_back(Received{*h, std::vector<uint8_t>(msg.begin(), msg.end())});
  }
  void OnBadMessage(uint16_t, const absl::Status&) override {}
  void OnClosed(const absl::Status&) override {
    MutexLock lock(&mu_);
    closed_ = true;
  }

  std::unique_ptr<Channel> channel_;
  const uint32_t version_msize_;
  const std::string version_;
  Mutex mu_;
  std::deque<Received> queue_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

// A session connected to a scripted server over an in-process channel.
struct Rig {
  std::unique_ptr<ScriptedServer> server;
  std::unique_ptr<Session> session;
};

// Builds a Rig; the server auto-answers Tversion with `server_msize`.
inline Rig MakeRig(SessionOptions options = {}, uint32_t server_msize = 65536,
                   uint32_t channel_max = 1u << 20) {
  auto [client_end, server_end] = MakeLoopbackPair(channel_max);
  Rig rig;
  rig.server = std::make_unique<ScriptedServer>(std::move(server_end), server_msize);
  absl::StatusOr<std::unique_ptr<Session>> s = Session::Connect(std::move(client_end), options);
  if (!s.ok()) abort();
  rig.session = *std::move(s);
  return rig;
}

}  // namespace p9::testing

#endif  // P9_TESTS_UNIT_SCRIPTED_SERVER_H_
