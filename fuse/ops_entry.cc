// Name-space operations: lookup/forget, attributes, and creating, linking,
// renaming and removing names.
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "fuse/handles.h"
#include "fuse/ops.h"
#include "fuse/reopen.h"

namespace p9::fuse::ops {
namespace {

// The inode of `ino`, or replies ESTALE and returns null.
InodeRef InodeOr(fuse_req_t req, uint64_t ino) {
  InodeRef i = Fs(req)->inodes().Get(ino);
  if (i == nullptr) fuse_reply_err(req, ESTALE);
  return i;
}

bool Denied(fuse_req_t req) {
  if (Fs(req)->Allowed(req)) return false;
  fuse_reply_err(req, EACCES);
  return true;
}

// Replies with a new entry for `name` in `dir` after a create-like call made
// it through `pf`: walks to it, fixes its owner, registers it.
void ReplyNewEntry(fuse_req_t req, Filesystem* fs, const InodeRef& dir, const FidRef& pf,
                   const std::string& name) {
  absl::StatusOr<std::pair<FidRef, Qid>> w = fs->WalkName(pf, name);
  if (!w.ok()) return ReplyStatus(req, w.status());
  absl::StatusOr<Rgetattr> a = pf->session()->Getattr(w->first->num());
  if (!a.ok()) return ReplyStatus(req, a.status());
  fs->FixOwner(req, pf, w->first, &*a);
  fuse_entry_param e;
  InodeRef inode = fs->EnterInode(dir, name, w->first, *a, &e);
  if (fuse_reply_entry(req, &e) != 0) fs->UndoEntry(inode->ino);
}

// Fids of two inodes on one channel (rename, link): the calling thread's
// channel if possible, else any channel where both can be had.
absl::Status FidsOnOneChannel(Filesystem* fs, const InodeRef& a, const InodeRef& b, FidRef* fa,
                              FidRef* fb) {
  int first = fs->PickChannel();
  absl::Status last;
  for (int k = 0; k < fs->channels(); ++k) {
    int c = (first + k) % fs->channels();
    absl::StatusOr<FidRef> x = fs->FidOn(a, c);
    if (!x.ok()) {
      last = x.status();
      continue;
    }
    absl::StatusOr<FidRef> y = fs->FidOn(b, c);
    if (!y.ok()) {
      last = y.status();
      continue;
    }
    *fa = std::move(*x);
    *fb = std::move(*y);
    return absl::OkStatus();
  }
  return last;
}

// Renames `target` (an inode with open handles, reached through fid `f`
// as a name in `dir`) to a hidden name, so its open handles keep a name to
// stat and truncate through on path-based servers (diod), like NFS's silly
// rename. The hidden name is in the export's hidden directory so that `dir`
// can be removed meanwhile; in `dir` itself if that is impossible. Returns
// false if nothing was renamed (the caller then removes it normally).
bool SillyRename(Filesystem* fs, const InodeRef& dir, const FidRef& dir_fid,
                 const std::string& name, const InodeRef& target, const FidRef& f) {
  {
    MutexLock lock(&target->mu);
    // Already hidden (this was another hard link): its hidden name keeps
    // it alive, so this name can simply go.
    if (target->open_fids.empty() || target->silly || target->silly_pending) return false;
    target->silly_pending = true;
  }
  std::string silly = fs->SillyName(target->ino);
  InodeRef where = dir;
  absl::Status st = absl::UnavailableError("no hidden directory");
  if (absl::StatusOr<InodeRef> sd = fs->SillyDir(); sd.ok()) {
    if (absl::StatusOr<FidRef> sf = fs->FidOn(*sd, f->channel()); sf.ok()) {
      st = f->session()->Rename(f->num(), (*sf)->num(), silly);
      if (st.ok()) where = *sd;
    }
  }
  if (!st.ok()) st = f->session()->Rename(f->num(), dir_fid->num(), silly);
  bool remove_now = false;
  {
    std::vector<FidRef> old;
    MutexLock lock(&target->mu);
    target->silly_pending = false;
    if (st.ok()) {
      target->RemoveLink(dir.get(), name);
      target->AddLink(where, silly);
      target->silly = true;
      target->silly_dir = where;
      target->silly_name = silly;
      for (FidRef& g : target->fids) {
        if (g != nullptr) old.push_back(std::move(g));
      }
      target->FidAt(fs->FidIndex(*f)) = f;
      remove_now = target->open_fids.empty();
    }
  }
  if (!st.ok()) {
    P9_LOG(kInfo, "cannot hide an open file being unlinked: %s", st.ToString());
    return false;
  }
  fs->AttrChanged(target);  // its ctime
  if (remove_now) fs->RemoveSilly(target);
  return true;
}

void DoRemove(fuse_req_t req, fuse_ino_t parent, const char* name, bool is_dir) {
  Filesystem* fs = Fs(req);
  if (Denied(req)) return;
  InodeRef dir = InodeOr(req, parent);
  if (dir == nullptr) return;
  absl::StatusOr<FidRef> pf = fs->AnyFid(dir, fs->PickChannel());
  if (!pf.ok()) return ReplyStatus(req, pf.status());
  std::string n(name);
  if (is_dir || fs->open_files.load(std::memory_order_relaxed) == 0) {
    return ReplyStatus(req, fs->RemoveName(*pf, n, is_dir));
  }
  // Files are open on this mount: find out whether this is one of them.
  absl::StatusOr<std::pair<FidRef, Qid>> w = fs->WalkName(*pf, n);
  if (!w.ok()) return ReplyStatus(req, w.status());
  if (w->second.type & kQtDir) return Err(req, EISDIR);
  InodeRef target = fs->inodes().FindByQidPath(w->second.path);
  if (target != nullptr && !Filesystem::IsSillyName(n) &&
      SillyRename(fs, dir, *pf, n, target, w->first)) {
    return Err(req, 0);
  }
  absl::Status st = fs->Remove(w->first);
  if (st.ok()) fs->Retire(w->second.path);
  if (st.ok() && target != nullptr) {
    // Its fids may name this path: walk again by one of its other names
    // (another hard link, or its hidden name if it is open).
    std::vector<FidRef> old;
    MutexLock lock(&target->mu);
    if (target->RemoveLink(dir.get(), n)) {
      for (FidRef& g : target->fids) {
        if (g != nullptr) old.push_back(std::move(g));
      }
    }
  }
  ReplyStatus(req, st);
}

}  // namespace

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Run(req, "lookup", [&] {
    Filesystem* fs = Fs(req);
    if (Denied(req)) return;
    InodeRef dir = InodeOr(req, parent);
    if (dir == nullptr) return;
    absl::StatusOr<FidRef> pf = fs->AnyFid(dir, fs->PickChannel());
    if (!pf.ok()) return ReplyStatus(req, pf.status());
    std::string n(name);
    absl::StatusOr<std::pair<FidRef, Qid>> w =
        Filesystem::IsSillyDirName(parent, n) ? ErrnoError(ENOENT, "hidden") : fs->WalkName(*pf, n);
    if (!w.ok()) {
      if (ToErrno(w.status()) == ENOENT && fs->policy().negative_timeout > 0) {
        fuse_entry_param e;
        fs->FillNegativeEntry(&e);
        fuse_reply_entry(req, &e);
        return;
      }
      return ReplyStatus(req, w.status());
    }
    fuse_entry_param e;
    InodeRef inode;
    if (absl::Status st = fs->MakeEntry(dir, n, w->first, &e, &inode, &w->second); !st.ok()) {
      return ReplyStatus(req, st);
    }
    if (fuse_reply_entry(req, &e) != 0) fs->UndoEntry(inode->ino);
  });
}

void Forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  RunNoReply(req, "forget", [&] {
    InodeRef gone = Fs(req)->inodes().Forget(ino, nlookup);
    // Dropping `gone` clunks its fids unless a child or handle still uses it.
  });
}

void ForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  RunNoReply(req, "forget_multi", [&] {
    for (size_t i = 0; i < count; ++i) {
      InodeRef gone = Fs(req)->inodes().Forget(forgets[i].ino, forgets[i].nlookup);
    }
  });
}

void Getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Run(req, "getattr", [&] {
    Filesystem* fs = Fs(req);
    if (Denied(req)) return;
    InodeRef inode = InodeOr(req, ino);
    if (inode == nullptr) return;
    struct stat st;
    // The kernel asks again whenever it only marked its atime stale, after
    // every read or readdir it sent (fuse_invalidate_atime): git status
    // stats each directory it lists. Attributes this mount fetched within
    // the lifetime, and which none of its own changes invalidated since
    // (ops_table.cc), are as good an answer as the server's, for the rest
    // of their lifetime. cache=none never hits.
    if (!inode->removed.load(std::memory_order_relaxed)) {
      if (std::optional<cache::AttrCache::Hit> hit = fs->CachedAttr(inode->qid_path)) {
        fs->FillStat(hit->attr, &st);
        // `left` is at most the lifetime (AttrCache::Get).
        fuse_reply_attr(req, &st, absl::ToDoubleSeconds(hit->left));
        return;
      }
    }
    FidRef open_fid;
    if (fi != nullptr && !inode->is_dir()) open_fid = CurrentFid(FileOf(fi));
    absl::StatusOr<Rgetattr> a = fs->GetattrInode(inode, fs->PickChannel(), open_fid);
    if (!a.ok()) return ReplyStatus(req, a.status());
    fs->FillStat(*a, &st);
    fuse_reply_attr(req, &st, fs->policy().attr_timeout);
  });
}

void Setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  Run(req, "setattr", [&] {
    Filesystem* fs = Fs(req);
    if (Denied(req)) return;
    InodeRef inode = InodeOr(req, ino);
    if (inode == nullptr) return;
    Tsetattr t;
    if (to_set & FUSE_SET_ATTR_MODE) {
      t.valid |= kSetattrMode;
      t.mode = attr->st_mode & 07777;
    }
    if (to_set & FUSE_SET_ATTR_UID) {
      t.valid |= kSetattrUid;
      t.uid = attr->st_uid;
    }
    if (to_set & FUSE_SET_ATTR_GID) {
      t.valid |= kSetattrGid;
      t.gid = attr->st_gid;
    }
    if (to_set & FUSE_SET_ATTR_SIZE) {
      t.valid |= kSetattrSize;
      t.size = static_cast<uint64_t>(attr->st_size);
    }
    if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
      t.valid |= kSetattrAtime;  // without ATIME_SET: the server's "now"
    } else if (to_set & FUSE_SET_ATTR_ATIME) {
      t.valid |= kSetattrAtime | kSetattrAtimeSet;
      t.atime_sec = static_cast<uint64_t>(attr->st_atim.tv_sec);
      t.atime_nsec = static_cast<uint64_t>(attr->st_atim.tv_nsec);
    }
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
      t.valid |= kSetattrMtime;
    } else if (to_set & FUSE_SET_ATTR_MTIME) {
      t.valid |= kSetattrMtime | kSetattrMtimeSet;
      t.mtime_sec = static_cast<uint64_t>(attr->st_mtim.tv_sec);
      t.mtime_nsec = static_cast<uint64_t>(attr->st_mtim.tv_nsec);
    }
    if (to_set & FUSE_SET_ATTR_CTIME) t.valid |= kSetattrCtime;
    int c = fs->PickChannel();
    absl::Status st = fs->WithFid(inode, c, [&](const FidRef& f) {
      Tsetattr mine = t;
      mine.fid = f->num();
      return f->session()->Setattr(mine);
    });
    if (IsStale(st) && fi != nullptr && !inode->is_dir() &&
        !inode->removed.load(std::memory_order_relaxed)) {
      // Unlinked but open (e.g. ftruncate): the handle's own fid.
      const FidRef of = CurrentFid(FileOf(fi));
      Tsetattr mine = t;
      mine.fid = of->num();
      st = of->session()->Setattr(mine);
    }
    if (!st.ok()) return ReplyStatus(req, st);
    FidRef open_fid;
    if (fi != nullptr && !inode->is_dir()) open_fid = CurrentFid(FileOf(fi));
    absl::StatusOr<Rgetattr> a = fs->GetattrInode(inode, c, open_fid, /*changed_here=*/true);
    if (!a.ok()) return ReplyStatus(req, a.status());
    struct stat out;
    fs->FillStat(*a, &out);
    fuse_reply_attr(req, &out, fs->policy().attr_timeout);
  });
}

void Readlink(fuse_req_t req, fuse_ino_t ino) {
  Run(req, "readlink", [&] {
    Filesystem* fs = Fs(req);
    if (Denied(req)) return;
    InodeRef inode = InodeOr(req, ino);
    if (inode == nullptr) return;
    absl::StatusOr<std::string> t = fs->WithFid(inode, fs->PickChannel(), [&](const FidRef& f) {
      return f->session()->Readlink(f->num());
    });
    if (!t.ok()) return ReplyStatus(req, t.status());
    fuse_reply_readlink(req, t->c_str());
  });
}

void Mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  Run(req, "mknod", [&] {
    Filesystem* fs = Fs(req);
    if (Denied(req)) return;
    InodeRef dir = InodeOr(req, parent);
    if (dir == nullptr) return;
    absl::StatusOr<FidRef> pf = fs->AnyFid(dir, fs->PickChannel());
    if (!pf.ok()) return ReplyStatus(req, pf.status());
    absl::StatusOr<Qid> q = (*pf)->session()->Mknod((*pf)->num(), name, mode, major(rdev),
                                                    minor(rdev), fs->CallerGid(req));
    if (!q.ok()) return ReplyStatus(req, q.status());
    ReplyNewEntry(req, fs, dir, *pf, name);
  });
}

void Mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  Run(req, "mkdir", [&] {
    Filesystem* fs = Fs(req);
    if (Denied(req)) return;
    InodeRef dir = InodeOr(req, parent);
    if (dir == nullptr) return;
    absl::StatusOr<FidRef> pf = fs->AnyFid(dir, fs->PickChannel());
    if (!pf.ok()) return ReplyStatus(req, pf.status());
    absl::StatusOr<Qid> q =
        (*pf)->session()->Mkdir((*pf)->num(), name, mode & 07777, fs->CallerGid(req));
    if (!q.ok()) return ReplyStatus(req, q.status());
    ReplyNewEntry(req, fs, dir, *pf, name);
  });
}

void Symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  Run(req, "symlink", [&] {
    Filesystem* fs = Fs(req);
    if (Denied(req)) return;
    InodeRef dir = InodeOr(req, parent);
    if (dir == nullptr) return;
    absl::StatusOr<FidRef> pf = fs->AnyFid(dir, fs->PickChannel());
    if (!pf.ok()) return ReplyStatus(req, pf.status());
    absl::StatusOr<Qid> q = (*pf)->session()->Symlink((*pf)->num(), name, link, fs->CallerGid(req));
    if (!q.ok()) return ReplyStatus(req, q.status());
    ReplyNewEntry(req, fs, dir, *pf, name);
  });
}

void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Run(req, "unlink", [&] { DoRemove(req, parent, name, false); });
}

void Rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Run(req, "rmdir", [&] { DoRemove(req, parent, name, true); });
}

void Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
            const char* newname, unsigned int flags) {
  Run(req, "rename", [&] {
    Filesystem* fs = Fs(req);
    if (Denied(req)) return;
    // 9P has no atomic no-replace or exchange; emulating them would race.
    if (flags != 0) return Err(req, EINVAL);
    InodeRef dir = InodeOr(req, parent);
    if (dir == nullptr) return;
    InodeRef ndir = InodeOr(req, newparent);
    if (ndir == nullptr) return;
    FidRef pf, npf;
    if (absl::Status st = FidsOnOneChannel(fs, dir, ndir, &pf, &npf); !st.ok()) {
      return ReplyStatus(req, st);
    }
    std::string from(name), to(newname);
    absl::StatusOr<std::pair<FidRef, Qid>> w = fs->WalkName(pf, from);
    if (!w.ok()) return ReplyStatus(req, w.status());
    Session* s = pf->session();
    // The file this rename replaces, if any: it goes away (a new file with
    // its number is a new incarnation), and if it is open here it keeps a
    // hidden name, as on unlink.
    absl::StatusOr<std::pair<FidRef, Qid>> tw = fs->WalkName(npf, to);
    bool replaces = tw.ok() && tw->second.path != w->second.path;
    if (replaces && fs->open_files.load(std::memory_order_relaxed) > 0 &&
        !(tw->second.type & kQtDir) && !Filesystem::IsSillyName(to)) {
      if (InodeRef t = fs->inodes().FindByQidPath(tw->second.path); t != nullptr) {
        if (SillyRename(fs, ndir, npf, to, t, tw->first)) replaces = false;
      }
    }
    // Trename moves the walked fid with the file (diod updates that fid's
    // path), so it becomes the inode's fid afterwards.
    bool fid_moved = true;
    absl::Status st = s->Rename(w->first->num(), npf->num(), to);
    if (int e = ToErrno(st); e == EOPNOTSUPP || e == ENOSYS) {
      st = s->Renameat(pf->num(), from, npf->num(), to);
      fid_moved = false;
    }
    if (!st.ok()) return ReplyStatus(req, st);
    fs->AttrChanged(w->second.path);  // its ctime
    if (replaces) fs->Retire(tw->second.path);
    if (InodeRef moved = fs->inodes().FindByQidPath(w->second.path); moved != nullptr) {
      {
        std::vector<FidRef> old;
        MutexLock lock(&moved->mu);
        moved->RemoveLink(dir.get(), from);
        moved->AddLink(ndir, to);
        for (FidRef& g : moved->fids) {
          if (g != nullptr) old.push_back(std::move(g));
        }
        if (fid_moved) moved->FidAt(fs->FidIndex(*w->first)) = w->first;
      }
      if (moved->is_dir()) fs->InvalidateBelow(moved);
    }
    fuse_reply_err(req, 0);
  });
}

void Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  Run(req, "link", [&] {
    Filesystem* fs = Fs(req);
    if (Denied(req)) return;
    InodeRef inode = InodeOr(req, ino);
    if (inode == nullptr) return;
    InodeRef ndir = InodeOr(req, newparent);
    if (ndir == nullptr) return;
    FidRef f, npf;
    if (absl::Status st = FidsOnOneChannel(fs, inode, ndir, &f, &npf); !st.ok()) {
      return ReplyStatus(req, st);
    }
    if (absl::Status st = f->session()->Link(npf->num(), f->num(), newname); !st.ok()) {
      return ReplyStatus(req, st);
    }
    absl::StatusOr<std::pair<FidRef, Qid>> w = fs->WalkName(npf, newname);
    if (!w.ok()) return ReplyStatus(req, w.status());
    fuse_entry_param e;
    InodeRef linked;
    if (absl::Status st = fs->MakeEntry(ndir, newname, w->first, &e, &linked); !st.ok()) {
      return ReplyStatus(req, st);
    }
    if (fuse_reply_entry(req, &e) != 0) fs->UndoEntry(linked->ino);
  });
}

void Statfs(fuse_req_t req, fuse_ino_t ino) {
  Run(req, "statfs", [&] {
    Filesystem* fs = Fs(req);
    InodeRef inode = fs->inodes().Get(ino);
    if (inode == nullptr) inode = fs->inodes().root();
    absl::StatusOr<Rstatfs> r = fs->Statfs(inode, fs->PickChannel());
    if (!r.ok()) return ReplyStatus(req, r.status());
    struct statvfs v = {};
    v.f_bsize = r->bsize;
    v.f_frsize = r->bsize;
    v.f_blocks = r->blocks;
    v.f_bfree = r->bfree;
    v.f_bavail = r->bavail;
    v.f_files = r->files;
    v.f_ffree = r->ffree;
    v.f_favail = r->ffree;
    v.f_fsid = r->fsid;
    v.f_namemax = r->namelen;
    fuse_reply_statfs(req, &v);
  });
}

void Access(fuse_req_t req, fuse_ino_t ino, int mask) {
  Run(req, "access", [&] {
    Filesystem* fs = Fs(req);
    if (Denied(req)) return;
    InodeRef inode = InodeOr(req, ino);
    if (inode == nullptr) return;
    absl::StatusOr<Rgetattr> a = fs->GetattrInode(inode, fs->PickChannel(), nullptr);
    if (!a.ok()) return ReplyStatus(req, a.status());
    if (mask == F_OK) return Err(req, 0);
    if ((mask & W_OK) && fs->config().read_only) return Err(req, EROFS);
    const fuse_ctx* ctx = fuse_req_ctx(req);
    if (ctx->uid == 0) {
      // root may do anything but execute a file nobody may execute.
      bool x_denied = (mask & X_OK) && !S_ISDIR(a->mode) && !(a->mode & 0111);
      return Err(req, x_denied ? EACCES : 0);
    }
    unsigned bits;
    if (ctx->uid == a->uid) {
      bits = (a->mode >> 6) & 7;
    } else {
      bool in_group = ctx->gid == a->gid;
      if (!in_group) {
        std::vector<gid_t> groups(64);
        int n = fuse_req_getgroups(req, static_cast<int>(groups.size()), groups.data());
        if (n > static_cast<int>(groups.size())) {
          groups.resize(static_cast<size_t>(n));
          n = fuse_req_getgroups(req, n, groups.data());
        }
        for (int i = 0; i < n && i < static_cast<int>(groups.size()); ++i) {
          if (groups[static_cast<size_t>(i)] == a->gid) in_group = true;
        }
      }
      bits = in_group ? (a->mode >> 3) & 7 : a->mode & 7;
    }
    bool ok = (!(mask & R_OK) || (bits & 4)) && (!(mask & W_OK) || (bits & 2)) &&
              (!(mask & X_OK) || (bits & 1));
    fuse_reply_err(req, ok ? 0 : EACCES);
  });
}

}  // namespace p9::fuse::ops
