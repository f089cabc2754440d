// libFuzzer target for the session fed whole reply streams: a Session on a
// TcpChannel over a socket pair, whose other end is a fake server that
// answers Tversion, then sends the fuzz input as its byte stream (any
// sizes, tags, types; framing included) while three calls from three
// threads wait for replies with short deadlines. Input format:
// session_stream.h.
//
// The oracle: nothing crashes; every call returns within its deadline plus
// the flush deadline (so none hangs); a call that succeeds returns what it
// asked for; afterwards no tag is still held; a closed session fails the
// next call at once. Without libFuzzer (standalone_main.cc) the same
// function replays the committed corpus.
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "client/codec.h"
#include "client/errors.h"
#include "client/log.h"
#include "client/messages.h"
#include "client/mutex.h"
#include "client/protocol.h"
#include "client/session.h"
#include "client/tcp_channel.h"
#include "tests/fuzz/session_stream.h"

namespace {

namespace ss = p9_test::session_stream;

// Short, so that inputs which leave calls unanswered (half of them: the
// kKeepOpen bit) still run at tens per second; the stream goes out only
// once every request is at the server, so replies beat them by far.
constexpr absl::Duration kTimeout = absl::Milliseconds(40);
constexpr absl::Duration kFlushTimeout = absl::Milliseconds(40);
// What a loaded machine or a sanitizer may add to a call's deadlines before
// it counts as hung.
constexpr absl::Duration kSlack = absl::Seconds(5);

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_session: %s\n", what.c_str());
  std::abort();
}

