// Session behaviour against a scripted server on the in-process channel: the
// real Session, Call hand-off and loopback transport, with the server side
// written here so every reply order and every malformed reply can be tried.
#include "client/session.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "client/errors.h"
#include "client/interrupt.h"
#include "gtest/gtest.h"
#include "tests/unit/scripted_server.h"

namespace p9 {
namespace {

using testing::MakeRig;
using testing::Received;
using testing::Rig;
using testing::ScriptedServer;

absl::StatusOr<std::unique_ptr<Session>> ConnectTo(uint32_t server_msize, std::string version,
                                                   std::unique_ptr<ScriptedServer>* server,
                                                   SessionOptions options = {}) {
  auto [client_end, server_end] = MakeLoopbackPair(1u << 20);
  *server = std::make_unique<ScriptedServer>(std::move(server_end), server_msize, version);
  return Session::Connect(std::move(client_end), options);
}

TEST(SessionVersion, NegotiatesMsizeDownward) {
  std::unique_ptr<ScriptedServer> server;
  SessionOptions o;
  o.msize = 65536;
  absl::StatusOr<std::unique_ptr<Session>> s = ConnectTo(8192, "9P2000.L", &server, o);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)->msize(), 8192u);
  // The kernel's P9_IOHDRSZ (24), which diod enforces, bounds both.
  EXPECT_EQ((*s)->max_read(), 8192u - 24);
  EXPECT_EQ((*s)->max_write(), 8192u - 24);
}

TEST(SessionVersion, RefusesOtherDialects) {
  std::unique_ptr<ScriptedServer> server;
  absl::StatusOr<std::unique_ptr<Session>> s = ConnectTo(8192, "9P2000.u", &server);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("9P2000.L"), absl::string_view::npos) << s.status();
  EXPECT_NE(s.status().message().find("9P2000.u"), absl::string_view::npos) << s.status();
}

TEST(SessionVersion, RefusesRaisedMsize) {
  auto [client_end, server_end] = MakeLoopbackPair(1u << 20);
  ScriptedServer server(std::move(server_end), /*version_msize=*/0);
  std::thread answer([&] {
    std::optional<Received> r = server.Next();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->header.tag, kNoTag);
    server.Reply(kNoTag, Rversion{r->As<Tversion>().msize * 2, "9P2000.L"});
  });
  SessionOptions o;
  o.msize = 8192;
  absl::StatusOr<std::unique_ptr<Session>> s = Session::Connect(std::move(client_end), o);
  answer.join();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss) << s.status();
}

TEST(SessionVersion, TimesOutOnSilentServer) {
  auto [client_end, server_end] = MakeLoopbackPair(1u << 20);
  ScriptedServer server(std::move(server_end), /*version_msize=*/0);
  SessionOptions o;
  o.timeout = absl::Milliseconds(200);
  absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<Session>> s = Session::Connect(std::move(client_end), o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDeadlineExceeded) << s.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

// Starts Readlink(fid) on its own thread.
std::future<absl::StatusOr<std::string>> AsyncReadlink(Session* s, uint32_t fid) {
  return std::async(std::launch::async, [s, fid] { return s->Readlink(fid); });
}

TEST(Session, RepliesOutOfOrderReachTheirCallers) {
  Rig rig = MakeRig();
  std::vector<std::future<absl::StatusOr<std::string>>> calls;
  for (uint32_t fid = 1; fid <= 5; ++fid) calls.push_back(AsyncReadlink(rig.session.get(), fid));
  std::vector<Received> got;
  for (int i = 0; i < 5; ++i) {
    std::optional<Received> r = rig.server->Next();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->header.type, static_cast<uint8_t>(MsgType::kTreadlink));
    EXPECT_NE(r->header.tag, kNoTag);
    got.push_back(*r);
  }
  // Answer in reverse arrival order; each target names the fid it was for.
  for (auto it = got.rbegin(); it != got.rend(); ++it) {
    rig.server->Reply(it->header.tag,
                      Rreadlink{"target-" + std::to_string(it->As<Treadlink>().fid)});
  }
  for (uint32_t fid = 1; fid <= 5; ++fid) {
    absl::StatusOr<std::string> r = calls[fid - 1].get();
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, "target-" + std::to_string(fid));
  }
  EXPECT_EQ(rig.session->stats().protocol_errors.load(), 0u);
  EXPECT_EQ(rig.session->stats().in_flight.load(), 0);
}

