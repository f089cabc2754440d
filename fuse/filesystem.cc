#include "fuse/filesystem.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "client/log.h"
#include "client/tunables.h"

namespace p9::fuse {
namespace {

// A parent chain longer than this is a cycle (or absurd); stop following it.
constexpr int kMaxDepth = 4096;

// Whether cached attributes can describe a file a walk returned this qid
// type for (a server may reuse an inode number for a file of another type).
bool QidTypeMatches(uint8_t qtype, uint32_t fmt) {
  return ((qtype & kQtDir) != 0) == (fmt == S_IFDIR);
}

// Workers that look up a readdirplus listing's entries side by side: enough
// to keep every queue busy on a listing (each lookup is two round trips).
constexpr int kLookupThreads = 8;

// FUSE requests of fuse_max_read() in the readahead window (see
// TuneReadaheadOnce), bounded to kMaxReadaheadKib.
constexpr uint32_t kReadaheadRequests = 4;
constexpr uint32_t kMaxReadaheadKib = 16 * 1024;

constexpr char kSillyPrefix[] = ".9prdma-unlinked-";
constexpr char kSillyDirName[] = ".9prdma-unlinked";

uint64_t RandomNonce() {
  uint64_t v = 0;
  if (getrandom(&v, sizeof(v), 0) != sizeof(v)) {
    v = static_cast<uint64_t>(getpid()) ^ static_cast<uint64_t>(time(nullptr)) << 20;
  }
  return v;
}

thread_local int current_principal = 0;

}  // namespace

PrincipalScope::PrincipalScope(int principal) : saved_(current_principal) {
  current_principal = principal;
}
PrincipalScope::~PrincipalScope() { current_principal = saved_; }
int PrincipalScope::current() { return current_principal; }

bool IsStale(const absl::Status& s) {
  int e = ToErrno(s);
  return e == ENOENT || e == ESTALE;
}

Filesystem::Filesystem(std::vector<std::unique_ptr<Session>> sessions,
                       const std::vector<uint32_t>& root_fids, const Qid& root_qid,
                       const FsConfig& config)
    : sessions_(std::move(sessions)),
      config_(config),
      policy_(cache::PolicyFor(config.cache, config.actimeo, config.writeback)),
      mount_nonce_(RandomNonce()),
      work_pool_(kLookupThreads) {
  auto root = std::make_shared<Inode>(kRootIno, root_qid.path, S_IFDIR, channels());
  {
    MutexLock lock(&root->mu);
    for (int c = 0; c < channels(); ++c) {
      root->fids[static_cast<size_t>(c)] = std::make_shared<Fid>(
          session(c), c, root_fids[static_cast<size_t>(c)], kEveryEpoch, &clunker_);
    }
  }
  table_ = std::make_unique<InodeTable>(root_qid.path, std::move(root));
  {
    MutexLock lock(&principals_mu_);
    principal_uids_.push_back(config_.attach_uid);
  }
  if (policy_.attr_timeout > 0) sweeper_ = std::thread([this] { SweepParkedLoop(); });
}

Filesystem::~Filesystem() { Shutdown(); }

void Filesystem::Shutdown() {
  if (shut_down_.exchange(true)) return;
  // Reads being repeated need the sessions.
  retries_.Stop();
  {
    MutexLock lock(&parked_mu_);
    sweeper_stop_ = true;
    sweeper_wake_.SignalAll();
  }
  if (sweeper_.joinable()) sweeper_.join();
  // A queue whose server is away would make the unmount wait for it to
  // come back: give up on it now (its server forgets the fids anyway).
  for (auto& s : sessions_) {
    if (!s->alive()) s->Close(absl::CancelledError("unmounted while reconnecting"));
  }
  // The sessions close at the end, and the server then releases every fid
  // on them. Clunking first each fid of every inode the kernel still held
  // took one round trip per fid, serially: thousands of them on four queues
  // through the relay in the Soft-RoCE guest kept the daemon alive more
  // than ten seconds after umount returned.
  clunker_.Abandon();
  std::vector<InodeRef> all = table_->Clear();
  size_t n = all.size();
  all.clear();
  InodeRef silly;
  {
    MutexLock lock(&silly_mu_);
    silly = std::move(silly_dir_);
  }
  if (silly != nullptr) {
    // Leave no empty hidden directory behind (another client may still use
    // it: then it is not empty and stays). Every handle is released by now,
    // and with it every file that was hidden there.
    silly.reset();
    absl::StatusOr<FidRef> rf = FidOn(table_->root(), 0);
    if (rf.ok()) (void)RemoveName(*rf, kSillyDirName, true);
  }
  InodeRef root = table_->root();
  {
    MutexLock lock(&root->mu);
    for (FidRef& f : root->fids) f.reset();
  }
  P9_LOG(kInfo, "unmount: released %zu inodes and the root on %d channel(s)", n, channels());
  for (auto& s : sessions_) s->Close(absl::CancelledError("unmounted"));
}

int Filesystem::PickChannel() const {
  if (channels() == 1) return 0;
  thread_local int mine = -1;
  if (mine < 0) mine = next_thread_channel_.fetch_add(1, std::memory_order_relaxed);
  return mine % channels();
}

uint32_t Filesystem::max_read() const {
  uint32_t m = UINT32_MAX;
  for (const auto& s : sessions_) m = std::min(m, s->max_read());
  return m;
}

uint32_t Filesystem::max_write() const {
  uint32_t m = UINT32_MAX;
  for (const auto& s : sessions_) m = std::min(m, s->max_write());
  return m;
}

namespace {
uint32_t WholePages(uint32_t n) {
  uint32_t page = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));
  return n >= page ? n - n % page : n;
}

}  // namespace

