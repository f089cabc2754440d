// Joins two channels back to back: 9P requests from a client side are sent
// to a server side and replies come back, unchanged except that msize in
// Tversion and Rversion is capped to what both transports can carry. Used
// by 9prdma-relay (RDMA client side, TCP server side); transport-agnostic.
#ifndef P9_RDMA_RELAY_BRIDGE_H_
#define P9_RDMA_RELAY_BRIDGE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/channel.h"

namespace p9::rdma {

class RelayBridge {
 public:
  // Starts both channels. `max_msize` caps the negotiated msize.
  static absl::StatusOr<std::unique_ptr<RelayBridge>> Create(std::unique_ptr<Channel> client,
                                                             std::unique_ptr<Channel> server,
                                                             uint32_t max_msize);
  // Closes both sides.
  ~RelayBridge();

  // True once either side has closed (the bridge should then be destroyed).
  bool finished() const { return finished_.load(std::memory_order_acquire); }
  std::string Describe() const;
  uint64_t messages() const { return messages_.load(std::memory_order_relaxed); }

 private:
  class Side : public ChannelReceiver {
   public:
    Side(RelayBridge* bridge, bool from_client) : bridge_(bridge), from_client_(from_client) {}
    void OnMessage(absl::Span<const uint8_t> msg) override;
    void OnBadMessage(uint16_t tag, const absl::Status& why) override;
    void OnClosed(const absl::Status& why) override;

   private:
    RelayBridge* const bridge_;
    const bool from_client_;
  };

  RelayBridge(std::unique_ptr<Channel> client, std::unique_ptr<Channel> server, uint32_t max_msize);

  const std::unique_ptr<Channel> client_;
  const std::unique_ptr<Channel> server_;
  const uint32_t max_msize_;
  Side from_client_{this, true};
  Side from_server_{this, false};
  // Set by either side's delivery thread when it closes; read by the owner.
  std::atomic<bool> finished_{false};
  std::atomic<uint64_t> messages_{0};
};

// If `msg` is a Tversion or Rversion, lowers its msize field to at most
// `cap` in place. The only 9P knowledge below client/: msize[4] follows the
// 7-byte header in both messages.
void CapVersionMsize(absl::Span<uint8_t> msg, uint32_t cap);

}  // namespace p9::rdma

#endif  // P9_RDMA_RELAY_BRIDGE_H_
