// The FUSE low-level operations of a mount, and the table that binds them.
// Every callback replies exactly once (except forget), with
// fuse_reply_err(req, ToErrno(status)) on failure; no exception escapes.
#ifndef P9_FUSE_OPS_H_
#define P9_FUSE_OPS_H_

#include <cerrno>
#include <cstring>
#include <exception>

#include "absl/status/status.h"
#include "client/errors.h"
#include "client/log.h"
#include "fuse/filesystem.h"
#include "fuse/fuse_api.h"
#include "fuse/interrupts.h"

namespace p9::fuse {

// The operation table for fuse_session_new; userdata must be a Filesystem*.
const fuse_lowlevel_ops& LowLevelOps();

// Linux open(2) flags → 9P2000.L (P9_DOTL_*) flags, keeping only what a
// server should see (no O_CREAT/O_EXCL on Tlopen, no O_DIRECT: the kernel
// already bypasses its cache, and diod rejects it).
uint32_t OpenFlagsToDotl(int flags, bool create);

namespace ops {

inline Filesystem* Fs(fuse_req_t req) { return static_cast<Filesystem*>(fuse_req_userdata(req)); }

// fuse_reply_err as a void call, so `return Err(req, E);` works in bodies
// that also `return ReplyStatus(...)`.
inline void Err(fuse_req_t req, int err) {
  if (err != 0) P9_LOG(kDebug, "reply: %s", strerror(err));
  fuse_reply_err(req, err);
}

inline void ReplyStatus(fuse_req_t req, const absl::Status& st) {
  if (!st.ok()) P9_LOG(kDebug, "reply: %s", st.ToString());
  fuse_reply_err(req, ToErrno(st));
}

// Runs an operation body; an escaping exception becomes EIO (or, for
// no-reply operations, fuse_reply_none).
template <typename F>
void Run(fuse_req_t req, const char* op, F&& body) {
  P9_LOG(kDebug, "FUSE %s", op);
  try {
    // A signal to the caller flushes the 9P request being waited for.
    ScopedFuseInterrupt interruptible(req);
    body();
  } catch (const std::exception& e) {
    P9_LOG(kError, "%s: %s", op, e.what());
    fuse_reply_err(req, EIO);
  } catch (...) {
    P9_LOG(kError, "%s: unknown exception", op);
    fuse_reply_err(req, EIO);
  }
}
template <typename F>
void RunNoReply(fuse_req_t req, const char* op, F&& body) {
  try {
    body();
  } catch (...) {
    P9_LOG(kError, "%s: exception", op);
  }
  fuse_reply_none(req);
}

// --- ops_entry.cc
void Init(void* userdata, fuse_conn_info* conn);
void Destroy(void* userdata);
void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name);
void Forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void ForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets);
void Getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void Setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi);
void Readlink(fuse_req_t req, fuse_ino_t ino);
void Mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev);
void Mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode);
void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name);
void Rmdir(fuse_req_t req, fuse_ino_t parent, const char* name);
void Symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name);
void Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
            const char* newname, unsigned int flags);
void Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname);
void Statfs(fuse_req_t req, fuse_ino_t ino);
void Access(fuse_req_t req, fuse_ino_t ino, int mask);

// --- ops_file.cc
void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi);
void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
void Write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
           fuse_file_info* fi);
void Flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void Fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi);
void Getlk(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, struct flock* lock);
void Setlk(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, struct flock* lock, int sleep);
void Flock(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, int op);
void Fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
               fuse_file_info* fi);
void CopyFileRange(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, fuse_file_info* fi_in,
                   fuse_ino_t ino_out, off_t off_out, fuse_file_info* fi_out, size_t len,
                   int flags);
void Ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void* arg, fuse_file_info* fi,
           unsigned flags, const void* in_buf, size_t in_bufsz, size_t out_bufsz);

// --- ops_dir.cc
void Opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void Readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
void Readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
void Releasedir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void Fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi);

// --- ops_xattr.cc
void Setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
              int flags);
void Getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size);
void Listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void Removexattr(fuse_req_t req, fuse_ino_t ino, const char* name);

}  // namespace ops
}  // namespace p9::fuse

#endif  // P9_FUSE_OPS_H_
