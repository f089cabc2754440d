// 9P over a TCP stream (port 564): length-prefixed framing, a receiving
// thread that delivers whole messages, and a shutdown that fails every
// waiter instead of leaving it hanging.
#ifndef P9_CLIENT_TCP_CHANNEL_H_
#define P9_CLIENT_TCP_CHANNEL_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/channel.h"
#include "client/mutex.h"

namespace p9 {

class TcpChannel : public Channel {
 public:
  // Resolves `host` (name, IPv4, or IPv6 with or without brackets), connects
  // within `timeout`, and returns an unstarted channel able to receive
  // messages of up to `max_message` bytes.
  static absl::StatusOr<std::unique_ptr<TcpChannel>> Connect(const std::string& host, uint16_t port,
                                                             absl::Duration timeout,
                                                             uint32_t max_message);
  // Wraps an already connected stream socket (takes ownership of fd).
  TcpChannel(int fd, std::string peer, uint32_t max_message);
  ~TcpChannel() override;

  absl::Status Start(ChannelReceiver* receiver) override;
  absl::Status Send(absl::Span<const uint8_t> msg) override;
  uint32_t max_message_size() const override { return max_message_; }
  void SetReceiveLimit(uint32_t bytes) override;
  void Close(const absl::Status& why) override;
  std::string Describe() const override { return "tcp " + peer_; }

 private:
  void ReceiveLoop();
  // Reads exactly n bytes; false on EOF/error (sets *why).
  bool ReadFull(void* buf, size_t n, absl::Status* why);

  const int fd_;
  const std::string peer_;
  const uint32_t max_message_;
  // Set by SetReceiveLimit from any thread, read by the receive thread.
  std::atomic<uint32_t> receive_limit_;
  // Set in Start() before the receive thread exists; read only by it.
  ChannelReceiver* receiver_ = nullptr;
  // Started in Start(), joined by the first Close() from another thread.
  Mutex join_mu_;
  std::thread receiver_thread_ ABSL_GUARDED_BY(join_mu_);

  // Serialises senders so frames never interleave on the stream.
  Mutex send_mu_;
  // Set by Close; once true nothing more is sent.
  std::atomic<bool> closing_{false};
  Mutex close_mu_;
  absl::Status close_reason_ ABSL_GUARDED_BY(close_mu_);
  bool closed_ ABSL_GUARDED_BY(close_mu_) = false;
};

}  // namespace p9

#endif  // P9_CLIENT_TCP_CHANNEL_H_