// Whole pages, so page-aligned reads and writes stay page-aligned; the
// session splits them into Treads/Twrites of max_read()/max_write().
uint32_t Filesystem::fuse_max_read() const { return WholePages(tunables::kMaxFuseRequest); }
// Except under writeback_cache: there the kernel's own writeback keeps many
// requests in flight, and 1 MiB ones made fsync-bound sequential writes
// slower in the Soft-RoCE guest (1.3-1.4x the kernel client against 2.0x
// with one Twrite per request; tests/bench/run). libfuse sizes max_pages,
// which bounds reads too, from max_write.
uint32_t Filesystem::fuse_max_write() const {
  return policy_.writeback ? WholePages(max_write()) : WholePages(tunables::kMaxFuseRequest);
}

int Filesystem::PrincipalFor(fuse_req_t req) {
  if (config_.access != AccessMode::kUser) return 0;
  return PrincipalOf(fuse_req_ctx(req)->uid);
}

int Filesystem::PrincipalOf(uint32_t uid) {
  if (uid == config_.attach_uid) return 0;
  MutexLock lock(&principals_mu_);
  auto [it, added] = principal_of_uid_.try_emplace(uid, static_cast<int>(principal_uids_.size()));
  if (added) principal_uids_.push_back(uid);
  return it->second;
}

absl::StatusOr<FidRef> Filesystem::AttachPrincipal(int p, int c) {
  uint32_t uid;
  {
    MutexLock lock(&principals_mu_);
    uid = principal_uids_[static_cast<size_t>(p)];
  }
  if (!config_.attach_user) return ErrnoError(EACCES, "no per-user attach configured");
  Session* s = session(c);
  uint32_t nf = s->AllocFid();
  // Read before the request, as for a walk: a reconnect in between makes
  // the new fid look stale, and the next use attaches again.
  uint64_t epoch = s->epoch();
  absl::StatusOr<Qid> q = config_.attach_user(*s, nf, uid);
  if (!q.ok()) {
    s->FreeFid(nf);
    P9_LOG(kWarning, "access=user: attach as uid %u refused: %s", uid, q.status().ToString());
    return q.status();
  }
  auto f = std::make_shared<Fid>(s, c, nf, epoch, &clunker_, p);
  InodeRef root = table_->root();
  if (q->path != root->qid_path) {
    return ErrnoError(ESTALE, absl::StrFormat("uid %u attached to another root", uid));
  }
  P9_LOG(kInfo, "access=user: uid %u attached on queue %d (fid %u)", uid, c, nf);
  FidRef old;  // released after the lock (its clunk is queued)
  MutexLock lock(&root->mu);
  FidRef& slot = root->FidAt(FidIndex(p, c));
  if (slot == nullptr || !slot->current()) {
    old = std::move(slot);
    slot = std::move(f);
  }
  return slot;
}

