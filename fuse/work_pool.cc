#include "fuse/work_pool.h"

#include <algorithm>

namespace p9::fuse {

WorkPool::WorkPool(int threads) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

WorkPool::~WorkPool() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
    queued_.SignalAll();
  }
  for (std::thread& t : threads_) t.join();
}

void WorkPool::Run(size_t n, absl::FunctionRef<void(size_t)> fn) {
  if (n == 0) return;
  Job job{fn, n};
  size_t i = 0;
  {
    MutexLock lock(&mu_);
    if (n > 1 && !threads_.empty()) {
      jobs_.push_back(&job);
      queued_.SignalAll();
    }
    ClaimLocked(&job, &i);
  }
  Work(&job, i);
  MutexLock lock(&mu_);
  // Every index is claimed, so the job has left the queue; a worker still
  // running one of its calls counts it finished and then lets go of it (a
  // worker only touches a job with mu_ held while finished < n).
  finished_.Await(&mu_, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return job.finished == job.n; });
}

bool WorkPool::ClaimLocked(Job* job, size_t* i) {
  if (job->next == job->n) return false;
  *i = job->next++;
  if (job->next == job->n) {
    auto it = std::find(jobs_.begin(), jobs_.end(), job);
    if (it != jobs_.end()) jobs_.erase(it);
  }
  return true;
}

void WorkPool::Work(Job* job, size_t i) {
  for (;;) {
    job->fn(i);
    MutexLock lock(&mu_);
    if (++job->finished == job->n) finished_.SignalAll();
    // Claimed under the same lock as the count: once finished == n the
    // caller may return and the job is gone.
    if (!ClaimLocked(job, &i)) return;
  }
}

void WorkPool::Loop() {
  for (;;) {
    Job* job;
    size_t i = 0;
    {
      MutexLock lock(&mu_);
      queued_.Await(&mu_,
                    [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !jobs_.empty(); });
      if (stop_) return;
      job = jobs_.front();  // queued jobs have unclaimed indices
      ClaimLocked(job, &i);
    }
    Work(job, i);
  }
}

}  // namespace p9::fuse
