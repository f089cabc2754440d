#include "fuse/stats_path.h"

#include <unistd.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace p9::fuse {

std::string StatsDir(unsigned euid) {
  if (euid == 0) return "/run/9prdma";
  if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x != nullptr && *x != '\0') {
    return absl::StrCat(x, "/9prdma");
  }
  return absl::StrCat("/tmp/9prdma-", euid);
}

std::string StatsFileName(const std::string& mountpoint) {
  return absl::StrCat(absl::StrReplaceAll(mountpoint, {{"/", "-"}}), ".stats");
}

std::string StatsPath(const std::string& mountpoint) {
  return absl::StrCat(StatsDir(geteuid()), "/", StatsFileName(mountpoint));
}

}  // namespace p9::fuse
