// The state of one mount shared by all FUSE operations: the sessions (one per
// queue), the inode table, fids per channel, and the cache policy.
#ifndef P9_FUSE_FILESYSTEM_H_
#define P9_FUSE_FILESYSTEM_H_

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cache/attr_cache.h"
#include "cache/policy.h"
#include "cache/xattr_absence.h"
#include "client/errors.h"
#include "client/messages.h"
#include "client/mutex.h"
#include "client/session.h"
#include "fuse/deferred.h"
#include "fuse/fid.h"
#include "fuse/fuse_api.h"
#include "fuse/inode_table.h"
#include "fuse/op_counters.h"
#include "fuse/options.h"
#include "fuse/work_pool.h"

namespace p9::fuse {

struct FsConfig {
  CacheMode cache = CacheMode::kNone;
  // actimeo= (< 0: the mode's default) and writeback_cache.
  double actimeo = -1;
  bool writeback = false;
  AccessMode access = AccessMode::kClient;
  uint32_t access_uid = 0;
  // n_uname the sessions attached with (kNoUid if only a name was sent).
  uint32_t attach_uid = kNoUid;
  bool read_only = false;
  // access=user: Tattach (auth included) of the export root on `fid` as
  // local user `uid`. Lives with the connection code, which knows the
  // export, the auth mode and the password database.
  std::function<absl::StatusOr<Qid>(Session& s, uint32_t fid, uint32_t uid)> attach_user;
};

// The principal whose fids this thread's requests use: 0, the mount's own
// attach, except while a FUSE request of another user is served with
// access=user (the op wrapper in ops_table.cc sets the caller's). Every
// operation reaches fids through helpers several calls deep (FidOn, AnyFid,
// WithFid, SillyDir); a thread-local reaches them all without threading a
// parameter through each. FUSE serves a request on one thread from start
// to reply; the one exception, a small read repeated after a lost
// connection (ops_file.cc), sets its request's principal on the thread that
// repeats it.
class PrincipalScope {
 public:
  explicit PrincipalScope(int principal);
  ~PrincipalScope();
  PrincipalScope(const PrincipalScope&) = delete;
  PrincipalScope& operator=(const PrincipalScope&) = delete;
  static int current();

 private:
  int saved_;
};

// FUSE timeouts and open flags for the cache mode (cache/policy.h).
using CachePolicy = cache::Policy;

// True for errors that mean "this fid no longer names the file" on a
// path-based server: worth one re-walk.
bool IsStale(const absl::Status& s);

class Filesystem {
 public:
  // `sessions[i]` is attached with `root_fids[i]`, all to the same root.
  Filesystem(std::vector<std::unique_ptr<Session>> sessions, const std::vector<uint32_t>& root_fids,
             const Qid& root_qid, const FsConfig& config);
  // Shutdown() if not done.
  ~Filesystem();
  Filesystem(const Filesystem&) = delete;
  Filesystem& operator=(const Filesystem&) = delete;

  // Drops every inode and closes the sessions, which releases their fids on
  // the server (no Tclunk for each: see Clunker::Abandon). Call after the
  // FUSE loop has stopped (no operation may run concurrently).
  void Shutdown();

  int channels() const { return static_cast<int>(sessions_.size()); }
  Session* session(int c) const { return sessions_[static_cast<size_t>(c)].get(); }
  // The channel for a request made on this thread (threads are spread
  // round-robin over the channels).
  int PickChannel() const;
  InodeTable& inodes() { return *table_; }
  const FsConfig& config() const { return config_; }
  const CachePolicy& policy() const { return policy_; }
  // Largest payload of one read / write RPC over every channel.
  uint32_t max_read() const;
  uint32_t max_write() const;
  // The kernel's request sizes: kMaxFuseRequest, whatever msize is, so one
  // FUSE crossing carries several Treads/Twrites sent together
  // (Session::ReadMany/WriteMany). With writeback_cache, one Twrite's worth
  // (see filesystem.cc).
  uint32_t fuse_max_read() const;
  uint32_t fuse_max_write() const;