TEST(Session, RlerrorBecomesErrno) {
  Rig rig = MakeRig();
  auto call = std::async(std::launch::async, [&] { return rig.session->Getattr(7); });
  std::optional<Received> r = rig.server->Next();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->As<Tgetattr>().fid, 7u);
  rig.server->Reply(r->header.tag, Rlerror{ENOENT});
  absl::StatusOr<Rgetattr> a = call.get();
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(ToErrno(a.status()), ENOENT);
  EXPECT_EQ(a.status().code(), absl::StatusCode::kNotFound);
}

TEST(Session, DuplicateReplyIsCountedAndDropped) {
  Rig rig = MakeRig();
  auto call = AsyncReadlink(rig.session.get(), 1);
  std::optional<Received> r = rig.server->Next();
  ASSERT_TRUE(r.has_value());
  rig.server->Reply(r->header.tag, Rreadlink{"first"});
  EXPECT_EQ(*call.get(), "first");
  rig.server->Reply(r->header.tag, Rreadlink{"second"});
  // The duplicate is dropped; the next call on the same tag gets its own
  // reply, not the stale one.
  auto next = AsyncReadlink(rig.session.get(), 2);
  std::optional<Received> r2 = rig.server->Next();
  ASSERT_TRUE(r2.has_value());
  rig.server->Reply(r2->header.tag, Rreadlink{"third"});
  EXPECT_EQ(*next.get(), "third");
  EXPECT_EQ(rig.session->stats().protocol_errors.load(), 1u);
}

TEST(Session, UnknownTagIsCountedAndDropped) {
  Rig rig = MakeRig();
  rig.server->Reply(999, Rreadlink{"nobody asked"});
  rig.server->Reply(40, Rclunk{});  // a valid tag number with no call on it
  auto call = AsyncReadlink(rig.session.get(), 1);
  std::optional<Received> r = rig.server->Next();
  ASSERT_TRUE(r.has_value());
  rig.server->Reply(r->header.tag, Rreadlink{"ok"});
  EXPECT_EQ(*call.get(), "ok");
  EXPECT_EQ(rig.session->stats().protocol_errors.load(), 2u);
}

TEST(Session, WrongReplyTypeFailsOnlyThatCall) {
  Rig rig = MakeRig();
  auto call = AsyncReadlink(rig.session.get(), 1);
  std::optional<Received> r = rig.server->Next();
  ASSERT_TRUE(r.has_value());
  rig.server->Reply(r->header.tag, Rgetattr{});
  absl::StatusOr<std::string> bad = call.get();
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(ToErrno(bad.status()), EIO);
  EXPECT_NE(bad.status().message().find("Rgetattr"), absl::string_view::npos) << bad.status();
  EXPECT_TRUE(rig.session->alive());
  auto again = AsyncReadlink(rig.session.get(), 2);
  std::optional<Received> r2 = rig.server->Next();
  ASSERT_TRUE(r2.has_value());
  rig.server->Reply(r2->header.tag, Rreadlink{"fine"});
  EXPECT_EQ(*again.get(), "fine");
}

TEST(Session, MalformedReplyBodyFailsTheCall) {
  Rig rig = MakeRig();
  auto call = AsyncReadlink(rig.session.get(), 1);
  std::optional<Received> r = rig.server->Next();
  ASSERT_TRUE(r.has_value());
  // Rreadlink whose string claims 200 bytes but carries 3.
  std::vector<uint8_t> msg = {0,
                              0,
                              0,
                              0,
                              static_cast<uint8_t>(MsgType::kRreadlink),
                              static_cast<uint8_t>(r->header.tag),
                              static_cast<uint8_t>(r->header.tag >> 8),
                              200,
                              0,
                              'a',
                              'b',
                              'c'};
  msg[0] = static_cast<uint8_t>(msg.size());
  rig.server->SendRaw(msg);
  absl::StatusOr<std::string> bad = call.get();
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss) << bad.status();
  EXPECT_TRUE(rig.session->alive());
}