absl::StatusOr<FidRef> Filesystem::FidOn(const InodeRef& inode, int c) {
  const int p = PrincipalScope::current();
  const size_t i = FidIndex(p, c);
  std::vector<Inode::Link> links;
  {
    MutexLock lock(&inode->mu);
    const FidRef& f = inode->FidAt(i);
    // A fid from a connection that has been replaced is walked again.
    if (f != nullptr && f->current()) return f;
    links = inode->links;
  }
  if (p != 0 && inode->ino == kRootIno) return AttachPrincipal(p, c);
  absl::Status last = ErrnoError(ESTALE, "no path left to walk to this file");
  for (const Inode::Link& l : links) {
    absl::StatusOr<FidRef> pf = FidOn(l.dir, c);
    if (!pf.ok()) {
      last = pf.status();
      continue;
    }
    absl::StatusOr<std::pair<FidRef, Qid>> w = WalkName(*pf, l.name);
    if (!w.ok()) {
      last = w.status();
      continue;
    }
    if (w->second.path != inode->qid_path) {
      last = ErrnoError(ESTALE, absl::StrFormat("\"%s\" now names another file", l.name));
      continue;
    }
    MutexLock lock(&inode->mu);
    FidRef& slot = inode->FidAt(i);
    FidRef old;  // released after the lock (its clunk is queued)
    if (slot == nullptr || !slot->current()) {
      old = std::move(slot);
      slot = std::move(w->first);
    }
    return slot;
  }
  return last;
}

absl::StatusOr<FidRef> Filesystem::AnyFid(const InodeRef& inode, int preferred) {
  absl::StatusOr<FidRef> f = FidOn(inode, preferred);
  if (f.ok()) return f;
  MutexLock lock(&inode->mu);
  const int p = PrincipalScope::current();
  for (int c = 0; c < channels(); ++c) {
    const FidRef& g = inode->FidAt(FidIndex(p, c));
    if (g != nullptr && g->current()) return g;
  }
  return f.status();
}

bool Filesystem::RecoverFrom(const absl::Status& s, const FidRef& f) {
  if (s.ok() || f == nullptr) return false;
  if (!IsConnectionLost(s) && f->current()) return false;
  Session* session = f->session();
  absl::Duration wait = session->options().timeout;
  absl::Time deadline =
      wait == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + wait;
  return session->AwaitConnected(deadline);
}

void Filesystem::DropFid(const InodeRef& inode, const FidRef& stale) {
  if (inode->ino == kRootIno || stale == nullptr) return;
  FidRef old;
  MutexLock lock(&inode->mu);
  FidRef& slot = inode->FidAt(FidIndex(*stale));
  if (slot == stale) old = std::move(slot);
  // `old` is clunked after the lock is released (declared before it).
}

void Filesystem::DropAllFids(const InodeRef& inode) {
  if (inode->ino == kRootIno) return;
  std::vector<FidRef> old;
  MutexLock lock(&inode->mu);
  for (FidRef& f : inode->fids) {
    if (f != nullptr) old.push_back(std::move(f));
  }
}

void Filesystem::InvalidateBelow(const InodeRef& dir) {
  std::vector<InodeRef> all = table_->Snapshot();
  int dropped = 0;
  for (const InodeRef& inode : all) {
    if (inode == dir || inode->ino == kRootIno) continue;
    InodeRef p;
    {
      MutexLock lock(&inode->mu);
      p = inode->parent();
    }
    for (int depth = 0; p != nullptr && depth < kMaxDepth; ++depth) {
      if (p == dir) {
        DropAllFids(inode);
        ++dropped;
        break;
      }
      MutexLock lock(&p->mu);
      InodeRef up = p->parent();
      p = std::move(up);
    }
  }
  if (dropped > 0)
    P9_LOG(kDebug, "rename of a directory: %d fids below it re-walk lazily", dropped);
}

absl::StatusOr<std::pair<FidRef, Qid>> Filesystem::WalkName(const FidRef& dir,
                                                            const std::string& name) {
  Session* s = dir->session();
  uint32_t nf = s->AllocFid();
  uint64_t epoch = s->epoch();
  absl::StatusOr<std::vector<Qid>> q = s->Walk(dir->num(), nf, {name});
  if (!q.ok()) {
    s->FreeFid(nf);
    return q.status();
  }
  auto f = std::make_shared<Fid>(s, dir->channel(), nf, epoch, &clunker_, dir->principal());
  if (q->size() != 1) return ErrnoError(EIO, "Rwalk returned no qid");
  return std::make_pair(std::move(f), q->front());
}

absl::StatusOr<FidRef> Filesystem::Clone(const FidRef& f) {
  Session* s = f->session();
  uint32_t nf = s->AllocFid();
  uint64_t epoch = s->epoch();
  absl::StatusOr<std::vector<Qid>> q = s->Walk(f->num(), nf, {});
  if (!q.ok()) {
    s->FreeFid(nf);
    return q.status();
  }
  return std::make_shared<Fid>(s, f->channel(), nf, epoch, &clunker_, f->principal());
}

