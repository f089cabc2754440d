#include "fuse/fid.h"

#include "client/log.h"

namespace p9::fuse {
namespace {

void ClunkNow(Session* s, uint32_t fid, uint64_t epoch) {
  if (!s->alive() || (epoch != kEveryEpoch && epoch != s->epoch())) {
    // The connection the fid lived on is gone, and the server forgot it
    // with it: nothing to send. The number is not reused: a fid whose
    // epoch was read just before a reconnect may in fact have been made on
    // the new connection, and reusing its number there would collide.
    return;
  }
  if (absl::Status st = s->Clunk(fid); !st.ok()) {
    P9_LOG(kDebug, "Tclunk fid %u: %s", fid, st.ToString());
  }
}

}  // namespace

Fid::~Fid() {
  if (gone_.load(std::memory_order_relaxed)) return;
  if (clunker_ != nullptr) {
    clunker_->Push(session_, fid_, epoch_);
  } else {
    ClunkNow(session_, fid_, epoch_);
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

void Clunker::Push(Session* session, uint32_t fid, uint64_t epoch) {
  MutexLock lock(&mu_);
  if (abandoned_) return;
  queue_.push_back(Pending{session, fid, epoch});
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
    Pending next;
    {
      MutexLock lock(&mu_);
      mu_.Await([this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      next = queue_.front();
      queue_.pop_front();
    }
    ClunkNow(next.session, next.fid, next.epoch);
    MutexLock lock(&mu_);
    --pending_;
  }
}

}  // namespace p9::fuse
