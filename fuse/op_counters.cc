#include "fuse/op_counters.h"

#include "absl/strings/str_cat.h"

namespace p9::fuse {

const char* FuseOpName(FuseOp op) {
  static constexpr const char* kNames[kNumFuseOps] = {
      "lookup", "forget",   "getattr",  "setattr",     "readlink",        "mknod",
      "mkdir",  "unlink",   "rmdir",    "symlink",     "rename",          "link",
      "open",   "create",   "read",     "write",       "flush",           "release",
      "fsync",  "opendir",  "readdir",  "readdirplus", "releasedir",      "fsyncdir",
      "statfs", "setxattr", "getxattr", "listxattr",   "removexattr",     "access",
      "getlk",  "setlk",    "flock",    "fallocate",   "copy_file_range", "ioctl",
  };
  int i = static_cast<int>(op);
  return i >= 0 && i < kNumFuseOps ? kNames[i] : "?";
}

std::string OpCounters::Format() const {
  std::string out;
  for (int i = 0; i < kNumFuseOps; ++i) {
    FuseOp op = static_cast<FuseOp>(i);
    absl::StrAppend(&out, i == 0 ? "" : " ", FuseOpName(op), "=", Get(op));
  }
  return out;
}

}  // namespace p9::fuse