TEST(Session, OversizeReplyFailsTheCallAndKeepsTheChannel) {
  SessionOptions o;
  o.msize = 8192;
  Rig rig = MakeRig(o, 8192);
  ASSERT_EQ(rig.session->msize(), 8192u);
  std::vector<uint8_t> buf(4096);
  auto call =
      std::async(std::launch::async, [&] { return rig.session->Read(3, 0, absl::MakeSpan(buf)); });
  std::optional<Received> r = rig.server->Next();
  ASSERT_TRUE(r.has_value());
  rig.server->Reply(r->header.tag, Rread{Bytes{std::string(9000, 'x')}});
  absl::StatusOr<size_t> bad = call.get();
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(ToErrno(bad.status()), EIO);
  EXPECT_TRUE(rig.session->alive());
  EXPECT_GE(rig.session->stats().protocol_errors.load(), 1u);
}

TEST(Session, ReadCopiesPayloadAndRejectsOverlongReply) {
  Rig rig = MakeRig();
  std::vector<uint8_t> buf(5);
  auto call = std::async(std::launch::async,
                         [&] { return rig.session->Read(3, 100, absl::MakeSpan(buf)); });
  std::optional<Received> r = rig.server->Next();
  ASSERT_TRUE(r.has_value());
  Tread t = r->As<Tread>();
  EXPECT_EQ(t.fid, 3u);
  EXPECT_EQ(t.offset, 100u);
  EXPECT_EQ(t.count, 5u);
  rig.server->Reply(r->header.tag, Rread{Bytes{"hello"}});
  ASSERT_EQ(*call.get(), 5u);
  EXPECT_EQ(std::string(buf.begin(), buf.end()), "hello");

  auto over =
      std::async(std::launch::async, [&] { return rig.session->Read(3, 0, absl::MakeSpan(buf)); });
  r = rig.server->Next();
  ASSERT_TRUE(r.has_value());
  rig.server->Reply(r->header.tag, Rread{Bytes{"too long!"}});
  absl::StatusOr<size_t> bad = over.get();
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss);
}

