#include "fuse/user_mount.h"

#include <algorithm>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace p9::fuse {
namespace {

bool Has(const MountOptions& opts, absl::string_view flag) {
  return std::find(opts.fuse_options.begin(), opts.fuse_options.end(), flag) !=
         opts.fuse_options.end();
}

void Add(MountOptions* opts, absl::string_view flag) {
  if (!Has(*opts, flag)) opts->fuse_options.emplace_back(flag);
}

}  // namespace

bool FuseConfAllowsOther(absl::string_view conf_text) {
  for (absl::string_view line : absl::StrSplit(conf_text, '\n')) {
    if (size_t hash = line.find('#'); hash != absl::string_view::npos) line = line.substr(0, hash);
    if (absl::StripAsciiWhitespace(line) == "user_allow_other") return true;
  }
  return false;
}

bool NeedsAllowOther(const MountOptions& opts, uint32_t mounting_uid) {
  return opts.access == AccessMode::kUid && opts.access_uid != mounting_uid;
}

absl::Status ApplyUserMountPolicy(MountOptions* opts, uint32_t mounting_uid,
                                  bool user_allow_other) {
  bool needed = NeedsAllowOther(*opts, mounting_uid);
  if (mounting_uid != 0) {
    for (absl::string_view unsafe : {"suid", "dev"}) {
      if (Has(*opts, unsafe)) {
        return absl::PermissionDeniedError(
            absl::StrCat("option ", unsafe, " is only allowed when root mounts"));
      }
    }
    if ((opts->allow_other || needed) && !user_allow_other) {
      std::string why = opts->allow_other
                            ? std::string("allow_other")
                            : absl::StrCat("access=", opts->access_uid, " (needs allow_other)");
      return absl::PermissionDeniedError(
          absl::StrCat(why, " is not permitted for non-root users: ", kFuseConfPath,
                       " lacks a user_allow_other line"));
    }
    Add(opts, "nosuid");
    Add(opts, "nodev");
  }
  if (needed && !opts->allow_other) {
    opts->allow_other = true;
    Add(opts, "allow_other");
  }
  return absl::OkStatus();
}

}  // namespace p9::fuse
