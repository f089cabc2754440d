// FUSE inode numbers ↔ server files (qid.path), the kernel's lookup counts,
// and the fids each inode holds, one per channel.
#ifndef P9_FUSE_INODE_TABLE_H_
#define P9_FUSE_INODE_TABLE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "client/messages.h"
#include "client/mutex.h"
#include "fuse/fid.h"

namespace p9::fuse {

// FUSE's node id of the mount root.
inline constexpr uint64_t kRootIno = 1;

// qid.path → st_ino shown to users, a bijection fixed for the life of the
// mount: the number is qid.path itself, except that the root's qid.path
// becomes 1 and a file whose qid.path is 1 takes the root's old number (a
// swap), and qid.path 0 (which readdir callers treat as "no entry") becomes
// 2^64-1 (if the root's qid.path is 0, qid.path 1 takes 2^64-1 instead).
// qid.path 2^64-1 itself cannot be told apart from that spare; no server we
// know produces it.
class InoMap {
 public:
  explicit InoMap(uint64_t root_qid_path) : root_(root_qid_path) {}
  uint64_t ToIno(uint64_t qid_path) const;
  uint64_t ToQidPath(uint64_t ino) const;

 private:
  static constexpr uint64_t kSpare = ~0ULL;
  const uint64_t root_;
};

// One file the kernel knows. Owned by shared_ptr: the table holds it while
// the kernel's lookup count is above zero; children (for re-walking by
// name), open handles and in-flight operations hold it too.
class Inode {
 public:
  Inode(uint64_t ino, uint64_t qid_path, uint32_t file_type, int channels);
  Inode(const Inode&) = delete;
  Inode& operator=(const Inode&) = delete;

  // The FUSE node id. Not st_ino (that is InoMap(qid_path)): servers reuse
  // inode numbers at once (ext4 does), while the kernel may still hold the
  // old file's inode (an rmdir'ed directory is dead for good), so each
  // incarnation of a qid.path gets its own node id.
  const uint64_t ino;
  const uint64_t qid_path;
  // S_IFMT bits from the latest getattr (a server may reuse an inode number
  // for a file of another type). Relaxed: a hint refreshed by each lookup.
  std::atomic<uint32_t> file_type;
  bool is_dir() const;

  // A name the file is known by: used to walk a fid for a channel that has
  // none (or whose fid went stale).
  struct Link {
    std::shared_ptr<Inode> dir;
    std::string name;
  };
  static constexpr size_t kMaxLinks = 8;

  Mutex mu;
  // Names the kernel has seen this file by, most recent first (several for
  // hard links). Empty for the root and for files removed through the mount.
  std::vector<Link> links ABSL_GUARDED_BY(mu);
  // The most recent link's directory, or null.
  std::shared_ptr<Inode> parent() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Records (dir, name) as the most recent link.
  void AddLink(std::shared_ptr<Inode> dir, const std::string& name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Forgets (dir, name); true if it was known.
  bool RemoveLink(const Inode* dir, const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // One fid per channel, made on demand; null = none yet (or dropped after
  // a rename made it stale on a path-based server). With access=user, one
  // such row per principal: indexed by Filesystem::FidIndex.
  std::vector<FidRef> fids ABSL_GUARDED_BY(mu);
  // fids[i], grown on demand (a principal's first request adds its row).
  // The reference is valid only until the next growth: use it under mu.
  FidRef& FidAt(size_t i) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (i >= fids.size()) fids.resize(i + 1);
    return fids[i];
  }
  // Opened fids of the regular-file handles open on this inode; getattr and
  // setattr fall back to them when the path-walked fid no longer resolves.
  std::vector<FidRef> open_fids ABSL_GUARDED_BY(mu);
  // Read-only opened fids of released handles (cache=loose|readonly): the
  // next read-only open of the file by the same principal takes one instead
  // of a Twalk + Tlopen. It is the same file object the name was looked up
  // to (a file replaced on the server is a new inode), so reading through it
  // is what reading through a fresh open would give. Dropped with the inode,
  // when the file is removed through the mount, and by the mount's sweeper
  // after Filesystem::parked_lifetime(); never more than
  // Filesystem::kMaxParkedFids.
  std::vector<ParkedFid> parked ABSL_GUARDED_BY(mu);
  // An unlink arrived while handles were open: the file was renamed to a
  // hidden name instead (like NFS's silly rename) and goes on last release.
  bool silly_pending ABSL_GUARDED_BY(mu) = false;
  bool silly ABSL_GUARDED_BY(mu) = false;
  // Where the hidden name is (a lookup of another hard link may move
  // parent/name meanwhile).
  std::shared_ptr<Inode> silly_dir ABSL_GUARDED_BY(mu);
  std::string silly_name ABSL_GUARDED_BY(mu);
  // The latest attributes the server gave; what fstat of a removed file
  // reports (with nlink 0) when a path-based server can no longer stat it.
  Rgetattr last_attr ABSL_GUARDED_BY(mu);
  bool has_attr ABSL_GUARDED_BY(mu) = false;
  // A POSIX lock was granted on this file through this mount. Read-only
  // opens of a file never locked skip the kernel's FLUSH on close
  // (FOPEN_NOFLUSH): ours only releases the closing owner's lock, so they
  // have nothing to do there. Relaxed: a handle opened before the first
  // lock has its lock released at release instead (see ops::Release).
  std::atomic<bool> posix_locked_here{false};
  // Removed through this mount (see InodeTable::Retire), or found replaced
  // on the server by a newer file with its number (InodeTable::Reincarnate).
  // Relaxed: a flag read only to pick what to report after the server said
  // ENOENT.
  std::atomic<bool> removed{false};
};

using InodeRef = std::shared_ptr<Inode>;

class InodeTable {
 public:
  // `root` must have node id kRootIno; it is never forgotten.
  InodeTable(uint64_t root_qid_path, InodeRef root);

