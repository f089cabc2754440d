// What a mount by a non-root user may ask for: the rules fusermount3 and
// the kernel enforce anyway, checked before any network traffic so that a
// refused mount fails with one clear line instead of a libfuse message
// after connecting. Pure functions (tests/unit/fuse_user_mount_test.cc).
#ifndef P9_FUSE_USER_MOUNT_H_
#define P9_FUSE_USER_MOUNT_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "fuse/options.h"

namespace p9::fuse {

// fusermount3's configuration file.
inline constexpr char kFuseConfPath[] = "/etc/fuse.conf";

// Whether fuse.conf text lets non-root users mount with allow_other: a line
// holding only `user_allow_other` (comments after '#' and surrounding blanks
// ignored), as fusermount3 reads it.
bool FuseConfAllowsOther(absl::string_view conf_text);

// Whether the mount is meant for users other than the mounting one, so that
// FUSE must be told allow_other: access=UID for a UID that is not the
// mounter's (without it FUSE would refuse that UID everything).
bool NeedsAllowOther(const MountOptions& opts, uint32_t mounting_uid);

// Adjusts *opts for the mounting user. Everyone: allow_other is added when
// NeedsAllowOther. Non-root (mounting_uid != 0): nosuid and nodev are added
// (a user must not get setuid programs or device nodes from a server), suid
// or dev are refused, and allow_other is refused unless
// `user_allow_other` (FuseConfAllowsOther of /etc/fuse.conf). Errors are
// one line naming the option and the remedy.
absl::Status ApplyUserMountPolicy(MountOptions* opts, uint32_t mounting_uid, bool user_allow_other);

}  // namespace p9::fuse

#endif  // P9_FUSE_USER_MOUNT_H_
