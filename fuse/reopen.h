// Open handles across reconnects: a handle's opened fid dies with its
// connection; these open it again on the new one, by path from the root,
// with the flags it was opened with minus O_CREAT/O_EXCL/O_TRUNC (the file
// exists and its data must survive).
#ifndef P9_FUSE_REOPEN_H_
#define P9_FUSE_REOPEN_H_

#include <utility>

#include "absl/status/statusor.h"
#include "fuse/filesystem.h"
#include "fuse/handles.h"

namespace p9::fuse {

// The handle's opened fid as it is, current or not (for an unlock: a lock
// lost with its connection is gone anyway; for a getattr fallback).
inline FidRef CurrentFid(FileHandle* h) {
  MutexLock lock(&h->mu);
  return h->fid;
}

// The handle's opened fid, opened again if its connection was replaced.
// A handle that held a lock fails with EIO instead (the server dropped the
// lock with the connection and another process may have taken it), and
// says so once in the log.
absl::StatusOr<FidRef> OpenFidOf(Filesystem* fs, FileHandle* h);
// Same for a directory handle, with h->mu held by the caller.
absl::StatusOr<FidRef> OpenDirFidLocked(Filesystem* fs, DirHandle* h)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(h->mu);

// Runs fn(fid) on the handle's opened fid; if it failed because the
// connection went and `repeatable` (the request may safely be executed
// twice), opens the file again and runs fn once more. fn returns
// absl::Status or absl::StatusOr<T>.
namespace internal {
// `r` is fn's outcome on `used`. If it failed because used's connection
// went, waits for the new one and returns fn's outcome on get() (which
// opens anew); else, or if that open fails, returns r. Also the second
// attempt of a read no worker waited for (ops_file.cc).
template <typename R, typename Get, typename F>
R AgainOnNewConnection(Filesystem* fs, R r, const FidRef& used, Get&& get, F&& fn) {
  if (!fs->RecoverFrom(StatusOf(r), used)) return r;
  absl::StatusOr<FidRef> again = get();
  if (!again.ok()) return r;
  return fn(*again);
}

// Runs fn on get(); if it failed because the connection went and
// `repeatable`, runs it once more on get().
template <typename Get, typename F>
auto RetryOnNewConnection(Filesystem* fs, Get&& get, bool repeatable, F&& fn)
    -> decltype(fn(FidRef{})) {
  absl::StatusOr<FidRef> f = get();
  if (!f.ok()) return f.status();
  auto r = fn(*f);
  if (!repeatable) return r;
  return AgainOnNewConnection(fs, std::move(r), *f, get, fn);
}
}  // namespace internal

template <typename F>
auto WithOpenFid(Filesystem* fs, FileHandle* h, bool repeatable, F&& fn) -> decltype(fn(FidRef{})) {
  return internal::RetryOnNewConnection(
      fs, [&] { return OpenFidOf(fs, h); }, repeatable, std::forward<F>(fn));
}

// The fid for a read or a positional write served on channel c: the
// handle's own if it is on c, else one opened on c on first use (with the
// handle's flags minus O_CREAT/O_EXCL/O_TRUNC). Appends and handles that
// hold a lock keep to the handle's own fid (the order of appends, the
// server's lock on that descriptor); so does a handle whose second open
// fails (e.g. the file's mode changed since).
absl::StatusOr<FidRef> IoFidOf(Filesystem* fs, FileHandle* h, int c);

// WithOpenFid for reads and writes: on the calling thread's channel.
template <typename F>
auto WithIoFid(Filesystem* fs, FileHandle* h, bool repeatable, F&& fn) -> decltype(fn(FidRef{})) {
  const int c = fs->PickChannel();
  return internal::RetryOnNewConnection(
      fs, [&] { return IoFidOf(fs, h, c); }, repeatable, std::forward<F>(fn));
}

}  // namespace p9::fuse

#endif  // P9_FUSE_REOPEN_H_
