// Where a mount publishes its stats file: shared by the mount daemon that
// writes it and `9prdma stats`, which reads it.
#ifndef P9_FUSE_STATS_PATH_H_
#define P9_FUSE_STATS_PATH_H_

#include <string>

namespace p9::fuse {

// The directory of the stats files of mounts made by effective uid `euid`:
// /run/9prdma for root, $XDG_RUNTIME_DIR/9prdma (or /tmp/9prdma-UID)
// otherwise.
std::string StatsDir(unsigned euid);

// The stats file of the mount on `mountpoint` (an absolute path with
// symlinks resolved, as the mount helper has it) made by this process's
// effective uid: StatsDir() plus the mountpoint with '/' turned into '-'
// ("-mnt-data.stats").
std::string StatsPath(const std::string& mountpoint);

// Its name in StatsDir(): "-mnt-data.stats".
std::string StatsFileName(const std::string& mountpoint);

}  // namespace p9::fuse

#endif  // P9_FUSE_STATS_PATH_H_
