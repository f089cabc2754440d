// Every tunable default of the client in one place. Options (mount -o …)
// override them; nothing else hard-codes these numbers.
#ifndef P9_CLIENT_TUNABLES_H_
#define P9_CLIENT_TUNABLES_H_

#include <cstdint>

namespace p9::tunables {

// msize asked for in Tversion; the server may lower it. 512 KiB keeps large
// I/O efficient on TCP while staying within what diod grants.
inline constexpr uint32_t kDefaultMsize = 512 * 1024;
// Smallest msize we accept: a Rgetattr, a path component and a useful read
// must fit.
inline constexpr uint32_t kMinMsize = 4096;
// Largest msize we ever ask for (the kernel's ceiling too).
inline constexpr uint32_t kMaxMsize = 1024 * 1024;
// Requests in flight per session (tags), like the kernel's sq depth.
inline constexpr uint16_t kDefaultMaxTags = 64;
// Treads/Twrites of one large read or write (Session::ReadMany/WriteMany)
// in flight at once, tags permitting: a 1 MiB FUSE request at msize 64 KiB
// is 17 of them, all on the wire together.
inline constexpr uint32_t kMaxPipelinedPieces = 32;
// Largest FUSE read/write request asked of the kernel (its max_pages is
// 256 pages): one crossing carries this much, split into pipelined msize
// pieces, instead of one crossing per piece.
inline constexpr uint32_t kMaxFuseRequest = 1024 * 1024;
// Seconds an RPC may take before it is flushed and fails (0 = forever).
inline constexpr int kDefaultTimeoutSeconds = 60;
// Seconds to wait for Rflush after flushing a timed-out call; a server that
// cannot answer a flush in this time is treated as dead and the channel is
// closed so nothing waits on it forever.
inline constexpr int kFlushTimeoutSeconds = 10;
// Reconnect backoff (recover=): the first redial after a connection dies
// comes this soon, then the delay doubles up to the cap. Calls wait for the
// new connection up to their own deadline (timeout=).
inline constexpr int kReconnectFirstBackoffMs = 50;
inline constexpr int kReconnectMaxBackoffMs = 2000;
// How long one redial may take before it is abandoned and retried.
inline constexpr int kReconnectDialTimeoutSeconds = 5;
// Microseconds a waiter polls for its reply before it sleeps on the futex
// (when a CPU is free; see Call::WaitUntil): a reply that arrives within it
// (in-process, or an RDMA round trip on real hardware) is taken with no
// context switch on either side.
inline constexpr int kWaitSpinMicros = 20;
// TCP port of 9P servers, and the RDMA port of diod and the kernel.
inline constexpr uint16_t kDefaultTcpPort = 564;
inline constexpr uint16_t kDefaultRdmaPort = 5640;

// RDMA (rdma/): the kernel's defaults are sq=32 rq=32; we keep them, so the
// registered memory of one channel, (sq + rq) x msize, stays 8 MiB at the
// default RDMA msize — within Debian's default RLIMIT_MEMLOCK for a user.
inline constexpr uint32_t kDefaultRdmaMsize = 128 * 1024;
inline constexpr uint32_t kDefaultSendQueueDepth = 32;
inline constexpr uint32_t kDefaultRecvQueueDepth = 32;
// Receives the relay keeps posted per connection: at least the deepest
// client's send queue (the kernel client posts up to its sq).
inline constexpr uint32_t kRelayRecvDepth = 64;
// Microseconds the completion thread keeps polling the CQ after it empties
// before it arms the completion channel and sleeps (only while a CPU is
// free: see client/spin.h).
inline constexpr int kCqSpinMicros = 20;
// RDMA connection retry counts: 7 means "retry forever" for rnr_retry_count
// and the maximum for retry_count. The kernel client uses 0/0 and loses its
// connection under load on Soft-RoCE.
inline constexpr uint8_t kRdmaRetryCount = 7;
inline constexpr uint8_t kRdmaRnrRetryCount = 7;

}  // namespace p9::tunables

#endif  // P9_CLIENT_TUNABLES_H_
