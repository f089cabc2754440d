#include "rdma/rdma_channel.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/errors.h"
#include "client/log.h"
#include "client/protocol.h"
#include "client/spin.h"

namespace p9::rdma {
namespace {

thread_local const RdmaChannel* tls_completing = nullptr;

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

int RemainingMs(absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) return -1;
  int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
  return ms < 0 ? 0 : static_cast<int>(std::min<int64_t>(ms, 1 << 30));
}

// Waits for the next event on `ch` and checks it is `want`. Rejections and
// errors become one-line statuses naming `peer`.
absl::Status WaitCmEvent(rdma_event_channel* ch, rdma_cm_event_type want, absl::Time deadline,
                         const std::string& peer) {
  for (;;) {
    pollfd p{ch->fd, POLLIN, 0};
    int r = poll(&p, 1, RemainingMs(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) {
      return absl::DeadlineExceededError(absl::StrCat(
          "RDMA connection to ", peer, " timed out waiting for ", rdma_event_str(want)));
    }
    if (r < 0) return ErrnoError(errno, "poll on RDMA event channel");
    rdma_cm_event* ev = nullptr;
    if (rdma_get_cm_event(ch, &ev) != 0) {
      if (errno == EAGAIN) continue;
      return ErrnoError(errno, "rdma_get_cm_event");
    }
    rdma_cm_event_type got = ev->event;
    int status = ev->status;
    rdma_ack_cm_event(ev);
    if (got == want) return absl::OkStatus();
    switch (got) {
      case RDMA_CM_EVENT_REJECTED:
        return absl::UnavailableError(absl::StrCat("RDMA connection to ", peer,
                                                   " rejected (status ", status,
                                                   "): is a 9P RDMA server listening there?"));
      case RDMA_CM_EVENT_UNREACHABLE:
      case RDMA_CM_EVENT_ADDR_ERROR:
      case RDMA_CM_EVENT_ROUTE_ERROR:
      case RDMA_CM_EVENT_CONNECT_ERROR:
        return absl::UnavailableError(absl::StrCat("RDMA connection to ", peer, " failed: ",
                                                   rdma_event_str(got), " (status ", status, ")"));
      default:
        return absl::UnavailableError(absl::StrCat("RDMA connection to ", peer, ": unexpected ",
                                                   rdma_event_str(got), " while waiting for ",
                                                   rdma_event_str(want)));
    }
  }
}

absl::Status MemlockError(size_t needed, const absl::Status& cause) {
  rlimit rl{};
  getrlimit(RLIMIT_MEMLOCK, &rl);
  std::string now =
      rl.rlim_cur == RLIM_INFINITY ? "unlimited" : absl::StrCat(rl.rlim_cur / 1024, " KiB");
  return absl::ResourceExhaustedError(absl::StrCat(
      "cannot register ", needed / 1024, " KiB of RDMA buffers (locked-memory limit is ", now,
      "): raise it with `ulimit -l ", (needed + 1023) / 1024 + 1024,
      "` or LimitMEMLOCK=infinity in the systemd unit, or lower msize/sq/rq (", cause.message(),
      ")"));
}

rdma_conn_param ConnParam() {
  // The kernel's convention: no RDMA READ/WRITE (so no responder resources
  // or initiator depth), no private data. Unlike the kernel client, retry:
  // a transient loss or a receiver briefly without a posted buffer must not
  // kill the connection.
  rdma_conn_param p{};
  p.responder_resources = 0;
  p.initiator_depth = 0;
  p.retry_count = tunables::kRdmaRetryCount;
  p.rnr_retry_count = tunables::kRdmaRnrRetryCount;
  return p;
}

std::string PeerOf(rdma_cm_id* id) {
  sockaddr* sa = rdma_get_peer_addr(id);
  char buf[INET6_ADDRSTRLEN] = "?";
  uint16_t port = ntohs(rdma_get_dst_port(id));
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(sa)->sin_addr, buf, sizeof(buf));
    return absl::StrCat(buf, ":", port);
  }
  inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(sa)->sin6_addr, buf, sizeof(buf));
  return absl::StrCat("[", buf, "]:", port);
}

}  // namespace

