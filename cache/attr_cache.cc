#include "cache/attr_cache.h"

#include <time.h>

namespace p9::cache {

AttrCache::Clock AttrCache::Now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<Clock>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::optional<AttrCache::Hit> AttrCache::Get(uint64_t qid_path, absl::Duration ttl, Clock now) {
  if (ttl <= absl::ZeroDuration()) return std::nullopt;  // cache=none: not even counted
  const int64_t ttl_ns = absl::ToInt64Nanoseconds(ttl);
  {
    MutexLock lock(&mu_);
    auto it = map_.find(qid_path);
    if (it != map_.end() && it->second.valid && now - it->second.asked < ttl_ns) {
      hits_.fetch_add(1, std::memory_order_relaxed);
      return Hit{it->second.attr, absl::Nanoseconds(ttl_ns - (now - it->second.asked))};
    }
  }
  misses_.fetch_add(1, std::memory_order_relaxed);
  return std::nullopt;
}

void AttrCache::Put(uint64_t qid_path, const Rgetattr& attr, Clock asked) {
  MutexLock lock(&mu_);
  if (asked < cleared_) return;
  auto [it, added] = map_.try_emplace(qid_path);
  Entry& e = it->second;
  if (!added && (asked < e.invalidated || (e.valid && asked < e.asked))) return;
  e.attr = attr;
  e.asked = asked;
  e.valid = true;
  if (added && map_.size() > capacity_) EvictSomeLocked();
}

void AttrCache::Invalidate(uint64_t qid_path) {
  const Clock now = Now();
  MutexLock lock(&mu_);
  auto it = map_.find(qid_path);
  // Nothing cached: nothing to refuse either, unless a request is in
  // flight; a tombstone covers that case.
  if (it == map_.end()) {
    if (map_.size() >= capacity_) EvictSomeLocked();
    it = map_.try_emplace(qid_path).first;
  }
  it->second.valid = false;
  it->second.invalidated = now + 1;
}

void AttrCache::SizeSeen(uint64_t qid_path, uint64_t end, bool at_eof) {
  {
    MutexLock lock(&mu_);
    auto it = map_.find(qid_path);
    if (it == map_.end() || !it->second.valid) return;
    const uint64_t size = it->second.attr.size;
    if (at_eof ? size == end : size >= end) return;
  }
  Invalidate(qid_path);
}

void AttrCache::Clear() {
  const Clock now = Now();
  MutexLock lock(&mu_);
  map_.clear();
  cleared_ = now + 1;
}

size_t AttrCache::size() const {
  MutexLock lock(&mu_);
  return map_.size();
}

void AttrCache::EvictSomeLocked() {
  size_t drop = map_.size() / 8 + 1;
  for (auto it = map_.begin(); it != map_.end() && drop > 0; --drop) map_.erase(it++);
}

}  // namespace p9::cache
