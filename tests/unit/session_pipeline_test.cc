// Session::ReadMany / WriteMany against a scripted server on the in-process
// channel: every piece is on the wire before any reply, replies in any order
// land in the right place, a short piece is end of file, a failed one fails
// the whole call, tags bound the window without deadlock, and an interrupt
// flushes every piece in flight.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <future>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "client/errors.h"
#include "client/interrupt.h"
#include "client/session.h"
#include "gtest/gtest.h"
#include "tests/unit/scripted_server.h"

namespace p9 {
namespace {

using testing::MakeRig;
using testing::Received;
using testing::Rig;
using testing::ScriptedServer;

// The file the tests read: its byte at offset o is kFile[o - kBase].
constexpr uint64_t kBase = 1000;
const std::string kFile = "0123456789";

std::string Slice(uint64_t offset, uint32_t count) {
  if (offset < kBase || offset - kBase >= kFile.size()) return "";
  return kFile.substr(offset - kBase, count);
}

// Takes the next `n` requests, failing the test if one does not come.
std::vector<Received> TakeN(ScriptedServer* server, int n) {
  std::vector<Received> out;
  for (int i = 0; i < n; ++i) {
    std::optional<Received> r = server->Next();
    if (!r.has_value()) {
      ADD_FAILURE() << "request " << i << " of " << n << " never came";
      break;
    }
    out.push_back(std::move(*r));
  }
  return out;
}

std::future<absl::StatusOr<size_t>> AsyncReadMany(Session* s, std::vector<uint8_t>* buf,
                                                  uint32_t piece) {
  return std::async(std::launch::async,
                    [=] { return s->ReadMany(7, kBase, absl::MakeSpan(*buf), piece); });
}

TEST(SessionReadMany, AllPiecesGoOutBeforeAnyReplyAndLandInPlace) {
  Rig rig = MakeRig();
  std::vector<uint8_t> buf(10, 'x');
  auto call = AsyncReadMany(rig.session.get(), &buf, 4);
  std::vector<Received> rs = TakeN(rig.server.get(), 3);
  ASSERT_EQ(rs.size(), 3u);
  std::vector<std::pair<uint64_t, uint32_t>> asked;
  for (const Received& r : rs) {
    Tread t = r.As<Tread>();
    EXPECT_EQ(t.fid, 7u);
    asked.emplace_back(t.offset, t.count);
  }
  std::sort(asked.begin(), asked.end());
  EXPECT_EQ(asked, (std::vector<std::pair<uint64_t, uint32_t>>{
                       {kBase, 4}, {kBase + 4, 4}, {kBase + 8, 2}}));
  // Answered last piece first.
  for (auto it = rs.rbegin(); it != rs.rend(); ++it) {
    Tread t = it->As<Tread>();
    rig.server->Reply(it->header.tag, Rread{Bytes{Slice(t.offset, t.count)}});
  }
  absl::StatusOr<size_t> n = call.get();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 10u);
  EXPECT_EQ(std::string(buf.begin(), buf.end()), kFile);
  EXPECT_EQ(rig.session->stats().in_flight.load(), 0);
}

TEST(SessionReadMany, ShortPieceIsEndOfFile) {
  Rig rig = MakeRig();
  std::vector<uint8_t> buf(12, 'x');
  auto call = AsyncReadMany(rig.session.get(), &buf, 4);
  std::vector<Received> rs = TakeN(rig.server.get(), 3);
  ASSERT_EQ(rs.size(), 3u);
  for (const Received& r : rs) {
    Tread t = r.As<Tread>();
    // The file ends 6 bytes in: the second piece is short, the third empty.
    std::string data =
        Slice(t.offset, t.count).substr(0, t.offset - kBase < 6 ? 6 - (t.offset - kBase) : 0);
    rig.server->Reply(r.header.tag, Rread{Bytes{data}});
  }
  absl::StatusOr<size_t> n = call.get();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 6u);
  EXPECT_EQ(std::string(buf.begin(), buf.begin() + 6), "012345");
}

TEST(SessionReadMany, FailedMiddlePieceFailsTheRead) {
  Rig rig = MakeRig();
  std::vector<uint8_t> buf(10);
  auto call = AsyncReadMany(rig.session.get(), &buf, 4);
  std::vector<Received> rs = TakeN(rig.server.get(), 3);
  ASSERT_EQ(rs.size(), 3u);
  for (const Received& r : rs) {
    Tread t = r.As<Tread>();
    if (t.offset == kBase + 4) {
      rig.server->Reply(r.header.tag, Rlerror{EIO});
    } else {
      rig.server->Reply(r.header.tag, Rread{Bytes{Slice(t.offset, t.count)}});
    }
  }
  // Not a short count of 4: the kernel would take that for end of file.
  absl::StatusOr<size_t> n = call.get();
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(ToErrno(n.status()), EIO);
  EXPECT_EQ(rig.session->stats().in_flight.load(), 0);
  EXPECT_TRUE(rig.session->alive());
}

