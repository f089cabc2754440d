// memfs: a minimal in-memory FUSE file system (libfuse3 low-level API), the
// "FUSE ceiling" of tests/bench/run: what any FUSE file system can reach on
// this kernel when the server costs nothing.
//
//   memfs [-f] [--preload DIR] [--timeout SECS] [--direct-io] MOUNTPOINT
//
//   --preload DIR  copy DIR's tree (files, directories, symlinks, modes and
//                  times) into memory before mounting
//   --timeout S    entry/attr/negative timeout (default 86400); with S > 0
//                  files are opened with keep_cache, like a caching client
//   --direct-io    open files with direct_io (no page cache)
//   -f             stay in the foreground (default: daemonize once mounted,
//                  so the command returns when the mount is usable)
//
// One reader-writer lock guards every node; lookup counts are atomic so that
// lookups run under the shared lock. Enough for the benchmark workloads
// (fio, tar, git, python imports, file trees), not a general file system.
#define FUSE_USE_VERSION 312
#include <dirent.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

// File contents: grows geometrically, and without zero-filling what a write
// is about to overwrite (std::string::resize would touch every byte twice).
class Data {
 public:
  size_t size() const { return size_; }
  const char* data() const { return buf_.get(); }
  void Resize(size_t n) {
    Reserve(n);
    if (n > size_) std::memset(buf_.get() + size_, 0, n - size_);
    size_ = n;
  }
  void Write(size_t off, const char* src, size_t len) {
    if (off > size_) Resize(off);  // a hole reads as zeros
    Reserve(off + len);
    std::memcpy(buf_.get() + off, src, len);
    size_ = std::max(size_, off + len);
  }

 private:
  void Reserve(size_t n) {
    if (n <= cap_) return;
    size_t cap = std::max(n, cap_ * 2);
    std::unique_ptr<char[]> b(new char[cap]);
    if (size_ > 0) std::memcpy(b.get(), buf_.get(), size_);
    buf_ = std::move(b);
    cap_ = cap;
  }
  std::unique_ptr<char[]> buf_;
  size_t size_ = 0, cap_ = 0;
};

struct Node {
  struct stat st {};
  Data data;                                 // regular file contents
  std::string target;                        // symlink target
  std::map<std::string, fuse_ino_t> kids;    // directory entries
  std::atomic<uint64_t> nlookup{0};          // kernel references
};

std::shared_mutex g_mu;  // guards g_nodes, every Node's fields but nlookup, g_next
std::unordered_map<fuse_ino_t, std::unique_ptr<Node>> g_nodes;
fuse_ino_t g_next = FUSE_ROOT_ID;  // the first node made is the root
double g_timeout = 86400;
bool g_direct_io = false;

timespec Now() {
  timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return t;
}

Node* Get(fuse_ino_t ino) {
  auto it = g_nodes.find(ino);
  return it == g_nodes.end() ? nullptr : it->second.get();
}

// Caller holds g_mu exclusively.
Node* NewNode(mode_t mode, uid_t uid, gid_t gid) {
  auto n = std::make_unique<Node>();
  n->st.st_ino = g_next++;
  n->st.st_mode = mode;
  n->st.st_nlink = S_ISDIR(mode) ? 2 : 1;
  n->st.st_uid = uid;
  n->st.st_gid = gid;
  n->st.st_blksize = 4096;
  n->st.st_atim = n->st.st_mtim = n->st.st_ctim = Now();
  Node* p = n.get();
  g_nodes[p->st.st_ino] = std::move(n);
  return p;
}

void Touch(Node* n) { n->st.st_mtim = n->st.st_ctim = Now(); }

void FillEntry(Node* n, fuse_entry_param* e) {
  std::memset(e, 0, sizeof(*e));
  e->ino = n->st.st_ino;
  e->attr = n->st;
  e->attr.st_blocks = (n->st.st_size + 511) / 512;
  e->attr_timeout = e->entry_timeout = g_timeout;
  n->nlookup.fetch_add(1, std::memory_order_relaxed);
}

void MaybeFree(fuse_ino_t ino) {  // exclusive lock held
  Node* n = Get(ino);
  if (n != nullptr && n->st.st_nlink == 0 && n->nlookup.load() == 0) g_nodes.erase(ino);
}

// Drops the entry NAME from directory P (exclusive lock held).
void DropLink(Node* p, const std::string& name) {
  auto it = p->kids.find(name);
  Node* c = Get(it->second);
  fuse_ino_t ino = it->second;
  p->kids.erase(it);
  if (S_ISDIR(c->st.st_mode)) {
    c->st.st_nlink = 0;
    p->st.st_nlink--;
  } else {
    c->st.st_nlink--;
  }
  c->st.st_ctim = Now();
  Touch(p);
  MaybeFree(ino);
}

void OpLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  std::shared_lock l(g_mu);
  Node* p = Get(parent);
  if (p == nullptr) return (void)fuse_reply_err(req, ENOENT);
  auto it = p->kids.find(name);
  if (it == p->kids.end()) {
    fuse_entry_param e{};  // ino 0: a negative entry cached for the timeout
    e.entry_timeout = g_timeout;
    return (void)fuse_reply_entry(req, &e);
  }
  fuse_entry_param e;
  FillEntry(Get(it->second), &e);
  fuse_reply_entry(req, &e);
}

void ForgetOne(fuse_ino_t ino, uint64_t n) {
  Node* node = Get(ino);
  if (node == nullptr) return;
  node->nlookup.fetch_sub(n);
  MaybeFree(ino);
}

void OpForget(fuse_req_t req, fuse_ino_t ino, uint64_t n) {
  {
    std::unique_lock l(g_mu);
    ForgetOne(ino, n);
  }
  fuse_reply_none(req);
}

void OpForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* f) {
  {
    std::unique_lock l(g_mu);
    for (size_t i = 0; i < count; ++i) ForgetOne(f[i].ino, f[i].nlookup);
  }
  fuse_reply_none(req);
}

void OpGetattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  std::shared_lock l(g_mu);
  Node* n = Get(ino);
  if (n == nullptr) return (void)fuse_reply_err(req, ENOENT);
  struct stat st = n->st;
  st.st_blocks = (st.st_size + 511) / 512;
  fuse_reply_attr(req, &st, g_timeout);
}

void OpSetattr(fuse_req_t req, fuse_ino_t ino, struct stat* a, int to_set, fuse_file_info*) {
  std::unique_lock l(g_mu);
  Node* n = Get(ino);
  if (n == nullptr) return (void)fuse_reply_err(req, ENOENT);
  timespec now = Now();
  if (to_set & FUSE_SET_ATTR_MODE) n->st.st_mode = (n->st.st_mode & S_IFMT) | (a->st_mode & 07777);
  if (to_set & FUSE_SET_ATTR_UID) n->st.st_uid = a->st_uid;
  if (to_set & FUSE_SET_ATTR_GID) n->st.st_gid = a->st_gid;
  if (to_set & FUSE_SET_ATTR_SIZE) {
    if (!S_ISREG(n->st.st_mode)) return (void)fuse_reply_err(req, EINVAL);
    n->data.Resize(a->st_size);
    n->st.st_size = a->st_size;
    n->st.st_mtim = now;
  }
  if (to_set & FUSE_SET_ATTR_ATIME) n->st.st_atim = a->st_atim;
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) n->st.st_atim = now;
  if (to_set & FUSE_SET_ATTR_MTIME) n->st.st_mtim = a->st_mtim;
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) n->st.st_mtim = now;
  n->st.st_ctim = now;
  struct stat st = n->st;
  st.st_blocks = (st.st_size + 511) / 512;
  fuse_reply_attr(req, &st, g_timeout);
}

void OpReadlink(fuse_req_t req, fuse_ino_t ino) {
  std::shared_lock l(g_mu);
  Node* n = Get(ino);
  if (n == nullptr || !S_ISLNK(n->st.st_mode)) return (void)fuse_reply_err(req, EINVAL);
  fuse_reply_readlink(req, n->target.c_str());
}

// Creates NAME in PARENT with MODE; replies with an entry (or via create).
Node* MakeChild(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, int* err) {
  Node* p = Get(parent);
  if (p == nullptr || !S_ISDIR(p->st.st_mode)) return *err = ENOENT, nullptr;
  if (p->kids.count(name)) return *err = EEXIST, nullptr;
  if (std::strlen(name) > 255) return *err = ENAMETOOLONG, nullptr;
  const fuse_ctx* ctx = fuse_req_ctx(req);
  gid_t gid = (p->st.st_mode & S_ISGID) ? p->st.st_gid : ctx->gid;
  Node* c = NewNode(mode, ctx->uid, gid);
  p->kids[name] = c->st.st_ino;
  if (S_ISDIR(mode)) p->st.st_nlink++;
  Touch(p);
  return c;
}

void ReplyMade(fuse_req_t req, Node* c, int err) {
  if (c == nullptr) return (void)fuse_reply_err(req, err);
  fuse_entry_param e;
  FillEntry(c, &e);
  fuse_reply_entry(req, &e);
}

void OpMknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  std::unique_lock l(g_mu);
  int err = 0;
  Node* c = MakeChild(req, parent, name, mode, &err);
  if (c != nullptr) c->st.st_rdev = rdev;
  ReplyMade(req, c, err);
}

void OpMkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  std::unique_lock l(g_mu);
  int err = 0;
  ReplyMade(req, MakeChild(req, parent, name, S_IFDIR | (mode & 07777), &err), err);
}

void OpSymlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
  std::unique_lock l(g_mu);
  int err = 0;
  Node* c = MakeChild(req, parent, name, S_IFLNK | 0777, &err);
  if (c != nullptr) {
    c->target = target;
    c->st.st_size = static_cast<off_t>(c->target.size());
  }
  ReplyMade(req, c, err);
}

void Remove(fuse_req_t req, fuse_ino_t parent, const char* name, bool dir) {
  std::unique_lock l(g_mu);
  Node* p = Get(parent);
  if (p == nullptr) return (void)fuse_reply_err(req, ENOENT);
  auto it = p->kids.find(name);
  if (it == p->kids.end()) return (void)fuse_reply_err(req, ENOENT);
  Node* c = Get(it->second);
  if (dir && !S_ISDIR(c->st.st_mode)) return (void)fuse_reply_err(req, ENOTDIR);
  if (!dir && S_ISDIR(c->st.st_mode)) return (void)fuse_reply_err(req, EISDIR);
  if (dir && !c->kids.empty()) return (void)fuse_reply_err(req, ENOTEMPTY);
  DropLink(p, name);
  fuse_reply_err(req, 0);
}

void OpUnlink(fuse_req_t req, fuse_ino_t parent, const char* name) { Remove(req, parent, name, false); }
void OpRmdir(fuse_req_t req, fuse_ino_t parent, const char* name) { Remove(req, parent, name, true); }

void OpRename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
              const char* newname, unsigned int flags) {
  std::unique_lock l(g_mu);
  if (flags & ~RENAME_NOREPLACE) return (void)fuse_reply_err(req, EINVAL);
  Node* p = Get(parent);
  Node* np = Get(newparent);
  if (p == nullptr || np == nullptr) return (void)fuse_reply_err(req, ENOENT);
  auto it = p->kids.find(name);
  if (it == p->kids.end()) return (void)fuse_reply_err(req, ENOENT);
  fuse_ino_t ino = it->second;
  Node* c = Get(ino);
  if (auto old = np->kids.find(newname); old != np->kids.end()) {
    if (old->second == ino) return (void)fuse_reply_err(req, 0);
    if (flags & RENAME_NOREPLACE) return (void)fuse_reply_err(req, EEXIST);
    Node* o = Get(old->second);
    if (S_ISDIR(o->st.st_mode) && !o->kids.empty()) return (void)fuse_reply_err(req, ENOTEMPTY);
    if (S_ISDIR(o->st.st_mode) != S_ISDIR(c->st.st_mode)) {
      return (void)fuse_reply_err(req, S_ISDIR(o->st.st_mode) ? EISDIR : ENOTDIR);
    }
    DropLink(np, newname);
  }
  p->kids.erase(name);
  np->kids[newname] = ino;
  if (S_ISDIR(c->st.st_mode) && p != np) {
    p->st.st_nlink--;
    np->st.st_nlink++;
  }
  Touch(p);
  Touch(np);
  c->st.st_ctim = Now();
  fuse_reply_err(req, 0);
}

void OpLink(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  std::unique_lock l(g_mu);
  Node* c = Get(ino);
  Node* np = Get(newparent);
  if (c == nullptr || np == nullptr) return (void)fuse_reply_err(req, ENOENT);
  if (np->kids.count(newname)) return (void)fuse_reply_err(req, EEXIST);
  np->kids[newname] = ino;
  c->st.st_nlink++;
  c->st.st_ctim = Now();
  Touch(np);
  fuse_entry_param e;
  FillEntry(c, &e);
  fuse_reply_entry(req, &e);
}

void SetOpenFlags(fuse_file_info* fi) {
  fi->direct_io = g_direct_io;
  fi->keep_cache = !g_direct_io && g_timeout > 0;
}

void OpOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  std::unique_lock l(g_mu);
  Node* n = Get(ino);
  if (n == nullptr) return (void)fuse_reply_err(req, ENOENT);
  if ((fi->flags & O_TRUNC) && S_ISREG(n->st.st_mode)) {
    n->data.Resize(0);
    n->st.st_size = 0;
    Touch(n);
  }
  SetOpenFlags(fi);
  fuse_reply_open(req, fi);
}

