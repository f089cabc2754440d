#include "fuse/reopen.h"

#include <fcntl.h>

#include <algorithm>
#include <utility>

#include "client/log.h"
#include "fuse/ops.h"

namespace p9::fuse {
namespace {

// Opens the inode again on channel c (walking it from the root as needed)
// and puts the new fid in place of `old` among the inode's open fids.
absl::StatusOr<FidRef> Reopen(Filesystem* fs, const InodeRef& inode, const FidRef& old,
                              uint32_t flags) {
  int c = old->channel();
  // As whoever opened it, whichever user's request finds it stale.
  PrincipalScope as(old->principal());
  absl::StatusOr<FidRef> walked = fs->FidOn(inode, c);
  if (!walked.ok()) return walked.status();
  absl::StatusOr<FidRef> f = fs->OpenClone(*walked, inode->qid_path, flags);
  if (!f.ok()) return f.status();
  MutexLock lock(&inode->mu);
  for (FidRef& g : inode->open_fids) {
    if (g == old) g = *f;
  }
  return f;
}

// The flags a handle's file is opened with again: it exists and its data
// must survive, so never create or truncate.
uint32_t AgainFlags(const FileHandle* h) {
  return OpenFlagsToDotl(h->flags & ~(O_CREAT | O_EXCL | O_TRUNC), /*create=*/false);
}

uint32_t DirFlags() { return OpenFlagsToDotl(O_RDONLY | O_DIRECTORY, /*create=*/false); }

}  // namespace

absl::StatusOr<FidRef> OpenFidOf(Filesystem* fs, FileHandle* h) {
  MutexLock lock(&h->mu);
  if (h->lost) return ErrnoError(EIO, "this open file lost its lock with a server connection");
  if (h->fid->current()) return h->fid;
  if (h->posix_locked || h->flocked) {
    // The server released the lock with the old connection; someone else
    // may hold it now. Going on unprotected could corrupt what it guards.
    h->lost = true;
    P9_LOG(kError,
           "inode %llu: a lock held through this open file was lost when the connection to the "
           "server was re-established; the file descriptor now fails with EIO",
           static_cast<unsigned long long>(h->inode->ino));
    return ErrnoError(EIO, "lock lost with the server connection");
  }
  absl::StatusOr<FidRef> f = Reopen(fs, h->inode, h->fid, AgainFlags(h));
  if (!f.ok()) {
    P9_LOG(kWarning, "inode %llu: cannot reopen after reconnect: %s",
           static_cast<unsigned long long>(h->inode->ino), f.status().message());
    return f.status();
  }
  h->fid = *f;
  return f;
}

absl::StatusOr<FidRef> OpenDirFidLocked(Filesystem* fs, DirHandle* h) {
  if (h->deferred) {
    absl::StatusOr<FidRef> f = fs->WithFid(h->inode, fs->PickChannel(), [&](const FidRef& d) {
      return fs->OpenClone(d, h->inode->qid_path, DirFlags());
    });
    if (!f.ok()) return f.status();
    h->fid = *f;
    h->deferred = false;
    return f;
  }
  if (h->fid == nullptr || h->fid->current()) return h->fid;
  absl::StatusOr<FidRef> f = Reopen(fs, h->inode, h->fid, DirFlags());
  if (!f.ok()) return f.status();
  h->fid = *f;
  return f;
}

absl::StatusOr<FidRef> IoFidOf(Filesystem* fs, FileHandle* h, int c) {
  // h->flags is set before the handle is published and never changes.
  bool own = fs->channels() == 1 || (h->flags & O_APPEND) != 0;
  if (!own) {
    MutexLock lock(&h->mu);
    own = h->fid->channel() == c || h->posix_locked || h->flocked || h->lost;
    if (!own) {
      if (h->channel_fids.empty()) h->channel_fids.resize(static_cast<size_t>(fs->channels()));
      const FidRef& e = h->channel_fids[static_cast<size_t>(c)];
      if (e != nullptr && e->current()) return e;
    }
  }
  if (own) return OpenFidOf(fs, h);
  // Opened without the handle's lock held (a round trip); if another thread
  // opened one meanwhile, that one is kept and ours clunked.
  // As whoever opened the handle (access=user), like its own fid.
  PrincipalScope as(CurrentFid(h)->principal());
  absl::StatusOr<FidRef> f = fs->WithFid(h->inode, c, [&](const FidRef& d) {
    return fs->OpenClone(d, h->inode->qid_path, AgainFlags(h));
  });
  if (!f.ok()) return OpenFidOf(fs, h);
  MutexLock lock(&h->mu);
  FidRef& e = h->channel_fids[static_cast<size_t>(c)];
  if (e == nullptr || !e->current()) e = *f;
  return e;
}

}  // namespace p9::fuse