  // --- Fids of inodes.
  // Where an inode keeps principal p's fid on channel c (Inode::fids).
  size_t FidIndex(int principal, int c) const {
    return static_cast<size_t>(principal) * static_cast<size_t>(channels()) +
           static_cast<size_t>(c);
  }
  size_t FidIndex(const Fid& f) const { return FidIndex(f.principal(), f.channel()); }
  // The principal of the request's caller: with access=user, the caller's
  // uid's own (added on first use; its root is attached lazily by FidOn);
  // otherwise, or for the mount's own uid, 0.
  int PrincipalFor(fuse_req_t req);
  // The principal of local user `uid` (access=user), added on first use.
  int PrincipalOf(uint32_t uid);
  // The current principal's fid of the inode on channel c, walked from its
  // parent's fid on c if it has none yet (for the root of a principal other
  // than 0: attached, again after each reconnect).
  absl::StatusOr<FidRef> FidOn(const InodeRef& inode, int c);
  // FidOn(preferred), else a fid the inode already has on another channel
  // (the current principal's).
  absl::StatusOr<FidRef> AnyFid(const InodeRef& inode, int preferred);
  // Forgets `stale` if it is still the inode's fid on its channel.
  void DropFid(const InodeRef& inode, const FidRef& stale);
  // Forgets all fids of the inode (its path changed); the root keeps its own.
  void DropAllFids(const InodeRef& inode);
  // After a directory is renamed on a path-based server, fids below it name
  // old paths: drop them all so they are walked again from the new place.
  void InvalidateBelow(const InodeRef& dir);
  // Runs fn(fid) on the inode's fid; if that fails as stale, or because the
  // connection was replaced under it, walks a fresh fid and tries once
  // more. Only for requests that are safe to repeat. fn returns
  // absl::Status or absl::StatusOr<T>.
  template <typename F>
  auto WithFid(const InodeRef& inode, int c, F&& fn) -> decltype(fn(FidRef{}));
  // After a request through `f` failed with `s`: did it fail because its
  // connection went (in flight when it died, or `f` made on an earlier
  // one)? Then waits, up to the session's timeout, for the new connection
  // and returns true: one more try with a fresh fid may succeed.
  bool RecoverFrom(const absl::Status& s, const FidRef& f);

  // --- Plain 9P helpers returning owned fids.
  // Walks one name from `dir` to a new fid; also returns its qid.
  absl::StatusOr<std::pair<FidRef, Qid>> WalkName(const FidRef& dir, const std::string& name);
  // A new fid for the same file (Twalk with no names).
  absl::StatusOr<FidRef> Clone(const FidRef& f);
  // A clone of `f` opened with Tlopen(flags); *opened gets its iounit.
  // ESTALE if what was opened is not the file qid_path (see OpenClone).
  absl::StatusOr<FidRef> OpenClone(const FidRef& f, uint64_t qid_path, uint32_t flags,
                                   OpenResult* opened = nullptr);
  // Tremove through `f` (which is gone afterwards, whatever the result).
  absl::Status Remove(const FidRef& f);
  // Getattr of `f`, failing with ESTALE if it is not qid_path.
  absl::StatusOr<Rgetattr> GetattrChecked(const FidRef& f, uint64_t qid_path,
                                          uint64_t mask = kGetattrBasic);
  // Attributes of an inode: its own fid (re-walked once if stale), then the
  // given open fid and the inode's other open fids. `changed_here`: the
  // caller just changed the file (setattr), so the answer is the inode's
  // own even if it looks like a newer file's (see EnterInode).
  absl::StatusOr<Rgetattr> GetattrInode(const InodeRef& inode, int c, const FidRef& open_fid,
                                        bool changed_here = false);

  // Readahead: the kernel gives a FUSE mount 128 KiB, two requests in
  // flight at most. Once the connection is set up (the first open, after
  // FUSE init, which would lower it again), the window of the mount's
  // backing device (`bdi`, a sysfs directory) is raised to
  // kReadaheadRequests FUSE requests of fuse_max_read() each (bounded), so
  // sequential readers keep several requests in flight. Best effort:
  // unprivileged mounts cannot write sysfs.
  void SetReadaheadTarget(std::string bdi) { readahead_bdi_ = std::move(bdi); }
  void TuneReadaheadOnce();

  // Threads for the independent lookups of one request (readdirplus).
  WorkPool& work_pool() { return work_pool_; }
  // The thread that repeats, on a new connection, reads that were answered
  // on a delivery thread and lost with their connection.
  Deferred& retries() { return retries_; }

  // --- Attributes this mount fetched, kept for the policy's lifetime.
  cache::AttrCache& attr_cache() { return attr_cache_; }
  const cache::AttrCache& attr_cache() const { return attr_cache_; }
  // Fresh cached attributes of qid_path (never under cache=none), with the
  // rest of their lifetime: the kernel's attr_timeout for them.
  std::optional<cache::AttrCache::Hit> CachedAttr(uint64_t qid_path) {
    return attr_cache_.Get(qid_path, policy_.attr_ttl());
  }
  // The file changed through this mount: its cached attributes go.
  void AttrChanged(uint64_t qid_path) { attr_cache_.Invalidate(qid_path); }
  void AttrChanged(const InodeRef& inode) {
    if (inode != nullptr) AttrChanged(inode->qid_path);
  }

