#include "fuse/deferred.h"

#include <utility>

namespace p9::fuse {

Deferred::~Deferred() { Stop(); }

void Deferred::Post(std::function<void()> fn) {
  {
    MutexLock lock(&mu_);
    if (!stop_) {
      queue_.push_back(std::move(fn));
      if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
      wake_.SignalAll();
      return;
    }
  }
  fn();
}

void Deferred::Stop() {
  std::thread t;
  {
    MutexLock lock(&mu_);
    stop_ = true;
    wake_.SignalAll();
    t = std::move(thread_);
  }
  if (t.joinable()) t.join();
}

void Deferred::Loop() {
  for (;;) {
    std::function<void()> fn;
    {
      MutexLock lock(&mu_);
      wake_.Await(&mu_,
                  [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !queue_.empty(); });
      // Stopping still runs what was queued before.
      if (queue_.empty()) return;
      fn = std::move(queue_.front());
      queue_.pop_front();
    }
    fn();
  }
}

}  // namespace p9::fuse
