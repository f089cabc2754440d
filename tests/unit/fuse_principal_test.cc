// access=user: each local user's fids descend from that user's own Tattach,
// made on first use, and never from another user's fids.
#include <sys/stat.h>

#include <atomic>
#include <memory>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "fuse/filesystem.h"
#include "gtest/gtest.h"
#include "tests/unit/scripted_server.h"

namespace p9::fuse {
namespace {

using testing::MakeRig;
using testing::Received;
using testing::Rig;

constexpr uint64_t kRootPath = 1;
constexpr uint64_t kFilePath = 7;
constexpr uint32_t kMountUid = 0;

// What the server saw, in order.
struct Seen {
  MsgType type;
  uint32_t fid;      // Tattach: the new fid; Twalk: the fid walked from
  uint32_t newfid;   // Twalk only
  uint32_t n_uname;  // Tattach only
};

class PrincipalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Rig rig = MakeRig();
    server_ = std::move(rig.server);
    // As if attached by the mount (no Tattach: the server's script starts later).
    root_fid_ = rig.session->AllocFid();
    std::vector<std::unique_ptr<Session>> sessions;
    sessions.push_back(std::move(rig.session));
    FsConfig config;
    config.access = AccessMode::kUser;
    config.attach_uid = kMountUid;
    config.attach_user = [this](Session& s, uint32_t fid, uint32_t uid) {
      attaches_++;
      return s.Attach(fid, kNoFid, "u", "/export", uid);
    };
    fs_ = std::make_unique<Filesystem>(std::move(sessions), std::vector<uint32_t>{root_fid_},
                                       Qid{kQtDir, 0, kRootPath}, config);
    answer_ = std::thread([this] { Answer(); });
  }

  void TearDown() override {
    stop_ = true;
    answer_.join();
    fs_->Shutdown();
  }

  // Attaches get the root, walks the file; everything the server saw
  // (but clunks) is recorded.
  void Answer() {
    while (!stop_.load()) {
      std::optional<Received> r = server_->Next(absl::Milliseconds(10));
      if (!r.has_value()) continue;
      auto type = static_cast<MsgType>(r->header.type);
      if (type == MsgType::kTattach) {
        Tattach t = r->As<Tattach>();
        Record(Seen{type, t.fid, 0, t.n_uname});
        server_->Reply(r->header.tag, Rattach{Qid{kQtDir, 0, kRootPath}});
      } else if (type == MsgType::kTwalk) {
        Twalk w = r->As<Twalk>();
        Record(Seen{type, w.fid, w.newfid, 0});
        server_->Reply(r->header.tag, Rwalk{WalkQids{{Qid{0, 0, kFilePath}}}});
      } else if (type == MsgType::kTclunk) {
        server_->Reply(r->header.tag, Rclunk{});
      }
    }
  }

  void Record(const Seen& s) {
    MutexLock lock(&mu_);
    seen_.push_back(s);
  }
  std::vector<Seen> TakeSeen() {
    MutexLock lock(&mu_);
    return std::exchange(seen_, {});
  }

  // The file "f" in the root, entered with principal p's walked fid.
  InodeRef EnterFile(int p) {
    PrincipalScope as(p);
    absl::StatusOr<FidRef> root = fs_->FidOn(fs_->inodes().root(), 0);
    EXPECT_TRUE(root.ok()) << root.status();
    absl::StatusOr<std::pair<FidRef, Qid>> w = fs_->WalkName(*root, "f");
    EXPECT_TRUE(w.ok()) << w.status();
    Rgetattr a;
    a.valid = kGetattrBasic;
    a.qid = w->second;
    a.mode = S_IFREG | 0600;
    a.nlink = 1;
    fuse_entry_param e;
    return fs_->EnterInode(fs_->inodes().root(), "f", w->first, a, &e);
  }

