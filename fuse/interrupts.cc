#include "fuse/interrupts.h"

#include <algorithm>

namespace p9::fuse {
namespace {

// Operations in progress by request. A request's memory is not freed while
// libfuse runs its interrupt callback, but once an operation has replied
// another request may be allocated at the same address before the old
// operation unregisters, so entries carry a token and a key may briefly
// hold two.
class Registry {
 public:
  uint64_t Add(fuse_req_t req, Interrupter* i) {
    MutexLock lock(&mu_);
    uint64_t token = ++next_token_;
    map_[req].emplace_back(token, i);
    return token;
  }
  void Remove(fuse_req_t req, uint64_t token) {
    MutexLock lock(&mu_);
    auto it = map_.find(req);
    if (it == map_.end()) return;
    auto& v = it->second;
    v.erase(std::remove_if(v.begin(), v.end(), [&](const auto& e) { return e.first == token; }),
            v.end());
    if (v.empty()) map_.erase(it);
  }
  // Under the lock, so an Interrupter is never used after its Remove.
  void Interrupt(fuse_req_t req) {
    MutexLock lock(&mu_);
    auto it = map_.find(req);
    if (it == map_.end()) return;
    for (auto& [token, i] : it->second) i->Interrupt();
  }

 private:
  Mutex mu_;
  absl::flat_hash_map<fuse_req_t, std::vector<std::pair<uint64_t, Interrupter*>>> map_
      ABSL_GUARDED_BY(mu_);
  uint64_t next_token_ ABSL_GUARDED_BY(mu_) = 0;
};

Registry& TheRegistry() {
  static Registry* r = new Registry;  // never destroyed: callbacks may outlive main
  return *r;
}

}  // namespace

ScopedFuseInterrupt::ScopedFuseInterrupt(fuse_req_t req) : scope_(&interrupter_), req_(req) {
  token_ = TheRegistry().Add(req, &interrupter_);
  // Calls OnInterrupt at once if the INTERRUPT already came.
  fuse_req_interrupt_func(req, &ScopedFuseInterrupt::OnInterrupt, nullptr);
}

ScopedFuseInterrupt::~ScopedFuseInterrupt() { TheRegistry().Remove(req_, token_); }

void ScopedFuseInterrupt::OnInterrupt(fuse_req_t req, void* unused) {
  (void)unused;
  TheRegistry().Interrupt(req);
}

FuseInterruptRegistration::FuseInterruptRegistration(fuse_req_t req, Interrupter* i) : req_(req) {
  token_ = TheRegistry().Add(req, i);
  // The registry interrupts every entry of req under its lock: an INTERRUPT
  // before the Add() reached the worker's interrupter, one after reaches i.
  Interrupter* worker = ScopedInterruptible::Current();
  if (worker != nullptr && worker->interrupted()) i->Interrupt();
}

void FuseInterruptRegistration::Remove() {
  if (token_ == 0) return;
  TheRegistry().Remove(req_, token_);
  token_ = 0;
}

}  // namespace p9::fuse
