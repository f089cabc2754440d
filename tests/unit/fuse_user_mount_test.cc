// The rules for mounts by non-root users (fuse/user_mount.h).
#include <cstdint>
#include <string>
#include <vector>

#include "fuse/options.h"
#include "fuse/user_mount.h"
#include "gtest/gtest.h"

namespace p9::fuse {
namespace {

MountOptions Parsed(const std::string& o) {
  absl::StatusOr<MountOptions> m = ParseCommandLine({"-o", o, "h:/e", "/mnt"});
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *m : MountOptions();
}

TEST(FuseConf, UserAllowOtherOnItsOwnLine) {
  EXPECT_TRUE(FuseConfAllowsOther("user_allow_other\n"));
  EXPECT_TRUE(FuseConfAllowsOther("# comment\nmount_max = 10\n  user_allow_other  \n"));
  EXPECT_TRUE(FuseConfAllowsOther("user_allow_other # why\n"));
  EXPECT_TRUE(FuseConfAllowsOther("user_allow_other"));
}

TEST(FuseConf, CommentedOrAbsentIsNo) {
  EXPECT_FALSE(FuseConfAllowsOther(""));
  EXPECT_FALSE(FuseConfAllowsOther("#user_allow_other\n"));
  EXPECT_FALSE(FuseConfAllowsOther("# user_allow_other - lets users ...\n"));
  EXPECT_FALSE(FuseConfAllowsOther("user_allow_other=1\nuser_allow_others\n"));
}

// Options `o` after the policy, which must accept them.
MountOptions Accepted(const std::string& o, uint32_t uid, bool user_allow_other) {
  MountOptions m = Parsed(o);
  absl::Status st = ApplyUserMountPolicy(&m, uid, user_allow_other);
  EXPECT_TRUE(st.ok()) << o << ": " << st;
  return m;
}

// The one-line error for options `o` the policy must refuse.
std::string Refused(const std::string& o, uint32_t uid, bool user_allow_other) {
  MountOptions m = Parsed(o);
  absl::Status st = ApplyUserMountPolicy(&m, uid, user_allow_other);
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied) << o;
  EXPECT_FALSE(m.allow_other && !Parsed(o).allow_other) << "refused, yet changed: " << o;
  return std::string(st.message());
}

TEST(UserMountPolicy, NonRootGetsNosuidNodev) {
  MountOptions o = Accepted("trans=tcp", 1000, false);
  EXPECT_FALSE(o.allow_other);
  EXPECT_EQ(FuseOptionString(o, false), "fsname=h:/e,subtype=9prdma,nosuid,nodev");
  // Given already: not repeated.
  EXPECT_EQ(FuseOptionString(Accepted("nodev,nosuid", 1000, false), false),
            "fsname=h:/e,subtype=9prdma,nodev,nosuid");
}

TEST(UserMountPolicy, RootKeepsWhatItAskedFor) {
  EXPECT_EQ(FuseOptionString(Accepted("suid,dev", 0, false), false),
            "fsname=h:/e,subtype=9prdma,suid,dev");
  EXPECT_TRUE(Accepted("allow_other", 0, false).allow_other);
}

TEST(UserMountPolicy, NonRootSuidOrDevRefused) {
  EXPECT_EQ(Refused("suid", 1000, true), "option suid is only allowed when root mounts");
  EXPECT_EQ(Refused("nosuid,dev", 1000, true), "option dev is only allowed when root mounts");
}

TEST(UserMountPolicy, NonRootAllowOtherNeedsFuseConf) {
  EXPECT_EQ(Refused("allow_other", 1000, false),
            "allow_other is not permitted for non-root users: /etc/fuse.conf lacks a "
            "user_allow_other line");
  EXPECT_EQ(FuseOptionString(Accepted("allow_other", 1000, true), false),
            "fsname=h:/e,subtype=9prdma,allow_other,nosuid,nodev");
}

TEST(UserMountPolicy, AccessForAnotherUidImpliesAllowOther) {
  EXPECT_TRUE(NeedsAllowOther(Parsed("access=1000"), 0));
  MountOptions root = Accepted("access=1000", 0, false);
  EXPECT_TRUE(root.allow_other);
  EXPECT_EQ(FuseOptionString(root, false), "fsname=h:/e,subtype=9prdma,allow_other");
  EXPECT_EQ(Refused("access=1001", 1000, false),
            "access=1001 (needs allow_other) is not permitted for non-root users: "
            "/etc/fuse.conf lacks a user_allow_other line");
  EXPECT_TRUE(Accepted("access=1001", 1000, true).allow_other);
}

TEST(UserMountPolicy, AccessForOneselfNeedsNoAllowOther) {
  EXPECT_FALSE(NeedsAllowOther(Parsed("access=1000"), 1000));
  EXPECT_FALSE(Accepted("access=1000", 1000, false).allow_other);
  EXPECT_FALSE(NeedsAllowOther(Parsed("access=client"), 1000));
  EXPECT_FALSE(NeedsAllowOther(Parsed("access=user"), 1000));
  EXPECT_FALSE(NeedsAllowOther(Parsed("access=any"), 1000));
}

TEST(UserMountPolicy, AccessUserOrAnyForOthersStillNeedsFuseConf) {
  // Neither implies allow_other; asking for it is checked as usual.
  EXPECT_FALSE(Accepted("access=user", 0, false).allow_other);
  EXPECT_FALSE(Accepted("access=any", 1000, false).allow_other);
  EXPECT_EQ(Refused("access=user,allow_other", 1000, false),
            "allow_other is not permitted for non-root users: /etc/fuse.conf lacks a "
            "user_allow_other line");
  EXPECT_TRUE(Accepted("access=user,allow_other", 0, false).allow_other);
}

}  // namespace
}  // namespace p9::fuse