absl::StatusOr<FidRef> Filesystem::OpenClone(const FidRef& f, uint64_t qid_path, uint32_t flags,
                                             OpenResult* opened) {
  absl::StatusOr<FidRef> c = Clone(f);
  if (!c.ok()) return c.status();
  absl::StatusOr<OpenResult> r = f->session()->Lopen((*c)->num(), flags);
  if (!r.ok()) return r.status();
  if (r->qid.path != qid_path) {
    // On a path-based server the fid's path may now name another file
    // (replaced by a rename elsewhere): opening that under this inode would
    // mix its data with the old file's cached pages. ESTALE makes the
    // kernel look the name up again and open what it names now.
    return ErrnoError(ESTALE, "the file was replaced on the server");
  }
  if (opened != nullptr) *opened = *r;
  return c;
}

absl::Status Filesystem::Remove(const FidRef& f) {
  f->MarkGone();
  return f->session()->Remove(f->num());
}

absl::StatusOr<Rgetattr> Filesystem::GetattrChecked(const FidRef& f, uint64_t qid_path,
                                                    uint64_t mask) {
  absl::StatusOr<Rgetattr> a = f->session()->Getattr(f->num(), mask);
  if (a.ok() && a->qid.path != qid_path) {
    return ErrnoError(ESTALE, "the fid's path now names another file");
  }
  return a;
}

void Filesystem::Retire(uint64_t qid_path) {
  // Gone, or one link fewer: either way its attributes changed.
  AttrChanged(qid_path);
  if (InodeRef cur = table_->FindByQidPath(qid_path); cur != nullptr && !cur->is_dir()) {
    // A file with other links is not gone, only this name is; nor is one
    // that lives on under its hidden name.
    MutexLock lock(&cur->mu);
    if ((cur->has_attr && cur->last_attr.nlink > 1) || cur->silly || cur->silly_pending) return;
  }
  InodeRef old = table_->Retire(qid_path);
  if (old != nullptr) Abandon(old);
}

void Filesystem::Abandon(const InodeRef& old) {
  DropAllFids(old);
  std::vector<Inode::Link> links;  // released outside the lock
  // Parked opened fids would keep the removed file's storage on the server.
  std::vector<ParkedFid> parked;
  MutexLock lock(&old->mu);
  links.swap(old->links);
  parked.swap(old->parked);
}