  // Extended attributes known absent (see cache/xattr_absence.h).
  cache::XattrAbsence& xattr_absence() { return xattr_absence_; }
  const cache::XattrAbsence& xattr_absence() const { return xattr_absence_; }
  void XattrChanged(const InodeRef& inode) {
    if (inode != nullptr) xattr_absence_.Invalidate(inode->qid_path);
  }

  // --- File system statistics.
  // Tstatfs through the inode (the root if null); while channel c is
  // reconnecting, the last answer instead (umount(8) calls statfs on the
  // mountpoint and must not wait out the timeout for a server that is away).
  absl::StatusOr<Rstatfs> Statfs(const InodeRef& inode, int c);

  // --- Entries.
  // Registers the file `f` (just walked or created as `name` in `parent`)
  // with the kernel's lookup count: fetches its attributes, finds or makes
  // its inode, makes `f` the inode's fid on f's channel, fills *e. The
  // caller must fuse_reply_entry/create and call UndoEntry if that fails.
  // With `walked` (the qid the walk returned) fresh cached attributes of
  // that file are used instead of a Tgetattr.
  absl::Status MakeEntry(const InodeRef& parent, const std::string& name, const FidRef& f,
                         fuse_entry_param* e, InodeRef* out = nullptr, const Qid* walked = nullptr);
  // Same with attributes already fetched (or cached). `f` may be null: the
  // inode then gets a fid when one is needed (walked from its parent). The
  // kernel may keep the attributes for the policy's attr_timeout, or for
  // `attr_left` if shorter (what is left of cached attributes' lifetime).
  InodeRef EnterInode(const InodeRef& parent, const std::string& name, const FidRef& f,
                      const Rgetattr& attr, fuse_entry_param* e,
                      absl::Duration attr_left = absl::InfiniteDuration());
  void UndoEntry(uint64_t ino) { (void)inodes().Forget(ino, 1); }
  // The file of qid_path was removed through this mount: its inode (if
  // any) becomes a new incarnation's stranger. Its path-walked fids would
  // name whatever takes its place on a path-based server, so they go, and
  // it can no longer be walked to; fstat reports its last attributes.
  // Not for a file that had other links (only a name went). Either way its
  // cached attributes go.
  void Retire(uint64_t qid_path);
  // Lets go of what a retired inode holds: its fids, names and parked fids.
  void Abandon(const InodeRef& old);
  // A negative entry (ENOENT) with the policy's negative timeout.
  void FillNegativeEntry(fuse_entry_param* e) const;
  void FillStat(const Rgetattr& a, struct stat* st) const;
  uint64_t InoOf(const Qid& q) const { return table_->map().ToIno(q.path); }

  // --- Who is asking.
  // EACCES for requests access=UID does not allow.
  bool Allowed(fuse_req_t req) const;
  // After the server created a file for a caller other than the attach
  // user (access=client with a root attach), give it the caller's uid and
  // gid (the parent's gid if the parent is set-group-ID), as a local file
  // system would. Updates *attr. Errors are logged, never fatal.
  void FixOwner(fuse_req_t req, const FidRef& parent_fid, const FidRef& f, Rgetattr* attr);
  // gid to send in create-like requests.
  uint32_t CallerGid(fuse_req_t req) const;

  // --- Opened fids kept across close (Inode::parked).
  // Parked fids per mount at most: each holds an open file on the server,
  // and one server may have hundreds of clients.
  static constexpr int kMaxParkedFids = 256;
  // How long a parked fid is kept after its handle's release: ten attribute
  // lifetimes (a rerun of a build step, git or python comes within that),
  // at most a minute.
  absl::Duration parked_lifetime() const {
    return std::min(absl::Seconds(60), policy_.attr_ttl() * 10);
  }
  // Keeps `fid`, the opened fid of a released handle opened with `flags`,
  // for the next read-only open if the policy and flags allow; false if not
  // kept (the caller lets it go).
  bool ParkOpenFid(const InodeRef& inode, const FidRef& fid, int flags, uint32_t iounit);
  // A parked fid of the current principal for an open with `flags`, still
  // valid on its connection, or null. Sets *iounit.
  FidRef TakeParkedFid(const InodeRef& inode, int flags, uint32_t* iounit);
  // Parked fids now (all inodes) and opens that took one / had to open.
  int parked_fids() const { return parked_count_->load(std::memory_order_relaxed); }
  uint64_t parked_hits() const { return parked_hits_.load(std::memory_order_relaxed); }
  uint64_t parked_misses() const { return parked_misses_.load(std::memory_order_relaxed); }

