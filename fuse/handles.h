// Open file and directory handles (fuse_file_info::fh). Each owns its own
// opened fid, made by cloning the inode's fid and Tlopen'ing the clone, so it
// keeps working whatever happens to the inode's fids or its name.
#ifndef P9_FUSE_HANDLES_H_
#define P9_FUSE_HANDLES_H_

#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "client/messages.h"
#include "client/mutex.h"
#include "fuse/fid.h"
#include "fuse/fuse_api.h"
#include "fuse/inode_table.h"

namespace p9::fuse {

struct FileHandle {
  InodeRef inode;
  // Largest I/O the server wants per request (0: msize decides).
  uint32_t iounit = 0;
  int flags = 0;

  Mutex mu;
  // Opened; replaced by OpenFidOf() after the connection it was opened on
  // was replaced.
  FidRef fid ABSL_GUARDED_BY(mu);
  // Opened fids on the other channels, indexed by channel, made on first
  // use (IoFidOf): reads and positional writes go out on the channel of the
  // thread serving them, so a sequential reader's readahead requests spread
  // over the queues.
  std::vector<FidRef> channel_fids ABSL_GUARDED_BY(mu);
  // A lock this handle held was lost with a connection: every later
  // operation on it fails with EIO rather than run unprotected.
  bool lost ABSL_GUARDED_BY(mu) = false;
  // Whole-file lock the server holds for this fid (diod maps Tlock to
  // flock(2) on the fid's file descriptor), and for which POSIX lock owner.
  bool posix_locked ABSL_GUARDED_BY(mu) = false;
  uint64_t posix_owner ABSL_GUARDED_BY(mu) = 0;
  bool flocked ABSL_GUARDED_BY(mu) = false;
  // A lock was granted through this handle at some point: its fid is not
  // kept for reuse after release (Filesystem::ParkOpenFid).
  bool ever_locked ABSL_GUARDED_BY(mu) = false;
};

struct DirHandle {
  InodeRef inode;

  Mutex mu;
  // Opened; null for a directory removed through this mount, or until the
  // first readdir when `deferred`.
  FidRef fid ABSL_GUARDED_BY(mu);
  // Opened on the server only when the kernel first reads it: with cached
  // listings most opendirs are answered from the kernel's copy and need no
  // fid at all.
  bool deferred ABSL_GUARDED_BY(mu) = false;
  // The kernel reads a directory sequentially; Treaddir entries that did not
  // fit its buffer are kept for the next call (at offset pending_from).
  std::vector<Dirent> pending ABSL_GUARDED_BY(mu);
  uint64_t pending_from ABSL_GUARDED_BY(mu) = 0;
  bool pending_valid ABSL_GUARDED_BY(mu) = false;
  bool eof ABSL_GUARDED_BY(mu) = false;
};

inline FileHandle* FileOf(const fuse_file_info* fi) {
  return reinterpret_cast<FileHandle*>(static_cast<uintptr_t>(fi->fh));
}
inline DirHandle* DirOf(const fuse_file_info* fi) {
  return reinterpret_cast<DirHandle*>(static_cast<uintptr_t>(fi->fh));
}

}  // namespace p9::fuse

#endif  // P9_FUSE_HANDLES_H_
