// Directory handles: opendir, readdir(plus), releasedir, fsyncdir.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fuse/handles.h"
#include "fuse/ops.h"
#include "fuse/reopen.h"

namespace p9::fuse::ops {
namespace {

bool IsDotOrDotDot(const std::string& n) { return n == "." || n == ".."; }

// Adds readdirplus entries from `entries` to buf (from *used) while they
// fit, each with its attributes and a lookup count, and returns how many of
// `entries` were consumed (*full: the buffer is). Attributes come from the
// attribute cache when fresh; the others are looked up (walk + getattr)
// all at once on the work pool, spread over the channels, instead of one
// round trip after another.
size_t AddPlusEntries(fuse_req_t req, Filesystem* fs, const InodeRef& dir,
                      const std::vector<Dirent>& entries, std::vector<char>& buf, size_t* used,
                      uint64_t* cur, bool* full) {
  const size_t size = buf.size();
  // What fits: entry sizes depend on the names only.
  size_t n = 0;
  size_t room = size - *used;
  for (; n < entries.size(); ++n) {
    const Dirent& d = entries[n];
    if (Filesystem::IsSillyDirName(dir->ino, d.name)) continue;
    size_t need = fuse_add_direntry_plus(req, nullptr, 0, d.name.c_str(), nullptr, 0);
    if (need > room) {
      *full = true;
      break;
    }
    room -= need;
  }
  std::vector<fuse_entry_param> es(n);
  std::vector<char> found(n, 0);
  std::vector<size_t> to_walk;
  for (size_t k = 0; k < n; ++k) {
    const Dirent& d = entries[k];
    if (IsDotOrDotDot(d.name) || Filesystem::IsSillyDirName(dir->ino, d.name)) continue;
    std::optional<cache::AttrCache::Hit> a = fs->CachedAttr(d.qid.path);
    if (a && (a->attr.mode & S_IFMT) == static_cast<uint32_t>(DTTOIF(d.type)) &&
        a->attr.qid.path == d.qid.path) {
      // No fid: the inode gets one when it needs one.
      fs->EnterInode(dir, d.name, nullptr, a->attr, &es[k], a->left);
      found[k] = 1;
    } else {
      to_walk.push_back(k);
    }
  }
  const int first = fs->PickChannel();
  // The pool's threads walk with the caller's fids (access=user).
  const int principal = PrincipalScope::current();
  fs->work_pool().Run(to_walk.size(), [&](size_t j) {
    PrincipalScope as(principal);
    const size_t k = to_walk[j];
    const int c =
        static_cast<int>((static_cast<size_t>(first) + j) % static_cast<size_t>(fs->channels()));
    absl::StatusOr<FidRef> df = fs->AnyFid(dir, c);
    if (!df.ok()) return;
    absl::StatusOr<std::pair<FidRef, Qid>> w = fs->WalkName(*df, entries[k].name);
    if (w.ok() && fs->MakeEntry(dir, entries[k].name, w->first, &es[k], nullptr, &w->second).ok()) {
      found[k] = 1;
    }
  });
  for (size_t k = 0; k < n; ++k) {
    const Dirent& d = entries[k];
    *cur = d.offset;
    if (Filesystem::IsSillyDirName(dir->ino, d.name)) continue;
    fuse_entry_param& e = es[k];
    if (!found[k]) {
      // No lookup count taken: the kernel only lists the name.
      e = fuse_entry_param{};
      e.ino = 0;
      e.attr.st_ino = fs->InoOf(d.qid);
      e.attr.st_mode = static_cast<mode_t>(DTTOIF(d.type));
    }
    *used += fuse_add_direntry_plus(req, buf.data() + *used, size - *used, d.name.c_str(), &e,
                                    static_cast<off_t>(d.offset));
  }
  return n;
}

// Fills `buf` (the kernel's buffer size) from Treaddir replies, starting at
// `off`; sets *used. An error is returned only if nothing was filled.
absl::Status Fill(fuse_req_t req, Filesystem* fs, DirHandle* h, off_t off, bool plus,
                  std::vector<char>& buf, size_t* used_out) {
  const size_t size = buf.size();
  size_t used = 0;
  uint64_t cur = static_cast<uint64_t>(off);
  MutexLock lock(&h->mu);
  absl::StatusOr<FidRef> opened = OpenDirFidLocked(fs, h);
  if (!opened.ok()) return opened.status();
  for (;;) {
    std::vector<Dirent> entries;
    if (h->pending_valid && h->pending_from == cur) {
      entries = std::move(h->pending);
    } else {
      uint32_t count = static_cast<uint32_t>(std::min<size_t>(size, fs->max_read()));
      absl::StatusOr<std::vector<Dirent>> r =
          (*opened)->session()->Readdir((*opened)->num(), cur, count);
      if (fs->RecoverFrom(r.status(), *opened)) {
        // Directory offsets are the server's cookies for this directory,
        // valid in a new open of it as well.
        opened = OpenDirFidLocked(fs, h);
        if (!opened.ok()) return opened.status();
        r = (*opened)->session()->Readdir((*opened)->num(), cur, count);
      }
      if (!r.ok()) {
        if (used > 0) break;
        return r.status();
      }
      entries = std::move(*r);
    }
    h->pending.clear();
    h->pending_valid = false;
    if (entries.empty()) break;  // end of directory
    size_t i = 0;
    bool full = false;
    if (plus) {
      i = AddPlusEntries(req, fs, h->inode, entries, buf, &used, &cur, &full);
    } else {
      for (; i < entries.size(); ++i) {
        const Dirent& d = entries[i];
        if (Filesystem::IsSillyDirName(h->inode->ino, d.name)) {
          cur = d.offset;  // files unlinked while open wait there, unseen
          continue;
        }
        size_t left = size - used;
        struct stat st = {};
        st.st_ino = fs->InoOf(d.qid);
        st.st_mode = static_cast<mode_t>(DTTOIF(d.type));
        size_t need = fuse_add_direntry(req, nullptr, 0, d.name.c_str(), nullptr, 0);
        if (need > left) {
          full = true;
          break;
        }
        fuse_add_direntry(req, buf.data() + used, left, d.name.c_str(), &st,
                          static_cast<off_t>(d.offset));
        used += need;
        cur = d.offset;
      }
    }
    if (full) {
      h->pending.assign(entries.begin() + static_cast<ptrdiff_t>(i), entries.end());
      h->pending_from = cur;
      h->pending_valid = true;
      break;
    }
  }
  *used_out = used;
  return absl::OkStatus();
}

void DoReaddir(fuse_req_t req, size_t size, off_t off, fuse_file_info* fi, bool plus) {
  DirHandle* h = DirOf(fi);
  bool removed;
  {
    MutexLock lock(&h->mu);
    removed = h->fid == nullptr && !h->deferred;
  }
  if (removed) {  // a removed directory: empty
    fuse_reply_buf(req, nullptr, 0);
    return;
  }
  std::vector<char> buf(size);
  size_t used = 0;
  // The handle is not touched after the reply: the kernel may release it
  // (on another thread) as soon as it has the entries.
  absl::Status st = Fill(req, Fs(req), h, off, plus, buf, &used);
  if (!st.ok()) return ReplyStatus(req, st);
  // If this reply is lost (interrupted), readdirplus lookup counts taken
  // above are not known to the kernel; they leak harmlessly until unmount.
  fuse_reply_buf(req, buf.data(), used);
}

}  // namespace

void Opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Run(req, "opendir", [&] {
    Filesystem* fs = Fs(req);
    if (!fs->Allowed(req)) return Err(req, EACCES);
    InodeRef inode = fs->inodes().Get(ino);
    if (inode == nullptr) return Err(req, ESTALE);
    if (inode->removed.load(std::memory_order_relaxed)) {
      // A directory removed through this mount (someone's cwd, say): it
      // is empty, and the server may already have another file under its
      // number, so nothing is opened there.
      auto* h = new DirHandle;
      h->inode = inode;
      fi->fh = reinterpret_cast<uintptr_t>(h);
      if (fuse_reply_open(req, fi) != 0) delete h;
      return;
    }
    auto* h = new DirHandle;
    h->inode = inode;
    absl::Status st;
    {
      MutexLock lock(&h->mu);
      h->deferred = true;
      // With cached listings most opendirs are answered from the kernel's
      // copy: the server open waits for the first readdir.
      if (!fs->policy().cache_dir) st = OpenDirFidLocked(fs, h).status();
    }
    if (!st.ok()) {
      delete h;
      return ReplyStatus(req, st);
    }
    fi->fh = reinterpret_cast<uintptr_t>(h);
    if (fs->policy().cache_dir) {
      fi->cache_readdir = 1;
      fi->keep_cache = 1;
    }
    if (fuse_reply_open(req, fi) != 0) delete h;
  });
}

void Readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  Run(req, "readdir", [&] {
    (void)ino;
    DoReaddir(req, size, off, fi, false);
  });
}

void Readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  Run(req, "readdirplus", [&] {
    (void)ino;
    DoReaddir(req, size, off, fi, true);
  });
}

void Releasedir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  (void)ino;
  Run(req, "releasedir", [&] {
    delete DirOf(fi);
    fuse_reply_err(req, 0);
  });
}

void Fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
  (void)ino;
  Run(req, "fsyncdir", [&] {
    DirHandle* h = DirOf(fi);
    MutexLock lock(&h->mu);
    absl::StatusOr<FidRef> f = OpenDirFidLocked(Fs(req), h);
    if (!f.ok()) return ReplyStatus(req, f.status());
    if (*f == nullptr) return Err(req, 0);
    ReplyStatus(req, (*f)->session()->Fsync((*f)->num(), datasync != 0));
  });
}

}  // namespace p9::fuse::ops
