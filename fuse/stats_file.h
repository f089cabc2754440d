// Per-queue counters of a live mount, published as a small text file that
// any user can read (and `9prdma stats` renders): one line per queue with
// requests, bytes each way, requests in flight and error counts, so an admin
// can see that traffic is spread over the queues.
#ifndef P9_FUSE_STATS_FILE_H_
#define P9_FUSE_STATS_FILE_H_

#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "fuse/filesystem.h"

namespace p9::fuse {

// Where the stats of the mount on `mountpoint` live: under /run/9prdma for
// root, $XDG_RUNTIME_DIR/9prdma (or /tmp/9prdma-UID) otherwise; the file
// name is the mountpoint with '/' turned into '-' ("-mnt-data.stats").
std::string StatsPath(const std::string& mountpoint);

// The text of the stats file for `fs` (also used by tests).
std::string FormatStats(const Filesystem& fs, const std::string& header);

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
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace p9::fuse

#endif  // P9_FUSE_STATS_FILE_H_
