// Extended attributes the server said a file does not have (ENODATA), by
// file and name, with when it was asked. The kernel asks for
// security.capability before every write() to a file (to drop file
// capabilities); answering "absent" from here, for the policy's lifetime,
// saves that round trip per write. Only absences are kept: values are read
// from the server every time. Lifetime 0 (cache=none) keeps nothing.
#ifndef P9_CACHE_XATTR_ABSENCE_H_
#define P9_CACHE_XATTR_ABSENCE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cache/attr_cache.h"
#include "client/mutex.h"

namespace p9::cache {

// Files whose absent names are kept at most (an arbitrary eighth is dropped
// beyond it).
inline constexpr size_t kXattrAbsenceFiles = 1 << 16;

class XattrAbsence {
 public:
  using Clock = AttrCache::Clock;

  explicit XattrAbsence(size_t capacity = kXattrAbsenceFiles) : capacity_(capacity) {}
  XattrAbsence(const XattrAbsence&) = delete;
  XattrAbsence& operator=(const XattrAbsence&) = delete;

  // True if the server said, less than `ttl` before `now`, that the file
  // has no attribute `name`, and nothing here has set one since.
  bool Absent(uint64_t qid_path, absl::string_view name, absl::Duration ttl,
              Clock now = AttrCache::Now());
  // Records an ENODATA answer to a request sent at `asked`; ignored if the
  // file's attributes were changed here after `asked`.
  void PutAbsent(uint64_t qid_path, absl::string_view name, Clock asked);
  // An attribute of the file was set or removed through this mount.
  void Invalidate(uint64_t qid_path);

  uint64_t hits() const { return hits_.load(std::memory_order_relaxed); }
  uint64_t misses() const { return misses_.load(std::memory_order_relaxed); }

 private:
  struct File {
    Clock invalidated = 0;
    absl::flat_hash_map<std::string, Clock> absent;  // name -> asked
  };

  // Drops an arbitrary eighth of the files (never `keep`) when over capacity.
  void EvictLocked(uint64_t keep) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t capacity_;
  Mutex mu_;
  absl::flat_hash_map<uint64_t, File> files_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> hits_{0};
  std::atomic<uint64_t> misses_{0};
};

}  // namespace p9::cache

#endif  // P9_CACHE_XATTR_ABSENCE_H_
