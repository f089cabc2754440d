// Micro-benchmarks of the client's hot paths; run by hand, not by ctest:
//
//   build/bin/p9_bench [--benchmark_filter=Rpc] [--benchmark_min_time=1]
//
//   BM_Encode/<T>, BM_Decode/<T>  one message through the codec
//   BM_RpcRoundTrip/Getattr/threads
//                                 Session::Getattr against an in-process
//                                 server on the loopback channel: encode,
//                                 two channel hops, two thread wake-ups,
//                                 Call hand-off, decode
//   BM_RpcRoundTrip/Getattr/inline
//                                 the same RPC with the server answering
//                                 inside Send() on the caller's thread: the
//                                 client's own work per RPC (tag, encode,
//                                 claim, publish, decode) with no OS
//                                 wake-up, like a polled transport
//   BM_Handoff/PingPong           the Call hand-off alone: two threads
//                                 complete each other's Call in turn, so
//                                 one iteration is two completion→waiter
//                                 wake-ups (the per_handoff counter)
#include <benchmark/benchmark.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "client/call.h"
#include "client/channel.h"
#include "client/codec.h"
#include "client/loopback_channel.h"
#include "client/messages.h"
#include "client/protocol.h"
#include "client/session.h"
#include "client/tunables.h"
#include "tests/fuzz/message_fill.h"

namespace {

using p9_test::FillOptions;
using p9_test::MessageFiller;

constexpr uint32_t kMsize = p9::tunables::kMaxMsize;

template <typename M>
void BM_Encode(benchmark::State& state, const M& m) {
  std::vector<uint8_t> out;
  for (auto _ : state) {
    p9::EncodeMessage(1, m, &out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * out.size()));
}

template <typename M>
void BM_Decode(benchmark::State& state, const M& m) {
  const std::vector<uint8_t> bytes = p9_test::Encode(m, 1);
  for (auto _ : state) {
    absl::StatusOr<M> got = p9::DecodeMessage<M>(bytes, kMsize);
    if (!got.ok()) {
      state.SkipWithError("decode failed");
      break;
    }
    benchmark::DoNotOptimize(got);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes.size()));
}

template <typename M>
void RegisterCodec(const std::string& label, FillOptions options = {}) {
  const M m = MessageFiller(options).Make<M>();
  benchmark::RegisterBenchmark(absl::StrCat("BM_Encode/", label).c_str(),
                               [m](benchmark::State& s) { BM_Encode(s, m); });
  benchmark::RegisterBenchmark(absl::StrCat("BM_Decode/", label).c_str(),
                               [m](benchmark::State& s) { BM_Decode(s, m); });
}

// The smallest server that lets a Session connect and Getattr: encodes into
// `out` the answer to Tversion and Tgetattr, and Rlerror(ENOSYS) to
// anything else; false for a request it cannot parse.
class EchoAnswers {
 public:
  bool Answer(absl::Span<const uint8_t> msg, std::vector<uint8_t>* out) const {
    absl::StatusOr<p9::Header> h = p9::ParseHeader(msg, kMsize);
    if (!h.ok()) return false;
    switch (static_cast<p9::MsgType>(h->type)) {
      case p9::MsgType::kTversion: {
        absl::StatusOr<p9::Tversion> tv = p9::DecodeMessage<p9::Tversion>(msg, kMsize);
        if (!tv.ok()) return false;
        p9::EncodeMessage(h->tag, p9::Rversion{tv->msize, p9::kVersion9P2000L}, out);
        return true;
      }
      case p9::MsgType::kTgetattr:
        p9::EncodeMessage(h->tag, attr_, out);
        return true;
      default:
        p9::EncodeMessage(h->tag, p9::Rlerror{ENOSYS}, out);
        return true;
    }
  }

 private:
  const p9::Rgetattr attr_ = MessageFiller().Make<p9::Rgetattr>();
};

// EchoAnswers behind the server end of a loopback pair: runs on that end's
// delivery thread.
class EchoServer : public p9::ChannelReceiver {
 public:
  explicit EchoServer(std::unique_ptr<p9::Channel> channel) : channel_(std::move(channel)) {}
  ~EchoServer() override { channel_->Close(absl::CancelledError("benchmark done")); }

  absl::Status Start() { return channel_->Start(this); }

  void OnMessage(absl::Span<const uint8_t> msg) override {
    if (answers_.Answer(msg, &out_)) (void)channel_->Send(out_);
  }
  void OnBadMessage(uint16_t, const absl::Status&) override {}
  void OnClosed(const absl::Status&) override {}

 private:
  const std::unique_ptr<p9::Channel> channel_;
  const EchoAnswers answers_;
  std::vector<uint8_t> out_;  // delivery thread only
};

