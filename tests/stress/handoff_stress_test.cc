// Many threads × many calls through one Session, with a server that answers
// in random order after random delays. Every call must get exactly its own
// reply (checked by content). Built and run under ThreadSanitizer too, where
// a missing release/acquire pair in the hand-off shows up as a data race.
#include <atomic>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/loopback_channel.h"
#include "client/mutex.h"
#include "client/session.h"
#include "gtest/gtest.h"

namespace p9 {
namespace {

// Answers Treadlink(fid) with target "t<fid>" and Tgetattr(fid) with
// qid.path = fid, from `workers` threads that each pick a random pending
// request and sleep a random few microseconds first, so replies come back
// reordered and sometimes before the caller has even started waiting.
class ShuffleServer : public ChannelReceiver {
 public:
  ShuffleServer(std::unique_ptr<Channel> ch, int workers) : ch_(std::move(ch)) {
    if (!ch_->Start(this).ok()) abort();
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this, i] { Work(i); });
  }
  ~ShuffleServer() override {
    {
      MutexLock lock(&mu_);
      stop_ = true;
    }
    for (auto& t : threads_) t.join();
    ch_->Close(absl::CancelledError("done"));
  }

 private:
  void OnMessage(absl::Span<const uint8_t> msg) override {
    MutexLock lock(&mu_);
    pending_.emplace_back(msg.begin(), msg.end());
  }
  void OnBadMessage(uint16_t, const absl::Status&) override {}
  void OnClosed(const absl::Status&) override {}

  void Work(int seed) {
    std::mt19937 rng(seed * 7919 + 1);
    for (;;) {
      std::vector<uint8_t> msg;
      {
        MutexLock lock(&mu_);
        auto ready = [this]()
                         ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stop_ || !pending_.empty(); };
        mu_.Await(ready);
        if (pending_.empty()) return;
        size_t i = std::uniform_int_distribution<size_t>(0, pending_.size() - 1)(rng);
        std::swap(pending_[i], pending_.back());
        msg = std::move(pending_.back());
        pending_.pop_back();
      }
      int delay = std::uniform_int_distribution<int>(0, 3)(rng);
      if (delay > 0) std::this_thread::sleep_for(std::chrono::microseconds(delay * 25));
      Answer(msg);
    }
  }

  void Answer(const std::vector<uint8_t>& msg) {
    absl::StatusOr<Header> h = ParseHeader(msg, 1u << 30);
    if (!h.ok()) abort();
    std::vector<uint8_t> out;
    switch (static_cast<MsgType>(h->type)) {
      case MsgType::kTversion: {
        auto tv = DecodeMessage<Tversion>(msg, 1u << 30);
        EncodeMessage(h->tag, Rversion{tv->msize, "9P2000.L"}, &out);
        break;
      }
      case MsgType::kTreadlink: {
        auto t = DecodeMessage<Treadlink>(msg, 1u << 30);
        EncodeMessage(h->tag, Rreadlink{absl::StrCat("t", t->fid)}, &out);
        break;
      }
      case MsgType::kTgetattr: {
        auto t = DecodeMessage<Tgetattr>(msg, 1u << 30);
        Rgetattr r;
        r.qid.path = t->fid;
        r.size = t->request_mask;
        EncodeMessage(h->tag, r, &out);
        break;
      }
      default:
        abort();
    }
    (void)ch_->Send(out);
  }

  std::unique_ptr<Channel> ch_;
  Mutex mu_;
  std::vector<std::vector<uint8_t>> pending_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

int CallsPerThread() {
  // Sanitizer builds run slower; they still make thousands of calls in all.
  const char* env = std::getenv("P9_STRESS_CALLS");
  return env ? std::atoi(env) : 2000;
}

TEST(HandoffStress, EveryCallGetsItsOwnReply) {
  constexpr int kThreads = 16;
  const int calls = CallsPerThread();
  auto [client_end, server_end] = MakeLoopbackPair(1u << 20);
  ShuffleServer server(std::move(server_end), 2);
  SessionOptions o;
  o.max_tags = 32;  // fewer tags than threads: callers also contend for tags
  o.timeout = absl::Seconds(120);
  auto session = Session::Connect(std::move(client_end), o);
  ASSERT_TRUE(session.ok()) << session.status();
  Session* s = session->get();

  std::atomic<int> wrong{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < calls; ++i) {
        uint32_t fid = static_cast<uint32_t>(t * 1000000 + i);
        if (i % 2 == 0) {
          absl::StatusOr<std::string> r = s->Readlink(fid);
          if (!r.ok()) {
            failed.fetch_add(1);
          } else if (*r != absl::StrCat("t", fid)) {
            wrong.fetch_add(1);
          }
        } else {
          absl::StatusOr<Rgetattr> r = s->Getattr(fid, 0x1000 + i);
          if (!r.ok()) {
            failed.fetch_add(1);
          } else if (r->qid.path != fid || r->size != uint64_t{0x1000} + i) {
            wrong.fetch_add(1);
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(s->stats().requests.load(), uint64_t(kThreads) * calls);
  EXPECT_EQ(s->stats().protocol_errors.load(), 0u);
  EXPECT_EQ(s->stats().in_flight.load(), 0);
}

// Closing the channel while many threads are mid-call must fail all of them
// promptly and leave nothing waiting.
TEST(HandoffStress, CloseDuringLoadFailsEveryWaiter) {
  constexpr int kThreads = 16;
  auto [client_end, server_end] = MakeLoopbackPair(1u << 20);
  ShuffleServer server(std::move(server_end), 1);
  SessionOptions o;
  o.timeout = absl::Seconds(120);
  auto session = Session::Connect(std::move(client_end), o);
  ASSERT_TRUE(session.ok()) << session.status();
  Session* s = session->get();
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100000; ++i) {
        absl::StatusOr<std::string> r = s->Readlink(static_cast<uint32_t>(t * 1000000 + i));
        if (!r.ok()) {
          failed.fetch_add(1);
          return;
        }
        ok.fetch_add(1);
      }
    });
  }
  while (ok.load() < 2000) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  s->Close(absl::UnavailableError("test closes the channel"));
  for (auto& th : threads) th.join();
  EXPECT_EQ(failed.load(), kThreads);
  EXPECT_EQ(s->stats().in_flight.load(), 0);
}

}  // namespace
}  // namespace p9
