// Owning handles for every rdma_cm / verbs resource, created through
// functions that can be made to fail on purpose (tests), and counted while
// alive, so a test can prove that each failure path of setup releases what
// the steps before it made.
#ifndef P9_RDMA_RESOURCES_H_
#define P9_RDMA_RESOURCES_H_

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#include <atomic>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace p9::rdma {

// The setup steps, in the order a connection performs them.
enum class Step {
  kEventChannel,
  kCreateId,
  kResolveAddr,
  kResolveRoute,
  kAllocPd,
  kCompChannel,
  kCreateCq,
  kCreateQp,
  kRegisterMemory,
  kPostRecv,
  kConnect,
  kBindListen,
  kAccept,
  kCount,  // not a step
};
const char* StepName(Step s);

// Test hook: the next time setup on the calling thread reaches step `s`, it
// fails as if the call had failed with EIO. Reset with
// InjectFailureAt(Step::kCount).
void InjectFailureAt(Step s);
// Returns an error if a failure is injected at `s` (and clears it).
absl::Status MaybeInjected(Step s);

// Live resources of each kind in this process (relaxed counters; exact once
// the threads that create and destroy them are quiescent).
struct LiveCounts {
  int event_channels, ids, pds, comp_channels, cqs, qps, mrs;
  bool operator==(const LiveCounts&) const = default;
};
LiveCounts Live();

// A status for a failed verbs/cm call that returned -1 and set errno (or
// returned a positive errno, for ibv_post_* which do that).
absl::Status VerbsError(Step s, int err);

struct EventChannelDeleter {
  void operator()(rdma_event_channel* c) const;
};
using EventChannelPtr = std::unique_ptr<rdma_event_channel, EventChannelDeleter>;
absl::StatusOr<EventChannelPtr> CreateEventChannel();

struct CmIdDeleter {
  void operator()(rdma_cm_id* id) const;
};
// Owns a cm_id. Destroy its QP (QpHandle) first; declaration order in the
// owning struct takes care of that.
using CmIdPtr = std::unique_ptr<rdma_cm_id, CmIdDeleter>;
absl::StatusOr<CmIdPtr> CreateId(rdma_event_channel* ch, void* context);
// Takes ownership of a cm_id the library created (a CONNECT_REQUEST's).
CmIdPtr AdoptId(rdma_cm_id* id);

struct PdDeleter {
  void operator()(ibv_pd* pd) const;
};
using PdPtr = std::unique_ptr<ibv_pd, PdDeleter>;
absl::StatusOr<PdPtr> AllocPd(ibv_context* ctx);

struct CompChannelDeleter {
  void operator()(ibv_comp_channel* c) const;
};
using CompChannelPtr = std::unique_ptr<ibv_comp_channel, CompChannelDeleter>;
absl::StatusOr<CompChannelPtr> CreateCompChannel(ibv_context* ctx);

struct CqDeleter {
  void operator()(ibv_cq* cq) const;
};
using CqPtr = std::unique_ptr<ibv_cq, CqDeleter>;
absl::StatusOr<CqPtr> CreateCq(ibv_context* ctx, int depth, ibv_comp_channel* channel);

struct MrDeleter {
  void operator()(ibv_mr* mr) const;
};
using MrPtr = std::unique_ptr<ibv_mr, MrDeleter>;
absl::StatusOr<MrPtr> RegisterMemory(ibv_pd* pd, void* addr, size_t len);

// The QP of a cm_id (rdma_create_qp / rdma_destroy_qp).
class QpHandle {
 public:
  QpHandle() = default;
  ~QpHandle() { Reset(); }
  QpHandle(QpHandle&& o) noexcept : id_(o.id_) { o.id_ = nullptr; }
  QpHandle& operator=(QpHandle&& o) noexcept;
  ibv_qp* get() const { return id_ ? id_->qp : nullptr; }
  void Reset();

  friend absl::StatusOr<QpHandle> CreateQp(rdma_cm_id* id, ibv_pd* pd, ibv_cq* send_cq,
                                           ibv_cq* recv_cq, uint32_t send_depth,
                                           uint32_t recv_depth);

 private:
  rdma_cm_id* id_ = nullptr;
};
absl::StatusOr<QpHandle> CreateQp(rdma_cm_id* id, ibv_pd* pd, ibv_cq* send_cq, ibv_cq* recv_cq,
                                  uint32_t send_depth, uint32_t recv_depth);

}  // namespace p9::rdma

#endif  // P9_RDMA_RESOURCES_H_
