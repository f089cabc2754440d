#include "client/tcp_channel.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/errors.h"
#include "client/protocol.h"

namespace p9 {
namespace {

// The channel whose receive loop runs on this thread, so Close() called from
// inside a delivery does not try to join itself.
thread_local const TcpChannel* tls_receiving = nullptr;

// Largest oversize frame we read through and discard to keep the stream in
// sync; beyond this the peer is not speaking 9P and the connection goes.
constexpr uint32_t kMaxDiscard = 16u << 20;

std::string StripBrackets(const std::string& host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    return host.substr(1, host.size() - 2);
  }
  return host;
}

// Connects a socket to `ai` within `timeout`; returns the fd or -errno.
int ConnectOne(const addrinfo* ai, absl::Duration timeout) {
  int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
  if (fd < 0) return -errno;
  if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
    if (errno != EINPROGRESS) {
      int e = errno;
      close(fd);
      return -e;
    }
    pollfd p{fd, POLLOUT, 0};
    int ms = timeout == absl::InfiniteDuration()
                 ? -1
                 : static_cast<int>(absl::ToInt64Milliseconds(timeout));
    int r;
    do {
      r = poll(&p, 1, ms);
    } while (r < 0 && errno == EINTR);
    if (r == 0) {
      close(fd);
      return -ETIMEDOUT;
    }
    int err = 0;
    socklen_t len = sizeof(err);
    if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      int e = err != 0 ? err : errno;
      close(fd);
      return -e;
    }
  }
  int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TcpChannel>> TcpChannel::Connect(const std::string& host,
                                                                uint16_t port,
                                                                absl::Duration timeout,
                                                                uint32_t max_message) {
  std::string name = StripBrackets(host);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string service = absl::StrCat(port);
  int gai = getaddrinfo(name.c_str(), service.c_str(), &hints, &res);
  if (gai != 0) {
    return absl::NotFoundError(
        absl::StrCat("cannot resolve host '", host, "': ", gai_strerror(gai)));
  }
  int fd = -ETIMEDOUT;
  std::string peer;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    fd = ConnectOne(ai, timeout);
    if (fd >= 0) {
      char buf[INET6_ADDRSTRLEN] = "?";
      const void* a =
          ai->ai_family == AF_INET6
              ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr)
              : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr);
      inet_ntop(ai->ai_family, a, buf, sizeof(buf));
      peer = ai->ai_family == AF_INET6 ? absl::StrCat("[", buf, "]:", port)
                                       : absl::StrCat(buf, ":", port);
      break;
    }
  }
  freeaddrinfo(res);
  if (fd < 0) {
    return ErrnoError(
        -fd, absl::StrCat("cannot connect to ", host, " port ", port, ": ", strerror(-fd)));
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (timeout != absl::InfiniteDuration()) {
    // A peer that stops reading must not block a sender forever, and a dead
    // peer with data unacknowledged must be noticed within the RPC timeout.
    timeval tv = absl::ToTimeval(timeout);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    unsigned ms = static_cast<unsigned>(absl::ToInt64Milliseconds(timeout));
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms));
  }
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
  return std::make_unique<TcpChannel>(fd, peer, max_message);
}

TcpChannel::TcpChannel(int fd, std::string peer, uint32_t max_message)
    : fd_(fd), peer_(std::move(peer)), max_message_(max_message), receive_limit_(max_message) {}

TcpChannel::~TcpChannel() {
  Close(absl::UnavailableError("channel destroyed"));
  close(fd_);
}

absl::Status TcpChannel::Start(ChannelReceiver* receiver) {
  if (receiver_ != nullptr) return absl::FailedPreconditionError("channel already started");
  receiver_ = receiver;
  MutexLock lock(&join_mu_);
  receiver_thread_ = std::thread([this] { ReceiveLoop(); });
  return absl::OkStatus();
}

void TcpChannel::SetReceiveLimit(uint32_t bytes) {
  receive_limit_.store(std::min(bytes, max_message_), std::memory_order_relaxed);
}

