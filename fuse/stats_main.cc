// 9prdma: the admin command. `9prdma stats [-w [SECONDS]] [--json]
// MOUNTPOINT` renders the stats file of a mount (fuse/stats_file.h); every
// failure is one line on stderr and exit status 1.
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "fuse/stats_path.h"
#include "fuse/stats_report.h"

#ifndef P9_VERSION
#define P9_VERSION "0.0.0"
#endif

namespace p9::fuse {
namespace {

constexpr char kProg[] = "9prdma";
// The daemon rewrites the file every second; allow for a loaded machine.
constexpr absl::Duration kMaxAge = absl::Seconds(5);

constexpr char kUsage[] = R"(usage: 9prdma stats [-w [SECONDS]] [--json] MOUNTPOINT
       9prdma --help | --version

stats   per-queue requests, rates, bytes, requests in flight, latency
        percentiles, errors, timeouts, flushes, interrupts, reconnects, and
        the FUSE requests the mount received, from the mount's stats file
  -w [SECONDS]  refresh every SECONDS (default 2) until interrupted; rates
                and percentiles then cover each interval
  --json        one JSON object per reading instead of the table
)";

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": ", strerror(errno)));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The mount at `mountpoint`, checked, and the stats file to read.
absl::StatusOr<std::string> FindStatsFile(const std::string& mountpoint) {
  char* real = realpath(mountpoint.c_str(), nullptr);
  if (real == nullptr) return absl::NotFoundError(absl::StrCat(mountpoint, ": ", strerror(errno)));
  std::string path = real;
  free(real);
  absl::StatusOr<std::string> mountinfo = ReadFile("/proc/self/mountinfo");
  if (!mountinfo.ok()) return mountinfo.status();
  absl::StatusOr<std::string> type = MountTypeAt(*mountinfo, path);
  if (!type.ok()) {
    return absl::NotFoundError(absl::StrCat(path, " is not a 9prdma mount (not a mount point)"));
  }
  if (*type != "fuse.9prdma") {
    return absl::NotFoundError(absl::StrCat(path, " is not a 9prdma mount (it is ", *type, ")"));
  }
  // Mounts by this user, then root's (readable by all).
  std::vector<std::string> candidates = {StatsPath(path)};
  if (geteuid() != 0) candidates.push_back(absl::StrCat(StatsDir(0), "/", StatsFileName(path)));
  for (const std::string& c : candidates) {
    if (access(c.c_str(), R_OK) == 0) return c;
  }
  return absl::NotFoundError(absl::StrCat("no stats file for the 9prdma mount ", path,
                                          " (looked for ", candidates[0],
                                          "): its daemon is not running, or it was mounted by "
                                          "another user"));
}

// Reads, parses and checks one snapshot.
absl::StatusOr<StatsSnapshot> Read(const std::string& file) {
  absl::StatusOr<std::string> text = ReadFile(file);
  if (!text.ok()) {
    return absl::NotFoundError(
        absl::StrCat("the stats file ", file, " is gone: the mount daemon has exited"));
  }
  absl::StatusOr<StatsSnapshot> s = ParseStats(*text);
  if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat(file, ": ", s.status().message()));
  if (s->pid > 0 && kill(static_cast<pid_t>(s->pid), 0) != 0 && errno == ESRCH) {
    return absl::FailedPreconditionError(
        absl::StrCat(file, " is stale: the mount daemon (pid ", s->pid, ") is not running"));
  }
  if (absl::Status st = CheckFresh(*s, absl::Now(), kMaxAge); !st.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(file, ": ", st.message()));
  }
  return s;
}

int Fail(absl::string_view msg) {
  fprintf(stderr, "%s: %.*s\n", kProg, static_cast<int>(msg.size()), msg.data());
  return 1;
}

int Stats(const StatsArgs& a) {
  absl::StatusOr<std::string> file = FindStatsFile(a.mountpoint);
  if (!file.ok()) return Fail(file.status().message());
  absl::StatusOr<StatsSnapshot> latest = Read(*file);
  if (!latest.ok()) return Fail(latest.status().message());
  auto render = [&](const StatsSnapshot& cur, const StatsSnapshot* before) {
    return a.json ? RenderJson(cur, before) : RenderTable(cur, before);
  };
  if (!a.watch) {
    fputs(render(*latest, nullptr).c_str(), stdout);
    return 0;
  }
  // Like watch(1): clear, a title line, the table. Rates cover the time
  // between the newest reading and the one the daemon wrote before it (a
  // re-read of an unchanged file would give a period of zero).
  std::optional<StatsSnapshot> older;
  for (;;) {
    std::string body = render(*latest, older ? &*older : nullptr);
    if (a.json) {
      fputs(body.c_str(), stdout);
    } else {
      std::string now = absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::Now(), absl::LocalTimeZone());
      printf("\033[H\033[2JEvery %s: 9prdma stats %s    %s\n\n%s",
             absl::FormatDuration(a.interval).c_str(), a.mountpoint.c_str(), now.c_str(),
             body.c_str());
    }
    fflush(stdout);
    absl::SleepFor(a.interval);
    absl::StatusOr<StatsSnapshot> cur = Read(*file);
    if (!cur.ok()) return Fail(cur.status().message());
    if (cur->unix_ms != latest->unix_ms) {
      older = *std::move(latest);
      latest = std::move(cur);
    }
  }
}

int Main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return Fail("a command is needed (see --help)");
  if (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
    fputs(kUsage, stdout);
    return 0;
  }
  if (args[0] == "-V" || args[0] == "--version") {
    printf("%s %s\n", kProg, P9_VERSION);
    return 0;
  }
  if (args[0] != "stats")
    return Fail(absl::StrCat("unknown command \"", args[0], "\" (see --help)"));
  absl::StatusOr<StatsArgs> a = ParseStatsArgs({args.begin() + 1, args.end()});
  if (!a.ok()) return Fail(absl::StrCat(a.status().message(), " (see --help)"));
  return Stats(*a);
}

}  // namespace
}  // namespace p9::fuse

int main(int argc, char** argv) { return p9::fuse::Main(argc, argv); }