void OpCreate(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
              fuse_file_info* fi) {
  std::unique_lock l(g_mu);
  int err = 0;
  Node* c = MakeChild(req, parent, name, S_IFREG | (mode & 07777), &err);
  if (c == nullptr) return (void)fuse_reply_err(req, err);
  fuse_entry_param e;
  FillEntry(c, &e);
  SetOpenFlags(fi);
  fuse_reply_create(req, &e, fi);
}

void OpRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  std::shared_lock l(g_mu);
  Node* n = Get(ino);
  if (n == nullptr) return (void)fuse_reply_err(req, ENOENT);
  size_t len = n->data.size();
  if (static_cast<size_t>(off) >= len) return (void)fuse_reply_buf(req, nullptr, 0);
  fuse_reply_buf(req, n->data.data() + off, std::min(size, len - off));
}

void OpWrite(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
             fuse_file_info*) {
  std::unique_lock l(g_mu);
  Node* n = Get(ino);
  if (n == nullptr) return (void)fuse_reply_err(req, ENOENT);
  n->data.Write(off, buf, size);
  n->st.st_size = static_cast<off_t>(n->data.size());
  Touch(n);
  fuse_reply_write(req, size);
}

void OpOk(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }
void OpFsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) { fuse_reply_err(req, 0); }

void OpOpendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  std::shared_lock l(g_mu);
  Node* n = Get(ino);
  if (n == nullptr) return (void)fuse_reply_err(req, ENOENT);
  if (!S_ISDIR(n->st.st_mode)) return (void)fuse_reply_err(req, ENOTDIR);
  fi->cache_readdir = g_timeout > 0;
  fi->keep_cache = g_timeout > 0;
  fuse_reply_open(req, fi);
}

// Offsets are entry indexes: "." is 0, ".." 1, then the sorted names.
void Readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus) {
  std::shared_lock l(g_mu);
  Node* d = Get(ino);
  if (d == nullptr) return (void)fuse_reply_err(req, ENOENT);
  std::vector<char> buf(size);
  size_t used = 0;
  off_t idx = 0;
  auto add = [&](const char* name, Node* n, bool counted) {
    if (idx++ < off) return true;
    size_t room = size - used;
    size_t need;
    if (plus) {
      fuse_entry_param e{};
      e.ino = n->st.st_ino;
      e.attr = n->st;
      e.attr_timeout = e.entry_timeout = g_timeout;
      need = fuse_add_direntry_plus(req, buf.data() + used, room, name, &e, idx);
      if (need <= room && counted) n->nlookup.fetch_add(1, std::memory_order_relaxed);
    } else {
      need = fuse_add_direntry(req, buf.data() + used, room, name, &n->st, idx);
    }
    if (need > room) return false;
    used += need;
    return true;
  };
  if (!add(".", d, false) || !add("..", d, false)) return (void)fuse_reply_buf(req, buf.data(), used);
  for (auto& [name, kid] : d->kids) {
    if (!add(name.c_str(), Get(kid), true)) break;
  }
  fuse_reply_buf(req, buf.data(), used);
}

void OpReaddir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  Readdir(req, ino, size, off, false);
}
void OpReaddirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  Readdir(req, ino, size, off, true);
}

void OpStatfs(fuse_req_t req, fuse_ino_t) {
  struct statvfs s {};
  s.f_bsize = s.f_frsize = 4096;
  s.f_blocks = s.f_bfree = s.f_bavail = 1u << 24;
  s.f_files = s.f_ffree = s.f_favail = 1u << 24;
  s.f_namemax = 255;
  fuse_reply_statfs(req, &s);
}

constexpr unsigned kMaxRead = 1 << 20;  // also -o max_read: libfuse wants both equal

