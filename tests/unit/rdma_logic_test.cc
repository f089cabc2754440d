// The parts of rdma/ that need no RDMA device: credit accounting, buffer
// ownership, msize capping, and the relay bridge (over in-process channels).
#include <future>
#include <set>
#include <thread>

#include "client/loopback_channel.h"
#include "client/session.h"
#include "gtest/gtest.h"
#include "rdma/buffer_pool.h"
#include "rdma/credits.h"
#include "rdma/relay_bridge.h"
#include "tests/unit/scripted_server.h"

namespace p9::rdma {
namespace {

TEST(CreditGate, BlocksAtZeroAndWakesOnRelease) {
  CreditGate g("test credits", 2);
  ASSERT_TRUE(g.Acquire(absl::InfiniteFuture()).ok());
  ASSERT_TRUE(g.Acquire(absl::InfiniteFuture()).ok());
  EXPECT_EQ(g.available(), 0);
  absl::Status timed = g.Acquire(absl::Now() + absl::Milliseconds(50));
  EXPECT_EQ(timed.code(), absl::StatusCode::kDeadlineExceeded);
  auto waiter = std::async(std::launch::async, [&] { return g.Acquire(absl::InfiniteFuture()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  g.Release(1);
  EXPECT_TRUE(waiter.get().ok());
  EXPECT_EQ(g.available(), 0);
}

TEST(CreditGate, CloseFailsWaitersAndLaterAcquires) {
  CreditGate g("test credits", 1);
  ASSERT_TRUE(g.Acquire(absl::InfiniteFuture()).ok());
  auto waiter = std::async(std::launch::async, [&] { return g.Acquire(absl::InfiniteFuture()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  g.Close(absl::UnavailableError("gone"));
  EXPECT_EQ(waiter.get().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(g.Acquire(absl::InfiniteFuture()).code(), absl::StatusCode::kUnavailable);
}

TEST(CreditGate, OverReleaseIsCountedNotBanked) {
  CreditGate g("test credits", 3);
  g.Release(2);
  EXPECT_EQ(g.available(), 3);
  EXPECT_EQ(g.over_releases(), 2);
}

TEST(BufferPool, OwnershipMovesBetweenCpuAndNic) {
  auto pool = BufferPool::Create(2, 4, 128);
  ASSERT_TRUE(pool.ok()) << pool.status();
  BufferPool& p = **pool;
  std::optional<CpuBuffer> b = p.TakeFree();
  ASSERT_TRUE(b.has_value());
  b->bytes()[0] = 42;
  uint32_t index = b->index();
  NicPosting posted = p.HandToNic(*std::move(b), 100);
  EXPECT_EQ(p.nic_owned(), 1);
  EXPECT_EQ(BufferPool::PoolOf(posted.wr_id), 2);
  EXPECT_EQ(posted.sge.length, 100u);
  absl::StatusOr<CpuBuffer> back = p.Reclaim(posted.wr_id);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->index(), index);
  EXPECT_EQ(back->bytes()[0], 42);
  EXPECT_EQ(p.nic_owned(), 0);
  // A second completion for the same work request is refused: the buffer is
  // the CPU's now and must not get a second owner.
  EXPECT_FALSE(p.Reclaim(posted.wr_id).ok());
  // So is a work request of another pool or out of range.
  EXPECT_FALSE(p.Reclaim((uint64_t{1} << 56) | index).ok());
  EXPECT_FALSE(p.Reclaim((uint64_t{2} << 56) | 99).ok());
  p.ReturnFree(*std::move(back));
}

TEST(BufferPool, HandsOutEachBufferOnce) {
  auto pool = BufferPool::Create(1, 3, 64);
  ASSERT_TRUE(pool.ok());
  std::vector<CpuBuffer> taken;
  std::set<uint32_t> seen;
  while (auto b = (*pool)->TakeFree()) {
    EXPECT_TRUE(seen.insert(b->index()).second);
    taken.push_back(*std::move(b));
  }
  EXPECT_EQ(taken.size(), 3u);
  (*pool)->ReturnFree(std::move(taken.back()));
  taken.pop_back();
  EXPECT_TRUE((*pool)->TakeFree().has_value());
}

TEST(CapVersionMsize, LowersOnlyVersionMessagesAboveTheCap) {
  std::vector<uint8_t> tv;
  EncodeMessage(kNoTag, Tversion{1 << 20, "9P2000.L"}, &tv);
  CapVersionMsize(absl::MakeSpan(tv), 65536);
  EXPECT_EQ(DecodeMessage<Tversion>(tv, 1 << 20)->msize, 65536u);
  std::vector<uint8_t> rv;
  EncodeMessage(kNoTag, Rversion{8192, "9P2000.L"}, &rv);
  CapVersionMsize(absl::MakeSpan(rv), 65536);
  EXPECT_EQ(DecodeMessage<Rversion>(rv, 1 << 20)->msize, 8192u);
  std::vector<uint8_t> tr;
  EncodeMessage(3, Tread{1 << 30, 0, 1 << 30}, &tr);
  std::vector<uint8_t> before = tr;
  CapVersionMsize(absl::MakeSpan(tr), 4096);
  EXPECT_EQ(tr, before);
  std::vector<uint8_t> tiny = {11, 0, 0, 0, 100, 0xff, 0xff};
  CapVersionMsize(absl::MakeSpan(tiny), 4096);  // too short to hold msize: left alone
  EXPECT_EQ(tiny.size(), 7u);
}

// A client session → bridge → scripted server, all in-process: the bridge
// is transparent except for capping msize.
TEST(RelayBridge, RelaysBothWaysAndCapsMsize) {
  auto [client_end, bridge_client_side] = MakeLoopbackPair(1 << 20);
  auto [bridge_server_side, server_end] = MakeLoopbackPair(1 << 20);
  testing::ScriptedServer server(std::move(server_end), /*version_msize=*/1 << 20);
  auto bridge =
      RelayBridge::Create(std::move(bridge_client_side), std::move(bridge_server_side), 32768);
  ASSERT_TRUE(bridge.ok()) << bridge.status();
  SessionOptions o;
  o.msize = 1 << 20;
  auto session = Session::Connect(std::move(client_end), o);
  ASSERT_TRUE(session.ok()) << session.status();
  // The server would grant 1 MiB; the bridge capped the request to 32 KiB.
  EXPECT_EQ((*session)->msize(), 32768u);

  auto call = std::async(std::launch::async, [&] { return (*session)->Readlink(7); });
  std::optional<testing::Received> r = server.Next();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->As<Treadlink>().fid, 7u);
  server.Reply(r->header.tag, Rreadlink{"through the bridge"});
  EXPECT_EQ(*call.get(), "through the bridge");
  EXPECT_GE((*bridge)->messages(), 4u);
  EXPECT_FALSE((*bridge)->finished());

  server.Disconnect();
  for (int i = 0; i < 200 && !(*bridge)->finished(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE((*bridge)->finished());
}

}  // namespace
}  // namespace p9::rdma
