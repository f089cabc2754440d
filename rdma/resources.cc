#include "rdma/resources.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "client/errors.h"

namespace p9::rdma {
namespace {

// Relaxed: counters for tests and diagnostics, read when quiescent.
std::atomic<int> g_event_channels{0}, g_ids{0}, g_pds{0}, g_comp_channels{0}, g_cqs{0}, g_qps{0},
    g_mrs{0};
// The step to fail next on this thread; kCount when none. Per thread, so a
// test can fail the client's setup while its in-process server's accept
// (another thread) runs normally.
thread_local int tls_inject = static_cast<int>(Step::kCount);

}  // namespace

const char* StepName(Step s) {
  switch (s) {
    case Step::kEventChannel:
      return "rdma_create_event_channel";
    case Step::kCreateId:
      return "rdma_create_id";
    case Step::kResolveAddr:
      return "rdma_resolve_addr";
    case Step::kResolveRoute:
      return "rdma_resolve_route";
    case Step::kAllocPd:
      return "ibv_alloc_pd";
    case Step::kCompChannel:
      return "ibv_create_comp_channel";
    case Step::kCreateCq:
      return "ibv_create_cq";
    case Step::kCreateQp:
      return "rdma_create_qp";
    case Step::kRegisterMemory:
      return "ibv_reg_mr";
    case Step::kPostRecv:
      return "ibv_post_recv";
    case Step::kConnect:
      return "rdma_connect";
    case Step::kBindListen:
      return "rdma_listen";
    case Step::kAccept:
      return "rdma_accept";
    case Step::kCount:
      break;
  }
  return "?";
}

void InjectFailureAt(Step s) { tls_inject = static_cast<int>(s); }

absl::Status MaybeInjected(Step s) {
  if (tls_inject != static_cast<int>(s)) return absl::OkStatus();
  tls_inject = static_cast<int>(Step::kCount);
  return ErrnoError(EIO, absl::StrCat(StepName(s), ": injected failure"));
}

LiveCounts Live() {
  auto r = [](const std::atomic<int>& a) { return a.load(std::memory_order_relaxed); };
  return {
      r(g_event_channels), r(g_ids), r(g_pds), r(g_comp_channels), r(g_cqs), r(g_qps), r(g_mrs)};
}

absl::Status VerbsError(Step s, int err) {
  if (err <= 0) err = EIO;
  return ErrnoError(err, absl::StrCat(StepName(s), ": ", strerror(err)));
}

void EventChannelDeleter::operator()(rdma_event_channel* c) const {
  rdma_destroy_event_channel(c);
  g_event_channels.fetch_sub(1, std::memory_order_relaxed);
}
absl::StatusOr<EventChannelPtr> CreateEventChannel() {
  if (absl::Status s = MaybeInjected(Step::kEventChannel); !s.ok()) return s;
  rdma_event_channel* c = rdma_create_event_channel();
  if (c == nullptr) {
    int e = errno;
    if (e == ENOENT || e == ENODEV) {
      return absl::UnavailableError(
          "no RDMA device: /dev/infiniband/rdma_cm is missing (load rdma_ucm, or use trans=tcp)");
    }
    return VerbsError(Step::kEventChannel, e);
  }
  g_event_channels.fetch_add(1, std::memory_order_relaxed);
  return EventChannelPtr(c);
}

void CmIdDeleter::operator()(rdma_cm_id* id) const {
  rdma_destroy_id(id);
  g_ids.fetch_sub(1, std::memory_order_relaxed);
}
absl::StatusOr<CmIdPtr> CreateId(rdma_event_channel* ch, void* context) {
  if (absl::Status s = MaybeInjected(Step::kCreateId); !s.ok()) return s;
  rdma_cm_id* id = nullptr;
  if (rdma_create_id(ch, &id, context, RDMA_PS_TCP) != 0) return VerbsError(Step::kCreateId, errno);
  g_ids.fetch_add(1, std::memory_order_relaxed);
  return CmIdPtr(id);
}
CmIdPtr AdoptId(rdma_cm_id* id) {
  g_ids.fetch_add(1, std::memory_order_relaxed);
  return CmIdPtr(id);
}

void PdDeleter::operator()(ibv_pd* pd) const {
  ibv_dealloc_pd(pd);
  g_pds.fetch_sub(1, std::memory_order_relaxed);
}
absl::StatusOr<PdPtr> AllocPd(ibv_context* ctx) {
  if (absl::Status s = MaybeInjected(Step::kAllocPd); !s.ok()) return s;
  ibv_pd* pd = ibv_alloc_pd(ctx);
  if (pd == nullptr) return VerbsError(Step::kAllocPd, errno);
  g_pds.fetch_add(1, std::memory_order_relaxed);
  return PdPtr(pd);
}

void CompChannelDeleter::operator()(ibv_comp_channel* c) const {
  ibv_destroy_comp_channel(c);
  g_comp_channels.fetch_sub(1, std::memory_order_relaxed);
}
absl::StatusOr<CompChannelPtr> CreateCompChannel(ibv_context* ctx) {
  if (absl::Status s = MaybeInjected(Step::kCompChannel); !s.ok()) return s;
  ibv_comp_channel* c = ibv_create_comp_channel(ctx);
  if (c == nullptr) return VerbsError(Step::kCompChannel, errno);
  g_comp_channels.fetch_add(1, std::memory_order_relaxed);
  return CompChannelPtr(c);
}

void CqDeleter::operator()(ibv_cq* cq) const {
  ibv_destroy_cq(cq);
  g_cqs.fetch_sub(1, std::memory_order_relaxed);
}
absl::StatusOr<CqPtr> CreateCq(ibv_context* ctx, int depth, ibv_comp_channel* channel) {
  if (absl::Status s = MaybeInjected(Step::kCreateCq); !s.ok()) return s;
  ibv_cq* cq = ibv_create_cq(ctx, depth, nullptr, channel, 0);
  if (cq == nullptr) return VerbsError(Step::kCreateCq, errno);
  g_cqs.fetch_add(1, std::memory_order_relaxed);
  return CqPtr(cq);
}

void MrDeleter::operator()(ibv_mr* mr) const {
  ibv_dereg_mr(mr);
  g_mrs.fetch_sub(1, std::memory_order_relaxed);
}
absl::StatusOr<MrPtr> RegisterMemory(ibv_pd* pd, void* addr, size_t len) {
  if (absl::Status s = MaybeInjected(Step::kRegisterMemory); !s.ok()) return s;
  ibv_mr* mr = ibv_reg_mr(pd, addr, len, IBV_ACCESS_LOCAL_WRITE);
  if (mr == nullptr) return VerbsError(Step::kRegisterMemory, errno);
  g_mrs.fetch_add(1, std::memory_order_relaxed);
  return MrPtr(mr);
}

QpHandle& QpHandle::operator=(QpHandle&& o) noexcept {
  if (this != &o) {
    Reset();
    id_ = o.id_;
    o.id_ = nullptr;
  }
  return *this;
}

void QpHandle::Reset() {
  if (id_ != nullptr) {
    rdma_destroy_qp(id_);
    g_qps.fetch_sub(1, std::memory_order_relaxed);
    id_ = nullptr;
  }
}

absl::StatusOr<QpHandle> CreateQp(rdma_cm_id* id, ibv_pd* pd, ibv_cq* send_cq, ibv_cq* recv_cq,
                                  uint32_t send_depth, uint32_t recv_depth) {
  if (absl::Status s = MaybeInjected(Step::kCreateQp); !s.ok()) return s;
  ibv_qp_init_attr attr{};
  attr.send_cq = send_cq;
  attr.recv_cq = recv_cq;
  attr.qp_type = IBV_QPT_RC;
  attr.cap.max_send_wr = send_depth;
  attr.cap.max_recv_wr = recv_depth;
  attr.cap.max_send_sge = 1;
  attr.cap.max_recv_sge = 1;
  attr.sq_sig_all = 1;  // every send completes, so its buffer returns to the CPU
  if (rdma_create_qp(id, pd, &attr) != 0) return VerbsError(Step::kCreateQp, errno);
  g_qps.fetch_add(1, std::memory_order_relaxed);
  QpHandle h;
  h.id_ = id;
  return h;
}

}  // namespace p9::rdma
