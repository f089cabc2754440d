// mount.9prdma command line and -o parsing, and FUSE inode numbering.
#include <sys/stat.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "client/protocol.h"
#include "client/tunables.h"
#include "fuse/inode_table.h"
#include "fuse/options.h"
#include "gtest/gtest.h"

namespace p9::fuse {
namespace {

absl::StatusOr<MountOptions> Parse(std::vector<std::string> args) { return ParseCommandLine(args); }

TEST(ParseSource, NameIpv4AndBracketedIpv6) {
  std::string host, exp;
  ASSERT_TRUE(ParseSource("server:/srv/data", &host, &exp).ok());
  EXPECT_EQ(host, "server");
  EXPECT_EQ(exp, "/srv/data");
  ASSERT_TRUE(ParseSource("10.0.0.1:/x", &host, &exp).ok());
  EXPECT_EQ(host, "10.0.0.1");
  ASSERT_TRUE(ParseSource("[fe80::1]:/export", &host, &exp).ok());
  EXPECT_EQ(host, "fe80::1");
  EXPECT_EQ(exp, "/export");
  ASSERT_TRUE(ParseSource("[::1]:/a:b", &host, &exp).ok());
  EXPECT_EQ(exp, "/a:b");
}

TEST(ParseSource, Rejects) {
  std::string host, exp;
  EXPECT_FALSE(ParseSource("noexport", &host, &exp).ok());
  EXPECT_FALSE(ParseSource(":/x", &host, &exp).ok());
  EXPECT_FALSE(ParseSource("host:", &host, &exp).ok());
  EXPECT_FALSE(ParseSource("[::1/x", &host, &exp).ok());
  EXPECT_FALSE(ParseSource("[::1]/x", &host, &exp).ok());
  EXPECT_FALSE(ParseSource("fe80::1:x", &host, &exp).ok());
}

TEST(ParseCommandLine, Defaults) {
  auto o = Parse({"h:/e", "/mnt"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->host, "h");
  EXPECT_EQ(o->export_path, "/e");
  EXPECT_EQ(o->mountpoint, "/mnt");
  EXPECT_EQ(o->trans, Transport::kRdma);
  EXPECT_EQ(o->port, tunables::kDefaultRdmaPort);
  EXPECT_EQ(o->queues, 1);
  EXPECT_EQ(o->cache, CacheMode::kNone);
  EXPECT_EQ(o->access, AccessMode::kClient);
  EXPECT_EQ(o->auth, AuthMode::kNone);
  EXPECT_EQ(o->timeout_seconds, tunables::kDefaultTimeoutSeconds);
  EXPECT_FALSE(o->foreground);
  EXPECT_FALSE(o->debug);
}

TEST(ParseCommandLine, AllNineOptions) {
  auto o = Parse({"-f", "-o",
                  "trans=tcp,port=5999,msize=64k,queues=4,uname=bob,access=1000,cache=loose,"
                  "timeout=7,debug",
                  "h:/e", "/mnt"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->foreground);
  EXPECT_EQ(o->trans, Transport::kTcp);
  EXPECT_EQ(o->port, 5999);
  EXPECT_EQ(o->msize, 65536u);
  EXPECT_EQ(o->queues, 4);
  EXPECT_EQ(o->uname, "bob");
  EXPECT_EQ(o->access, AccessMode::kUid);
  EXPECT_EQ(o->access_uid, 1000u);
  EXPECT_EQ(o->cache, CacheMode::kLoose);
  EXPECT_EQ(o->timeout_seconds, 7);
  EXPECT_TRUE(o->debug);
}

TEST(ParseCommandLine, TcpDefaultPortAndHelperOrder) {
  // mount(8) puts the positional arguments first and -o last.
  auto o = Parse({"h:/e", "/mnt", "-n", "-v", "-o", "rw,trans=tcp,_netdev"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->port, tunables::kDefaultTcpPort);
  EXPECT_TRUE(o->verbose);
  EXPECT_EQ(o->ignored_options, std::vector<std::string>{"_netdev"});
}

TEST(ParseCommandLine, MultipleDashO) {
  auto o = Parse({"-o", "trans=tcp", "-ocache=readonly", "-o", "ro", "h:/e", "/m"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->cache, CacheMode::kReadonly);
  EXPECT_TRUE(o->read_only);
}

TEST(ParseCommandLine, PassThroughAndFstabOptions) {
  auto o = Parse({"-o",
                  "ro,nosuid,nodev,noexec,allow_other,default_permissions,defaults,noauto,"
                  "_netdev,x-systemd.automount,nofail,user,comment=foo,relatime",
                  "h:/e", "/m"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->read_only);
  EXPECT_TRUE(o->allow_other);
  EXPECT_TRUE(o->default_permissions);
  EXPECT_EQ(o->fuse_options, (std::vector<std::string>{"ro", "nosuid", "nodev", "noexec",
                                                       "allow_other", "default_permissions"}));
  EXPECT_EQ(o->ignored_options.size(), 8u);
}

TEST(ParseCommandLine, RoRwLastWins) {
  auto o = Parse({"-o", "ro,rw", "h:/e", "/m"});
  ASSERT_TRUE(o.ok());
  EXPECT_FALSE(o->read_only);
  EXPECT_EQ(o->fuse_options, std::vector<std::string>{"rw"});
}

TEST(ParseCommandLine, UnknownOptionIsNamed) {
  auto o = Parse({"-o", "trans=tcp,bogus=1", "h:/e", "/m"});
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.status().message().find("bogus=1"), std::string::npos) << o.status();
}

TEST(ParseCommandLine, SloppyIgnoresUnknown) {
  auto o = Parse({"-o", "bogus", "-s", "h:/e", "/m"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->ignored_options, std::vector<std::string>{"bogus"});
}

TEST(ParseCommandLine, BadValues) {
  for (const char* bad :
       {"trans=udp", "port=0", "port=70000", "port=x", "msize=100", "msize=4g", "queues=0",
        "queues=65", "access=someone", "cache=always", "timeout=-1", "timeout=abc", "debug=1",
        "uname=", "ro=1", "port", "auth=krb5", "auth"}) {
    auto o = Parse({"-o", bad, "h:/e", "/m"});
    EXPECT_FALSE(o.ok()) << bad;
  }
}

TEST(ParseCommandLine, AccessModes) {
  struct Case {
    const char* opt;
    AccessMode mode;
    const char* name;
    bool default_permissions;
  };
  for (const Case& c : {Case{"access=client", AccessMode::kClient, "client", true},
                        Case{"access=user", AccessMode::kUser, "user", true},
                        Case{"access=any", AccessMode::kAny, "any", false},
                        Case{"access=0", AccessMode::kUid, "uid", false}}) {
    auto o = Parse({"-o", c.opt, "h:/e", "/m"});
    ASSERT_TRUE(o.ok()) << c.opt << ": " << o.status();
    EXPECT_EQ(o->access, c.mode) << c.opt;
    EXPECT_STREQ(AccessModeName(o->access), c.name);
    EXPECT_EQ(ImpliesDefaultPermissions(o->access), c.default_permissions) << c.opt;
  }
  // The last one given wins, as for every option.
  auto o = Parse({"-o", "access=user,access=any", "h:/e", "/m"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->access, AccessMode::kAny);
  o = Parse({"-o", "access=any", "-o", "access=user", "h:/e", "/m"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->access, AccessMode::kUser);
  for (const char* bad : {"access=", "access", "access=Any", "access=users", "access=-1"}) {
    auto r = Parse({"-o", bad, "h:/e", "/m"});
    EXPECT_FALSE(r.ok()) << bad;
  }
  EXPECT_EQ(Parse({"-o", "access=all", "h:/e", "/m"}).status().message(),
            "access=all: must be client, user, any or a numeric uid");
}

TEST(ParseCommandLine, AuthMunge) {
  auto o = Parse({"-o", "auth=munge", "h:/e", "/m"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->auth, AuthMode::kMunge);
  o = Parse({"-o", "auth=munge,auth=none", "h:/e", "/m"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->auth, AuthMode::kNone);
}

TEST(ParseCommandLine, MissingOrExtraArguments) {
  EXPECT_FALSE(Parse({}).ok());
  EXPECT_FALSE(Parse({"h:/e"}).ok());
  EXPECT_FALSE(Parse({"h:/e", "/m", "extra"}).ok());
  EXPECT_FALSE(Parse({"-o"}).ok());
  EXPECT_FALSE(Parse({"--frobnicate", "h:/e", "/m"}).ok());
  EXPECT_FALSE(Parse({"-t", "nfs", "h:/e", "/m"}).ok());
  EXPECT_TRUE(Parse({"-t", "9prdma", "h:/e", "/m"}).ok());
}

TEST(ParseCommandLine, HelpAndVersionNeedNoArguments) {
  auto h = Parse({"--help"});
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->help);
  auto v = Parse({"--version"});
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->version);
  const std::string usage = UsageText("mount.9prdma");
  EXPECT_NE(usage.find("access=user"), std::string::npos);
  EXPECT_NE(usage.find("access=any"), std::string::npos);
  EXPECT_EQ(usage.find("not implemented"), std::string::npos);
}

TEST(ParseCommandLine, LogLevel) {
  // Unset: warning, info with -v, debug with debug.
  absl::StatusOr<MountOptions> o = Parse({"h:/x", "/mnt"});
  ASSERT_TRUE(o.ok());
  EXPECT_FALSE(o->log_level_set);
  EXPECT_EQ(EffectiveLogLevel(*o), LogLevel::kWarning);
  o = Parse({"-v", "h:/x", "/mnt"});
  EXPECT_EQ(EffectiveLogLevel(*o), LogLevel::kInfo);
  o = Parse({"-v", "-o", "debug", "h:/x", "/mnt"});
  EXPECT_EQ(EffectiveLogLevel(*o), LogLevel::kDebug);
  // Each level by name; given explicitly it wins over -v and debug (which
  // still traces 9P messages).
  const std::pair<const char*, LogLevel> kLevels[] = {{"error", LogLevel::kError},
                                                      {"warning", LogLevel::kWarning},
                                                      {"info", LogLevel::kInfo},
                                                      {"debug", LogLevel::kDebug}};
  for (const auto& [name, level] : kLevels) {
    o = Parse({"-v", "-o", std::string("debug,loglevel=") + name, "h:/x", "/mnt"});
    ASSERT_TRUE(o.ok()) << name;
    EXPECT_TRUE(o->log_level_set);
    EXPECT_TRUE(o->debug);
    EXPECT_EQ(EffectiveLogLevel(*o), level) << name;
  }
  for (const char* bad : {"loglevel=", "loglevel", "loglevel=verbose", "loglevel=ERROR"}) {
    o = Parse({"-o", bad, "h:/x", "/mnt"});
    ASSERT_FALSE(o.ok()) << bad;
    EXPECT_NE(o.status().message().find("loglevel"), std::string::npos) << o.status();
  }
}

TEST(FuseOptionString, FsnameSubtypeAndForcedPermissions) {
  auto o = Parse({"-o", "allow_other,nosuid", "h:/e", "/m"});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(FuseOptionString(*o, true),
            "fsname=h:/e,subtype=9prdma,allow_other,nosuid,default_permissions");
  EXPECT_EQ(FuseOptionString(*o, false), "fsname=h:/e,subtype=9prdma,allow_other,nosuid");
}

TEST(InoMap, RootSwapsWithOne) {
  InoMap m(1234);
  EXPECT_EQ(m.ToIno(1234), kRootIno);
  EXPECT_EQ(m.ToIno(1), 1234u);
  EXPECT_EQ(m.ToIno(77), 77u);
  EXPECT_NE(m.ToIno(0), 0u);
  for (uint64_t p : {0ull, 1ull, 2ull, 77ull, 1234ull}) EXPECT_EQ(m.ToQidPath(m.ToIno(p)), p);
}

TEST(InoMap, RootIsOneOrZero) {
  InoMap one(1);
  EXPECT_EQ(one.ToIno(1), kRootIno);
  EXPECT_NE(one.ToIno(0), 0u);
  EXPECT_EQ(one.ToQidPath(one.ToIno(0)), 0u);
  InoMap zero(0);
  EXPECT_EQ(zero.ToIno(0), kRootIno);
  EXPECT_NE(zero.ToIno(1), kRootIno);
  EXPECT_NE(zero.ToIno(1), 0u);
  for (uint64_t p : {0ull, 1ull, 5ull}) EXPECT_EQ(zero.ToQidPath(zero.ToIno(p)), p);
}

TEST(InodeTable, ReincarnateMovesTheLookupToANewNodeId) {
  InodeTable t(100, std::make_shared<Inode>(kRootIno, 100, S_IFDIR, 1));
  auto make = [](uint64_t id) { return std::make_shared<Inode>(id, 7, S_IFLNK, 1); };
  InodeRef old = t.Acquire(7, make);
  ASSERT_EQ(t.Acquire(7, make), old);  // the kernel holds 1; this lookup adds 1
  InodeRef dropped;
  InodeRef now = t.Reincarnate(old, make, &dropped);
  EXPECT_EQ(dropped, nullptr);
  EXPECT_NE(now->ino, old->ino);
  EXPECT_TRUE(old->removed.load());
  EXPECT_FALSE(now->removed.load());
  EXPECT_EQ(t.FindByQidPath(7), now);
  EXPECT_EQ(t.Get(old->ino), old);  // until the kernel forgets its one lookup
  EXPECT_EQ(t.Forget(old->ino, 1), old);
  EXPECT_EQ(t.Get(old->ino), nullptr);
  EXPECT_EQ(t.FindByQidPath(7), now);
  EXPECT_EQ(t.Forget(now->ino, 1), now);
  EXPECT_EQ(t.size(), 0u);
}

TEST(InodeTable, ReincarnateRacingLookupJoinsTheNewIncarnation) {
  InodeTable t(100, std::make_shared<Inode>(kRootIno, 100, S_IFDIR, 1));
  auto make = [](uint64_t id) { return std::make_shared<Inode>(id, 7, S_IFLNK, 1); };
  InodeRef old = t.Acquire(7, make);   // two lookups in flight, both saw
  ASSERT_EQ(t.Acquire(7, make), old);  // the old incarnation
  InodeRef dropped;
  InodeRef first = t.Reincarnate(old, make, &dropped);
  InodeRef second = t.Reincarnate(old, make, &dropped);
  EXPECT_EQ(second, first);
  // Both lookups moved: the old node id is gone, the new one has 2.
  EXPECT_EQ(dropped, old);
  EXPECT_EQ(t.Get(old->ino), nullptr);
  EXPECT_EQ(t.Forget(first->ino, 1), nullptr);
  EXPECT_EQ(t.Forget(first->ino, 1), first);
}

}  // namespace
}  // namespace p9::fuse

namespace p9::fuse {
namespace {

TEST(ParseCommandLine, ActimeoAndWritebackCache) {
  auto o = ParseCommandLine({"h:/e", "/mnt", "-o", "cache=loose,actimeo=2.5,writeback_cache"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_DOUBLE_EQ(o->actimeo, 2.5);
  EXPECT_TRUE(o->writeback);
  cache::Policy p = cache::PolicyFor(o->cache, o->actimeo, o->writeback);
  EXPECT_DOUBLE_EQ(p.attr_timeout, 2.5);
  EXPECT_DOUBLE_EQ(p.entry_timeout, 2.5);
  EXPECT_DOUBLE_EQ(p.negative_timeout, 2.5);
  EXPECT_TRUE(p.writeback);
  EXPECT_TRUE(p.cache_dir);
  EXPECT_FALSE(p.direct_io);
}

TEST(ParseCommandLine, ActimeoAndWritebackRefusals) {
  for (const char* bad : {"actimeo=-1", "actimeo=x", "actimeo=86401", "actimeo",
                          "writeback_cache=1", "cache=none,writeback_cache", "writeback_cache"}) {
    auto o = ParseCommandLine({"h:/e", "/mnt", "-o", bad});
    EXPECT_FALSE(o.ok()) << bad;
    if (!o.ok()) {
      EXPECT_EQ(o.status().message().find('\n'), absl::string_view::npos) << bad;
    }
  }
}

TEST(CachePolicy, NoneCachesNothingWhateverActimeoSays) {
  cache::Policy p = cache::PolicyFor(CacheMode::kNone, 30);
  EXPECT_EQ(p.attr_timeout, 0);
  EXPECT_EQ(p.entry_timeout, 0);
  EXPECT_TRUE(p.direct_io);
  EXPECT_FALSE(p.cache_dir);
  // Only the path walk that made a lookup may use its attributes.
  EXPECT_DOUBLE_EQ(p.lookup_attr_timeout, cache::kNoneLookupAttrSeconds);
  EXPECT_LE(p.lookup_attr_timeout, 0.05);
  EXPECT_DOUBLE_EQ(cache::PolicyFor(CacheMode::kLoose).attr_timeout, cache::kLooseTimeoutSeconds);
  EXPECT_DOUBLE_EQ(cache::PolicyFor(CacheMode::kReadonly).attr_timeout,
                   cache::kReadonlyTimeoutSeconds);
}

}  // namespace
}  // namespace p9::fuse