TEST(SessionReadMany, OverlongPieceIsAProtocolErrorNotData) {
  Rig rig = MakeRig();
  std::vector<uint8_t> buf(8, 'x');
  auto call = AsyncReadMany(rig.session.get(), &buf, 4);
  std::vector<Received> rs = TakeN(rig.server.get(), 2);
  ASSERT_EQ(rs.size(), 2u);
  for (const Received& r : rs) {
    Tread t = r.As<Tread>();
    std::string data = t.offset == kBase ? "0123" : "456789";  // 6 for 4
    rig.server->Reply(r.header.tag, Rread{Bytes{data}});
  }
  absl::StatusOr<size_t> n = call.get();
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), absl::StatusCode::kDataLoss);
  // Nothing of the overlong reply was written past its piece.
  EXPECT_EQ(std::string(buf.begin() + 4, buf.end()), "xxxx");
}

TEST(SessionReadMany, TagsBoundTheWindow) {
  SessionOptions o;
  o.max_tags = 2;
  Rig rig = MakeRig(o);
  std::vector<uint8_t> buf(10);
  auto call = AsyncReadMany(rig.session.get(), &buf, 2);  // 5 pieces
  std::vector<Received> first = TakeN(rig.server.get(), 2);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_FALSE(rig.server->Next(absl::Milliseconds(200)).has_value());
  // Each reply frees a tag for the next piece.
  std::vector<Received> pending = first;
  int answered = 0;
  while (!pending.empty()) {
    Received r = pending.front();
    pending.erase(pending.begin());
    Tread t = r.As<Tread>();
    rig.server->Reply(r.header.tag, Rread{Bytes{Slice(t.offset, t.count)}});
    ++answered;
    if (answered + static_cast<int>(pending.size()) < 5) {
      std::optional<Received> next = rig.server->Next();
      ASSERT_TRUE(next.has_value());
      pending.push_back(*next);
    }
  }
  absl::StatusOr<size_t> n = call.get();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 10u);
  EXPECT_EQ(std::string(buf.begin(), buf.end()), kFile);
}

// Answers every Tread and Twrite from the file until stopped.
class Answerer {
 public:
  explicit Answerer(ScriptedServer* server) : server_(server), thread_([this] { Loop(); }) {}
  ~Answerer() {
    stop_.store(true, std::memory_order_relaxed);
    thread_.join();
  }

 private:
  void Loop() {
    while (!stop_.load(std::memory_order_relaxed)) {
      std::optional<Received> r = server_->Next(absl::Milliseconds(20));
      if (!r.has_value()) continue;
      if (r->header.type == static_cast<uint8_t>(MsgType::kTread)) {
        Tread t = r->As<Tread>();
        server_->Reply(r->header.tag, Rread{Bytes{Slice(t.offset, t.count)}});
      }
    }
  }

  ScriptedServer* const server_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(SessionReadMany, ConcurrentCallersShareFewTagsWithoutDeadlock) {
  SessionOptions o;
  o.max_tags = 2;
  o.timeout = absl::Seconds(20);
  Rig rig = MakeRig(o);
  Answerer answerer(rig.server.get());
  std::vector<std::vector<uint8_t>> bufs(6, std::vector<uint8_t>(10));
  std::vector<std::future<absl::StatusOr<size_t>>> calls;
  for (auto& b : bufs) calls.push_back(AsyncReadMany(rig.session.get(), &b, 3));
  for (size_t i = 0; i < calls.size(); ++i) {
    absl::StatusOr<size_t> n = calls[i].get();
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_EQ(*n, 10u);
    EXPECT_EQ(std::string(bufs[i].begin(), bufs[i].end()), kFile);
  }
  EXPECT_EQ(rig.session->stats().timeouts.load(), 0u);
}

TEST(SessionReadMany, InterruptFlushesEveryPieceInFlight) {
  Rig rig = MakeRig();
  std::vector<uint8_t> buf(10);
  Interrupter intr;
  auto call = std::async(std::launch::async, [&] {
    ScopedInterruptible scope(&intr);
    return rig.session->ReadMany(7, kBase, absl::MakeSpan(buf), 4);
  });
  std::vector<Received> rs = TakeN(rig.server.get(), 3);
  ASSERT_EQ(rs.size(), 3u);
  intr.Interrupt();
  // One Tflush per piece, each answered; none of the reads is.
  std::map<uint16_t, bool> flushed;
  for (const Received& r : rs) flushed[r.header.tag] = false;
  for (int i = 0; i < 3; ++i) {
    std::optional<Received> f = rig.server->Next();
    ASSERT_TRUE(f.has_value());
    ASSERT_EQ(f->header.type, static_cast<uint8_t>(MsgType::kTflush));
    uint16_t old = f->As<Tflush>().oldtag;
    ASSERT_TRUE(flushed.count(old));
    EXPECT_FALSE(flushed[old]);
    flushed[old] = true;
    rig.server->Reply(f->header.tag, Rflush{});
  }
  absl::StatusOr<size_t> n = call.get();
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(ToErrno(n.status()), EINTR);
  EXPECT_EQ(rig.session->stats().in_flight.load(), 0);
  EXPECT_TRUE(rig.session->alive());
}

TEST(SessionReadMany, OnePieceIsAPlainRead) {
  Rig rig = MakeRig();
  std::vector<uint8_t> buf(4);
  auto call = AsyncReadMany(rig.session.get(), &buf, 0);  // piece = max_read
  std::optional<Received> r = rig.server->Next();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->As<Tread>().count, 4u);
  rig.server->Reply(r->header.tag, Rread{Bytes{"0123"}});
  ASSERT_EQ(*call.get(), 4u);
  EXPECT_FALSE(rig.server->Next(absl::Milliseconds(50)).has_value());
}

