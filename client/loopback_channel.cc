#include "client/loopback_channel.h"

#include <atomic>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "client/errors.h"
#include "client/mutex.h"
#include "client/protocol.h"

namespace p9 {
namespace {

class Endpoint;

// What the two ends share: who is still there, so a send never touches an
// endpoint that has been destroyed.
struct Link {
  Mutex mu;
  Endpoint* ends[2] ABSL_GUARDED_BY(mu) = {nullptr, nullptr};
};

thread_local const Endpoint* tls_delivering = nullptr;

class Endpoint : public Channel {
 public:
  Endpoint(std::shared_ptr<Link> link, int side, uint32_t max_message)
      : link_(std::move(link)), side_(side), max_message_(max_message), limit_(max_message) {
    MutexLock lock(&link_->mu);
    link_->ends[side_] = this;
  }

  ~Endpoint() override {
    Close(absl::UnavailableError("loopback endpoint destroyed"));
    MutexLock lock(&link_->mu);
    link_->ends[side_] = nullptr;
  }

  absl::Status Start(ChannelReceiver* receiver) override {
    MutexLock lock(&join_mu_);
    if (receiver_ != nullptr) return absl::FailedPreconditionError("already started");
    receiver_ = receiver;
    thread_ = std::thread([this] { Deliver(); });
    return absl::OkStatus();
  }

  absl::Status Send(absl::Span<const uint8_t> msg) override {
    MutexLock lock(&link_->mu);
    Endpoint* peer = link_->ends[1 - side_];
    if (peer == nullptr || !peer->Enqueue(msg)) {
      return absl::UnavailableError("loopback peer is closed");
    }
    return absl::OkStatus();
  }

  uint32_t max_message_size() const override { return max_message_; }
  void SetReceiveLimit(uint32_t bytes) override {
    limit_.store(std::min(bytes, max_message_), std::memory_order_relaxed);
  }

  void Close(const absl::Status& why) override {
    {
      MutexLock lock(&link_->mu);
      for (Endpoint* e : link_->ends) {
        if (e != nullptr) e->MarkClosed(why);
      }
    }
    if (tls_delivering == this) return;
    MutexLock lock(&join_mu_);
    if (thread_.joinable()) thread_.join();
  }

  std::string Describe() const override { return "loopback"; }

 private:
  // Queues a message for this end; false once closed.
  bool Enqueue(absl::Span<const uint8_t> msg) {
    MutexLock lock(&mu_);
    if (closed_) return false;
    inbox_.emplace_back(msg.begin(), msg.end());
    return true;
  }

  void MarkClosed(const absl::Status& why) {
    MutexLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
    why_ = why;
  }

  void Deliver() {
    tls_delivering = this;
    for (;;) {
      std::vector<uint8_t> msg;
      {
        MutexLock lock(&mu_);
        mu_.Await([this]()
                      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closed_ || !inbox_.empty(); });
        if (inbox_.empty()) break;
        msg = std::move(inbox_.front());
        inbox_.pop_front();
      }
      DeliverOne(msg);
    }
    absl::Status why;
    {
      MutexLock lock(&mu_);
      why = why_;
    }
    receiver_->OnClosed(why);
    tls_delivering = nullptr;
  }

  void DeliverOne(absl::Span<const uint8_t> msg) {
    if (msg.size() < kHeaderSize) {
      receiver_->OnBadMessage(kNoTag, ProtocolError("message shorter than a header"));
      return;
    }
    uint32_t size = msg[0] | (msg[1] << 8) | (msg[2] << 16) | (uint32_t{msg[3]} << 24);
    uint16_t tag = static_cast<uint16_t>(msg[5] | (msg[6] << 8));
    if (size != msg.size()) {
      receiver_->OnBadMessage(tag, ProtocolError("size field disagrees with message length"));
    } else if (size > limit_.load(std::memory_order_relaxed)) {
      receiver_->OnBadMessage(tag, ProtocolError("message exceeds the receive limit"));
    } else {
      receiver_->OnMessage(msg);
    }
  }

  const std::shared_ptr<Link> link_;
  const int side_;
  const uint32_t max_message_;
  std::atomic<uint32_t> limit_;  // relaxed: a limit, set once after Tversion

  Mutex mu_;
  std::deque<std::vector<uint8_t>> inbox_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status why_ ABSL_GUARDED_BY(mu_);

  Mutex join_mu_;
  // Set in Start() before the delivery thread exists; read only by it.
  ChannelReceiver* receiver_ = nullptr;
  std::thread thread_ ABSL_GUARDED_BY(join_mu_);
};

}  // namespace

std::pair<std::unique_ptr<Channel>, std::unique_ptr<Channel>> MakeLoopbackPair(
    uint32_t max_message) {
  auto link = std::make_shared<Link>();
  return {std::make_unique<Endpoint>(link, 0, max_message),
          std::make_unique<Endpoint>(link, 1, max_message)};
}

}  // namespace p9
