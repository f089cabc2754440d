// The narrow interface between a 9P session and a transport. A transport
// moves whole framed messages; it knows framing and buffers, nothing of 9P
// beyond "a message starts with size[4] type[1] tag[2]".
#ifndef P9_CLIENT_CHANNEL_H_
#define P9_CLIENT_CHANNEL_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace p9 {

// Receives what a channel delivers. All calls come from the channel's single
// delivery thread, never concurrently, so an implementation may treat them as
// serialised with each other.
class ChannelReceiver {
 public:
  virtual ~ChannelReceiver() = default;
  // One complete message whose size field matches its length. `msg` is valid
  // only during the call.
  virtual void OnMessage(absl::Span<const uint8_t> msg) = 0;
  // A message the transport could not deliver whole (e.g. its size exceeds
  // the receive limit). `tag` is its tag if the header could be read. The
  // channel stays usable.
  virtual void OnBadMessage(uint16_t tag, const absl::Status& why) = 0;
  // The channel is dead. Called exactly once, after every other delivery.
  virtual void OnClosed(const absl::Status& why) = 0;
};

// One connection to a 9P server (or, for the relay and tests, a client).
class Channel {
 public:
  virtual ~Channel() = default;
  // Starts delivering received messages to `receiver`, which must stay valid
  // until Close() returns. Call once, before the first Send.
  virtual absl::Status Start(ChannelReceiver* receiver) = 0;
  // Sends one complete framed message. Thread-safe; messages from concurrent
  // callers are never interleaved. Fails once the channel is closed.
  virtual absl::Status Send(absl::Span<const uint8_t> msg) = 0;
  // Largest message this transport can receive; the session never
  // negotiates an msize above it.
  virtual uint32_t max_message_size() const = 0;
  // Lowers the receive limit after msize negotiation. Larger messages are
  // reported through OnBadMessage.
  virtual void SetReceiveLimit(uint32_t bytes) = 0;
  // Shuts the connection down. Idempotent and thread-safe. When Close
  // returns, OnClosed has been delivered (if Start succeeded) and no further
  // delivery will happen.
  virtual void Close(const absl::Status& why) = 0;
  // Human-readable peer description for logs ("tcp 127.0.0.1:564").
  virtual std::string Describe() const = 0;
  // A message sent earlier will get no reply after all (it was flushed and
  // the server answered only the Tflush). Transports that reserve a receive
  // per request (RDMA) return that reservation; a stream needs nothing.
  virtual void ForgetReply() {}
};

}  // namespace p9

#endif  // P9_CLIENT_CHANNEL_H_
