// Per-queue counters of a live mount, published as a small text file that
// any user can read (and `9prdma stats` renders), so an admin can see that
// traffic is spread over the queues, how fast it is answered, and how much
// of it the kernel's caches kept from the daemon. Lines, each a word and
// then space-separated fields (fuse/stats_report.h parses them):
//   mount SOURCE on MOUNTPOINT trans=... port=... queues=N cache=... pid=N
//   time unix_ms=N uptime_ms=N                      (when this was written)
//   queue N PEER... requests=N bytes_sent=N bytes_received=N in_flight=N
//         errors=N protocol_errors=N timeouts=N flushes=N interrupts=N
//         reconnects=N alive=0|1 latency_us_log2=C0,C1,...,C31
//   ops lookup=N forget=N getattr=N ...             (FUSE requests received)
//   cache NAME hits=N misses=N ...                  (one per userspace cache;
//                                                    none until cache/ exists)
// New fields are only ever appended; readers skip what they do not know.
#ifndef P9_FUSE_STATS_FILE_H_
#define P9_FUSE_STATS_FILE_H_

#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "fuse/filesystem.h"
#include "fuse/stats_path.h"

namespace p9::fuse {

// The text of the stats file for `fs`, written at `now` by a writer
// started at `started`.
std::string FormatStats(const Filesystem& fs, const std::string& header, absl::Time now,
                        absl::Time started);

// Rewrites the stats file every second (write + rename, so a reader never
// sees half a file) until destroyed; then removes it.
class StatsWriter {
 public:
  StatsWriter(const Filesystem* fs, std::string mountpoint, std::string header);
  ~StatsWriter();
  StatsWriter(const StatsWriter&) = delete;
  StatsWriter& operator=(const StatsWriter&) = delete;

 private:
  void WriteOnce();

  const Filesystem* const fs_;
  const std::string path_;
  const std::string header_;
  const absl::Time started_;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace p9::fuse

#endif  // P9_FUSE_STATS_FILE_H_