TEST(Session, WriteCarriesThePayload) {
  Rig rig = MakeRig();
  std::string data = "payload bytes";
  auto call = std::async(std::launch::async, [&] {
    return rig.session->Write(
        4, 42, absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
  });
  std::optional<Received> r = rig.server->Next();
  ASSERT_TRUE(r.has_value());
  Twrite w = r->As<Twrite>();
  EXPECT_EQ(w.fid, 4u);
  EXPECT_EQ(w.offset, 42u);
  EXPECT_EQ(w.data.data, data);
  rig.server->Reply(r->header.tag, Rwrite{static_cast<uint32_t>(data.size())});
  EXPECT_EQ(*call.get(), data.size());
}

TEST(Session, ConnectionDropFailsWaitersAndLaterCalls) {
  Rig rig = MakeRig();
  auto a = AsyncReadlink(rig.session.get(), 1);
  auto b = AsyncReadlink(rig.session.get(), 2);
  ASSERT_TRUE(rig.server->Next().has_value());
  ASSERT_TRUE(rig.server->Next().has_value());
  rig.server->Disconnect();
  for (auto* f : {&a, &b}) {
    ASSERT_EQ(f->wait_for(std::chrono::seconds(10)), std::future_status::ready);
    absl::StatusOr<std::string> r = f->get();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  }
  EXPECT_FALSE(rig.session->alive());
  absl::StatusOr<std::string> later = rig.session->Readlink(3);
  EXPECT_EQ(later.status().code(), absl::StatusCode::kUnavailable);
}

TEST(Session, TimedOutCallIsFlushedAndItsTagReused) {
  SessionOptions o;
  o.timeout = absl::Milliseconds(200);
  o.max_tags = 2;
  Rig rig = MakeRig(o);
  auto call = AsyncReadlink(rig.session.get(), 1);
  std::optional<Received> r = rig.server->Next();
  ASSERT_TRUE(r.has_value());
  std::optional<Received> flush = rig.server->Next();
  ASSERT_TRUE(flush.has_value());
  ASSERT_EQ(flush->header.type, static_cast<uint8_t>(MsgType::kTflush));
  EXPECT_EQ(flush->As<Tflush>().oldtag, r->header.tag);
  EXPECT_NE(flush->header.tag, r->header.tag);
  rig.server->Reply(flush->header.tag, Rflush{});
  absl::StatusOr<std::string> res = call.get();
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(ToErrno(res.status()), ETIMEDOUT);
  EXPECT_TRUE(rig.session->alive());
  // Both tags are free again: two calls can be in flight at once.
  auto x = AsyncReadlink(rig.session.get(), 2);
  auto y = AsyncReadlink(rig.session.get(), 3);
  std::optional<Received> rx = rig.server->Next();
  std::optional<Received> ry = rig.server->Next();
  ASSERT_TRUE(rx.has_value() && ry.has_value());
  rig.server->Reply(rx->header.tag, Rreadlink{"x"});
  rig.server->Reply(ry->header.tag, Rreadlink{"y"});
  EXPECT_TRUE(x.get().ok());
  EXPECT_TRUE(y.get().ok());
  EXPECT_EQ(rig.session->stats().flushes.load(), 1u);
}

TEST(Session, ReplyBeforeRflushIsUsed) {
  SessionOptions o;
  o.timeout = absl::Milliseconds(200);
  Rig rig = MakeRig(o);
  auto call = AsyncReadlink(rig.session.get(), 1);
  std::optional<Received> r = rig.server->Next();
  std::optional<Received> flush = rig.server->Next();
  ASSERT_TRUE(r.has_value() && flush.has_value());
  rig.server->Reply(r->header.tag, Rreadlink{"late but valid"});
  rig.server->Reply(flush->header.tag, Rflush{});
  absl::StatusOr<std::string> res = call.get();
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(*res, "late but valid");
}

TEST(Session, UnansweredFlushClosesTheChannel) {
  SessionOptions o;
  o.timeout = absl::Milliseconds(100);
  o.flush_timeout = absl::Milliseconds(200);
  Rig rig = MakeRig(o);
  absl::Time start = absl::Now();
  absl::StatusOr<std::string> res = rig.session->Readlink(1);
  ASSERT_FALSE(res.ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_FALSE(rig.session->alive());
  EXPECT_EQ(rig.session->Readlink(2).status().code(), absl::StatusCode::kUnavailable);
}

TEST(Session, TagsAreBoundedAndCallersWait) {
  SessionOptions o;
  o.max_tags = 2;
  Rig rig = MakeRig(o);
  auto a = AsyncReadlink(rig.session.get(), 1);
  auto b = AsyncReadlink(rig.session.get(), 2);
  auto c = AsyncReadlink(rig.session.get(), 3);
  std::optional<Received> r1 = rig.server->Next();
  std::optional<Received> r2 = rig.server->Next();
  ASSERT_TRUE(r1.has_value() && r2.has_value());
  // The third call cannot be sent while both tags are taken.
  EXPECT_FALSE(rig.server->Next(absl::Milliseconds(200)).has_value());
  rig.server->Reply(r1->header.tag, Rreadlink{std::to_string(r1->As<Treadlink>().fid)});
  std::optional<Received> r3 = rig.server->Next();
  ASSERT_TRUE(r3.has_value());
  EXPECT_EQ(r3->header.tag, r1->header.tag);  // the only free tag
  rig.server->Reply(r2->header.tag, Rreadlink{std::to_string(r2->As<Treadlink>().fid)});
  rig.server->Reply(r3->header.tag, Rreadlink{std::to_string(r3->As<Treadlink>().fid)});
  EXPECT_EQ(*a.get(), "1");
  EXPECT_EQ(*b.get(), "2");
  EXPECT_EQ(*c.get(), "3");
}

TEST(Session, PartialWalkIsEnoent) {
  Rig rig = MakeRig();
  auto call = std::async(std::launch::async, [&] {
    return rig.session->Walk(0, 1, {"a", "b", "c"});
  });
  std::optional<Received> r = rig.server->Next();
  ASSERT_TRUE(r.has_value());
  Twalk w = r->As<Twalk>();
  EXPECT_EQ(w.wnames.names, (std::vector<std::string>{"a", "b", "c"}));
  rig.server->Reply(r->header.tag, Rwalk{WalkQids{{Qid{kQtDir, 1, 10}}}});
  absl::StatusOr<std::vector<Qid>> res = call.get();
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(ToErrno(res.status()), ENOENT);
}

TEST(Session, FidsAreReused) {
  Rig rig = MakeRig();
  uint32_t a = rig.session->AllocFid();
  uint32_t b = rig.session->AllocFid();
  EXPECT_NE(a, b);
  EXPECT_NE(a, kNoFid);
  rig.session->FreeFid(a);
  EXPECT_EQ(rig.session->AllocFid(), a);
}

TEST(Session, OversizeOrUnencodableRequestsNeverGoOut) {
  SessionOptions o;
  o.msize = 8192;
  Rig rig = MakeRig(o, 8192);
  absl::StatusOr<Qid> big = rig.session->Symlink(1, "l", std::string(9000, 't'), 0);
  EXPECT_EQ(ToErrno(big.status()), E2BIG) << big.status();
  absl::StatusOr<Qid> huge = rig.session->Symlink(1, "l", std::string(70000, 't'), 0);
  EXPECT_EQ(ToErrno(huge.status()), ENAMETOOLONG) << huge.status();
  EXPECT_FALSE(rig.server->Next(absl::Milliseconds(100)).has_value());
  EXPECT_EQ(rig.session->stats().in_flight.load(), 0);
}

TEST(Session, EmptyReadIsFine) {
  Rig rig = MakeRig();
  auto call = std::async(std::launch::async,
                         [&] { return rig.session->Read(3, 0, absl::Span<uint8_t>()); });
  std::optional<Received> r = rig.server->Next();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->As<Tread>().count, 0u);
  rig.server->Reply(r->header.tag, Rread{});
  absl::StatusOr<size_t> n = call.get();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 0u);
}

