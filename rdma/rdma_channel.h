// 9P over RDMA verbs, interoperable with the kernel's trans=rdma and diod:
// a reliable-connected QP set up through rdma_cm (RDMA_PS_TCP, port 5640),
// one message per SEND, each received into a pre-posted buffer of msize
// bytes, no RDMA READ/WRITE, no private data. One completion thread per
// channel hands received messages to the receiver.
#ifndef P9_RDMA_RDMA_CHANNEL_H_
#define P9_RDMA_RDMA_CHANNEL_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/channel.h"
#include "client/mutex.h"
#include "client/tunables.h"
#include "rdma/buffer_pool.h"
#include "rdma/credits.h"
#include "rdma/resources.h"

namespace p9::rdma {

struct RdmaOptions {
  // Size of every send and receive buffer: the largest message either way.
  uint32_t max_message = tunables::kDefaultRdmaMsize;
  // Sends in flight at once (send-queue depth).
  uint32_t send_depth = tunables::kDefaultSendQueueDepth;
  // Receives kept posted. The client never has more requests outstanding
  // than this, so every reply finds a posted receive.
  uint32_t recv_depth = tunables::kDefaultRecvQueueDepth;
  // Bound on connecting and on waiting for a send slot or reply credit.
  absl::Duration timeout = absl::Seconds(tunables::kDefaultTimeoutSeconds);
};

// Per-channel traffic counters (relaxed atomics, read any time).
struct RdmaCounters {
  std::atomic<uint64_t> sends{0};
  std::atomic<uint64_t> receives{0};
  std::atomic<uint64_t> bytes_sent{0};
  std::atomic<uint64_t> bytes_received{0};
};

class RdmaChannel : public Channel {
 public:
  // Active side: resolves and connects to a 9P RDMA server. Every Send then
  // takes a reply credit, returned when a message arrives (or ForgetReply).
  static absl::StatusOr<std::unique_ptr<RdmaChannel>> Connect(const std::string& host,
                                                              uint16_t port,
                                                              const RdmaOptions& options);
  // Passive side: accepts the connection request `id` (ownership taken; its
  // CONNECT_REQUEST event must already be acknowledged). Sends need no
  // reply credits (they are the replies).
  static absl::StatusOr<std::unique_ptr<RdmaChannel>> Accept(rdma_cm_id* id,
                                                             const RdmaOptions& options);
  ~RdmaChannel() override;

  absl::Status Start(ChannelReceiver* receiver) override;
  absl::Status Send(absl::Span<const uint8_t> msg) override;
  uint32_t max_message_size() const override { return options_.max_message; }
  void SetReceiveLimit(uint32_t bytes) override;
  void Close(const absl::Status& why) override;
  std::string Describe() const override { return "rdma " + peer_; }
  void ForgetReply() override;

  const RdmaCounters& counters() const { return counters_; }
  // For tests: reply credits free now (active side), and receives posted.
  int64_t reply_credits() const { return reply_credits_.available(); }
  int receives_posted() const;
  int64_t credit_over_releases() const { return reply_credits_.over_releases(); }

 private:
  // Every resource of the connection. Members are destroyed in reverse
  // order of declaration, which is the reverse of setup: QP, buffers (their
  // memory regions), CQ, completion channel, PD, cm_id, event channel.
  struct Resources {
    EventChannelPtr events;
    CmIdPtr id;
    PdPtr pd;
    CompChannelPtr comp;
    CqPtr cq;       // receives; raises events on `comp` for the completion thread
    CqPtr send_cq;  // sends; polled, never waited on (see ReapSends)
    std::unique_ptr<BufferPool> send_pool;
    std::unique_ptr<BufferPool> recv_pool;
    QpHandle qp;
  };

  RdmaChannel(Resources r, const RdmaOptions& options, bool active, std::string peer);
  // Creates PD, CQ, completion channel, buffers and QP on r->id, and posts
  // every receive.
  static absl::Status SetUpQueues(Resources* r, const RdmaOptions& options);
  static absl::Status PostReceive(Resources* r, CpuBuffer&& buf);
  void CompletionLoop();
  // Handles every completion available now; returns how many, or -1 after
  // recording a fatal error in *why.
  int DrainCq(absl::Status* why);
  void Deliver(absl::Span<const uint8_t> msg);
  // Reclaims the buffers and slots of completed sends. Called by the
  // completion thread and by senders that find no free slot: a relay's
  // completion thread may be blocked forwarding a message, and the sends
  // that would unblock it must not wait for that same thread. Returns an
  // error if a send failed (the caller then closes the channel).
  absl::Status ReapSends();
  // Waits for a send slot, reaping completions while it waits.
  absl::Status AcquireSendSlot(absl::Time deadline);

  Resources r_;
  const RdmaOptions options_;
  const bool active_;
  const std::string peer_;
  RdmaCounters counters_;
  std::atomic<uint32_t> receive_limit_;  // relaxed: a limit, set after Tversion

  CreditGate send_slots_;
  CreditGate reply_credits_;
  // ibv_post_send from concurrent senders.
  Mutex post_mu_;
  // One poller of the send CQ at a time.
  Mutex reap_mu_;
  // Wakes the completion thread for Close (an eventfd).
  const int wake_fd_;
  // Set once Close begins; senders fail fast after it. Release/acquire so a
  // sender that sees it also sees the gates closed.
  std::atomic<bool> closing_{false};

  Mutex close_mu_;
  absl::Status close_reason_ ABSL_GUARDED_BY(close_mu_);
  bool disconnected_ ABSL_GUARDED_BY(close_mu_) = false;
  // Set in Start() before the thread exists; used only by that thread.
  ChannelReceiver* receiver_ = nullptr;
  Mutex join_mu_;
  std::thread thread_ ABSL_GUARDED_BY(join_mu_);
};

}  // namespace p9::rdma

#endif  // P9_RDMA_RDMA_CHANNEL_H_