// Writes all of `bytes` to fd (false once the peer is gone).
bool WriteAll(int fd, absl::Span<const uint8_t> bytes) {
  while (!bytes.empty()) {
    ssize_t n = send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool ReadAll(int fd, uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// The server end: reads the client's T-messages on its own thread, answers
// Tversion (and, if asked, every Tflush), and sends the stream on demand.
class FakeServer {
 public:
  FakeServer(int fd, uint8_t flags, absl::Span<const uint8_t> rversion)
      : fd_(fd), flags_(flags), rversion_(rversion) {
    reader_ = std::thread([this] { ReadLoop(); });
  }
  ~FakeServer() {
    shutdown(fd_, SHUT_RDWR);  // ends ReadLoop
    reader_.join();
    close(fd_);
  }

  void SendStream(absl::Span<const uint8_t> stream) {
    p9::MutexLock lock(&write_mu_);
    WriteAll(fd_, stream);
    if ((flags_ & ss::kKeepOpen) == 0) shutdown(fd_, SHUT_WR);
  }
  // T-messages received so far.
  int requests() const { return requests_.load(std::memory_order_acquire); }

 private:
  void ReadLoop() {
    std::vector<uint8_t> msg;
    for (;;) {
      uint8_t hdr[p9::kHeaderSize];
      if (!ReadAll(fd_, hdr, sizeof(hdr))) return;
      uint32_t size = hdr[0] | (hdr[1] << 8) | (hdr[2] << 16) | (uint32_t{hdr[3]} << 24);
      if (size < p9::kHeaderSize || size > ss::kMsize) Fail("the client sent a malformed frame");
      msg.assign(hdr, hdr + p9::kHeaderSize);
      msg.resize(size);
      if (!ReadAll(fd_, msg.data() + p9::kHeaderSize, size - p9::kHeaderSize)) return;
      requests_.fetch_add(1, std::memory_order_release);
      uint16_t tag = static_cast<uint16_t>(hdr[5] | (hdr[6] << 8));
      std::vector<uint8_t> reply;
      if (hdr[4] == static_cast<uint8_t>(p9::MsgType::kTversion)) {
        if ((flags_ & ss::kOwnRversion) != 0) {
          reply.assign(rversion_.begin(), rversion_.end());
        } else {
          p9::EncodeMessage(p9::kNoTag, p9::Rversion{ss::kMsize, p9::kVersion9P2000L}, &reply);
        }
      } else if (hdr[4] == static_cast<uint8_t>(p9::MsgType::kTflush) &&
                 (flags_ & ss::kAnswerFlush) != 0) {
        p9::EncodeMessage(tag, p9::Rflush{}, &reply);
      }
      if (!reply.empty()) {
        p9::MutexLock lock(&write_mu_);
        if (!WriteAll(fd_, reply)) return;
      }
    }
  }

  const int fd_;
  const uint8_t flags_;
  const absl::Span<const uint8_t> rversion_;
  // Replies and the stream go out whole, never interleaved.
  p9::Mutex write_mu_;
  // Counted by the reader thread once a request is read whole, polled by
  // the harness (release/acquire: the harness acts on "it has arrived").
  std::atomic<int> requests_{0};
  std::thread reader_;
};

// One of the calls under test, run on its own thread.
struct Outcome {
  std::thread thread;
  // Set by the call's thread before it ends; read after join (which orders it).
  absl::Status status;
  absl::Duration took;
  // Whether the call has returned; polled while arming the next one.
  std::atomic<bool> returned{false};
};

// Counts what Session::ReadTo hands over (on the delivery thread).
struct CountingSink final : p9::ReadSink {
  void Deliver(absl::Span<const uint8_t> data) override {
    bytes = data.size();
    calls.fetch_add(1, std::memory_order_release);
  }
  size_t bytes = 0;  // read by the caller after ReadTo returned
  std::atomic<int> calls{0};
};

// Records how Session::ReadAsync ends, from whichever thread ends it.
struct AsyncRecorder final : p9::AsyncRead {
  void Deliver(absl::Span<const uint8_t> data) override {
    p9::MutexLock lock(&mu);
    ++delivers;
    bytes = data.size();
  }
  void Done(absl::StatusOr<size_t> n) override {
    {
      p9::MutexLock lock(&mu);
      ++dones;
      result = std::move(n);
    }
    done.Notify();
  }
  p9::Mutex mu;
  int delivers ABSL_GUARDED_BY(mu) = 0;
  int dones ABSL_GUARDED_BY(mu) = 0;
  size_t bytes ABSL_GUARDED_BY(mu) = 0;
  absl::StatusOr<size_t> result ABSL_GUARDED_BY(mu) = absl::UnknownError("no Done()");
  absl::Notification done;
};

template <typename Fn>
void Start(const FakeServer& server, Outcome& o, Fn fn, int requests = 1) {
  const int before = server.requests() + requests - 1;
  o.thread = std::thread([&o, fn] {
    absl::Time t0 = absl::Now();
    o.status = fn();
    o.took = absl::Now() - t0;
    o.returned.store(true, std::memory_order_release);
  });
  // The next call starts only once the server has this one's request (so
  // it holds its tag, and the tags are the ones session_stream.h promises
  // the seeds), and the stream only once all three are there: no server
  // answers a request before it has it.
  absl::Time give_up = absl::Now() + kSlack;
  while (server.requests() <= before && !o.returned.load(std::memory_order_acquire) &&
         absl::Now() < give_up) {
    std::this_thread::yield();
  }
}

void Run(uint8_t flags, absl::Span<const uint8_t> stream) {
  // kOwnRversion: the stream's first frame (by its size field, what there
  // is of it) answers Tversion.
  absl::Span<const uint8_t> rversion;
  if ((flags & ss::kOwnRversion) != 0) {
    size_t n = stream.size();
    if (n >= 4)
      n = std::min<size_t>(
          n, stream[0] | (stream[1] << 8) | (stream[2] << 16) | (uint32_t{stream[3]} << 24));
    rversion = stream.subspan(0, n);
    stream.remove_prefix(n);
  }
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) Fail("socketpair failed");
  FakeServer server(fds[1], flags, rversion);
  p9::SessionOptions o;
  o.msize = ss::kMsize;
  o.max_tags = 12;
  o.timeout = kTimeout;
  o.flush_timeout = kFlushTimeout;
  o.name = "fuzz";
  auto connected =
      p9::Session::Connect(std::make_unique<p9::TcpChannel>(fds[0], "fuzz server", 1 << 16), o);
  if (!connected.ok()) return;
  p9::Session& session = **connected;

  std::vector<uint8_t> buf(ss::kReadCount);
  Outcome walk, read, getattr;
  Start(server, walk, [&]() -> absl::Status {
    auto r = session.Walk(0, 1, {"a", "b"});
    if (r.ok() && r->size() != 2) Fail("Walk of two names succeeded with another count");
    return r.status();
  });
  CountingSink sink;
  AsyncRecorder async;
  // ReadMany/WriteMany send all their pieces before the next call starts.
  const bool many = (flags & ss::kReadTo) == 0 && (flags & (ss::kReadMany | ss::kWriteMany)) != 0;
  Start(
      server, read,
      [&]() -> absl::Status {
        if ((flags & ss::kReadTo) != 0) {
          auto r = session.ReadTo(1, 0, ss::kReadCount, &sink);
          // On OK the sink got exactly the bytes returned, once; on an error
          // it was never called.
          const int calls = sink.calls.load(std::memory_order_acquire);
          if (r.ok() && (calls != 1 || sink.bytes != *r)) Fail("ReadTo and its sink disagree");
          if (r.ok() && *r > ss::kReadCount) Fail("ReadTo returned more than asked for");
          if (!r.ok() && calls != 0) Fail("a failed ReadTo called its sink");
          return r.status();
        }
        if ((flags & ss::kReadMany) != 0) {
          auto r = session.ReadMany(1, 0, absl::MakeSpan(buf), ss::kManyPiece);
          if (r.ok() && *r > buf.size()) Fail("ReadMany returned more than asked for");
          return r.status();
        }
        if ((flags & ss::kWriteMany) != 0) {
          auto r = session.WriteMany(1, 0, absl::MakeConstSpan(buf), ss::kManyPiece);
          if (r.ok() && *r > buf.size()) Fail("WriteMany wrote more than it was given");
          return r.status();
        }
        if ((flags & ss::kReadAsync) != 0) {
          absl::Status posted = session.ReadAsync(1, 0, ss::kReadCount, &async);
          if (!posted.ok()) return posted;
          // Ended by a reply, the deadline's flush or the channel's close.
          if (!async.done.WaitForNotificationWithTimeout(kTimeout + kFlushTimeout + kSlack)) {
            Fail("ReadAsync never called Done()");
          }
          p9::MutexLock lock(&async.mu);
          if (async.result.ok() && (async.delivers != 1 || async.bytes != *async.result)) {
            Fail("ReadAsync's Done and Deliver disagree");
          }
          if (async.result.ok() && *async.result > ss::kReadCount) {
            Fail("ReadAsync returned more than asked for");
          }
          if (!async.result.ok() && async.delivers != 0) Fail("a failed ReadAsync delivered");
          return async.result.status();
        }
        auto r = session.Read(1, 0, absl::MakeSpan(buf));
        if (r.ok() && *r > buf.size()) Fail("Read returned more than asked for");
        return r.status();
      },
      many ? ss::kManyPieces : 1);
  Start(server, getattr, [&] { return session.Getattr(0).status(); });
  server.SendStream(stream);

  const absl::Duration bound = kTimeout + kFlushTimeout + kSlack;
  // P9_FUZZ_VERBOSE=1: what became of each call (reading a reproducer).
  static const bool verbose = std::getenv("P9_FUZZ_VERBOSE") != nullptr;
  for (Outcome* c : {&walk, &read, &getattr}) {
    c->thread.join();
    if (verbose) {
      std::fprintf(stderr, "fuzz_session: %s after %s\n", c->status.ToString().c_str(),
                   absl::FormatDuration(c->took).c_str());
    }
    if (c->took > bound) {
      Fail("a call took " + absl::FormatDuration(c->took) + ": " + c->status.ToString());
    }
    if (!c->status.ok() && p9::ToErrno(c->status) == 0) Fail("a failed call has no errno");
  }
  // A detached call's tag goes back just after its Done().
  for (absl::Time give_up = absl::Now() + kSlack;
       session.stats().in_flight.load(std::memory_order_relaxed) != 0 && absl::Now() < give_up;) {
    std::this_thread::yield();
  }
  if (int64_t n = session.stats().in_flight.load(std::memory_order_relaxed); n != 0) {
    Fail(std::to_string(n) + " tags still held after every call returned");
  }
  {
    p9::MutexLock lock(&async.mu);
    if (async.dones > 1) Fail("ReadAsync called Done() more than once");
  }
  if (!session.alive()) {
    absl::Time t0 = absl::Now();
    absl::Status s = session.Getattr(0).status();
    if (s.ok() || absl::Now() - t0 > kSlack) Fail("a closed session did not fail a call at once");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Protocol errors are the point here; one line each would drown the run.
  static const bool quiet = [] {
    p9::SetLogLevel(p9::LogLevel::kError);
    return true;
  }();
  (void)quiet;
  if (size == 0) return 0;
  Run(data[0], absl::MakeConstSpan(data + 1, size - 1));
  return 0;
}