  std::unique_ptr<testing::ScriptedServer> server_;
  uint32_t root_fid_ = 0;
  std::unique_ptr<Filesystem> fs_;
  std::atomic<int> attaches_{0};
  std::atomic<bool> stop_{false};
  std::thread answer_;
  Mutex mu_;
  std::vector<Seen> seen_ ABSL_GUARDED_BY(mu_);
};

TEST_F(PrincipalTest, OnePrincipalPerUidTheMountsOwnIsZero) {
  EXPECT_EQ(fs_->PrincipalOf(kMountUid), 0);
  EXPECT_EQ(fs_->PrincipalOf(1000), 1);
  EXPECT_EQ(fs_->PrincipalOf(1001), 2);
  EXPECT_EQ(fs_->PrincipalOf(1000), 1);
  EXPECT_EQ(PrincipalScope::current(), 0);
  {
    PrincipalScope outer(2);
    {
      PrincipalScope inner(1);
      EXPECT_EQ(PrincipalScope::current(), 1);
    }
    EXPECT_EQ(PrincipalScope::current(), 2);
  }
  EXPECT_EQ(PrincipalScope::current(), 0);
}

TEST_F(PrincipalTest, EachUserAttachesOnceAndWalksFromTheirOwnRoot) {
  const int alice = fs_->PrincipalOf(1000);
  const int bob = fs_->PrincipalOf(1001);
  InodeRef root = fs_->inodes().root();

  FidRef alice_root;
  {
    PrincipalScope as(alice);
    absl::StatusOr<FidRef> f = fs_->FidOn(root, 0);
    ASSERT_TRUE(f.ok()) << f.status();
    alice_root = *f;
    EXPECT_EQ(alice_root->principal(), alice);
    EXPECT_NE(alice_root->num(), root_fid_);  // not the mount's own root fid
    // Made once: the second use finds it.
    absl::StatusOr<FidRef> again = fs_->FidOn(root, 0);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, alice_root);
  }
  EXPECT_EQ(attaches_.load(), 1);
  std::vector<Seen> seen = TakeSeen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].type, MsgType::kTattach);
  EXPECT_EQ(seen[0].n_uname, 1000u);
  EXPECT_EQ(seen[0].fid, alice_root->num());

  // Alice's walked fid of the file is hers; Bob needs his own, walked from
  // his own root (attached now), not from Alice's fids.
  InodeRef file = EnterFile(alice);
  TakeSeen();
  {
    PrincipalScope as(bob);
    absl::StatusOr<FidRef> f = fs_->FidOn(file, 0);
    ASSERT_TRUE(f.ok()) << f.status();
    EXPECT_EQ((*f)->principal(), bob);
    seen = TakeSeen();
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_EQ(seen[0].type, MsgType::kTattach);
    EXPECT_EQ(seen[0].n_uname, 1001u);
    EXPECT_EQ(seen[1].type, MsgType::kTwalk);
    EXPECT_EQ(seen[1].fid, seen[0].fid);
    EXPECT_EQ(seen[1].newfid, (*f)->num());
  }
  // The mount's own principal walks from the mount's own root fid.
  {
    absl::StatusOr<FidRef> f = fs_->FidOn(file, 0);
    ASSERT_TRUE(f.ok()) << f.status();
    EXPECT_EQ((*f)->principal(), 0);
    seen = TakeSeen();
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].type, MsgType::kTwalk);
    EXPECT_EQ(seen[0].fid, root_fid_);
  }
  // Alice still has hers: no request.
  {
    PrincipalScope as(alice);
    absl::StatusOr<FidRef> f = fs_->FidOn(file, 0);
    ASSERT_TRUE(f.ok());
    EXPECT_EQ((*f)->principal(), alice);
    EXPECT_TRUE(TakeSeen().empty());
  }
  EXPECT_EQ(attaches_.load(), 2);
  // Dropping all fids of the file drops every principal's.
  fs_->DropAllFids(file);
  {
    MutexLock lock(&file->mu);
    for (const FidRef& g : file->fids) EXPECT_EQ(g, nullptr);
  }
}

}  // namespace
}  // namespace p9::fuse
