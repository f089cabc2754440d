// Open files: open/create, I/O, flush/release/fsync, locks, and the
// operations 9P2000.L has no message for.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "fuse/handles.h"
#include "fuse/ops.h"
#include "fuse/reopen.h"

namespace p9::fuse::ops {
namespace {

// Retry interval of a blocking lock the server reports as blocked (diod
// never waits server-side): starts short, backs off to a cap, like the
// kernel client's retry loop but without its 30 s step.
constexpr auto kLockRetryFirst = std::chrono::milliseconds(1);
constexpr auto kLockRetryMax = std::chrono::milliseconds(200);

const std::string& ClientId() {
  static const std::string id = [] {
    char host[256] = {};
    if (gethostname(host, sizeof(host) - 1) != 0) return std::string("9prdma");
    return std::string(host);
  }();
  return id;
}

// Registers a new handle with its inode and the mount, and replies. On a
// failed reply the handle is undone as if released.
void Adopt(Filesystem* fs, const InodeRef& inode, FileHandle* h, FidRef fid, fuse_file_info* fi) {
  {
    MutexLock lock(&inode->mu);
    inode->open_fids.push_back(fid);
  }
  {
    MutexLock lock(&h->mu);
    h->fid = std::move(fid);
  }
  fs->open_files.fetch_add(1, std::memory_order_relaxed);
  fi->fh = reinterpret_cast<uintptr_t>(h);
  fi->direct_io = fs->policy().direct_io;
  fi->keep_cache = fs->policy().keep_cache;
  // A close's FLUSH is a round trip through the kernel that, for a
  // read-only open, could only release a POSIX lock (writes are
  // synchronous); git status closes a dozen and a half files. Skipped only
  // for files never locked here, and not under cache=none, which keeps the
  // strict order (a lock is gone when close(2) returns, not just after,
  // with the asynchronous RELEASE). The kernel flushes anyway under
  // writeback_cache.
  fi->noflush = (fi->flags & O_ACCMODE) == O_RDONLY && fs->policy().attr_timeout > 0 &&
                !fs->policy().writeback &&
                !inode->posix_locked_here.load(std::memory_order_relaxed);
}

void Drop(Filesystem* fs, FileHandle* h) {
  std::unique_ptr<FileHandle> owned(h);
  InodeRef inode = h->inode;
  bool remove_silly = false;
  FidRef fid;
  bool parkable = false;
  {
    MutexLock lock(&h->mu);
    fid = h->fid;
    // A fid that ever held a lock is never reused: diod ties locks to the
    // fid's open file, and if an unlock on close failed the lock must still
    // go with the clunk.
    parkable = !h->lost && !h->ever_locked;
  }
  {
    MutexLock lock(&inode->mu);
    auto& v = inode->open_fids;
    if (auto it = std::find(v.begin(), v.end(), fid); it != v.end()) v.erase(it);
    remove_silly = v.empty() && inode->silly && !inode->silly_pending;
  }
  fs->open_files.fetch_sub(1, std::memory_order_relaxed);
  if (parkable && !remove_silly) fs->ParkOpenFid(inode, fid, h->flags, h->iounit);
  fid.reset();
  owned.reset();  // clunks the opened fid unless parked: the server closes the file
  if (remove_silly) fs->RemoveSilly(inode);
}

// The session a handle's I/O goes to (its channel never changes).
// Tlock until it is granted, refused, or (if `wait`) interrupted.
absl::StatusOr<bool> LockLoop(fuse_req_t req, const FidRef& f, uint8_t type, bool wait,
                              uint64_t start, uint64_t length, uint32_t pid) {
  Tlock t;
  t.fid = f->num();
  t.type = type;
  t.flags = wait ? kLockFlagsBlock : 0;
  t.start = start;
  t.length = length;
  t.proc_id = pid;
  t.client_id = ClientId();
  auto delay = kLockRetryFirst;
  for (;;) {
    absl::StatusOr<uint8_t> r = f->session()->Lock(t);
    if (!r.ok()) return r.status();
    switch (*r) {
      case kLockSuccess:
        return true;
      case kLockBlocked:
      case kLockGrace:
        if (!wait) return false;
        break;
      default:
        return ErrnoError(ENOLCK, "Tlock: server error");
    }
    if (fuse_req_interrupted(req)) return ErrnoError(EINTR, "lock wait interrupted");
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::duration_cast<decltype(delay)>(kLockRetryMax));
  }
}

// The open flags sent to the server. With writeback_cache the kernel keeps
// file data in its page cache: it reads to fill partial pages of files
// opened write-only, and places appends itself (it knows the size), so a
// write-only open becomes read-write and O_APPEND is dropped, else the
// server would put every write at its own end of file.
int ServerFlags(const Filesystem* fs, int flags) {
  if (!fs->policy().writeback) return flags;
  if ((flags & O_ACCMODE) == O_WRONLY) flags = (flags & ~O_ACCMODE) | O_RDWR;
  return flags & ~O_APPEND;
}

}  // namespace