namespace {

// Whether `now` (the server's attributes for `inode`'s number) may describe
// another file than the one `inode` was made for. Servers reuse inode
// numbers at once (ext4 does), and 9P2000.L has no generation number diod
// fills in, so: a file of another type, or a symlink whose mtime or size
// changed. A symlink's target cannot change in place, and the kernel keeps
// the old one (cache_symlinks) for as long as the node id lives: it drops a
// regular file's pages when mtime or size change, but not a symlink's.
bool OlderIncarnation(const Inode& inode, const Rgetattr& now)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(inode.mu) {
  if (!inode.has_attr) return false;
  const Rgetattr& was = inode.last_attr;
  if ((was.mode & S_IFMT) != (now.mode & S_IFMT)) return true;
  return S_ISLNK(now.mode) && (was.mtime_sec != now.mtime_sec || was.mtime_nsec != now.mtime_nsec ||
                               was.size != now.size);
}


// Opens that may share a parked fid: plain read-only ones. Other flags
// either change what the server does with the open (O_TRUNC, O_APPEND,
// O_DIRECT, sync) or need a write-capable fid.
bool ParkableFlags(int flags) {
  return (flags & (O_ACCMODE | O_APPEND | O_TRUNC | O_DIRECT | O_SYNC | O_DSYNC | O_CREAT | O_EXCL |
                   O_PATH)) == O_RDONLY;
}

// Moves the entries of `v` that `pred` selects to the end of `out`, keeping
// the others in order.
template <typename Pred>
void MoveOutIf(std::vector<ParkedFid>& v, Pred pred, std::vector<ParkedFid>* out) {
  for (size_t i = 0; i < v.size();) {
    if (pred(v[i])) {
      out->push_back(std::move(v[i]));
      v.erase(v.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
}

}  // namespace

bool Filesystem::ParkOpenFid(const InodeRef& inode, const FidRef& fid, int flags, uint32_t iounit) {
  // cache=none opens on the server every time, as the kernel client does:
  // an open there also says the file is still there.
  if (policy_.attr_timeout <= 0 || fid == nullptr || !ParkableFlags(flags) || !fid->current()) {
    return false;
  }
  if (inode->removed.load(std::memory_order_relaxed)) return false;
  if (parked_count_->load(std::memory_order_relaxed) >= kMaxParkedFids) return false;
  MutexLock lock(&inode->mu);
  if (inode->silly || inode->silly_pending) return false;
  // One per principal and channel is plenty: files are rarely open twice.
  for (const ParkedFid& p : inode->parked) {
    if (p.fid()->principal() == fid->principal() && p.fid()->channel() == fid->channel()) {
      return false;
    }
  }
  const absl::Time now = absl::Now();
  inode->parked.emplace_back(fid, iounit, now, parked_count_);
  {
    MutexLock order(&parked_mu_);
    parked_order_.emplace_back(inode, now);
  }
  return true;
}

void Filesystem::SweepParkedLoop() {
  for (;;) {
    {
      MutexLock lock(&parked_mu_);
      sweeper_wake_.AwaitWithDeadline(
          &parked_mu_, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(parked_mu_) { return sweeper_stop_; },
          absl::Now() + absl::Seconds(1));
      if (sweeper_stop_) return;
    }
    SweepParked(absl::Now() - parked_lifetime());
  }
}

void Filesystem::SweepParked(absl::Time cutoff) {
  std::vector<InodeRef> due;
  {
    MutexLock lock(&parked_mu_);
    while (!parked_order_.empty() && parked_order_.front().second <= cutoff) {
      if (InodeRef in = parked_order_.front().first.lock()) due.push_back(std::move(in));
      parked_order_.pop_front();
    }
  }
  for (const InodeRef& in : due) {
    std::vector<ParkedFid> old;  // clunked after the lock is released
    MutexLock lock(&in->mu);
    MoveOutIf(
        in->parked, [cutoff](const ParkedFid& p) { return p.parked_at() <= cutoff; }, &old);
  }
}

FidRef Filesystem::TakeParkedFid(const InodeRef& inode, int flags, uint32_t* iounit) {
  if (policy_.attr_timeout <= 0 || !ParkableFlags(flags)) return nullptr;
  const int principal = PrincipalScope::current();
  std::vector<ParkedFid> stale;  // clunked outside the lock
  FidRef got;
  {
    MutexLock lock(&inode->mu);
    auto& v = inode->parked;
    // Fids of a replaced connection are of no use to anyone: drop them.
    MoveOutIf(
        v, [](const ParkedFid& p) { return !p.fid()->current(); }, &stale);
    auto it = std::find_if(v.begin(), v.end(), [principal](const ParkedFid& p) {
      return p.fid()->principal() == principal;
    });
    if (it != v.end()) {
      *iounit = it->iounit();
      got = it->Take();
      v.erase(it);
    }
  }
  (got != nullptr ? parked_hits_ : parked_misses_).fetch_add(1, std::memory_order_relaxed);
  return got;
}

absl::StatusOr<Rgetattr> Filesystem::GetattrInode(const InodeRef& inode, int c,
                                                  const FidRef& open_fid, bool changed_here) {
  if (inode->removed.load(std::memory_order_relaxed)) {
    // Whatever the server now has under its path or number is another
    // file: report the last attributes, with no links left.
    MutexLock lock(&inode->mu);
    if (inode->has_attr) {
      Rgetattr a = inode->last_attr;
      a.nlink = 0;
      return a;
    }
  }
  if (inode->ino == kRootIno && !session(c)->alive()) {
    // The server is away and the queue reconnecting. umount(8) stats the
    // mountpoint before it unmounts: answer with what we know rather than
    // make it wait out the timeout (the root's attributes are no one's
    // coherence problem).
    MutexLock lock(&inode->mu);
    if (inode->has_attr) return inode->last_attr;
  }
  // Always the server's answer (the getattr op tries the attribute cache
  // first; a setattr's reply must show what the server made of it).
  // Fetched attributes feed the cache.
  const cache::AttrCache::Clock asked = cache::AttrCache::Now();
  absl::StatusOr<Rgetattr> r =
      WithFid(inode, c, [&](const FidRef& f) { return GetattrChecked(f, inode->qid_path); });
  auto remember = [&](const Rgetattr& a) {
    attr_cache_.Put(inode->qid_path, a, asked);
    MutexLock lock(&inode->mu);
    // The old file's attributes stay, so that the next lookup of the name
    // finds out and gives the newer file a node id of its own.
    if (!changed_here && OlderIncarnation(*inode, a)) return;
    inode->last_attr = a;
    inode->has_attr = true;
  };
  if (r.ok()) remember(*r);
  if (r.ok() || !IsStale(r.status())) return r;
  std::vector<FidRef> candidates;
  if (open_fid != nullptr) candidates.push_back(open_fid);
  {
    MutexLock lock(&inode->mu);
    for (const FidRef& f : inode->open_fids) {
      if (f != open_fid) candidates.push_back(f);
    }
  }
  for (const FidRef& f : candidates) {
    absl::StatusOr<Rgetattr> a = GetattrChecked(f, inode->qid_path);
    if (a.ok()) {
      remember(*a);
      return a;
    }
  }
  if (!candidates.empty()) {
    // Open here, and its name is gone or names another file: removed or
    // replaced by another client. A path-based server (diod) stats even an
    // open fid by its path, so nobody can tell us more; its descriptors
    // still read and write the old file, as on a local file system after
    // an unlink, so fstat reports what we last knew, with no links.
    MutexLock lock(&inode->mu);
    if (inode->has_attr) {
      Rgetattr a = inode->last_attr;
      a.nlink = 0;
      return a;
    }
  }
  return r;
}

absl::StatusOr<Rstatfs> Filesystem::Statfs(const InodeRef& inode, int c) {
  if (!session(c)->alive()) {
    MutexLock lock(&statfs_mu_);
    if (has_statfs_) return last_statfs_;
  }
  absl::StatusOr<Rstatfs> r =
      WithFid(inode, c, [&](const FidRef& f) { return f->session()->Statfs(f->num()); });
  if (r.ok()) {
    MutexLock lock(&statfs_mu_);
    last_statfs_ = *r;
    has_statfs_ = true;
  }
  return r;
}

absl::Status Filesystem::MakeEntry(const InodeRef& parent, const std::string& name, const FidRef& f,
                                   fuse_entry_param* e, InodeRef* out, const Qid* walked) {
  std::optional<cache::AttrCache::Hit> cached;
  if (walked != nullptr) cached = CachedAttr(walked->path);
  if (cached && (cached->attr.mode & S_IFMT) != 0 &&
      QidTypeMatches(walked->type, cached->attr.mode & S_IFMT)) {
    InodeRef inode = EnterInode(parent, name, f, cached->attr, e, cached->left);
    if (out != nullptr) *out = std::move(inode);
    return absl::OkStatus();
  }
  const cache::AttrCache::Clock asked = cache::AttrCache::Now();
  absl::StatusOr<Rgetattr> a = f->session()->Getattr(f->num(), kGetattrBasic);
  if (!a.ok()) return a.status();
  attr_cache_.Put(a->qid.path, *a, asked);
  InodeRef inode = EnterInode(parent, name, f, *a, e);
  if (out != nullptr) *out = std::move(inode);
  return absl::OkStatus();
}

InodeRef Filesystem::EnterInode(const InodeRef& parent, const std::string& name, const FidRef& f,
                                const Rgetattr& attr, fuse_entry_param* e,
                                absl::Duration attr_left) {
  const uint64_t qp = attr.qid.path;
  const int n = channels();
  auto make = [&](uint64_t ino) { return std::make_shared<Inode>(ino, qp, attr.mode, n); };
  InodeRef inode = table_->Acquire(qp, make);
  bool older = false;
  if (inode->ino != kRootIno) {
    MutexLock lock(&inode->mu);
    older = OlderIncarnation(*inode, attr);
  }
  if (older) {
    // A new node id makes the kernel drop its dentry and inode for the old
    // file (fuse_dentry_revalidate compares node ids) with what it cached.
    InodeRef forgotten;
    InodeRef old = std::exchange(inode, table_->Reincarnate(inode, make, &forgotten));
    Abandon(old);
  }
  inode->file_type.store(attr.mode & S_IFMT, std::memory_order_relaxed);
  if (inode->ino != kRootIno) {
    // A directory must not become its own ancestor (a server-side move the
    // kernel has not seen yet could suggest it); keep the old place then.
    bool cycle = false;
    if (inode->is_dir()) {
      InodeRef p = parent;
      for (int depth = 0; p != nullptr && depth < kMaxDepth; ++depth) {
        if (p == inode) {
          cycle = true;
          break;
        }
        MutexLock lock(&p->mu);
        InodeRef up = p->parent();
        p = std::move(up);
      }
    }
    FidRef old;
    MutexLock lock(&inode->mu);
    inode->last_attr = attr;
    inode->has_attr = true;
    if (!cycle) inode->AddLink(parent, name);
    // The freshest walk wins: on a path-based server an older fid may name
    // an old path of this file.
    if (f != nullptr) {
      FidRef& slot = inode->FidAt(FidIndex(*f));
      old = std::move(slot);
      slot = f;
    }
  }
  *e = fuse_entry_param{};
  e->ino = inode->ino;
  e->generation = 0;
  FillStat(attr, &e->attr);
  e->attr_timeout = policy_.attr_timeout > 0
                        ? std::min(policy_.attr_timeout, absl::ToDoubleSeconds(attr_left))
                        : policy_.lookup_attr_timeout;
  e->entry_timeout = policy_.entry_timeout;
  return inode;
}

void Filesystem::FillNegativeEntry(fuse_entry_param* e) const {
  *e = fuse_entry_param{};
  e->ino = 0;
  e->entry_timeout = policy_.negative_timeout;
}

void Filesystem::FillStat(const Rgetattr& a, struct stat* st) const {
  *st = {};
  st->st_ino = InoOf(a.qid);
  st->st_mode = a.mode;
  st->st_nlink = a.nlink;
  st->st_uid = a.uid;
  st->st_gid = a.gid;
  st->st_rdev = a.rdev;
  st->st_size = static_cast<off_t>(a.size);
  st->st_blksize = static_cast<blksize_t>(a.blksize);
  st->st_blocks = static_cast<blkcnt_t>(a.blocks);
  st->st_atim.tv_sec = static_cast<time_t>(a.atime_sec);
  st->st_atim.tv_nsec = static_cast<long>(a.atime_nsec);
  st->st_mtim.tv_sec = static_cast<time_t>(a.mtime_sec);
  st->st_mtim.tv_nsec = static_cast<long>(a.mtime_nsec);
  st->st_ctim.tv_sec = static_cast<time_t>(a.ctime_sec);
  st->st_ctim.tv_nsec = static_cast<long>(a.ctime_nsec);
}

bool Filesystem::Allowed(fuse_req_t req) const {
  if (config_.access != AccessMode::kUid) return true;
  const fuse_ctx* ctx = fuse_req_ctx(req);
  return ctx->uid == config_.access_uid;
}

uint32_t Filesystem::CallerGid(fuse_req_t req) const { return fuse_req_ctx(req)->gid; }

void Filesystem::FixOwner(fuse_req_t req, const FidRef& parent_fid, const FidRef& f,
                          Rgetattr* attr) {
  // access=user: the server created it as the caller already; access=any:
  // it belongs to the one attach identity, as with the kernel's client.
  if (config_.access != AccessMode::kClient || config_.attach_uid != 0) return;
  const fuse_ctx* ctx = fuse_req_ctx(req);
  if (ctx->uid == attr->uid && ctx->gid == attr->gid) return;
  uint32_t gid = ctx->gid;
  if (absl::StatusOr<Rgetattr> pa = parent_fid->session()->Getattr(parent_fid->num());
      pa.ok() && (pa->mode & S_ISGID)) {
    gid = pa->gid;
  }
  if (ctx->uid == attr->uid && gid == attr->gid) return;
  Tsetattr set;
  set.fid = f->num();
  set.valid = kSetattrUid | kSetattrGid;
  set.uid = ctx->uid;
  set.gid = gid;
  if (absl::Status st = f->session()->Setattr(set); !st.ok()) {
    P9_LOG(kWarning, "cannot give a new file to uid %u gid %u: %s", ctx->uid, gid, st.ToString());
    return;
  }
  // chown clears set-user/group-ID bits of non-directories; restore them.
  if (!S_ISDIR(attr->mode) && !S_ISLNK(attr->mode) && (attr->mode & (S_ISUID | S_ISGID))) {
    Tsetattr mode;
    mode.fid = f->num();
    mode.valid = kSetattrMode;
    mode.mode = attr->mode & 07777;
    (void)f->session()->Setattr(mode);
  }
  attr->uid = ctx->uid;
  attr->gid = gid;
}

std::string Filesystem::SillyName(uint64_t ino) {
  return absl::StrFormat("%s%016x-%x-%d", kSillyPrefix, mount_nonce_, ino,
                         silly_counter_.fetch_add(1, std::memory_order_relaxed));
}

bool Filesystem::IsSillyDirName(uint64_t dir_ino, const std::string& name) {
  return dir_ino == kRootIno && name == kSillyDirName;
}

absl::StatusOr<InodeRef> Filesystem::SillyDir() {
  MutexLock lock(&silly_mu_);
  if (silly_dir_ != nullptr) return silly_dir_;
  InodeRef root = table_->root();
  absl::StatusOr<FidRef> rf = FidOn(root, 0);
  if (!rf.ok()) return rf.status();
  absl::StatusOr<std::pair<FidRef, Qid>> w = WalkName(*rf, kSillyDirName);
  if (!w.ok() && ToErrno(w.status()) == ENOENT) {
    // access=user: every user renames their own files in, as themself;
    // sticky, so none can remove another's (chmod too: the server's umask).
    const bool shared = config_.access == AccessMode::kUser;
    const uint32_t mode = shared ? 01777 : 0700;
    absl::StatusOr<Qid> made = (*rf)->session()->Mkdir((*rf)->num(), kSillyDirName, mode, 0);
    if (!made.ok() && ToErrno(made.status()) != EEXIST) return made.status();
    w = WalkName(*rf, kSillyDirName);
    if (made.ok() && shared && w.ok()) {
      Tsetattr set;
      set.fid = w->first->num();
      set.valid = kSetattrMode;
      set.mode = mode;
      (void)w->first->session()->Setattr(set);
    }
  }
  if (!w.ok()) return w.status();
  if (!(w->second.type & kQtDir)) return ErrnoError(ENOTDIR, kSillyDirName);
  // Node id 0: this inode is never handed to the kernel.
  auto dir = std::make_shared<Inode>(0, w->second.path, S_IFDIR, channels());
  {
    MutexLock dl(&dir->mu);
    dir->AddLink(root, kSillyDirName);
    const size_t i = FidIndex(*w->first);
    dir->FidAt(i) = std::move(w->first);
  }
  silly_dir_ = dir;
  return dir;
}

bool Filesystem::IsSillyName(const std::string& name) {
  return absl::StartsWith(name, kSillyPrefix);
}

absl::Status Filesystem::RemoveName(const FidRef& dir, const std::string& name, bool is_dir) {
  Session* s = dir->session();
  if (!no_unlinkat.load(std::memory_order_relaxed)) {
    // A removed directory is dead for good in the kernel: learn its qid
    // first so a new directory with the same number gets a new node id.
    absl::StatusOr<std::pair<FidRef, Qid>> w;
    if (is_dir) w = WalkName(dir, name);
    absl::Status st = s->Unlinkat(dir->num(), name, is_dir ? kAtRemoveDir : 0);
    int e = ToErrno(st);
    if (e != EOPNOTSUPP && e != ENOSYS) {
      if (st.ok() && is_dir && w.ok()) {
        Retire(w->second.path);
      } else if (st.ok()) {
        // Which file lost a link is not known here (not walked: that
        // would cost a round trip); another name of it may be cached.
        attr_cache_.Clear();
      }
      return st;
    }
    no_unlinkat.store(true, std::memory_order_relaxed);
    P9_LOG(kInfo, "server has no Tunlinkat; using Twalk + Tremove");
  }
  absl::StatusOr<std::pair<FidRef, Qid>> w = WalkName(dir, name);
  if (!w.ok()) return w.status();
  bool d = (w->second.type & kQtDir) != 0;
  if (is_dir && !d) return ErrnoError(ENOTDIR, "rmdir of a non-directory");
  if (!is_dir && d) return ErrnoError(EISDIR, "unlink of a directory");
  absl::Status st = Remove(w->first);
  if (st.ok()) Retire(w->second.path);
  return st;
}

void Filesystem::RemoveSilly(const InodeRef& inode) {
  InodeRef dir;
  std::string name;
  {
    MutexLock lock(&inode->mu);
    if (!inode->silly) return;
    dir = std::move(inode->silly_dir);
    name = std::move(inode->silly_name);
    inode->silly = false;
  }
  if (dir == nullptr) return;
  {
    // Its fids may name the hidden path; other names (if any) remain.
    std::vector<FidRef> old;
    MutexLock lock(&inode->mu);
    inode->RemoveLink(dir.get(), name);
    for (FidRef& g : inode->fids) {
      if (g != nullptr) old.push_back(std::move(g));
    }
  }
  absl::StatusOr<FidRef> pf = AnyFid(dir, PickChannel());
  absl::Status st = pf.ok() ? RemoveName(*pf, name, false) : pf.status();
  if (!st.ok() && ToErrno(st) != ENOENT) {
    P9_LOG(kWarning, "cannot remove %s (unlinked while open): %s", name, st.ToString());
  }
}

}  // namespace p9::fuse

namespace p9::fuse {

void Filesystem::TuneReadaheadOnce() {
  std::call_once(readahead_once_, [this] {
    if (readahead_bdi_.empty() || policy_.direct_io) return;  // no page cache: no readahead
    const uint32_t kib = std::min(kMaxReadaheadKib, fuse_max_read() / 1024 * kReadaheadRequests);
    const std::string path = readahead_bdi_ + "/read_ahead_kb";
    FILE* f = fopen(path.c_str(), "we");
    bool ok = f != nullptr && fprintf(f, "%u\n", kib) > 0;
    if (f != nullptr && fclose(f) != 0) ok = false;
    if (ok) {
      P9_LOG(kInfo, "readahead %u KiB (%s)", kib, path);
    } else {
      P9_LOG(kInfo, "cannot raise readahead (%s): %s", path, strerror(errno));
    }
  });
}

}  // namespace p9::fuse
