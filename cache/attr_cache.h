// Attributes the server gave, by file (qid.path), with when they were asked
// for. Behind the kernel's own attribute cache: it answers the lookups,
// readdirplus entries and getattrs the kernel sends for files whose
// attributes this mount fetched less than the policy's lifetime ago (after
// the kernel forgot an inode, for entries listed again, for the second name
// of a file), so each costs no round trip. With a lifetime of 0
// (cache=none) it never answers.
#ifndef P9_CACHE_ATTR_CACHE_H_
#define P9_CACHE_ATTR_CACHE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "client/messages.h"
#include "client/mutex.h"

namespace p9::cache {

// How many files' attributes are kept at most; beyond it, an arbitrary
// eighth is dropped (they are refetched on demand).
inline constexpr size_t kAttrCacheEntries = 1 << 17;

class AttrCache {
 public:
  // A monotonic clock reading (absl::Now() can step).
  using Clock = int64_t;
  static Clock Now();

  explicit AttrCache(size_t capacity = kAttrCacheEntries) : capacity_(capacity) {}
  AttrCache(const AttrCache&) = delete;
  AttrCache& operator=(const AttrCache&) = delete;

  // Cached attributes and how much of their lifetime is left.
  struct Hit {
    Rgetattr attr;
    // ttl minus their age: whoever is handed them (the kernel's own cache)
    // may keep them this long, not a whole ttl, or a change on the server
    // could go unseen for up to twice the ttl.
    absl::Duration left;
  };
  // The attributes of `qid_path` if they were asked for less than `ttl`
  // before `now`, and nothing has invalidated them since.
  std::optional<Hit> Get(uint64_t qid_path, absl::Duration ttl, Clock now = Now());
  // Records attributes from a request sent at `asked` (read before sending:
  // a change racing the request makes the answer look older, never newer).
  // Ignored if the file was invalidated after `asked`, or if newer
  // attributes are already there.
  void Put(uint64_t qid_path, const Rgetattr& attr, Clock asked);
  // The file changed through this mount (write, setattr, a name added or
  // removed in a directory): forget its attributes, and refuse answers to
  // requests sent before now.
  void Invalidate(uint64_t qid_path);
  // A read of the file through this mount ended at byte `end`, at the end
  // of file if `at_eof` (a short answer), else within the file. Cached
  // attributes whose size says otherwise are invalidated, as by
  // Invalidate(): the kernel learns the new size from the read itself and
  // must not be handed the old one back by its next getattr.
  void SizeSeen(uint64_t qid_path, uint64_t end, bool at_eof);
  // Forgets everything (the connection was replaced).
  void Clear();

  // Relaxed counters for the stats file: a Get that answered / did not.
  uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }
  uint64_t misses() const { return misses_.load(std::memory_order_relaxed); }
  size_t size() const;

 private:
  struct Entry {
    Rgetattr attr;
    Clock asked = 0;
    bool valid = false;
    // Answers to requests sent before this are stale.
    Clock invalidated = 0;
  };
  void EvictSomeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t capacity_;
  mutable Mutex mu_;
  absl::flat_hash_map<uint64_t, Entry> map_ ABSL_GUARDED_BY(mu_);
  // Clear() time: answers to requests sent before it are refused.
  Clock cleared_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};
};

}  // namespace p9::cache

#endif  // P9_CACHE_ATTR_CACHE_H_