absl::Status RdmaChannel::PostReceive(Resources* r, CpuBuffer&& buf) {
  if (absl::Status s = MaybeInjected(Step::kPostRecv); !s.ok()) {
    r->recv_pool->ReturnFree(std::move(buf));
    return s;
  }
  NicPosting p = r->recv_pool->HandToNic(std::move(buf), r->recv_pool->size());
  ibv_recv_wr wr{};
  wr.wr_id = p.wr_id;
  wr.sg_list = &p.sge;
  wr.num_sge = 1;
  ibv_recv_wr* bad = nullptr;
  int rc = ibv_post_recv(r->qp.get(), &wr, &bad);
  if (rc != 0) {
    // The NIC never got it: take it back so the pool stays consistent.
    absl::StatusOr<CpuBuffer> back = r->recv_pool->Reclaim(p.wr_id);
    if (back.ok()) r->recv_pool->ReturnFree(*std::move(back));
    return VerbsError(Step::kPostRecv, rc);
  }
  return absl::OkStatus();
}

absl::Status RdmaChannel::SetUpQueues(Resources* r, const RdmaOptions& o) {
  ibv_context* ctx = r->id->verbs;
  if (ctx == nullptr) return absl::UnavailableError("RDMA id has no device context");
  absl::StatusOr<PdPtr> pd = AllocPd(ctx);
  if (!pd.ok()) return pd.status();
  r->pd = *std::move(pd);
  absl::StatusOr<CompChannelPtr> comp = CreateCompChannel(ctx);
  if (!comp.ok()) return comp.status();
  r->comp = *std::move(comp);
  SetNonBlocking(r->comp->fd);
  absl::StatusOr<CqPtr> cq =
      CreateCq(ctx, static_cast<int>(o.send_depth + o.recv_depth), r->comp.get());
  if (!cq.ok()) return cq.status();
  r->cq = *std::move(cq);
  absl::StatusOr<CqPtr> send_cq = CreateCq(ctx, static_cast<int>(o.send_depth), nullptr);
  if (!send_cq.ok()) return send_cq.status();
  r->send_cq = *std::move(send_cq);

  size_t needed = size_t{o.send_depth + o.recv_depth} * o.max_message;
  absl::StatusOr<std::unique_ptr<BufferPool>> sp =
      BufferPool::Create(1, o.send_depth, o.max_message);
  if (!sp.ok()) return sp.status();
  absl::StatusOr<std::unique_ptr<BufferPool>> rp =
      BufferPool::Create(2, o.recv_depth, o.max_message);
  if (!rp.ok()) return rp.status();
  r->send_pool = *std::move(sp);
  r->recv_pool = *std::move(rp);
  for (BufferPool* pool : {r->send_pool.get(), r->recv_pool.get()}) {
    absl::Status s = pool->Register(r->pd.get());
    if (!s.ok()) {
      int e = ToErrno(s);
      if (e == ENOMEM || e == EAGAIN || e == EPERM) return MemlockError(needed, s);
      return s;
    }
  }
  absl::StatusOr<QpHandle> qp =
      CreateQp(r->id.get(), r->pd.get(), r->send_cq.get(), r->cq.get(), o.send_depth, o.recv_depth);
  if (!qp.ok()) return qp.status();
  r->qp = *std::move(qp);
  if (ibv_req_notify_cq(r->cq.get(), 0) != 0) return VerbsError(Step::kCreateCq, errno);
  // Every receive is posted before the connection exists, so no message can
  // ever arrive without a buffer.
  for (uint32_t i = 0; i < o.recv_depth; ++i) {
    std::optional<CpuBuffer> b = r->recv_pool->TakeFree();
    if (!b.has_value()) return absl::InternalError("receive pool smaller than its depth");
    if (absl::Status s = PostReceive(r, *std::move(b)); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<RdmaChannel>> RdmaChannel::Connect(const std::string& host,
                                                                  uint16_t port,
                                                                  const RdmaOptions& o) {
  absl::Time deadline =
      o.timeout == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + o.timeout;
  std::string name = host;
  if (name.size() >= 2 && name.front() == '[' && name.back() == ']') {
    name = name.substr(1, name.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int gai = getaddrinfo(name.c_str(), absl::StrCat(port).c_str(), &hints, &res);
  if (gai != 0) {
    return absl::NotFoundError(
        absl::StrCat("cannot resolve host '", host, "': ", gai_strerror(gai)));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> res_owner(res, freeaddrinfo);
  std::string peer = res->ai_family == AF_INET6 ? absl::StrCat("[", name, "]:", port)
                                                : absl::StrCat(name, ":", port);

  // Each step's resource is owned by `r` the moment it exists, so any
  // return below releases exactly what was made, in reverse order.
  Resources r;
  absl::StatusOr<EventChannelPtr> ch = CreateEventChannel();
  if (!ch.ok()) return ch.status();
  r.events = *std::move(ch);
  SetNonBlocking(r.events->fd);
  absl::StatusOr<CmIdPtr> id = CreateId(r.events.get(), nullptr);
  if (!id.ok()) return id.status();
  r.id = *std::move(id);

  if (absl::Status s = MaybeInjected(Step::kResolveAddr); !s.ok()) return s;
  if (rdma_resolve_addr(r.id.get(), nullptr, res->ai_addr, std::max(1, RemainingMs(deadline))) !=
      0) {
    return VerbsError(Step::kResolveAddr, errno);
  }
  if (absl::Status s = WaitCmEvent(r.events.get(), RDMA_CM_EVENT_ADDR_RESOLVED, deadline, peer);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = MaybeInjected(Step::kResolveRoute); !s.ok()) return s;
  if (rdma_resolve_route(r.id.get(), std::max(1, RemainingMs(deadline))) != 0) {
    return VerbsError(Step::kResolveRoute, errno);
  }
  if (absl::Status s = WaitCmEvent(r.events.get(), RDMA_CM_EVENT_ROUTE_RESOLVED, deadline, peer);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = SetUpQueues(&r, o); !s.ok()) return s;

  if (absl::Status s = MaybeInjected(Step::kConnect); !s.ok()) return s;
  rdma_conn_param param = ConnParam();
  if (rdma_connect(r.id.get(), &param) != 0) return VerbsError(Step::kConnect, errno);
  if (absl::Status s = WaitCmEvent(r.events.get(), RDMA_CM_EVENT_ESTABLISHED, deadline, peer);
      !s.ok()) {
    return s;
  }
  return std::unique_ptr<RdmaChannel>(new RdmaChannel(std::move(r), o, /*active=*/true, peer));
}

absl::StatusOr<std::unique_ptr<RdmaChannel>> RdmaChannel::Accept(rdma_cm_id* request,
                                                                 const RdmaOptions& o) {
  absl::Time deadline = absl::Now() + o.timeout;
  Resources r;
  r.id = AdoptId(request);
  std::string peer = PeerOf(request);
  auto refuse = [&](const absl::Status& s) {
    rdma_reject(r.id.get(), nullptr, 0);
    return s;
  };
  // A connection gets its own event channel so its completion thread alone
  // sees its disconnect, independent of the listener's.
  absl::StatusOr<EventChannelPtr> ch = CreateEventChannel();
  if (!ch.ok()) return refuse(ch.status());
  r.events = *std::move(ch);
  SetNonBlocking(r.events->fd);
  if (rdma_migrate_id(r.id.get(), r.events.get()) != 0) {
    return refuse(VerbsError(Step::kAccept, errno));
  }
  if (absl::Status s = SetUpQueues(&r, o); !s.ok()) return refuse(s);
  if (absl::Status s = MaybeInjected(Step::kAccept); !s.ok()) return refuse(s);
  rdma_conn_param param = ConnParam();
  if (rdma_accept(r.id.get(), &param) != 0) return refuse(VerbsError(Step::kAccept, errno));
  if (absl::Status s = WaitCmEvent(r.events.get(), RDMA_CM_EVENT_ESTABLISHED, deadline, peer);
      !s.ok()) {
    return s;
  }
  return std::unique_ptr<RdmaChannel>(new RdmaChannel(std::move(r), o, /*active=*/false, peer));
}

RdmaChannel::RdmaChannel(Resources r, const RdmaOptions& options, bool active, std::string peer)
    : r_(std::move(r)),
      options_(options),
      active_(active),
      peer_(std::move(peer)),
      receive_limit_(options.max_message),
      send_slots_("an RDMA send-queue slot", options.send_depth),
      reply_credits_("an RDMA receive credit", options.recv_depth),
      wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

RdmaChannel::~RdmaChannel() {
  Close(absl::UnavailableError("RDMA channel destroyed"));
  // r_ is destroyed after this body: QP first, then memory, CQ, PD, id.
  if (wake_fd_ >= 0) close(wake_fd_);
}

absl::Status RdmaChannel::Start(ChannelReceiver* receiver) {
  MutexLock lock(&join_mu_);
  if (receiver_ != nullptr) return absl::FailedPreconditionError("channel already started");
  if (wake_fd_ < 0) return ErrnoError(EMFILE, "eventfd for the RDMA completion thread");
  receiver_ = receiver;
  thread_ = std::thread([this] { CompletionLoop(); });
  return absl::OkStatus();
}

void RdmaChannel::SetReceiveLimit(uint32_t bytes) {
  receive_limit_.store(std::min(bytes, options_.max_message), std::memory_order_relaxed);
}

int RdmaChannel::receives_posted() const { return r_.recv_pool->nic_owned(); }

void RdmaChannel::ForgetReply() {
  if (active_) reply_credits_.Release(1);
}

absl::Status RdmaChannel::Send(absl::Span<const uint8_t> msg) {
  if (closing_.load(std::memory_order_acquire)) {
    return absl::UnavailableError(absl::StrCat("RDMA connection to ", peer_, " is closed"));
  }
  if (msg.size() > options_.max_message) {
    return absl::InvalidArgumentError(absl::StrCat(
        "message of ", msg.size(), " bytes exceeds RDMA buffer size ", options_.max_message));
  }
  absl::Time deadline = options_.timeout == absl::InfiniteDuration()
                            ? absl::InfiniteFuture()
                            : absl::Now() + options_.timeout;
  // A request may go only when a receive is reserved for its reply (the peer
  // may use rnr_retry_count 0, so a reply with no buffer kills the QP).
  if (active_) {
    if (absl::Status s = reply_credits_.Acquire(deadline); !s.ok()) return s;
  }
  if (absl::Status s = AcquireSendSlot(deadline); !s.ok()) {
    if (active_) reply_credits_.Release(1);
    return s;
  }
  std::optional<CpuBuffer> buf = r_.send_pool->TakeFree();
  if (!buf.has_value()) {  // cannot happen: one buffer per send slot
    send_slots_.Release(1);
    if (active_) reply_credits_.Release(1);
    return absl::InternalError("RDMA send pool exhausted with a free slot");
  }
  std::memcpy(buf->bytes().data(), msg.data(), msg.size());
  NicPosting p = r_.send_pool->HandToNic(*std::move(buf), static_cast<uint32_t>(msg.size()));
  ibv_send_wr wr{};
  wr.wr_id = p.wr_id;
  wr.sg_list = &p.sge;
  wr.num_sge = 1;
  wr.opcode = IBV_WR_SEND;
  wr.send_flags = IBV_SEND_SIGNALED;
  ibv_send_wr* bad = nullptr;
  int rc;
  {
    MutexLock lock(&post_mu_);
    rc = ibv_post_send(r_.qp.get(), &wr, &bad);
  }
  if (rc != 0) {
    absl::StatusOr<CpuBuffer> back = r_.send_pool->Reclaim(p.wr_id);
    if (back.ok()) r_.send_pool->ReturnFree(*std::move(back));
    send_slots_.Release(1);
    if (active_) reply_credits_.Release(1);
    absl::Status s = ErrnoError(rc, absl::StrCat("ibv_post_send to ", peer_, ": ", strerror(rc)));
    Close(s);
    return s;
  }
  counters_.sends.fetch_add(1, std::memory_order_relaxed);
  counters_.bytes_sent.fetch_add(msg.size(), std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status RdmaChannel::AcquireSendSlot(absl::Time deadline) {
  for (;;) {
    if (send_slots_.TryAcquire()) return absl::OkStatus();
    if (absl::Status s = ReapSends(); !s.ok()) {
      Close(s);
      return s;
    }
    absl::Time slice = std::min(deadline, absl::Now() + absl::Milliseconds(1));
    absl::Status s = send_slots_.Acquire(slice);
    if (s.ok() || s.code() != absl::StatusCode::kDeadlineExceeded || absl::Now() >= deadline) {
      return s;
    }
  }
}

absl::Status RdmaChannel::ReapSends() {
  MutexLock lock(&reap_mu_);
  absl::Status failure;
  ibv_wc wc[16];
  for (;;) {
    int n = ibv_poll_cq(r_.send_cq.get(), 16, wc);
    if (n < 0) return absl::UnavailableError(absl::StrCat("ibv_poll_cq (sends) on ", peer_));
    if (n == 0) return failure;
    for (int i = 0; i < n; ++i) {
      absl::StatusOr<CpuBuffer> buf = r_.send_pool->Reclaim(wc[i].wr_id);
      if (!buf.ok())
        return absl::InternalError(absl::StrCat("RDMA send completion: ", buf.status().message()));
      r_.send_pool->ReturnFree(*std::move(buf));
      send_slots_.Release(1);
      if (wc[i].status != IBV_WC_SUCCESS && wc[i].status != IBV_WC_WR_FLUSH_ERR && failure.ok()) {
        failure = absl::UnavailableError(absl::StrCat(
            "RDMA connection to ", peer_, " failed: ", ibv_wc_status_str(wc[i].status)));
      }
    }
  }
}

void RdmaChannel::Deliver(absl::Span<const uint8_t> msg) {
  if (msg.size() < kHeaderSize) {
    receiver_->OnBadMessage(kNoTag,
                            ProtocolError(absl::StrCat("RDMA message of ", msg.size(), " bytes")));
    return;
  }
  uint32_t size = msg[0] | (msg[1] << 8) | (msg[2] << 16) | (uint32_t{msg[3]} << 24);
  uint16_t tag = static_cast<uint16_t>(msg[5] | (msg[6] << 8));
  if (size != msg.size()) {
    receiver_->OnBadMessage(tag, ProtocolError(absl::StrCat("size field ", size, " but ",
                                                            msg.size(), " bytes received")));
  } else if (size > receive_limit_.load(std::memory_order_relaxed)) {
    receiver_->OnBadMessage(
        tag, ProtocolError(absl::StrCat("message of ", size, " bytes exceeds msize")));
  } else {
    receiver_->OnMessage(msg);
  }
}

// Receives only; sends complete on their own CQ (ReapSends).
int RdmaChannel::DrainCq(absl::Status* why) {
  ibv_wc wc[16];
  int total = 0;
  for (;;) {
    int n = ibv_poll_cq(r_.cq.get(), 16, wc);
    if (n < 0) {
      *why = absl::UnavailableError(absl::StrCat("ibv_poll_cq on ", peer_, " failed"));
      return -1;
    }
    if (n == 0) return total;
    total += n;
    for (int i = 0; i < n; ++i) {
      const ibv_wc& c = wc[i];
      absl::StatusOr<CpuBuffer> buf = r_.recv_pool->Reclaim(c.wr_id);
      if (!buf.ok()) {
        *why = absl::InternalError(absl::StrCat("RDMA completion: ", buf.status().message()));
        return -1;
      }
      if (c.status != IBV_WC_SUCCESS) {
        r_.recv_pool->ReturnFree(*std::move(buf));
        if (why->ok()) {
          *why = absl::UnavailableError(
              absl::StrCat("RDMA connection to ", peer_, " failed: ", ibv_wc_status_str(c.status)));
        }
        continue;  // reclaim the rest; the loop ends the channel after
      }
      counters_.receives.fetch_add(1, std::memory_order_relaxed);
      counters_.bytes_received.fetch_add(c.byte_len, std::memory_order_relaxed);
      // The message is read straight out of the buffer while the CPU owns
      // it; the receiver copies what it keeps before returning.
      Deliver(buf->bytes(c.byte_len));
      if (absl::Status s = PostReceive(&r_, *std::move(buf)); !s.ok()) {
        *why = s;
        return -1;
      }
      // Only now, with the buffer posted again, may another request go out.
      if (active_) reply_credits_.Release(1);
    }
    if (!why->ok()) return -1;
  }
}

void RdmaChannel::CompletionLoop() {
  tls_completing = this;
  absl::Status why;
  unsigned unacked = 0;
  absl::Time spin_until = absl::InfinitePast();
  // Polling after a completion is worth it only with a CPU to spare: on one
  // CPU it would keep the woken waiter from running, so it shares the
  // process's spin slots with waiting callers (client/spin.h).
  bool spinning = false;
  auto stop_spinning = [&] {
    if (spinning) ReturnSpinSlot();
    spinning = false;
  };
  for (;;) {
    if (absl::Status s = ReapSends(); !s.ok()) {
      why = s;
      break;
    }
    int n = DrainCq(&why);
    if (n < 0) break;
    if (n > 0) {
      if (!spinning) spinning = TakeSpinSlot();
      if (spinning) spin_until = absl::Now() + absl::Microseconds(tunables::kCqSpinMicros);
      continue;
    }
    if (spinning && absl::Now() < spin_until) {
      CpuRelax();
      continue;
    }
    stop_spinning();
    // Arm, then look once more: a completion that landed between the last
    // poll and the arming would otherwise raise no event.
    if (ibv_req_notify_cq(r_.cq.get(), 0) != 0) {
      why = absl::UnavailableError("ibv_req_notify_cq failed");
      break;
    }
    n = DrainCq(&why);
    if (n < 0) break;
    if (n > 0) continue;
    pollfd fds[3] = {{r_.comp->fd, POLLIN, 0}, {r_.events->fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int pr = poll(fds, 3, -1);
    if (pr < 0 && errno == EINTR) continue;
    if (pr < 0) {
      why = ErrnoError(errno, "poll in RDMA completion thread");
      break;
    }
    if (fds[2].revents != 0) break;  // Close()
    if (fds[0].revents != 0) {
      ibv_cq* cq = nullptr;
      void* ctx = nullptr;
      if (ibv_get_cq_event(r_.comp.get(), &cq, &ctx) == 0 && ++unacked >= 64) {
        ibv_ack_cq_events(r_.cq.get(), unacked);
        unacked = 0;
      }
    }
    if (fds[1].revents != 0) {
      rdma_cm_event* ev = nullptr;
      if (rdma_get_cm_event(r_.events.get(), &ev) == 0) {
        rdma_cm_event_type t = ev->event;
        rdma_ack_cm_event(ev);
        if (t == RDMA_CM_EVENT_DISCONNECTED || t == RDMA_CM_EVENT_DEVICE_REMOVAL ||
            t == RDMA_CM_EVENT_TIMEWAIT_EXIT || t == RDMA_CM_EVENT_ADDR_CHANGE) {
          why = absl::UnavailableError(
              absl::StrCat("RDMA connection to ", peer_, " lost: ", rdma_event_str(t)));
          break;
        }
      }
    }
  }
  stop_spinning();
  if (unacked > 0) ibv_ack_cq_events(r_.cq.get(), unacked);
  absl::Status reason;
  {
    MutexLock lock(&close_mu_);
    // A Close() that came first gives the reason; otherwise what ended the
    // loop does.
    if (close_reason_.ok()) {
      close_reason_ =
          why.ok() ? absl::UnavailableError(absl::StrCat("RDMA connection to ", peer_, " closed"))
                   : why;
    }
    reason = close_reason_;
    if (!disconnected_) {
      disconnected_ = true;
      rdma_disconnect(r_.id.get());
    }
  }
  closing_.store(true, std::memory_order_release);
  send_slots_.Close(reason);
  reply_credits_.Close(reason);
  P9_LOG(kInfo, "rdma %s: %s", peer_, reason.message());
  receiver_->OnClosed(reason);
  tls_completing = nullptr;
}

void RdmaChannel::Close(const absl::Status& why) {
  {
    MutexLock lock(&close_mu_);
    if (close_reason_.ok()) {
      close_reason_ = why.ok() ? absl::UnavailableError("RDMA channel closed") : why;
    }
    if (!disconnected_) {
      disconnected_ = true;
      // Moves the QP to the error state (outstanding work completes with
      // WR_FLUSH_ERR) and tells the peer.
      rdma_disconnect(r_.id.get());
    }
  }
  closing_.store(true, std::memory_order_release);
  send_slots_.Close(absl::UnavailableError("RDMA channel closing"));
  reply_credits_.Close(absl::UnavailableError("RDMA channel closing"));
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    ssize_t ignored = write(wake_fd_, &one, sizeof(one));
    (void)ignored;
  }
  if (tls_completing == this) return;
  MutexLock lock(&join_mu_);
  if (thread_.joinable()) thread_.join();
}

}  // namespace p9::rdma
