// The client library against a real 9P2000.L server: Debian's diod on
// loopback (started by with_diod.sh). Every operation is checked against
// what the export directory on disk says afterwards.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/errors.h"
#include "client/session.h"
#include "client/tcp_channel.h"
#include "gtest/gtest.h"
#ifdef P9_HAVE_RDMA
#include "rdma/rdma_channel.h"
#endif

namespace p9 {
namespace {

namespace fs = std::filesystem;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string ReadDisk(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class DiodTest : public ::testing::Test {
 protected:
  void SetUp() override {
    export_ = Env("P9_DIOD_EXPORT");
    if (export_.empty()) GTEST_SKIP() << "run under tests/integration/with_diod.sh";
    Connect(512 * 1024);
  }

  void Connect(uint32_t msize) {
    root_.reset();
    session_.reset();
    std::unique_ptr<Channel> ch;
    std::string host = Env("P9_DIOD_HOST");
    uint16_t port = static_cast<uint16_t>(std::stoi(Env("P9_DIOD_PORT")));
    if (Env("P9_TRANSPORT") == "rdma") {
#ifdef P9_HAVE_RDMA
      rdma::RdmaOptions ro;
      ro.max_message = msize;
      ro.timeout = absl::Seconds(30);
      auto rc = rdma::RdmaChannel::Connect(host, port, ro);
      ASSERT_TRUE(rc.ok()) << rc.status();
      ch = *std::move(rc);
#else
      GTEST_SKIP() << "built without RDMA";
#endif
    } else {
      auto tc = TcpChannel::Connect(host, port, absl::Seconds(10), msize);
      ASSERT_TRUE(tc.ok()) << tc.status();
      ch = *std::move(tc);
    }
    SessionOptions o;
    o.msize = msize;
    o.timeout = absl::Seconds(60);
    auto s = Session::Connect(std::move(ch), o);
    ASSERT_TRUE(s.ok()) << s.status();
    session_ = *std::move(s);
    root_fid_ = session_->AllocFid();
    auto q = session_->Attach(root_fid_, kNoFid, "root", export_.string(), 0);
    ASSERT_TRUE(q.ok()) << q.status();
    EXPECT_TRUE(q->type & kQtDir);
    root_ = std::make_unique<uint32_t>(root_fid_);
  }

  void TearDown() override {
    if (root_ != nullptr) {
      EXPECT_TRUE(session_->Clunk(root_fid_).ok());
    }
  }

  // Walks from the root to `path` ("a/b"); returns the new fid.
  uint32_t WalkTo(const std::vector<std::string>& names) {
    uint32_t fid = session_->AllocFid();
    auto w = session_->Walk(root_fid_, fid, names);
    EXPECT_TRUE(w.ok()) << w.status();
    return fid;
  }

  // Creates `name` in the root with `content`, via Tlcreate + Twrite.
  void CreateFile(const std::string& name, const std::string& content) {
    uint32_t fid = WalkTo({});
    auto c = session_->Lcreate(fid, name, O_RDWR, 0644, 0);
    ASSERT_TRUE(c.ok()) << c.status();
    size_t off = 0;
    while (off < content.size()) {
      auto n = session_->Write(
          fid, off,
          absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(content.data()) + off,
                              content.size() - off));
      ASSERT_TRUE(n.ok()) << n.status();
      ASSERT_GT(*n, 0u);
      off += *n;
    }
    ASSERT_TRUE(session_->Clunk(fid).ok());
  }

  fs::path export_;
  std::unique_ptr<Session> session_;
  uint32_t root_fid_ = 0;
  std::unique_ptr<uint32_t> root_;
};

TEST_F(DiodTest, WalkMissingIsEnoent) {
  uint32_t fid = session_->AllocFid();
  auto w = session_->Walk(root_fid_, fid, {"no-such-file"});
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(ToErrno(w.status()), ENOENT);
  session_->FreeFid(fid);
}

TEST_F(DiodTest, WriteAndReadAcrossManyMsizeChunks) {
  Connect(8192);  // small msize: a 1 MiB file takes ~130 requests each way
  ASSERT_EQ(session_->msize(), 8192u);
  std::string data(1 << 20, '\0');
  std::mt19937 rng(42);
  for (char& c : data) c = static_cast<char>(rng());
  CreateFile("big", data);
  EXPECT_TRUE(ReadDisk(export_ / "big") == data) << "export file differs from what was written";

  uint32_t fid = WalkTo({"big"});
  auto o = session_->Lopen(fid, O_RDONLY);
  ASSERT_TRUE(o.ok()) << o.status();
  std::string back(data.size() + 100, '\0');
  size_t off = 0;
  int requests = 0;
  for (;;) {
    auto n = session_->Read(
        fid, off, absl::MakeSpan(reinterpret_cast<uint8_t*>(back.data()) + off, back.size() - off));
    ASSERT_TRUE(n.ok()) << n.status();
    ++requests;
    if (*n == 0) break;
    EXPECT_LE(*n, session_->max_read());
    off += *n;
  }
  back.resize(off);
  EXPECT_TRUE(back == data) << "read back " << back.size() << " bytes that differ";
  EXPECT_GE(requests, static_cast<int>(data.size() / session_->max_read()));
  EXPECT_TRUE(session_->Clunk(fid).ok());
}

TEST_F(DiodTest, SixtyFourMiBSequentialWithChecksum) {
  // The load that kills the kernel client's RDMA connection on Soft-RoCE.
  constexpr size_t kSize = 64u << 20;
  std::string data(kSize, '\0');
  std::mt19937_64 rng(7);
  for (size_t i = 0; i < kSize; i += 8) {
    uint64_t v = rng();
    std::memcpy(&data[i], &v, 8);
  }
  uint32_t fid = WalkTo({});
  ASSERT_TRUE(session_->Lcreate(fid, "big64", O_RDWR, 0644, 0).ok());
  for (size_t off = 0; off < kSize;) {
    auto n = session_->Write(
        fid, off,
        absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(data.data()) + off, kSize - off));
    ASSERT_TRUE(n.ok()) << n.status();
    ASSERT_GT(*n, 0u);
    off += *n;
  }
  ASSERT_TRUE(session_->Fsync(fid, false).ok());
  std::string back(kSize, '\0');
  for (size_t off = 0; off < kSize;) {
    auto n = session_->Read(
        fid, off, absl::MakeSpan(reinterpret_cast<uint8_t*>(back.data()) + off, kSize - off));
    ASSERT_TRUE(n.ok()) << n.status();
    ASSERT_GT(*n, 0u);
    off += *n;
  }
  EXPECT_TRUE(back == data) << "read-back differs";
  EXPECT_TRUE(ReadDisk(export_ / "big64") == data) << "export file differs";
  EXPECT_TRUE(session_->Clunk(fid).ok());
  EXPECT_EQ(session_->stats().protocol_errors.load(), 0u);
}

TEST_F(DiodTest, GetattrMatchesDisk) {
  CreateFile("f", "hello world");
  uint32_t fid = WalkTo({"f"});
  auto a = session_->Getattr(fid, kGetattrAll);
  ASSERT_TRUE(a.ok()) << a.status();
  struct stat st;
  ASSERT_EQ(stat((export_ / "f").c_str(), &st), 0);
  EXPECT_EQ(a->size, 11u);
  EXPECT_EQ(a->mode, st.st_mode);
  EXPECT_EQ(a->uid, st.st_uid);
  EXPECT_EQ(a->nlink, st.st_nlink);
  EXPECT_EQ(a->mtime_sec, static_cast<uint64_t>(st.st_mtim.tv_sec));
  EXPECT_EQ(a->qid.path, st.st_ino);
  EXPECT_TRUE(session_->Clunk(fid).ok());
}

TEST_F(DiodTest, SetattrModeSizeTimes) {
  CreateFile("f", std::string(5000, 'a'));
  uint32_t fid = WalkTo({"f"});
  Tsetattr t;
  t.fid = fid;
  t.valid = kSetattrMode | kSetattrSize | kSetattrMtime | kSetattrMtimeSet | kSetattrAtime |
            kSetattrAtimeSet;
  t.mode = 0600;
  t.size = 1000;
  t.mtime_sec = 1000000000;
  t.mtime_nsec = 5;
  t.atime_sec = 1100000000;
  ASSERT_TRUE(session_->Setattr(t).ok());
  struct stat st;
  ASSERT_EQ(stat((export_ / "f").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_size, 1000);
  EXPECT_EQ(st.st_mtim.tv_sec, 1000000000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 5);
  EXPECT_EQ(st.st_atim.tv_sec, 1100000000);
  EXPECT_TRUE(session_->Clunk(fid).ok());
}

TEST_F(DiodTest, ReaddirOf2000EntriesAcrossManyCalls) {
  fs::create_directory(export_ / "many");
  std::set<std::string> want = {".", ".."};
  for (int i = 0; i < 2000; ++i) {
    std::string n = absl::StrCat("entry-", i);
    std::ofstream(export_ / "many" / n) << i;
    want.insert(n);
  }
  uint32_t fid = WalkTo({"many"});
  ASSERT_TRUE(session_->Lopen(fid, O_RDONLY | O_DIRECTORY).ok());
  std::set<std::string> got;
  uint64_t offset = 0;
  int calls = 0;
  for (;;) {
    auto ents = session_->Readdir(fid, offset, 1024);  // ~30 entries per call
    ASSERT_TRUE(ents.ok()) << ents.status();
    ++calls;
    if (ents->empty()) break;
    for (const Dirent& d : *ents) {
      EXPECT_TRUE(got.insert(d.name).second) << "duplicate " << d.name;
      if (d.name.rfind("entry-", 0) == 0) {
        struct stat st;
        ASSERT_EQ(stat((export_ / "many" / d.name).c_str(), &st), 0);
        EXPECT_EQ(d.qid.path, st.st_ino);
      }
    }
    offset = ents->back().offset;
  }
  EXPECT_EQ(got, want);
  EXPECT_GT(calls, 20);
  EXPECT_TRUE(session_->Clunk(fid).ok());
}

TEST_F(DiodTest, MkdirSymlinkReadlinkLinkMknod) {
  uint32_t dir = WalkTo({});
  auto d = session_->Mkdir(dir, "sub", 0755, 0);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(d->type & kQtDir);
  EXPECT_TRUE(fs::is_directory(export_ / "sub"));

  auto s = session_->Symlink(dir, "lnk", "some/target", 0);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->type & kQtSymlink);
  EXPECT_EQ(fs::read_symlink(export_ / "lnk"), "some/target");
  uint32_t l = WalkTo({"lnk"});
  auto t = session_->Readlink(l);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t, "some/target");
  EXPECT_TRUE(session_->Clunk(l).ok());