std::future<absl::StatusOr<size_t>> AsyncWriteMany(Session* s, const std::string& data,
                                                   uint32_t piece) {
  return std::async(std::launch::async, [=] {
    return s->WriteMany(
        9, kBase, absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(data.data()), data.size()),
        piece);
  });
}

TEST(SessionWriteMany, PiecesCarryTheirBytesAtTheirOffsets) {
  Rig rig = MakeRig();
  auto call = AsyncWriteMany(rig.session.get(), kFile, 4);
  std::vector<Received> rs = TakeN(rig.server.get(), 3);
  ASSERT_EQ(rs.size(), 3u);
  std::string seen(kFile.size(), '?');
  for (const Received& r : rs) {
    Twrite w = r.As<Twrite>();
    EXPECT_EQ(w.fid, 9u);
    seen.replace(w.offset - kBase, w.data.data.size(), w.data.data);
  }
  EXPECT_EQ(seen, kFile);
  for (auto it = rs.rbegin(); it != rs.rend(); ++it) {
    rig.server->Reply(it->header.tag,
                      Rwrite{static_cast<uint32_t>(it->As<Twrite>().data.data.size())});
  }
  absl::StatusOr<size_t> n = call.get();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, kFile.size());
}

TEST(SessionWriteMany, ShortPieceEndsTheCountAndFailedOneFails) {
  Rig rig = MakeRig();
  {
    auto call = AsyncWriteMany(rig.session.get(), kFile, 4);
    std::vector<Received> rs = TakeN(rig.server.get(), 3);
    ASSERT_EQ(rs.size(), 3u);
    for (const Received& r : rs) {
      Twrite w = r.As<Twrite>();
      // The disk fills 6 bytes in.
      uint32_t took = w.offset == kBase ? 4 : w.offset == kBase + 4 ? 2 : 0;
      rig.server->Reply(r.header.tag, Rwrite{took});
    }
    absl::StatusOr<size_t> n = call.get();
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_EQ(*n, 6u);
  }
  {
    auto call = AsyncWriteMany(rig.session.get(), kFile, 4);
    std::vector<Received> rs = TakeN(rig.server.get(), 3);
    ASSERT_EQ(rs.size(), 3u);
    for (const Received& r : rs) {
      Twrite w = r.As<Twrite>();
      if (w.offset == kBase + 8) {
        rig.server->Reply(r.header.tag, Rlerror{ENOSPC});
      } else {
        rig.server->Reply(r.header.tag, Rwrite{static_cast<uint32_t>(w.data.data.size())});
      }
    }
    absl::StatusOr<size_t> n = call.get();
    ASSERT_FALSE(n.ok());
    EXPECT_EQ(ToErrno(n.status()), ENOSPC);
  }
  {
    // An Rwrite claiming more than its piece is a protocol error.
    auto call = AsyncWriteMany(rig.session.get(), kFile, 5);
    std::vector<Received> rs = TakeN(rig.server.get(), 2);
    ASSERT_EQ(rs.size(), 2u);
    for (const Received& r : rs) rig.server->Reply(r.header.tag, Rwrite{9});
    absl::StatusOr<size_t> n = call.get();
    ASSERT_FALSE(n.ok());
    EXPECT_EQ(n.status().code(), absl::StatusCode::kDataLoss);
  }
  EXPECT_EQ(rig.session->stats().in_flight.load(), 0);
  EXPECT_TRUE(rig.session->alive());
}

TEST(SessionWriteMany, ConnectionLossFailsEveryPiece) {
  Rig rig = MakeRig();
  auto call = AsyncWriteMany(rig.session.get(), kFile, 4);
  std::vector<Received> rs = TakeN(rig.server.get(), 3);
  ASSERT_EQ(rs.size(), 3u);
  rig.server->Reply(rs[0].header.tag, Rwrite{4});
  rig.server->Disconnect();
  absl::StatusOr<size_t> n = call.get();
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(ToErrno(n.status()), EIO);
  EXPECT_EQ(rig.session->stats().in_flight.load(), 0);
}

}  // namespace
}  // namespace p9
