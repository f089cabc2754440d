// How many FUSE requests of each kind reached the daemon: what the kernel
// did not answer from its own caches (lookups, getattrs, reads...). Written
// to the stats file and shown by `9prdma stats`.
#ifndef P9_FUSE_OP_COUNTERS_H_
#define P9_FUSE_OP_COUNTERS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

namespace p9::fuse {

// The FUSE low-level operations the op table installs (init and destroy are
// not requests). kCount is the number of them.
enum class FuseOp : int {
  kLookup,
  kForget,
  kGetattr,
  kSetattr,
  kReadlink,
  kMknod,
  kMkdir,
  kUnlink,
  kRmdir,
  kSymlink,
  kRename,
  kLink,
  kOpen,
  kCreate,
  kRead,
  kWrite,
  kFlush,
  kRelease,
  kFsync,
  kOpendir,
  kReaddir,
  kReaddirplus,
  kReleasedir,
  kFsyncdir,
  kStatfs,
  kSetxattr,
  kGetxattr,
  kListxattr,
  kRemovexattr,
  kAccess,
  kGetlk,
  kSetlk,
  kFlock,
  kFallocate,
  kCopyFileRange,
  kIoctl,
  kCount
};
inline constexpr int kNumFuseOps = static_cast<int>(FuseOp::kCount);

// Lower-case name as in the stats file ("readdirplus").
const char* FuseOpName(FuseOp op);

// One counter per operation. Relaxed atomics: independent counts bumped by
// the FUSE worker threads and read by the stats writer; no ordering between
// them is needed.
class OpCounters {
 public:
  // One more request of `op`.
  void Count(FuseOp op) {
    counts_[static_cast<size_t>(op)].fetch_add(1, std::memory_order_relaxed);
  }
  // Requests of `op` so far.
  uint64_t Get(FuseOp op) const {
    return counts_[static_cast<size_t>(op)].load(std::memory_order_relaxed);
  }
  // "lookup=N forget=N ..." with every operation, in enum order.
  std::string Format() const;

 private:
  std::array<std::atomic<uint64_t>, kNumFuseOps> counts_{};
};

}  // namespace p9::fuse

#endif  // P9_FUSE_OP_COUNTERS_H_