void OpInit(void*, fuse_conn_info* conn) {
  conn->max_read = kMaxRead;
  conn->time_gran = 1;
  if (conn->capable & FUSE_CAP_CACHE_SYMLINKS) conn->want |= FUSE_CAP_CACHE_SYMLINKS;
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

// Copies the tree at PATH into node N (exclusive use, before mounting).
bool Preload(const std::string& path, Node* dir) {
  DIR* d = opendir(path.c_str());
  if (d == nullptr) return perror(path.c_str()), false;
  bool ok = true;
  while (dirent* de = readdir(d)) {
    std::string name = de->d_name;
    if (name == "." || name == "..") continue;
    std::string p = path + "/" + name;
    struct stat st;
    if (lstat(p.c_str(), &st) != 0) {
      perror(p.c_str());
      ok = false;
      continue;
    }
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode)) continue;
    Node* c = NewNode(st.st_mode, st.st_uid, st.st_gid);
    dir->kids[name] = c->st.st_ino;
    if (S_ISDIR(st.st_mode)) {
      dir->st.st_nlink++;
      ok = Preload(p, c) && ok;
    } else if (S_ISLNK(st.st_mode)) {
      std::vector<char> t(PATH_MAX);
      ssize_t n = readlink(p.c_str(), t.data(), t.size());
      c->target.assign(t.data(), n > 0 ? n : 0);
    } else {
      std::ifstream in(p, std::ios::binary);
      std::vector<char> chunk(1 << 20);
      while (in.read(chunk.data(), chunk.size()) || in.gcount() > 0) {
        c->data.Write(c->data.size(), chunk.data(), in.gcount());
      }
    }
    c->st.st_size = S_ISDIR(st.st_mode) ? 4096 : static_cast<off_t>(
        S_ISLNK(st.st_mode) ? c->target.size() : c->data.size());
    c->st.st_atim = st.st_atim;
    c->st.st_mtim = st.st_mtim;
    c->st.st_ctim = st.st_ctim;
  }
  closedir(d);
  return ok;
}

int Usage() {
  fprintf(stderr, "usage: memfs [-f] [--preload DIR] [--timeout SECS] [--direct-io] MOUNTPOINT\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  bool foreground = false;
  std::string preload, mountpoint;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-f") {
      foreground = true;
    } else if (a == "--preload" && i + 1 < argc) {
      preload = argv[++i];
    } else if (a == "--timeout" && i + 1 < argc) {
      g_timeout = std::atof(argv[++i]);
    } else if (a == "--direct-io") {
      g_direct_io = true;
    } else if (a.empty() || a[0] == '-' || !mountpoint.empty()) {
      return Usage();
    } else {
      mountpoint = a;
    }
  }
  if (mountpoint.empty()) return Usage();

  Node* root = NewNode(S_IFDIR | 0755, getuid(), getgid());  // ino FUSE_ROOT_ID
  root->st.st_size = 4096;
  if (!preload.empty() && !Preload(preload, root)) return 1;

  fuse_lowlevel_ops ops{};
  ops.init = OpInit;
  ops.lookup = OpLookup;
  ops.forget = OpForget;
  ops.forget_multi = OpForgetMulti;
  ops.getattr = OpGetattr;
  ops.setattr = OpSetattr;
  ops.readlink = OpReadlink;
  ops.mknod = OpMknod;
  ops.mkdir = OpMkdir;
  ops.unlink = OpUnlink;
  ops.rmdir = OpRmdir;
  ops.symlink = OpSymlink;
  ops.rename = OpRename;
  ops.link = OpLink;
  ops.open = OpOpen;
  ops.read = OpRead;
  ops.write = OpWrite;
  ops.flush = OpOk;
  ops.release = OpOk;
  ops.fsync = OpFsync;
  ops.opendir = OpOpendir;
  ops.readdir = OpReaddir;
  ops.readdirplus = OpReaddirplus;
  ops.releasedir = OpOk;
  ops.fsyncdir = OpFsync;
  ops.statfs = OpStatfs;
  ops.create = OpCreate;

  char prog[] = "memfs", o[] = "-o",
       opts[] = "fsname=memfs,subtype=memfs,default_permissions,max_read=1048576";
  static_assert(kMaxRead == 1048576);
  char* fargv[] = {prog, o, opts};
  fuse_args args = FUSE_ARGS_INIT(3, fargv);
  fuse_session* se = fuse_session_new(&args, &ops, sizeof(ops), nullptr);
  if (se == nullptr) return 1;
  int ret = 1;
  if (fuse_set_signal_handlers(se) == 0) {
    if (fuse_session_mount(se, mountpoint.c_str()) == 0) {
      fuse_daemonize(foreground ? 1 : 0);
      fuse_loop_config* cfg = fuse_loop_cfg_create();
      fuse_loop_cfg_set_max_threads(cfg, 64);
      ret = fuse_session_loop_mt(se, cfg) == 0 ? 0 : 1;
      fuse_loop_cfg_destroy(cfg);
      fuse_session_unmount(se);
    }
    fuse_remove_signal_handlers(se);
  }
  fuse_session_destroy(se);
  return ret;
}