void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Run(req, "open", [&] {
    Filesystem* fs = Fs(req);
    if (!fs->Allowed(req)) return Err(req, EACCES);
    InodeRef inode = fs->inodes().Get(ino);
    if (inode == nullptr) return Err(req, ESTALE);
    fs->TuneReadaheadOnce();
    int sflags = ServerFlags(fs, fi->flags);
    uint32_t iounit = 0;
    FidRef fid = fs->TakeParkedFid(inode, sflags, &iounit);
    if (fid == nullptr) {
      OpenResult opened;
      auto open_with = [&](int f) {
        const uint32_t flags = OpenFlagsToDotl(f, false);
        return fs->WithFid(inode, fs->PickChannel(), [&](const FidRef& d) {
          return fs->OpenClone(d, inode->qid_path, flags, &opened);
        });
      };
      absl::StatusOr<FidRef> of = open_with(sflags);
      if (!of.ok() && ToErrno(of.status()) == EACCES && sflags != fi->flags) {
        // Write-only to the caller (mode -w-): the kernel then writes whole
        // pages only where it has them.
        sflags = fi->flags & ~O_APPEND;
        of = open_with(sflags);
      }
      if (!of.ok()) return ReplyStatus(req, of.status());
      fid = std::move(*of);
      iounit = opened.iounit;
    }
    auto* h = new FileHandle;
    h->inode = inode;
    h->iounit = iounit;
    h->flags = sflags;
    Adopt(fs, inode, h, std::move(fid), fi);
    if (fuse_reply_open(req, fi) != 0) Drop(fs, h);
  });
}

void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  Run(req, "create", [&] {
    Filesystem* fs = Fs(req);
    if (!fs->Allowed(req)) return Err(req, EACCES);
    InodeRef dir = fs->inodes().Get(parent);
    if (dir == nullptr) return Err(req, ESTALE);
    absl::StatusOr<FidRef> pf = fs->AnyFid(dir, fs->PickChannel());
    if (!pf.ok()) return ReplyStatus(req, pf.status());
    Session* s = (*pf)->session();
    // Tlcreate turns a clone of the directory's fid into the open new file.
    absl::StatusOr<FidRef> of = fs->Clone(*pf);
    if (!of.ok()) return ReplyStatus(req, of.status());
    const int sflags = ServerFlags(fs, fi->flags);
    absl::StatusOr<OpenResult> r = s->Lcreate((*of)->num(), name, OpenFlagsToDotl(sflags, true),
                                              mode & 07777, fs->CallerGid(req));
    if (!r.ok()) return ReplyStatus(req, r.status());
    // The inode's own (unopened) fid, for attributes and later opens.
    absl::StatusOr<std::pair<FidRef, Qid>> w = fs->WalkName(*pf, name);
    if (!w.ok()) return ReplyStatus(req, w.status());
    absl::StatusOr<Rgetattr> a = s->Getattr(w->first->num());
    if (!a.ok()) return ReplyStatus(req, a.status());
    fs->FixOwner(req, *pf, w->first, &*a);
    fuse_entry_param e;
    InodeRef inode = fs->EnterInode(dir, name, w->first, *a, &e);
    auto* h = new FileHandle;
    h->inode = inode;
    h->iounit = r->iounit;
    h->flags = sflags;
    Adopt(fs, inode, h, std::move(*of), fi);
    if (fuse_reply_create(req, &e, fi) != 0) {
      Drop(fs, h);
      fs->UndoEntry(inode->ino);
    }
  });
}