// A channel whose server answers inside Send(), delivering the reply to the
// session on the calling thread before Send() returns, so the caller's wait
// finds it done. Only for a single caller at a time (the benchmark loop).
class InlineEchoChannel : public p9::Channel {
 public:
  absl::Status Start(p9::ChannelReceiver* receiver) override {
    receiver_ = receiver;
    return absl::OkStatus();
  }
  absl::Status Send(absl::Span<const uint8_t> msg) override {
    if (closed_) return absl::UnavailableError("closed");
    if (answers_.Answer(msg, &out_)) receiver_->OnMessage(out_);
    return absl::OkStatus();
  }
  uint32_t max_message_size() const override { return kMsize; }
  void SetReceiveLimit(uint32_t) override {}
  void Close(const absl::Status& why) override {
    if (closed_) return;
    closed_ = true;
    if (receiver_ != nullptr) receiver_->OnClosed(why);
  }
  std::string Describe() const override { return "inline echo"; }

 private:
  const EchoAnswers answers_;
  p9::ChannelReceiver* receiver_ = nullptr;
  bool closed_ = false;
  std::vector<uint8_t> out_;
};

void RpcLoop(benchmark::State& state, std::unique_ptr<p9::Channel> client_end) {
  p9::SessionOptions options;
  options.msize = 64 * 1024;
  absl::StatusOr<std::unique_ptr<p9::Session>> session =
      p9::Session::Connect(std::move(client_end), options);
  if (!session.ok()) {
    state.SkipWithError(session.status().ToString().c_str());
    return;
  }
  for (auto _ : state) {
    absl::StatusOr<p9::Rgetattr> r = (*session)->Getattr(1, p9::kGetattrBasic);
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      break;
    }
    benchmark::DoNotOptimize(r);
  }
  // The session goes before the server: its destructor closes the link.
  session->reset();
}

void BM_RpcThreads(benchmark::State& state) {
  auto [client_end, server_end] = p9::MakeLoopbackPair(kMsize);
  EchoServer server(std::move(server_end));
  if (absl::Status st = server.Start(); !st.ok()) {
    state.SkipWithError(st.ToString().c_str());
    return;
  }
  RpcLoop(state, std::move(client_end));
}

void BM_RpcInline(benchmark::State& state) {
  RpcLoop(state, std::make_unique<InlineEchoChannel>());
}

// Each thread waits on its own Call and completes the other's, exactly the
// Claim/Complete → WaitUntil path a reply takes from the delivery thread to
// a FUSE worker. Each side arms its Call before completing the other's, so
// Claim() always succeeds at once and all waiting happens in WaitUntil.
void BM_Handoff(benchmark::State& state) {
  p9::Call mine;    // the benchmark thread waits on this
  p9::Call theirs;  // the helper thread waits on this
  const std::vector<uint8_t> reply(p9::kHeaderSize, 0x5a);
  std::atomic<bool> stop{false};
  theirs.Arm(p9::MsgType::kRflush);
  std::thread helper([&] {
    for (;;) {
      theirs.WaitUntil(absl::InfiniteFuture());
      theirs.Disarm();
      // Relaxed is enough: the Complete() that woke us was released after
      // the store, and WaitUntil's acquire load saw it.
      if (stop.load(std::memory_order_relaxed)) return;
      theirs.Arm(p9::MsgType::kRflush);
      while (!mine.Claim()) {
      }
      mine.Complete(reply);
    }
  });
  for (auto _ : state) {
    mine.Arm(p9::MsgType::kRflush);
    while (!theirs.Claim()) {
    }
    theirs.Complete(reply);
    mine.WaitUntil(absl::InfiniteFuture());
    mine.Disarm();
  }
  stop.store(true, std::memory_order_relaxed);
  while (!theirs.Claim()) {
  }
  theirs.Complete(reply);
  helper.join();
  state.counters["per_handoff"] =
      benchmark::Counter(static_cast<double>(2 * state.iterations()),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

}  // namespace

int main(int argc, char** argv) {
  RegisterCodec<p9::Tversion>("Tversion");
  RegisterCodec<p9::Twalk>("Twalk/3names", {.list_size = 3});
  RegisterCodec<p9::Rwalk>("Rwalk/3qids", {.list_size = 3});
  RegisterCodec<p9::Tgetattr>("Tgetattr");
  RegisterCodec<p9::Rgetattr>("Rgetattr");
  RegisterCodec<p9::Tlcreate>("Tlcreate");
  RegisterCodec<p9::Tread>("Tread");
  RegisterCodec<p9::Rread>("Rread/4KiB", {.data_size = 4096});
  RegisterCodec<p9::Twrite>("Twrite/64KiB", {.data_size = 64 * 1024});
  RegisterCodec<p9::Rreaddir>("Rreaddir/32entries", {.list_size = 32});
  benchmark::RegisterBenchmark("BM_RpcRoundTrip/Getattr/threads", BM_RpcThreads)->UseRealTime();
  benchmark::RegisterBenchmark("BM_RpcRoundTrip/Getattr/inline", BM_RpcInline)->UseRealTime();
  benchmark::RegisterBenchmark("BM_Handoff/PingPong", BM_Handoff)->UseRealTime();

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
