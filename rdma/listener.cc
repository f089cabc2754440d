#include "rdma/listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "client/errors.h"
#include "client/log.h"

namespace p9::rdma {

absl::StatusOr<std::unique_ptr<RdmaListener>> RdmaListener::Listen(const std::string& addr,
                                                                   uint16_t port,
                                                                   const RdmaOptions& options) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_flags = AI_PASSIVE;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const char* node = addr.empty() ? nullptr : addr.c_str();
  int gai = getaddrinfo(node, absl::StrCat(port).c_str(), &hints, &res);
  if (gai != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve listen address '", addr, "': ", gai_strerror(gai)));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owner(res, freeaddrinfo);
  absl::StatusOr<EventChannelPtr> ch = CreateEventChannel();
  if (!ch.ok()) return ch.status();
  fcntl((*ch)->fd, F_SETFL, fcntl((*ch)->fd, F_GETFL) | O_NONBLOCK);
  absl::StatusOr<CmIdPtr> id = CreateId(ch->get(), nullptr);
  if (!id.ok()) return id.status();
  if (absl::Status s = MaybeInjected(Step::kBindListen); !s.ok()) return s;
  if (rdma_bind_addr(id->get(), res->ai_addr) != 0) {
    int e = errno;
    return ErrnoError(e, absl::StrCat("cannot bind RDMA listener to ", addr.empty() ? "*" : addr,
                                      ":", port, ": ", strerror(e)));
  }
  // A backlog as deep as the kernel allows; requests are accepted quickly.
  if (rdma_listen(id->get(), 128) != 0) return VerbsError(Step::kBindListen, errno);
  int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) return ErrnoError(errno, "eventfd");
  return std::unique_ptr<RdmaListener>(
      new RdmaListener(*std::move(ch), *std::move(id), options, wake));
}

RdmaListener::RdmaListener(EventChannelPtr events, CmIdPtr id, const RdmaOptions& options,
                           int wake_fd)
    : events_(std::move(events)), id_(std::move(id)), options_(options), wake_fd_(wake_fd) {}

RdmaListener::~RdmaListener() {
  id_.reset();  // before its event channel
  events_.reset();
  close(wake_fd_);
}

uint16_t RdmaListener::port() const { return ntohs(rdma_get_src_port(id_.get())); }

void RdmaListener::Shutdown() {
  uint64_t one = 1;
  ssize_t ignored = write(wake_fd_, &one, sizeof(one));
  (void)ignored;
}

absl::StatusOr<std::unique_ptr<RdmaChannel>> RdmaListener::AcceptOne(absl::Time deadline) {
  for (;;) {
    pollfd fds[2] = {{events_->fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int ms = -1;
    if (deadline != absl::InfiniteFuture()) {
      ms =
          static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now())));
    }
    int r = poll(fds, 2, ms);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoError(errno, "poll on RDMA listener");
    if (r == 0) return absl::DeadlineExceededError("no RDMA connection request");
    if (fds[1].revents != 0) return absl::CancelledError("listener shut down");
    rdma_cm_event* ev = nullptr;
    if (rdma_get_cm_event(events_.get(), &ev) != 0) {
      if (errno == EAGAIN) continue;
      return ErrnoError(errno, "rdma_get_cm_event on listener");
    }
    if (ev->event != RDMA_CM_EVENT_CONNECT_REQUEST) {
      P9_LOG(kDebug, "rdma listener: ignoring %s", rdma_event_str(ev->event));
      rdma_ack_cm_event(ev);
      continue;
    }
    rdma_cm_id* child = ev->id;
    // Acknowledge first: migrating the id to its own channel waits for all
    // of its events on this one to be acknowledged.
    rdma_ack_cm_event(ev);
    return RdmaChannel::Accept(child, options_);
  }
}

}  // namespace p9::rdma