namespace {

// Tells the attribute cache what a read of `asked` bytes at `off` that
// got `got` says about the file's size, before the kernel is answered. A
// file rewritten shorter on the server shows first in a short read: the
// kernel then shrinks its size, and its next getattr (which it sends after
// every read) must not be answered with the cached old size.
void ReadEnded(Filesystem* fs, const FileHandle& h, off_t off, size_t asked, size_t got) {
  fs->attr_cache().SizeSeen(h.inode->qid_path, static_cast<uint64_t>(off) + got, got < asked);
}

// Answers a FUSE read from the channel's delivery thread, straight from the
// receive buffer: the reader wakes without waiting for this worker to be
// scheduled again, and the payload is copied once (into the kernel).
class FuseReadReply final : public ReadSink {
 public:
  FuseReadReply(fuse_req_t req, const FileHandle& h, off_t off, size_t size)
      : req_(req), h_(h), off_(off), size_(size) {}
  void Deliver(absl::Span<const uint8_t> data) override {
    ReadEnded(Fs(req_), h_, off_, size_, data.size());
    fuse_reply_buf(req_, reinterpret_cast<const char*>(data.data()), data.size());
  }

 private:
  const fuse_req_t req_;
  const FileHandle& h_;
  const off_t off_;
  const size_t size_;
};

// A read of one Tread that no worker waits for (Session::ReadAsync): the
// delivery thread answers it and returns the tag, so the worker goes back
// to the kernel at once and is not woken again for it. That wake-up was a
// fifth of the daemon's context switches per 4 KiB read at depth 1. Owns
// itself from Start() on; Done() ends it.
class FuseAsyncRead final : public AsyncRead {
 public:
  FuseAsyncRead(fuse_req_t req, FileHandle* h, off_t off, uint32_t size, FidRef fid)
      : req_(req),
        fs_(Fs(req)),
        h_(h),
        off_(off),
        size_(size),
        principal_(PrincipalScope::current()),
        fid_(std::move(fid)),
        registration_(req, &interrupter_) {}

  // Sends the Tread. False if nothing was sent (*why says why): the caller
  // still owns this object and answers req.
  bool Start(absl::Status* why) {
    *why = fid_->session()->ReadAsync(fid_->num(), static_cast<uint64_t>(off_), size_, this,
                                      &interrupter_);
    return why->ok();
  }

  void Deliver(absl::Span<const uint8_t> data) override {
    registration_.Remove();
    ReadEnded(fs_, *h_, off_, size_, data.size());
    fuse_reply_buf(req_, reinterpret_cast<const char*>(data.data()), data.size());
  }

  void Done(absl::StatusOr<size_t> n) override {
    if (n.ok()) {
      delete this;
      return;
    }
    absl::Status st = n.status();
    if (IsConnectionLost(st)) {
      if (!interrupter_.interrupted()) {
        // Repeating it waits for the new connection: not on this thread.
        fs_->retries().Post([this, st] { Repeat(st); });
        return;
      }
      // Interrupted, and then the server did not even answer the flush:
      // the caller gave up on the read, which is what it is told.
      st = ErrnoError(EINTR, "9P request interrupted");
    }
    registration_.Remove();
    ReplyStatus(req_, st);
    delete this;
  }