  // --- Files unlinked while open.
  // Regular-file handles open on this mount.
  std::atomic<int64_t> open_files{0};
  // Unique hidden name for a file unlinked while open.
  std::string SillyName(uint64_t ino);
  static bool IsSillyName(const std::string& name);
  // The directory at the export root where such files wait for their last
  // close (made on first use; hidden from the root's listing and lookups),
  // so the directory they were unlinked from can be removed meanwhile.
  absl::StatusOr<InodeRef> SillyDir();
  static bool IsSillyDirName(uint64_t dir_ino, const std::string& name);
  // Removes `name` from directory `dir` (Tunlinkat, or walk + Tremove on
  // servers without it). `is_dir` selects rmdir semantics.
  absl::Status RemoveName(const FidRef& dir, const std::string& name, bool is_dir);
  // The last handle of a silly-renamed inode went: remove the hidden file.
  void RemoveSilly(const InodeRef& inode);

  // FUSE requests received, by operation (counted by the op table).
  OpCounters op_counts;

  // Server capabilities learnt on the way (relaxed: a cached answer).
  std::atomic<bool> no_unlinkat{false};
  std::atomic<bool> no_renameat{false};

 private:
  std::vector<std::unique_ptr<Session>> sessions_;
  // Declared after the sessions: destroyed (drained) before them.
  Clunker clunker_;
  const FsConfig config_;
  const CachePolicy policy_;
  std::unique_ptr<InodeTable> table_;
  std::atomic<uint64_t> silly_counter_{0};
  // Random per mount, so several clients never pick the same hidden name.
  const uint64_t mount_nonce_;
  std::string readahead_bdi_;  // set before the FUSE loop starts
  std::once_flag readahead_once_;
  cache::AttrCache attr_cache_;
  cache::XattrAbsence xattr_absence_;
  // Shared with the ParkedFid entries, which may outlive the Filesystem in
  // an InodeRef held elsewhere. Counters relaxed: statistics.
  std::shared_ptr<std::atomic<int>> parked_count_ = std::make_shared<std::atomic<int>>(0);
  // Clunks parked fids parked_lifetime() after they were parked, checking
  // every second (cache modes that park only).
  void SweepParkedLoop();
  void SweepParked(absl::Time cutoff);
  Mutex parked_mu_;
  // Inodes in the order their fids were parked, with the time.
  std::deque<std::pair<std::weak_ptr<Inode>, absl::Time>> parked_order_ ABSL_GUARDED_BY(parked_mu_);
  bool sweeper_stop_ ABSL_GUARDED_BY(parked_mu_) = false;
  // Signalled when sweeper_stop_ is set: the sweeper sleeps on it, not with
  // parked_mu_.Await(), which would wake it at every fid parked.
  CondVar sweeper_wake_;
  std::thread sweeper_;
  std::atomic<uint64_t> parked_hits_{0};
  std::atomic<uint64_t> parked_misses_{0};
  // After the sessions: its threads stop before the sessions close.
  WorkPool work_pool_;
  // Likewise (and stopped first thing in Shutdown()).
  Deferred retries_;
  Mutex statfs_mu_;
  bool has_statfs_ ABSL_GUARDED_BY(statfs_mu_) = false;
  Rstatfs last_statfs_ ABSL_GUARDED_BY(statfs_mu_);
  Mutex silly_mu_;
  InodeRef silly_dir_ ABSL_GUARDED_BY(silly_mu_);
  mutable std::atomic<int> next_thread_channel_{0};
  // access=user: principal p attaches as principal_uids_[p]; [0] is the
  // mount's own attach (attach_uid), which the sessions restore themselves.
  Mutex principals_mu_;
  std::vector<uint32_t> principal_uids_ ABSL_GUARDED_BY(principals_mu_);
  std::unordered_map<uint32_t, int> principal_of_uid_ ABSL_GUARDED_BY(principals_mu_);
  // Attaches principal p's root on channel c and makes it the root's fid.
  absl::StatusOr<FidRef> AttachPrincipal(int p, int c);
  std::atomic<bool> shut_down_{false};
};

// --- Implementation of the template.
namespace internal {
inline const absl::Status& StatusOf(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}
}  // namespace internal

template <typename F>
auto Filesystem::WithFid(const InodeRef& inode, int c, F&& fn) -> decltype(fn(FidRef{})) {
  absl::StatusOr<FidRef> f = AnyFid(inode, c);
  if (!f.ok()) return f.status();
  auto r = fn(*f);
  const absl::Status& st = internal::StatusOf(r);
  if (RecoverFrom(st, *f)) {
    // The mount's own root fid is attached again with the connection;
    // other fids (a principal's root too) are made again below.
    if (inode->ino == kRootIno && (*f)->epoch() == kEveryEpoch) return fn(*f);
  } else if (!IsStale(st) || inode->ino == kRootIno) {
    return r;
  }
  DropFid(inode, *f);
  absl::StatusOr<FidRef> again = FidOn(inode, (*f)->channel());
  if (!again.ok()) return r;
  return fn(*again);
}

}  // namespace p9::fuse

#endif  // P9_FUSE_FILESYSTEM_H_
