// An in-process connected pair of channels, for tests and benchmarks: what
// one end sends, the other end's receiver gets, on that end's own delivery
// thread, exactly like a socket pair carrying 9P frames.
#ifndef P9_CLIENT_LOOPBACK_CHANNEL_H_
#define P9_CLIENT_LOOPBACK_CHANNEL_H_

#include <cstdint>
#include <memory>
#include <utility>

#include "client/channel.h"

namespace p9 {

// Returns two connected endpoints. Closing either closes both (the peer's
// receiver gets OnClosed after any messages already queued for it). Each
// end reports messages longer than its receive limit (initially
// `max_message`) through OnBadMessage, as the TCP channel does.
std::pair<std::unique_ptr<Channel>, std::unique_ptr<Channel>> MakeLoopbackPair(
    uint32_t max_message);

}  // namespace p9

#endif  // P9_CLIENT_LOOPBACK_CHANNEL_H_