 private:
  // WithIoFid's second attempt, with the request's principal and
  // interrupter.
  void Repeat(const absl::Status& lost) {
    PrincipalScope as(principal_);
    ScopedInterruptible interruptible(&interrupter_);
    absl::StatusOr<size_t> n = internal::AgainOnNewConnection(
        fs_, absl::StatusOr<size_t>(lost), fid_,
        [&] { return IoFidOf(fs_, h_, fs_->PickChannel()); },
        [&](const FidRef& f) {
          return f->session()->ReadTo(f->num(), static_cast<uint64_t>(off_), size_, this);
        });
    if (!n.ok()) {
      registration_.Remove();
      ReplyStatus(req_, n.status());
    }
    delete this;
  }

  const fuse_req_t req_;
  Filesystem* const fs_;
  // The kernel sends no release for a file while a read on it is pending.
  FileHandle* const h_;
  const off_t off_;
  const uint32_t size_;
  const int principal_;
  // Kept until the read is over: the fid must not be clunked under it.
  const FidRef fid_;
  Interrupter interrupter_;
  FuseInterruptRegistration registration_;
};

}  // namespace

void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  (void)ino;
  Run(req, "read", [&] {
    FileHandle* h = FileOf(fi);
    uint32_t piece = Fs(req)->max_read();
    if (h->iounit != 0) piece = std::min(piece, h->iounit);
    if (size <= piece) {
      Filesystem* fs = Fs(req);
      absl::StatusOr<FidRef> f = IoFidOf(fs, h, fs->PickChannel());
      if (f.ok()) {
        auto r = std::make_unique<FuseAsyncRead>(req, h, off, static_cast<uint32_t>(size), *f);
        absl::Status st;
        if (r->Start(&st)) {
          r.release();  // Done() frees it
          return;
        }
        if (!IsConnectionLost(st)) return ReplyStatus(req, st);
      }
      // On the spot, repeated on a new connection if this one is gone. Once
      // ReadTo succeeds, req is answered (and freed).
      FuseReadReply reply(req, *h, off, size);
      absl::StatusOr<size_t> n = WithIoFid(fs, h, true, [&](const FidRef& f) {
        return f->session()->ReadTo(f->num(), static_cast<uint64_t>(off),
                                    static_cast<uint32_t>(size), &reply);
      });
      if (!n.ok()) ReplyStatus(req, n.status());
      return;
    }
    // A large request (up to fuse_max_read()): its Treads go out together.
    thread_local std::unique_ptr<uint8_t[]> buf;
    thread_local size_t cap = 0;
    if (cap < size) {
      buf.reset(new uint8_t[size]);
      cap = size;
    }
    // A read is safe to repeat on a new connection.
    absl::StatusOr<size_t> n = WithIoFid(Fs(req), h, true, [&](const FidRef& f) {
      return f->session()->ReadMany(f->num(), static_cast<uint64_t>(off),
                                    absl::MakeSpan(buf.get(), size), piece);
    });
    if (!n.ok()) return ReplyStatus(req, n.status());
    ReadEnded(Fs(req), *h, off, size, *n);
    fuse_reply_buf(req, reinterpret_cast<const char*>(buf.get()), *n);
  });
}

void Write(fuse_req_t req, fuse_ino_t ino, const char* data, size_t size, off_t off,
           fuse_file_info* fi) {
  (void)ino;
  Run(req, "write", [&] {
    FileHandle* h = FileOf(fi);
    uint32_t piece = Fs(req)->max_write();
    if (h->iounit != 0) piece = std::min(piece, h->iounit);
    const auto* p = reinterpret_cast<const uint8_t*>(data);
    size_t done = 0;
    if (!(h->flags & O_APPEND)) {
      // At an offset, the pieces go out together, and a repeat (on a new
      // connection) stores the same bytes.
      absl::StatusOr<size_t> n = WithIoFid(Fs(req), h, true, [&](const FidRef& f) {
        return f->session()->WriteMany(f->num(), static_cast<uint64_t>(off),
                                       absl::MakeConstSpan(p, size), piece);
      });
      if (!n.ok()) return ReplyStatus(req, n.status());
      done = *n;
    } else {
      // An append lands wherever the file ends when it arrives, so its
      // pieces go one after another, and none is repeated.
      while (done < size) {
        size_t want = std::min<size_t>(size - done, piece);
        absl::StatusOr<uint32_t> n = WithIoFid(Fs(req), h, false, [&](const FidRef& f) {
          return f->session()->Write(f->num(), static_cast<uint64_t>(off) + done,
                                     absl::MakeConstSpan(p + done, want));
        });
        if (!n.ok()) {
          if (done > 0) break;
          return ReplyStatus(req, n.status());
        }
        if (*n == 0) break;
        done += *n;
      }
    }
    if (done == 0 && size > 0) return Err(req, EIO);
    fuse_reply_write(req, done);
  });
}

void Flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  (void)ino;
  Run(req, "flush", [&] {
    // Writes are synchronous, so nothing is buffered. A close drops the
    // closing owner's POSIX locks (the kernel leaves that to us).
    FileHandle* h = FileOf(fi);
    bool unlock = false;
    {
      MutexLock lock(&h->mu);
      if (h->posix_locked && h->posix_owner == fi->lock_owner) {
        unlock = true;
        h->posix_locked = false;
      }
    }
    if (unlock) {
      absl::StatusOr<bool> r = LockLoop(req, CurrentFid(h), kLockTypeUnlck, false, 0, 0, 0);
      if (!r.ok()) P9_LOG(kDebug, "unlock on close: %s", r.status().ToString());
    }
    fuse_reply_err(req, 0);
  });
}

void Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  (void)ino;
  Run(req, "release", [&] {
    FileHandle* h = FileOf(fi);
    bool unlock;
    {
      MutexLock l(&h->mu);
      // A POSIX lock still held: its owner's close did not come through
      // Flush (another owner closed last, or the open skipped FLUSH).
      unlock = (h->flocked && fi->flock_release) || h->posix_locked;
      h->flocked = false;
      h->posix_locked = false;
    }
    if (unlock) {
      // The last close of a locked file: unlock now rather than when the
      // fid's clunk gets to the server.
      absl::StatusOr<bool> r = LockLoop(req, CurrentFid(h), kLockTypeUnlck, false, 0, 0, 0);
      if (!r.ok()) P9_LOG(kDebug, "unlock on release: %s", r.status().ToString());
    }
    Drop(Fs(req), h);
    fuse_reply_err(req, 0);
  });
}

void Fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
  (void)ino;
  Run(req, "fsync", [&] {
    if (fi == nullptr) return Err(req, 0);
    FileHandle* h = FileOf(fi);
    // Repeating an fsync on a new connection is harmless; the data it
    // covers was acknowledged by the server before the old one died.
    ReplyStatus(req, WithOpenFid(Fs(req), h, true, [&](const FidRef& f) {
                  return f->session()->Fsync(f->num(), datasync != 0);
                }));
  });
}

void Getlk(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, struct flock* lock) {
  (void)ino;
  Run(req, "getlk", [&] {
    FileHandle* h = FileOf(fi);
    bool ours;
    {
      // Our own lock never conflicts with us; and asking diod through the
      // fid that holds it would drop it (it tests with flock + unlock).
      MutexLock l(&h->mu);
      ours = h->posix_locked && h->posix_owner == fi->lock_owner;
    }
    if (ours) {
      lock->l_type = F_UNLCK;
      fuse_reply_lock(req, lock);
      return;
    }
    absl::StatusOr<FidRef> f = OpenFidOf(Fs(req), h);
    if (!f.ok()) return ReplyStatus(req, f.status());
    Tgetlock g;
    g.fid = (*f)->num();
    g.type = lock->l_type == F_RDLCK ? kLockTypeRdlck : kLockTypeWrlck;
    g.start = static_cast<uint64_t>(lock->l_start);
    g.length = static_cast<uint64_t>(lock->l_len);
    g.proc_id = static_cast<uint32_t>(lock->l_pid);
    g.client_id = ClientId();
    absl::StatusOr<Rgetlock> r = (*f)->session()->Getlock(g);
    if (!r.ok()) return ReplyStatus(req, r.status());
    if (r->type == kLockTypeUnlck) {
      lock->l_type = F_UNLCK;
    } else {
      lock->l_type = r->type == kLockTypeRdlck ? F_RDLCK : F_WRLCK;
      lock->l_whence = SEEK_SET;
      lock->l_start = static_cast<off_t>(r->start);
      lock->l_len = static_cast<off_t>(r->length);
      lock->l_pid = static_cast<pid_t>(r->proc_id);
    }
    fuse_reply_lock(req, lock);
  });
}

