#include "fuse/fid.h"

#include "client/log.h"

namespace p9::fuse {
namespace {

void ClunkNow(Session* s, uint32_t fid) {
  if (!s->alive()) return;  // the server forgot every fid with the connection
  if (absl::Status st = s->Clunk(fid); !st.ok()) {
    P9_LOG(kDebug, "Tclunk fid %u: %s", fid, st.ToString());
  }
}

}  // namespace

Fid::~Fid() {
  if (gone_.load(std::memory_order_relaxed)) return;
  if (clunker_ != nullptr) {
    clunker_->Push(session_, fid_);
  } else {
    ClunkNow(session_, fid_);
  }
}

Clunker::Clunker() : thread_([this] { Loop(); }) {}

Clunker::~Clunker() {
  Drain();
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void Clunker::Push(Session* session, uint32_t fid) {
  MutexLock lock(&mu_);
  if (abandoned_) return;
  queue_.emplace_back(session, fid);
  ++pending_;
}

void Clunker::Drain() {
  MutexLock lock(&mu_);
  mu_.Await([this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pending_ == 0; });
}

void Clunker::Abandon() {
  MutexLock lock(&mu_);
  abandoned_ = true;
  // A clunk already in flight stays pending until it is answered or its
  // session closes.
  pending_ -= queue_.size();
  queue_.clear();
}

void Clunker::Loop() {
  for (;;) {
    std::pair<Session*, uint32_t> next;
    {
      MutexLock lock(&mu_);
      mu_.Await([this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      next = queue_.front();
      queue_.pop_front();
    }
    ClunkNow(next.first, next.second);
    MutexLock lock(&mu_);
    --pending_;
  }
}

}  // namespace p9::fuse
