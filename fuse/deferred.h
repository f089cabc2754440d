// Work that must not run where it arises: a read answered on a channel's
// delivery thread whose connection was lost is repeated on a new one, which
// blocks; this thread does it instead.
#ifndef P9_FUSE_DEFERRED_H_
#define P9_FUSE_DEFERRED_H_

#include <deque>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "client/mutex.h"

namespace p9::fuse {

// One thread, started with the first Post(), running posted work in order.
class Deferred {
 public:
  Deferred() = default;
  // Stop()s.
  ~Deferred();
  Deferred(const Deferred&) = delete;
  Deferred& operator=(const Deferred&) = delete;

  // Queues fn; any thread, never blocks on fn. After Stop(), runs fn on the
  // calling thread instead (nothing is dropped).
  void Post(std::function<void()> fn);
  // Runs what is queued, then ends the thread.
  void Stop();

 private:
  void Loop();

  Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  // Signalled when work is queued or stop_ is set.
  CondVar wake_;
  std::thread thread_ ABSL_GUARDED_BY(mu_);
};

}  // namespace p9::fuse

#endif  // P9_FUSE_DEFERRED_H_