// Records what Session::ReadTo hands over, and on which thread.
class RecordingSink final : public ReadSink {
 public:
  void Deliver(absl::Span<const uint8_t> data) override {
    data_.assign(data.begin(), data.end());
    thread_ = std::this_thread::get_id();
    // The caller cannot have returned yet: it waits for kDone, which is
    // published only after this returns.
    caller_returned_early_ = returned_.load(std::memory_order_acquire);
    calls_.fetch_add(1, std::memory_order_release);
  }
  // Only after ReadTo returned (its acquire of kDone orders our writes).
  std::string data() const { return std::string(data_.begin(), data_.end()); }
  std::thread::id thread() const { return thread_; }
  int calls() const { return calls_.load(std::memory_order_acquire); }
  bool caller_returned_early() const { return caller_returned_early_; }
  void MarkReturned() { returned_.store(true, std::memory_order_release); }

 private:
  std::vector<uint8_t> data_;
  std::thread::id thread_;
  bool caller_returned_early_ = false;
  std::atomic<bool> returned_{false};
  std::atomic<int> calls_{0};
};

std::future<absl::StatusOr<size_t>> AsyncReadTo(Session* s, uint32_t count, RecordingSink* sink,
                                                std::thread::id* caller) {
  return std::async(std::launch::async, [=] {
    *caller = std::this_thread::get_id();
    absl::StatusOr<size_t> n = s->ReadTo(3, 100, count, sink);
    sink->MarkReturned();
    return n;
  });
}

TEST(SessionReadTo, DeliversOnTheDeliveryThreadBeforeTheCallerReturns) {
  Rig rig = MakeRig();
  RecordingSink sink;
  std::thread::id caller;
  auto call = AsyncReadTo(rig.session.get(), 5, &sink, &caller);
  std::optional<Received> r = rig.server->Next();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->As<Tread>().offset, 100u);
  EXPECT_EQ(r->As<Tread>().count, 5u);
  rig.server->Reply(r->header.tag, Rread{Bytes{"hello"}});
  absl::StatusOr<size_t> n = call.get();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 5u);
  EXPECT_EQ(sink.calls(), 1);
  EXPECT_EQ(sink.data(), "hello");
  EXPECT_NE(sink.thread(), caller);
  EXPECT_FALSE(sink.caller_returned_early());
}