  const InoMap& map() const { return map_; }
  InodeRef root() const { return root_; }

  // The inode the kernel knows as node id `ino`, or null.
  InodeRef Get(uint64_t ino) const;
  // The current incarnation of qid_path if the kernel knows it, or null.
  InodeRef FindByQidPath(uint64_t qid_path) const;
  // Returns the current incarnation of `qid_path`, creating one with
  // make(node_id) if there is none, and adds one to its lookup count.
  template <typename Make>
  InodeRef Acquire(uint64_t qid_path, Make make);
  // The file of qid_path was removed through this mount: the next file the
  // server gives that number is a new incarnation with a new node id. The
  // old inode stays known by its node id until the kernel forgets it.
  // Returns that old inode, if the kernel knew it.
  InodeRef Retire(uint64_t qid_path);
  // `cur`, just returned by Acquire, is an older file than the one the
  // server now has under its number: retires it as Retire does and moves
  // the lookup Acquire added to a new incarnation made with make(node_id)
  // (or to the one another thread made first). Returns the new incarnation.
  // If the kernel forgot `cur` meanwhile, *dropped receives it (the caller
  // drops it outside any lock, as with Forget).
  template <typename Make>
  InodeRef Reincarnate(const InodeRef& cur, Make make, InodeRef* dropped);
  // Undoes `n` lookups. Returns the inode if its count reached zero (it is
  // then out of the table); the caller drops it outside any lock.
  InodeRef Forget(uint64_t ino, uint64_t n);
  // Every inode in the table.
  std::vector<InodeRef> Snapshot() const;
  // Empties the table (unmount); returns the inodes so the caller controls
  // when their fids are clunked.
  std::vector<InodeRef> Clear();
  size_t size() const;

 private:
  struct Entry {
    InodeRef inode;
    uint64_t nlookup = 0;
  };
  uint64_t NewNodeId(uint64_t qid_path) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes qid_path's current incarnation, looked up once.
  template <typename Make>
  InodeRef AddIncarnation(uint64_t qid_path, Make& make) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const InoMap map_;
  const InodeRef root_;
  mutable Mutex mu_;
  absl::flat_hash_map<uint64_t, Entry> by_ino_ ABSL_GUARDED_BY(mu_);
  // qid.path → node id of its current incarnation.
  absl::flat_hash_map<uint64_t, uint64_t> by_qid_ ABSL_GUARDED_BY(mu_);
  // Node ids handed out when st_ino's number is taken by an old incarnation.
  uint64_t next_spare_id_ ABSL_GUARDED_BY(mu_) = 1ULL << 63;
};

template <typename Make>
InodeRef InodeTable::Acquire(uint64_t qid_path, Make make) {
  if (qid_path == root_->qid_path) return root_;
  MutexLock lock(&mu_);
  if (auto q = by_qid_.find(qid_path); q != by_qid_.end()) {
    Entry& e = by_ino_[q->second];
    ++e.nlookup;
    return e.inode;
  }
  return AddIncarnation(qid_path, make);
}

template <typename Make>
InodeRef InodeTable::Reincarnate(const InodeRef& cur, Make make, InodeRef* dropped) {
  MutexLock lock(&mu_);
  const uint64_t qp = cur->qid_path;
  auto q = by_qid_.find(qp);
  const bool current = q != by_qid_.end() && q->second == cur->ino;
  if (auto it = by_ino_.find(cur->ino); it != by_ino_.end() && --it->second.nlookup == 0) {
    *dropped = std::move(it->second.inode);
    by_ino_.erase(it);
  }
  if (!current && q != by_qid_.end()) {
    if (auto it = by_ino_.find(q->second); it != by_ino_.end()) {
      ++it->second.nlookup;
      return it->second.inode;
    }
  }
  cur->removed.store(true, std::memory_order_relaxed);
  return AddIncarnation(qp, make);
}

template <typename Make>
InodeRef InodeTable::AddIncarnation(uint64_t qid_path, Make& make) {
  uint64_t id = NewNodeId(qid_path);
  Entry& e = by_ino_[id];
  e.inode = make(id);
  e.nlookup = 1;
  by_qid_[qid_path] = id;
  return e.inode;
}

}  // namespace p9::fuse

#endif  // P9_FUSE_INODE_TABLE_H_
