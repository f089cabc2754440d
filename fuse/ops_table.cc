// The fuse_lowlevel_ops table, connection setup (init) and open-flag mapping.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <tuple>

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

// Background requests the kernel may have in flight (see Init).
constexpr unsigned kFuseMaxBackground = 64;

namespace ops {

void Init(void* userdata, fuse_conn_info* conn) {
  auto* fs = static_cast<Filesystem*>(userdata);
  const CachePolicy& p = fs->policy();
  // Request sizes from Filesystem::fuse_max_read/write (1 MiB, split into
  // msize Treads/Twrites that go out together; one Twrite's worth under
  // writeback_cache). libfuse asks the kernel for max_pages to match
  // max_write. The same max_read was given to fuse_session_new as
  // -o max_read (libfuse insists they match).
  conn->max_write = std::min(conn->max_write, fs->fuse_max_write());
  conn->max_read = fs->fuse_max_read();
  conn->time_gran = 1;
  // Requests the kernel may have outstanding for readahead, async direct
  // I/O and writeback (its default, 12, would cap a sequential reader at a
  // few msize-sized requests in flight on every queue together).
  conn->max_background = kFuseMaxBackground;
  conn->congestion_threshold = kFuseMaxBackground * 3 / 4;
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
  want(FUSE_CAP_WRITEBACK_CACHE, p.writeback);
  // Several readahead requests of one file in flight at once, and lookups
  // and creates in one directory side by side (the server orders them).
  want(FUSE_CAP_ASYNC_READ, true);
  want(FUSE_CAP_ASYNC_DIO, true);
  want(FUSE_CAP_PARALLEL_DIROPS, true);
  // No splice: every payload is copied into a message buffer (registered
  // memory over RDMA) anyway, so a pipe would add a hop, not remove one.
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

namespace {

// Drops the cached attributes an operation changes (cache/attr_cache.h),
// before it (so nothing cached before it is used while it runs) and after
// it (so nothing fetched while it ran is used afterwards). A namespace
// change also changes the links count or ctime of a file known here only
// by name: the operation itself drops that file's (Filesystem::Retire, or
// where it walked to the name), or the whole cache if it never learnt
// which file that was. git status creates and removes index.lock each
// time: clearing everything then cost a round trip for each directory it
// stats afterwards.
template <FuseOp Op, typename... Args>
void Changed(Filesystem* fs, Args... args) {
  auto tup = std::forward_as_tuple(args...);
  auto inode = [fs](fuse_ino_t ino) { fs->AttrChanged(fs->inodes().Get(ino)); };
  if constexpr (Op == FuseOp::kSetxattr || Op == FuseOp::kRemovexattr) {
    fs->XattrChanged(fs->inodes().Get(std::get<0>(tup)));
  }
  if constexpr (Op == FuseOp::kSetattr || Op == FuseOp::kWrite || Op == FuseOp::kSetxattr ||
                Op == FuseOp::kRemovexattr || Op == FuseOp::kFallocate || Op == FuseOp::kCreate ||
                Op == FuseOp::kMknod || Op == FuseOp::kMkdir) {
    inode(std::get<0>(tup));  // the file, or the directory a name goes in
  } else if constexpr (Op == FuseOp::kSymlink) {
    inode(std::get<1>(tup));  // (target, parent, name)
  } else if constexpr (Op == FuseOp::kOpen) {
    // open(O_TRUNC) truncates on the server (FUSE_CAP_ATOMIC_O_TRUNC).
    if (std::get<1>(tup)->flags & O_TRUNC) inode(std::get<0>(tup));
  } else if constexpr (Op == FuseOp::kCopyFileRange) {
    inode(std::get<3>(tup));  // (ino_in, off_in, fi_in, ino_out, ...)
  } else if constexpr (Op == FuseOp::kUnlink || Op == FuseOp::kRmdir) {
    inode(std::get<0>(tup));  // (parent, name): the file is DoRemove's
  } else if constexpr (Op == FuseOp::kRename) {
    inode(std::get<0>(tup));  // (parent, name, newparent, newname, flags)
    inode(std::get<2>(tup));
  } else if constexpr (Op == FuseOp::kLink) {
    inode(std::get<0>(tup));  // (ino, newparent, newname)
    inode(std::get<1>(tup));
  }
}

// Counted<Op, Fn>::Call: the FUSE operation Fn, counted as Op in the
// mount's OpCounters first, run as its caller's principal. Deduces Fn's parameter list, so the
// table below stays one line per operation.
template <FuseOp Op, auto Fn>
struct Counted;
template <FuseOp Op, typename... Args, void (*Fn)(fuse_req_t, Args...)>
struct Counted<Op, Fn> {
  static void Call(fuse_req_t req, Args... args) {
    Filesystem* fs = ops::Fs(req);  // req is gone once Fn replied
    fs->op_counts.Count(Op);
    // access=user: the caller's own attach for every fid this request uses.
    PrincipalScope as(fs->PrincipalFor(req));
    Changed<Op>(fs, args...);
    Fn(req, args...);
    Changed<Op>(fs, args...);
  }
};

}  // namespace

const fuse_lowlevel_ops& LowLevelOps() {
  static const fuse_lowlevel_ops table = [] {
    fuse_lowlevel_ops o{};
    o.init = ops::Init;
    o.destroy = ops::Destroy;
    o.lookup = Counted<FuseOp::kLookup, ops::Lookup>::Call;
    o.forget = Counted<FuseOp::kForget, ops::Forget>::Call;
    // A batch of forgets counts as one forget request.
    o.forget_multi = Counted<FuseOp::kForget, ops::ForgetMulti>::Call;
    o.getattr = Counted<FuseOp::kGetattr, ops::Getattr>::Call;
    o.setattr = Counted<FuseOp::kSetattr, ops::Setattr>::Call;
    o.readlink = Counted<FuseOp::kReadlink, ops::Readlink>::Call;
    o.mknod = Counted<FuseOp::kMknod, ops::Mknod>::Call;
    o.mkdir = Counted<FuseOp::kMkdir, ops::Mkdir>::Call;
    o.unlink = Counted<FuseOp::kUnlink, ops::Unlink>::Call;
    o.rmdir = Counted<FuseOp::kRmdir, ops::Rmdir>::Call;
    o.symlink = Counted<FuseOp::kSymlink, ops::Symlink>::Call;
    o.rename = Counted<FuseOp::kRename, ops::Rename>::Call;
    o.link = Counted<FuseOp::kLink, ops::Link>::Call;
    o.open = Counted<FuseOp::kOpen, ops::Open>::Call;
    o.create = Counted<FuseOp::kCreate, ops::Create>::Call;
    o.read = Counted<FuseOp::kRead, ops::Read>::Call;
    o.write = Counted<FuseOp::kWrite, ops::Write>::Call;
    o.flush = Counted<FuseOp::kFlush, ops::Flush>::Call;
    o.release = Counted<FuseOp::kRelease, ops::Release>::Call;
    o.fsync = Counted<FuseOp::kFsync, ops::Fsync>::Call;
    o.opendir = Counted<FuseOp::kOpendir, ops::Opendir>::Call;
    o.readdir = Counted<FuseOp::kReaddir, ops::Readdir>::Call;
    o.readdirplus = Counted<FuseOp::kReaddirplus, ops::Readdirplus>::Call;
    o.releasedir = Counted<FuseOp::kReleasedir, ops::Releasedir>::Call;
    o.fsyncdir = Counted<FuseOp::kFsyncdir, ops::Fsyncdir>::Call;
    o.statfs = Counted<FuseOp::kStatfs, ops::Statfs>::Call;
    o.setxattr = Counted<FuseOp::kSetxattr, ops::Setxattr>::Call;
    o.getxattr = Counted<FuseOp::kGetxattr, ops::Getxattr>::Call;
    o.listxattr = Counted<FuseOp::kListxattr, ops::Listxattr>::Call;
    o.removexattr = Counted<FuseOp::kRemovexattr, ops::Removexattr>::Call;
    o.access = Counted<FuseOp::kAccess, ops::Access>::Call;
    o.getlk = Counted<FuseOp::kGetlk, ops::Getlk>::Call;
    o.setlk = Counted<FuseOp::kSetlk, ops::Setlk>::Call;
    o.flock = Counted<FuseOp::kFlock, ops::Flock>::Call;
    o.fallocate = Counted<FuseOp::kFallocate, ops::Fallocate>::Call;
    o.copy_file_range = Counted<FuseOp::kCopyFileRange, ops::CopyFileRange>::Call;
    o.ioctl = Counted<FuseOp::kIoctl, ops::Ioctl>::Call;
    return o;
  }();
  return table;
}

}  // namespace p9::fuse