void Setlk(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, struct flock* lock, int sleep) {
  (void)ino;
  Run(req, "setlk", [&] {
    FileHandle* h = FileOf(fi);
    uint8_t type = lock->l_type == F_RDLCK   ? kLockTypeRdlck
                   : lock->l_type == F_WRLCK ? kLockTypeWrlck
                                             : kLockTypeUnlck;
    absl::StatusOr<FidRef> f = OpenFidOf(Fs(req), h);
    if (!f.ok()) return ReplyStatus(req, f.status());
    absl::StatusOr<bool> r =
        LockLoop(req, *f, type, sleep != 0, static_cast<uint64_t>(lock->l_start),
                 static_cast<uint64_t>(lock->l_len), static_cast<uint32_t>(lock->l_pid));
    if (!r.ok()) return ReplyStatus(req, r.status());
    if (!*r) return Err(req, EAGAIN);
    if (type != kLockTypeUnlck) h->inode->posix_locked_here.store(true, std::memory_order_relaxed);
    {
      MutexLock l(&h->mu);
      h->posix_locked = type != kLockTypeUnlck;
      h->ever_locked = h->ever_locked || h->posix_locked;
      h->posix_owner = fi->lock_owner;
    }
    fuse_reply_err(req, 0);
  });
}

void Flock(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, int op) {
  (void)ino;
  Run(req, "flock", [&] {
    FileHandle* h = FileOf(fi);
    int what = op & (LOCK_SH | LOCK_EX | LOCK_UN);
    uint8_t type = what == LOCK_SH   ? kLockTypeRdlck
                   : what == LOCK_EX ? kLockTypeWrlck
                                     : kLockTypeUnlck;
    bool wait = type != kLockTypeUnlck && !(op & LOCK_NB);
    absl::StatusOr<FidRef> f = OpenFidOf(Fs(req), h);
    if (!f.ok()) return ReplyStatus(req, f.status());
    absl::StatusOr<bool> r = LockLoop(req, *f, type, wait, 0, 0, 0);
    if (!r.ok()) return ReplyStatus(req, r.status());
    if (!*r) return Err(req, EWOULDBLOCK);
    {
      MutexLock l(&h->mu);
      h->flocked = type != kLockTypeUnlck;
      h->ever_locked = h->ever_locked || h->flocked;
    }
    fuse_reply_err(req, 0);
  });
}

void Fallocate(fuse_req_t req, fuse_ino_t, int, off_t, off_t, fuse_file_info*) {
  // 9P2000.L has no message for it; glibc's posix_fallocate falls back to
  // writing on EOPNOTSUPP.
  fuse_reply_err(req, EOPNOTSUPP);
}

void CopyFileRange(fuse_req_t req, fuse_ino_t, off_t, fuse_file_info*, fuse_ino_t, off_t,
                   fuse_file_info*, size_t, int) {
  // No server-side copy in 9P2000.L; the kernel and libc fall back to
  // read + write.
  fuse_reply_err(req, EOPNOTSUPP);
}

void Ioctl(fuse_req_t req, fuse_ino_t, unsigned int, void*, fuse_file_info*, unsigned, const void*,
           size_t, size_t) {
  fuse_reply_err(req, ENOTTY);
}

}  // namespace p9::fuse::ops
