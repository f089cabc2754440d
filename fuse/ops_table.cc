// The fuse_lowlevel_ops table, connection setup (init) and open-flag mapping.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "fuse/ops.h"

namespace p9::fuse {
namespace {

// P9_DOTL_* open flags (include/net/9p/9p.h); wire values, not Linux's.
constexpr uint32_t kDotlRdonly = 00000000;
constexpr uint32_t kDotlWronly = 00000001;
constexpr uint32_t kDotlRdwr = 00000002;
constexpr uint32_t kDotlCreate = 00000100;
constexpr uint32_t kDotlExcl = 00000200;
constexpr uint32_t kDotlNoctty = 00000400;
constexpr uint32_t kDotlTrunc = 00001000;
constexpr uint32_t kDotlAppend = 00002000;
constexpr uint32_t kDotlNonblock = 00004000;
constexpr uint32_t kDotlDsync = 00010000;
constexpr uint32_t kDotlLargefile = 00100000;
constexpr uint32_t kDotlDirectory = 00200000;
constexpr uint32_t kDotlNofollow = 00400000;
constexpr uint32_t kDotlNoatime = 01000000;
constexpr uint32_t kDotlSync = 04000000;

struct FlagMap {
  int linux_flag;
  uint32_t dotl_flag;
};
constexpr FlagMap kFlagMap[] = {
    {O_NOCTTY, kDotlNoctty},     {O_TRUNC, kDotlTrunc},     {O_APPEND, kDotlAppend},
    {O_NONBLOCK, kDotlNonblock}, {O_DSYNC, kDotlDsync},     {O_DIRECTORY, kDotlDirectory},
    {O_NOFOLLOW, kDotlNofollow}, {O_NOATIME, kDotlNoatime},
};

}  // namespace

uint32_t OpenFlagsToDotl(int flags, bool create) {
  uint32_t out = 0;
  switch (flags & O_ACCMODE) {
    case O_WRONLY:
      out = kDotlWronly;
      break;
    case O_RDWR:
      out = kDotlRdwr;
      break;
    default:
      out = kDotlRdonly;
      break;
  }
  for (const FlagMap& m : kFlagMap) {
    if ((flags & m.linux_flag) == m.linux_flag) out |= m.dotl_flag;
  }
  // O_SYNC contains O_DSYNC's bit; test it whole.
  if ((flags & O_SYNC) == O_SYNC) out |= kDotlSync;
  out |= kDotlLargefile;
  if (create) {
    out |= kDotlCreate;
    if (flags & O_EXCL) out |= kDotlExcl;
  }
  return out;
}

namespace ops {

void Init(void* userdata, fuse_conn_info* conn) {
  auto* fs = static_cast<Filesystem*>(userdata);
  const CachePolicy& p = fs->policy();
  // Whole pages per request, each one Tread/Twrite of at most msize. The
  // same max_read was given to fuse_session_new as -o max_read (libfuse
  // insists they match).
  conn->max_write = std::min(conn->max_write, fs->fuse_max_write());
  conn->max_read = fs->fuse_max_read();
  conn->time_gran = 1;
  auto want = [&](unsigned cap, bool on) {
    if (on && (conn->capable & cap)) {
      conn->want |= cap;
    } else {
      conn->want &= ~cap;
    }
  };
  want(FUSE_CAP_POSIX_LOCKS, true);
  want(FUSE_CAP_FLOCK_LOCKS, true);
  want(FUSE_CAP_ATOMIC_O_TRUNC, true);
  want(FUSE_CAP_READDIRPLUS, p.readdirplus);
  want(FUSE_CAP_READDIRPLUS_AUTO, p.readdirplus);
  want(FUSE_CAP_AUTO_INVAL_DATA, p.keep_cache);
  want(FUSE_CAP_CACHE_SYMLINKS, p.cache_symlinks);
  want(FUSE_CAP_WRITEBACK_CACHE, false);
  want(FUSE_CAP_SPLICE_READ, false);
  want(FUSE_CAP_SPLICE_WRITE, false);
  want(FUSE_CAP_SPLICE_MOVE, false);
  want(FUSE_CAP_EXPORT_SUPPORT, false);
  P9_LOG(kInfo, "FUSE connection: protocol %u.%u, max_write %u, max_read %u, cache=%s",
         conn->proto_major, conn->proto_minor, conn->max_write, conn->max_read,
         CacheModeName(fs->config().cache));
}

void Destroy(void* userdata) {
  (void)userdata;
  P9_LOG(kInfo, "FUSE connection closed");
}

}  // namespace ops

const fuse_lowlevel_ops& LowLevelOps() {
  static const fuse_lowlevel_ops table = [] {
    fuse_lowlevel_ops o{};
    o.init = ops::Init;
    o.destroy = ops::Destroy;
    o.lookup = ops::Lookup;
    o.forget = ops::Forget;
    o.forget_multi = ops::ForgetMulti;
    o.getattr = ops::Getattr;
    o.setattr = ops::Setattr;
    o.readlink = ops::Readlink;
    o.mknod = ops::Mknod;
    o.mkdir = ops::Mkdir;
    o.unlink = ops::Unlink;
    o.rmdir = ops::Rmdir;
    o.symlink = ops::Symlink;
    o.rename = ops::Rename;
    o.link = ops::Link;
    o.open = ops::Open;
    o.create = ops::Create;
    o.read = ops::Read;
    o.write = ops::Write;
    o.flush = ops::Flush;
    o.release = ops::Release;
    o.fsync = ops::Fsync;
    o.opendir = ops::Opendir;
    o.readdir = ops::Readdir;
    o.readdirplus = ops::Readdirplus;
    o.releasedir = ops::Releasedir;
    o.fsyncdir = ops::Fsyncdir;
    o.statfs = ops::Statfs;
    o.setxattr = ops::Setxattr;
    o.getxattr = ops::Getxattr;
    o.listxattr = ops::Listxattr;
    o.removexattr = ops::Removexattr;
    o.access = ops::Access;
    o.getlk = ops::Getlk;
    o.setlk = ops::Setlk;
    o.flock = ops::Flock;
    o.fallocate = ops::Fallocate;
    o.copy_file_range = ops::CopyFileRange;
    o.ioctl = ops::Ioctl;
    return o;
  }();
  return table;
}

}  // namespace p9::fuse