TEST(SessionReadTo, ErrorsAndMalformedRepliesNeverReachTheSink) {
  Rig rig = MakeRig();
  RecordingSink sink;
  std::thread::id caller;
  auto err = AsyncReadTo(rig.session.get(), 5, &sink, &caller);
  std::optional<Received> r = rig.server->Next();
  ASSERT_TRUE(r.has_value());
  rig.server->Reply(r->header.tag, Rlerror{EACCES});
  absl::StatusOr<size_t> n = err.get();
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(ToErrno(n.status()), EACCES);

  RecordingSink sink2;
  auto over = AsyncReadTo(rig.session.get(), 5, &sink2, &caller);
  r = rig.server->Next();
  ASSERT_TRUE(r.has_value());
  const uint64_t protocol_errors = rig.session->stats().protocol_errors.load();
  rig.server->Reply(r->header.tag, Rread{Bytes{"too long!"}});
  n = over.get();
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(rig.session->stats().protocol_errors.load(), protocol_errors + 1);
  EXPECT_EQ(sink.calls(), 0);
  EXPECT_EQ(sink2.calls(), 0);
  EXPECT_TRUE(rig.session->alive());
}

TEST(SessionReadTo, ReplyBeforeRflushIsDeliveredAndLateOneIsNot) {
  SessionOptions o;
  o.timeout = absl::Milliseconds(200);
  Rig rig = MakeRig(o);
  std::thread::id caller;
  {
    // The reply beats the Rflush: it is delivered and the read succeeds.
    RecordingSink sink;
    auto call = AsyncReadTo(rig.session.get(), 4, &sink, &caller);
    std::optional<Received> r = rig.server->Next();
    std::optional<Received> flush = rig.server->Next();
    ASSERT_TRUE(r.has_value() && flush.has_value());
    ASSERT_EQ(flush->header.type, static_cast<uint8_t>(MsgType::kTflush));
    rig.server->Reply(r->header.tag, Rread{Bytes{"late"}});
    rig.server->Reply(flush->header.tag, Rflush{});
    absl::StatusOr<size_t> n = call.get();
    ASSERT_TRUE(n.ok()) << n.status();
    EXPECT_EQ(sink.data(), "late");
  }
  // The Rflush comes first: the read times out, and an Rread that still
  // arrives for the old tag finds an idle slot, not the (gone) sink.
  uint16_t old_tag;
  {
    RecordingSink sink;
    auto call = AsyncReadTo(rig.session.get(), 4, &sink, &caller);
    std::optional<Received> r = rig.server->Next();
    std::optional<Received> flush = rig.server->Next();
    ASSERT_TRUE(r.has_value() && flush.has_value());
    old_tag = r->header.tag;
    rig.server->Reply(flush->header.tag, Rflush{});
    absl::StatusOr<size_t> n = call.get();
    ASSERT_FALSE(n.ok());
    EXPECT_EQ(ToErrno(n.status()), ETIMEDOUT);
    EXPECT_EQ(sink.calls(), 0);
  }
  const uint64_t protocol_errors = rig.session->stats().protocol_errors.load();
  rig.server->Reply(old_tag, Rread{Bytes{"gone"}});
  // Dropped and counted (no call may arm the tag before that: it would
  // take the stray reply as its own).
  for (int i = 0; i < 5000 && rig.session->stats().protocol_errors.load() == protocol_errors; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(rig.session->stats().protocol_errors.load(), protocol_errors + 1);
  EXPECT_TRUE(rig.session->alive());
}

TEST(SessionInterrupt, InterruptFlushesAndFailsWithEintr) {
  Rig rig = MakeRig();
  Interrupter intr;
  auto call = std::async(std::launch::async, [&] {
    ScopedInterruptible scope(&intr);
    return rig.session->Readlink(1);
  });
  std::optional<Received> r = rig.server->Next();
  ASSERT_TRUE(r.has_value());
  intr.Interrupt();  // from another thread, while the call waits
  std::optional<Received> flush = rig.server->Next();
  ASSERT_TRUE(flush.has_value());
  ASSERT_EQ(flush->header.type, static_cast<uint8_t>(MsgType::kTflush));
  EXPECT_EQ(flush->As<Tflush>().oldtag, r->header.tag);
  rig.server->Reply(flush->header.tag, Rflush{});
  absl::StatusOr<std::string> res = call.get();
  EXPECT_EQ(ToErrno(res.status()), EINTR) << res.status();
  EXPECT_EQ(rig.session->stats().interrupts.load(), 1u);
  EXPECT_EQ(rig.session->stats().in_flight.load(), 0);
  EXPECT_TRUE(rig.session->alive());
}

TEST(SessionInterrupt, ReplyBeforeRflushWins) {
  Rig rig = MakeRig();
  Interrupter intr;
  auto call = std::async(std::launch::async, [&] {
    ScopedInterruptible scope(&intr);
    return rig.session->Readlink(1);
  });
  std::optional<Received> r = rig.server->Next();
  ASSERT_TRUE(r.has_value());
  intr.Interrupt();
  std::optional<Received> flush = rig.server->Next();
  ASSERT_TRUE(flush.has_value());
  rig.server->Reply(r->header.tag, Rreadlink{"made it"});
  rig.server->Reply(flush->header.tag, Rflush{});
  absl::StatusOr<std::string> res = call.get();
  ASSERT_TRUE(res.ok()) << res.status();
  EXPECT_EQ(*res, "made it");
}

TEST(SessionInterrupt, AlreadyInterruptedSendsNothing) {
  Rig rig = MakeRig();
  Interrupter intr;
  intr.Interrupt();
  ScopedInterruptible scope(&intr);
  absl::StatusOr<std::string> res = rig.session->Readlink(1);
  EXPECT_EQ(ToErrno(res.status()), EINTR);
  EXPECT_FALSE(rig.server->Next(absl::Milliseconds(100)).has_value());
}

// A channel that counts ForgetReply calls and otherwise forwards.
class CountingChannel : public Channel {
 public:
  explicit CountingChannel(std::unique_ptr<Channel> inner) : inner_(std::move(inner)) {}
  absl::Status Start(ChannelReceiver* r) override { return inner_->Start(r); }
  absl::Status Send(absl::Span<const uint8_t> m) override { return inner_->Send(m); }
  uint32_t max_message_size() const override { return inner_->max_message_size(); }
  void SetReceiveLimit(uint32_t b) override { inner_->SetReceiveLimit(b); }
  void Close(const absl::Status& why) override { inner_->Close(why); }
  std::string Describe() const override { return inner_->Describe(); }
  void ForgetReply() override { forgotten_.fetch_add(1); }
  int forgotten() const { return forgotten_.load(); }

 private:
  std::unique_ptr<Channel> inner_;
  std::atomic<int> forgotten_{0};
};

// Every request flushed without a reply must hand back what the transport
// reserved for that reply (an RDMA receive credit), and only those: a reply
// that beats Rflush consumed its reservation normally.
TEST(Session, FlushedRequestsReturnTheirReplyReservation) {
  auto [client_end, server_end] = MakeLoopbackPair(1u << 20);
  ScriptedServer server(std::move(server_end));
  auto counting = std::make_unique<CountingChannel>(std::move(client_end));
  CountingChannel* ch = counting.get();
  SessionOptions o;
  o.timeout = absl::Milliseconds(100);
  auto s = Session::Connect(std::move(counting), o);
  ASSERT_TRUE(s.ok()) << s.status();
  constexpr int kRounds = 20;
  for (int i = 0; i < kRounds; ++i) {
    auto call = AsyncReadlink(s->get(), i);
    std::optional<Received> r = server.Next();
    std::optional<Received> flush = server.Next();
    ASSERT_TRUE(r.has_value() && flush.has_value());
    ASSERT_EQ(flush->header.type, static_cast<uint8_t>(MsgType::kTflush));
    if (i % 2 == 0) {
      server.Reply(r->header.tag, Rreadlink{"answered"});  // beats the Rflush
    }
    server.Reply(flush->header.tag, Rflush{});
    absl::StatusOr<std::string> res = call.get();
    EXPECT_EQ(res.ok(), i % 2 == 0);
  }
  EXPECT_EQ(ch->forgotten(), kRounds / 2);
  EXPECT_EQ((*s)->stats().in_flight.load(), 0);
}

}  // namespace
}  // namespace p9
