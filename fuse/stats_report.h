// `9prdma stats`, the pure part: parsing the stats file a mount daemon
// writes (fuse/stats_file.h has the format), finding what is mounted where,
// and rendering a table (or JSON) with rates and latency percentiles. No
// I/O here, so every rule is unit-tested (tests/unit/stats_report_test.cc).
#ifndef P9_FUSE_STATS_REPORT_H_
#define P9_FUSE_STATS_REPORT_H_

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/histogram.h"

namespace p9::fuse {

// One `queue` line.
struct QueueStats {
  int index = 0;
  std::string peer;  // "tcp 127.0.0.1:564"
  uint64_t requests = 0;
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  int64_t in_flight = 0;
  uint64_t errors = 0;
  uint64_t protocol_errors = 0;
  uint64_t timeouts = 0;
  uint64_t flushes = 0;
  uint64_t interrupts = 0;
  uint64_t reconnects = 0;
  bool alive = false;
  std::array<uint64_t, kLatencyBuckets> latency_us_log2{};
};

// One `cache` line: a userspace cache's hits and misses.
struct CacheStats {
  std::string name;
  uint64_t hits = 0;
  uint64_t misses = 0;
};

// A whole stats file.
struct StatsSnapshot {
  // The `mount` line without its first word, and what it names.
  std::string mount_line;
  std::string source;
  std::string mountpoint;
  int64_t pid = 0;
  // When the daemon wrote it, and how long it had been running then.
  int64_t unix_ms = 0;
  int64_t uptime_ms = 0;
  std::vector<QueueStats> queues;
  // FUSE operation → requests received, in file order.
  std::vector<std::pair<std::string, uint64_t>> ops;
  std::vector<CacheStats> caches;
};

// Parses a stats file. Unknown lines and fields are skipped (newer
// daemons may add some); a file without `mount`, `time` or any `queue`
// line, or with a malformed number, is an error naming the line.
absl::StatusOr<StatsSnapshot> ParseStats(absl::string_view text);

// OK if the daemon wrote `s` at most `max_age` before `now`; otherwise an
// error saying it is not updating the file.
absl::Status CheckFresh(const StatsSnapshot& s, absl::Time now, absl::Duration max_age);

// The file system type mounted on `path` (absolute, resolved) according to
// /proc/self/mountinfo text `mountinfo` (the last, i.e. topmost, mount
// there), or NotFound when nothing is mounted on `path`.
absl::StatusOr<std::string> MountTypeAt(absl::string_view mountinfo, absl::string_view path);

// Renders `cur` as a table. With `prev` (an earlier reading of the same
// mount), rates and percentiles cover the time between the two; without,
// they are averages since the mount.
std::string RenderTable(const StatsSnapshot& cur, const StatsSnapshot* prev);
// The same numbers as one JSON object.
std::string RenderJson(const StatsSnapshot& cur, const StatsSnapshot* prev);

// The command line of `9prdma stats`.
struct StatsArgs {
  std::string mountpoint;
  // -w [SECONDS]: refresh every `interval`.
  bool watch = false;
  absl::Duration interval = absl::Seconds(2);
  bool json = false;
};
// Parses the arguments after "stats".
absl::StatusOr<StatsArgs> ParseStatsArgs(const std::vector<std::string>& args);

// Human-readable sizes and latencies as the table shows them.
std::string FormatBytes(uint64_t bytes);  // "512B", "1.5KiB", "3.2GiB"
std::string FormatMicros(uint64_t us);    // "64us", "1.0ms", "2.1s"

}  // namespace p9::fuse

#endif  // P9_FUSE_STATS_REPORT_H_