  CreateFile("orig", "x");
  uint32_t o = WalkTo({"orig"});
  ASSERT_TRUE(session_->Link(dir, o, "hard").ok());
  struct stat st;
  ASSERT_EQ(stat((export_ / "hard").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 2u);
  EXPECT_TRUE(session_->Clunk(o).ok());

  auto p = session_->Mknod(dir, "fifo", S_IFIFO | 0640, 0, 0, 0);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(lstat((export_ / "fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0640u);

  auto again = session_->Mkdir(dir, "sub", 0755, 0);
  EXPECT_EQ(ToErrno(again.status()), EEXIST);
  EXPECT_TRUE(session_->Clunk(dir).ok());
}

TEST_F(DiodTest, RenameatUnlinkatRename) {
  CreateFile("a", "content-a");
  fs::create_directory(export_ / "d");
  // Made here, as root; the server may squash us to the export's owner.
  struct stat root_st;
  ASSERT_EQ(stat(export_.c_str(), &root_st), 0);
  ASSERT_EQ(chown((export_ / "d").c_str(), root_st.st_uid, root_st.st_gid), 0);
  uint32_t dir = WalkTo({});
  uint32_t sub = WalkTo({"d"});
  // diod 1.0.24 has no Trenameat and answers EOPNOTSUPP; the kernel client
  // then falls back to Trename, and so do we (FUSE layer). Accept either,
  // but when it succeeds it must have done the right thing.
  absl::Status ra = session_->Renameat(dir, "a", sub, "b");
  if (ra.ok()) {
    EXPECT_FALSE(fs::exists(export_ / "a"));
  } else {
    ASSERT_EQ(ToErrno(ra), EOPNOTSUPP) << ra;
    uint32_t a = WalkTo({"a"});
    absl::Status rn = session_->Rename(a, sub, "b");
    ASSERT_TRUE(rn.ok()) << rn;
    EXPECT_TRUE(session_->Clunk(a).ok());
  }
  EXPECT_FALSE(fs::exists(export_ / "a"));
  EXPECT_EQ(ReadDisk(export_ / "d" / "b"), "content-a");

  uint32_t b = WalkTo({"d", "b"});
  ASSERT_TRUE(session_->Rename(b, dir, "c").ok());
  EXPECT_EQ(ReadDisk(export_ / "c"), "content-a");
  EXPECT_TRUE(session_->Clunk(b).ok());

  // diod 1.0.24 also lacks Tunlinkat (EOPNOTSUPP); then, like the kernel
  // client, walk to the name and Tremove it.
  bool have_unlinkat = true;
  auto unlink_at = [&](const std::string& name, uint32_t flags) -> absl::Status {
    if (have_unlinkat) {
      absl::Status st = session_->Unlinkat(dir, name, flags);
      if (ToErrno(st) != EOPNOTSUPP) return st;
      have_unlinkat = false;
    }
    uint32_t f = session_->AllocFid();
    if (auto w = session_->Walk(dir, f, {name}); !w.ok()) {
      session_->FreeFid(f);
      return w.status();
    }
    return session_->Remove(f);
  };
  std::ofstream(export_ / "d" / "keep") << "x";
  EXPECT_EQ(ToErrno(unlink_at("d", kAtRemoveDir)), ENOTEMPTY);
  EXPECT_TRUE(fs::exists(export_ / "d" / "keep"));
  if (have_unlinkat) {
    EXPECT_EQ(ToErrno(session_->Unlinkat(dir, "d", 0)), EISDIR);
  }
  fs::remove(export_ / "d" / "keep");
  EXPECT_TRUE(unlink_at("d", kAtRemoveDir).ok());
  EXPECT_FALSE(fs::exists(export_ / "d"));
  EXPECT_TRUE(unlink_at("c", 0).ok());
  EXPECT_FALSE(fs::exists(export_ / "c"));
  EXPECT_EQ(ToErrno(unlink_at("c", 0)), ENOENT);
  EXPECT_TRUE(session_->Clunk(sub).ok());
  EXPECT_TRUE(session_->Clunk(dir).ok());
}

TEST_F(DiodTest, RemoveClunksAndDeletes) {
  CreateFile("gone", "x");
  uint32_t fid = WalkTo({"gone"});
  EXPECT_TRUE(session_->Remove(fid).ok());
  EXPECT_FALSE(fs::exists(export_ / "gone"));
}

TEST_F(DiodTest, FsyncAndStatfs) {
  CreateFile("f", "data");
  uint32_t fid = WalkTo({"f"});
  ASSERT_TRUE(session_->Lopen(fid, O_RDWR).ok());
  EXPECT_TRUE(session_->Fsync(fid, false).ok());
  EXPECT_TRUE(session_->Fsync(fid, true).ok());
  auto s = session_->Statfs(fid);
  ASSERT_TRUE(s.ok()) << s.status();
  struct statvfs v;
  ASSERT_EQ(statvfs(export_.c_str(), &v), 0);
  EXPECT_EQ(s->bsize, v.f_bsize);
  EXPECT_EQ(s->blocks, v.f_blocks);
  EXPECT_GT(s->namelen, 0u);
  EXPECT_TRUE(session_->Clunk(fid).ok());
}

TEST_F(DiodTest, XattrSetGetList) {
  if (setxattr(export_.c_str(), "user.p9probe", "1", 1, 0) != 0) {
    GTEST_SKIP() << "the export's file system has no user xattrs: " << strerror(errno);
  }
  removexattr(export_.c_str(), "user.p9probe");
  CreateFile("f", "x");
  uint32_t fid = WalkTo({"f"});
  std::string value = "value-\x01\x02-bytes";
  ASSERT_TRUE(
      session_
          ->SetXattr(
              fid, "user.p9test",
              absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(value.data()), value.size()), 0)
          .ok());
  char buf[256];
  ssize_t n = getxattr((export_ / "f").c_str(), "user.p9test", buf, sizeof(buf));
  ASSERT_EQ(n, static_cast<ssize_t>(value.size()));
  EXPECT_EQ(std::string(buf, n), value);

  auto got = session_->GetXattr(fid, "user.p9test");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, value);
  auto list = session_->GetXattr(fid, "");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_NE(list->find("user.p9test"), std::string::npos);
  auto missing = session_->GetXattr(fid, "user.nope");
  EXPECT_EQ(ToErrno(missing.status()), ENODATA);
  EXPECT_TRUE(session_->Clunk(fid).ok());
}

TEST_F(DiodTest, LockIsVisibleOnTheServer) {
  CreateFile("locked", "x");
  uint32_t fid = WalkTo({"locked"});
  ASSERT_TRUE(session_->Lopen(fid, O_RDWR).ok());
  Tlock l;
  l.fid = fid;
  l.type = kLockTypeWrlck;
  l.start = 0;
  l.length = 0;
  l.proc_id = 1234;
  l.client_id = "p9test";
  auto r = session_->Lock(l);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, kLockSuccess);

  // diod implements Tlock with flock() on its own descriptor (whole-file
  // locks), so another open file description on the export sees it held.
  int fd = open((export_ / "locked").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(flock(fd, LOCK_EX | LOCK_NB), -1);
  EXPECT_EQ(errno, EWOULDBLOCK);

  Tgetlock g;
  g.fid = fid;
  g.type = kLockTypeRdlck;
  g.proc_id = 1234;
  g.client_id = "p9test";
  auto gl = session_->Getlock(g);
  ASSERT_TRUE(gl.ok()) << gl.status();
  EXPECT_LE(gl->type, kLockTypeUnlck);

  l.type = kLockTypeUnlck;
  r = session_->Lock(l);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, kLockSuccess);
  EXPECT_EQ(flock(fd, LOCK_EX | LOCK_NB), 0) << strerror(errno);
  flock(fd, LOCK_UN);
  close(fd);
  EXPECT_TRUE(session_->Clunk(fid).ok());
}

TEST_F(DiodTest, ManyThreadsOneSession) {
  constexpr int kThreads = 8;
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::string name = absl::StrCat("thread-", t);
      std::string data(200000 + t * 1000, static_cast<char>('a' + t));
      uint32_t fid = session_->AllocFid();
      if (!session_->Walk(root_fid_, fid, {}).ok() ||
          !session_->Lcreate(fid, name, O_RDWR, 0644, 0).ok()) {
        bad++;
        return;
      }
      for (size_t off = 0; off < data.size();) {
        auto n =
            session_->Write(fid, off,
                            absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(data.data()) + off,
                                                data.size() - off));
        if (!n.ok() || *n == 0) {
          bad++;
          return;
        }
        off += *n;
      }
      std::string back(data.size(), '\0');
      for (size_t off = 0; off < back.size();) {
        auto n = session_->Read(
            fid, off,
            absl::MakeSpan(reinterpret_cast<uint8_t*>(back.data()) + off, back.size() - off));
        if (!n.ok() || *n == 0) {
          bad++;
          return;
        }
        off += *n;
      }
      if (back != data) bad++;
      if (!session_->Clunk(fid).ok()) bad++;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(fs::file_size(export_ / absl::StrCat("thread-", t)), 200000u + t * 1000);
  }
  EXPECT_EQ(session_->stats().protocol_errors.load(), 0u);
}

TEST_F(DiodTest, ServerGoingAwayFailsCallsPromptly) {
  // Kill diod's connection by closing our channel from under a session in
  // use: every later call must fail at once rather than hang.
  session_->Close(absl::UnavailableError("test closed it"));
  absl::Time start = absl::Now();
  auto a = session_->Getattr(root_fid_);
  EXPECT_FALSE(a.ok());
  EXPECT_EQ(ToErrno(a.status()), ENOTCONN);
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  root_.reset();  // nothing left to clunk
}

}  // namespace
}  // namespace p9