absl::Status TcpChannel::Send(absl::Span<const uint8_t> msg) {
  absl::Status failure;
  {
    MutexLock lock(&send_mu_);
    if (closing_.load(std::memory_order_acquire)) {
      return absl::UnavailableError(absl::StrCat("connection to ", peer_, " is closed"));
    }
    size_t off = 0;
    while (off < msg.size()) {
      ssize_t n = send(fd_, msg.data() + off, msg.size() - off, MSG_NOSIGNAL);
      if (n > 0) {
        off += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      int e = n < 0 ? errno : EPIPE;
      failure = (e == EAGAIN || e == EWOULDBLOCK)
                    ? absl::DeadlineExceededError(absl::StrCat("send to ", peer_, " timed out"))
                    : ErrnoError(e, absl::StrCat("send to ", peer_, ": ", strerror(e)));
      break;
    }
  }
  if (!failure.ok()) {
    // A partial frame leaves the stream unusable: the channel is dead.
    Close(failure);
    return failure;
  }
  return absl::OkStatus();
}

bool TcpChannel::ReadFull(void* buf, size_t n, absl::Status* why) {
  auto* p = static_cast<uint8_t*>(buf);
  while (n > 0) {
    ssize_t r = recv(fd_, p, n, 0);
    if (r > 0) {
      p += r;
      n -= static_cast<size_t>(r);
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    *why = r == 0
               ? absl::UnavailableError(absl::StrCat("connection to ", peer_, " closed by server"))
               : ErrnoError(errno, absl::StrCat("receive from ", peer_, ": ", strerror(errno)));
    return false;
  }
  return true;
}

void TcpChannel::ReceiveLoop() {
  tls_receiving = this;
  std::vector<uint8_t> buf;
  absl::Status why;
  for (;;) {
    uint8_t hdr[kHeaderSize];
    if (!ReadFull(hdr, kHeaderSize, &why)) break;
    uint32_t size = hdr[0] | (hdr[1] << 8) | (hdr[2] << 16) | (uint32_t{hdr[3]} << 24);
    uint16_t tag = static_cast<uint16_t>(hdr[5] | (hdr[6] << 8));
    if (size < kHeaderSize) {
      why = ProtocolError(absl::StrCat("frame size ", size, " from ", peer_, " is below 7"));
      break;
    }
    if (size > receive_limit_.load(std::memory_order_relaxed)) {
      if (size > kMaxDiscard) {
        why = ProtocolError(absl::StrCat("frame of ", size, " bytes from ", peer_));
        break;
      }
      // Read the body through, keeping the stream in sync, and fail only the
      // call the frame was for.
      uint8_t sink[4096];
      size_t left = size - kHeaderSize;
      bool ok = true;
      while (ok && left > 0) {
        size_t n = std::min(left, sizeof(sink));
        ok = ReadFull(sink, n, &why);
        left -= n;
      }
      if (!ok) break;
      receiver_->OnBadMessage(tag,
                              ProtocolError(absl::StrCat("reply of ", size, " bytes exceeds msize ",
                                                         receive_limit_.load())));
      continue;
    }
    buf.resize(size);
    std::memcpy(buf.data(), hdr, kHeaderSize);
    if (!ReadFull(buf.data() + kHeaderSize, size - kHeaderSize, &why)) break;
    receiver_->OnMessage(buf);
  }
  {
    MutexLock lock(&close_mu_);
    if (closed_) {
      why = close_reason_;
    } else {
      closed_ = true;
      close_reason_ = why;
    }
  }
  closing_.store(true, std::memory_order_release);
  shutdown(fd_, SHUT_RDWR);
  receiver_->OnClosed(why);
  tls_receiving = nullptr;
}

void TcpChannel::Close(const absl::Status& why) {
  {
    MutexLock lock(&close_mu_);
    if (!closed_) {
      closed_ = true;
      close_reason_ = why;
    }
  }
  closing_.store(true, std::memory_order_release);
  // Wakes the receive thread out of recv(); it then delivers OnClosed.
  shutdown(fd_, SHUT_RDWR);
  if (tls_receiving == this) return;
  MutexLock lock(&join_mu_);
  if (receiver_thread_.joinable()) receiver_thread_.join();
}

}  // namespace p9
