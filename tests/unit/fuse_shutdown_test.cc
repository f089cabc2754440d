// Unmounting must not cost a round trip per fid: the daemon has to exit
// promptly after umount even when the kernel held thousands of inodes and
// the link is slow. Closing the sessions releases every fid on the server,
// so Filesystem::Shutdown sends no Tclunk for them.
#include <sys/stat.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fuse/filesystem.h"
#include "gtest/gtest.h"
#include "tests/unit/scripted_server.h"

namespace p9::fuse {
namespace {

using testing::MakeRig;
using testing::Received;
using testing::Rig;

constexpr uint64_t kRootPath = 1;
constexpr int kFiles = 200;
// What one round trip costs on the test guest's slow link, roughly.
constexpr absl::Duration kRoundTrip = absl::Milliseconds(20);

Rgetattr FileAttr(uint64_t path) {
  Rgetattr a;
  a.valid = kGetattrBasic;
  a.qid = Qid{0, 0, path};
  a.mode = S_IFREG | 0644;
  a.nlink = 1;
  return a;
}

TEST(FilesystemShutdown, SendsNoClunkPerFidAndIsQuickOnASlowLink) {
  Rig rig = MakeRig();
  testing::ScriptedServer* server = rig.server.get();
  std::vector<std::unique_ptr<Session>> sessions;
  sessions.push_back(std::move(rig.session));
  Filesystem fs(std::move(sessions), {0}, Qid{kQtDir, 0, kRootPath}, FsConfig{});

  // The server answers walks at once and everything else (clunks) one
  // round trip late, counting the clunks.
  std::atomic<bool> stop{false};
  std::atomic<int> clunks{0};
  std::thread answer([&] {
    uint64_t next_path = 100;
    while (!stop.load()) {
      std::optional<Received> r = server->Next(absl::Milliseconds(10));
      if (!r.has_value()) continue;
      if (r->header.type == static_cast<uint8_t>(MsgType::kTwalk)) {
        server->Reply(r->header.tag, Rwalk{WalkQids{{Qid{0, 0, next_path++}}}});
      } else if (r->header.type == static_cast<uint8_t>(MsgType::kTclunk)) {
        clunks++;
        absl::SleepFor(kRoundTrip);
        server->Reply(r->header.tag, Rclunk{});
      }
    }
  });

  InodeRef root = fs.inodes().root();
  absl::StatusOr<FidRef> root_fid = fs.FidOn(root, 0);
  ASSERT_TRUE(root_fid.ok()) << root_fid.status();
  for (int i = 0; i < kFiles; ++i) {
    std::string name = absl::StrCat("f", i);
    absl::StatusOr<std::pair<FidRef, Qid>> w = fs.WalkName(*root_fid, name);
    ASSERT_TRUE(w.ok()) << w.status();
    fuse_entry_param e;
    fs.EnterInode(root, name, w->first, FileAttr(w->second.path), &e);
  }
  root_fid->reset();

  absl::Time start = absl::Now();
  fs.Shutdown();
  absl::Duration took = absl::Now() - start;
  stop = true;
  answer.join();
  // Clunked one by one this would take kFiles round trips (4 s here).
  EXPECT_EQ(clunks.load(), 0);
  EXPECT_LT(took, kRoundTrip * (kFiles / 10)) << took;
  EXPECT_FALSE(fs.session(0)->alive());
}

}  // namespace
}  // namespace p9::fuse
