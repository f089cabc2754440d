// A few threads that run the independent parts of one FUSE request side by
// side: a readdirplus listing's lookups (walk + getattr per entry) go out
// together, spread over the queues, instead of one round trip after another.
#ifndef P9_FUSE_WORK_POOL_H_
#define P9_FUSE_WORK_POOL_H_

#include <cstddef>
#include <deque>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "client/mutex.h"

namespace p9::fuse {

class WorkPool {
 public:
  // Starts `threads` workers (0: Run does everything on the caller).
  explicit WorkPool(int threads);
  // Stops the workers; no Run may be in progress.
  ~WorkPool();
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  // Calls fn(i) for every i in [0, n), on the workers and on the calling
  // thread, and returns once all calls have returned. fn must not throw.
  void Run(size_t n, absl::FunctionRef<void(size_t)> fn);

 private:
  struct Job {
    absl::FunctionRef<void(size_t)> fn;
    size_t n;
    // Guarded by the pool's mu_.
    size_t next = 0;      // first index nobody has claimed
    size_t finished = 0;  // calls that returned
  };
  // Takes the next unclaimed index of `job` into *i (false if none); a job
  // whose last index is taken leaves the queue.
  bool ClaimLocked(Job* job, size_t* i) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs claimed index i, then more of the job's indices while any is left.
  void Work(Job* job, size_t i);
  void Loop();

  Mutex mu_;
  // Jobs with unclaimed indices.
  std::deque<Job*> jobs_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  // Idle workers sleep on queued_ (signalled when a job is queued or the
  // pool stops) and callers on finished_ (when a job's last call ends), not
  // with mu_.Await(): that would wake every one of them at each call that
  // ends.
  CondVar queued_;
  CondVar finished_;
  std::vector<std::thread> threads_;
};

}  // namespace p9::fuse

#endif  // P9_FUSE_WORK_POOL_H_
