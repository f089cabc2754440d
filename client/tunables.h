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
// Seconds an RPC may take before it is flushed and fails (0 = forever).
inline constexpr int kDefaultTimeoutSeconds = 60;
// Seconds to wait for Rflush after flushing a timed-out call; a server that
// cannot answer a flush in this time is treated as dead and the channel is
// closed so nothing waits on it forever.
inline constexpr int kFlushTimeoutSeconds = 10;
// Spin iterations before a waiter sleeps on the futex: a reply that arrives
// within a few microseconds is taken without a context switch.
inline constexpr int kWaitSpinIterations = 200;
// TCP port of 9P servers, and the RDMA port of diod and the kernel.
inline constexpr uint16_t kDefaultTcpPort = 564;
inline constexpr uint16_t kDefaultRdmaPort = 5640;

}  // namespace p9::tunables

#endif  // P9_CLIENT_TUNABLES_H_
