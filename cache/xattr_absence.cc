#include "cache/xattr_absence.h"

namespace p9::cache {

bool XattrAbsence::Absent(uint64_t qid_path, absl::string_view name, absl::Duration ttl,
                          Clock now) {
  if (ttl <= absl::ZeroDuration()) return false;
  const int64_t ttl_ns = absl::ToInt64Nanoseconds(ttl);
  {
    MutexLock lock(&mu_);
    auto f = files_.find(qid_path);
    if (f != files_.end()) {
      auto a = f->second.absent.find(name);
      if (a != f->second.absent.end() && now - a->second < ttl_ns) {
        hits_.fetch_add(1, std::memory_order_relaxed);
        return true;
      }
    }
  }
  misses_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void XattrAbsence::PutAbsent(uint64_t qid_path, absl::string_view name, Clock asked) {
  MutexLock lock(&mu_);
  auto [it, added] = files_.try_emplace(qid_path);
  if (asked < it->second.invalidated) return;
  Clock& c = it->second.absent[std::string(name)];
  if (asked > c) c = asked;
  if (added) EvictLocked(qid_path);
}

void XattrAbsence::EvictLocked(uint64_t keep) {
  if (files_.size() <= capacity_) return;
  size_t drop = files_.size() / 8 + 1;
  for (auto e = files_.begin(); e != files_.end() && drop > 0;) {
    if (e->first == keep) {
      ++e;
      continue;
    }
    files_.erase(e++);
    --drop;
  }
}

void XattrAbsence::Invalidate(uint64_t qid_path) {
  const Clock now = AttrCache::Now();
  MutexLock lock(&mu_);
  File& f = files_[qid_path];
  f.absent.clear();
  f.invalidated = now + 1;
  EvictLocked(qid_path);
}

}  // namespace p9::cache
