// The passive side of rdma_cm: listens on an address and turns each
// connection request into an accepted RdmaChannel.
#ifndef P9_RDMA_LISTENER_H_
#define P9_RDMA_LISTENER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "rdma/rdma_channel.h"
#include "rdma/resources.h"

namespace p9::rdma {

class RdmaListener {
 public:
  // Binds and listens on addr:port (addr "" or "0.0.0.0" for any).
  static absl::StatusOr<std::unique_ptr<RdmaListener>> Listen(const std::string& addr,
                                                              uint16_t port,
                                                              const RdmaOptions& options);
  ~RdmaListener();

  // Waits for the next connection request until `deadline` and accepts it.
  // A request that fails to be accepted is rejected and reported as an
  // error; the listener stays usable. Returns Cancelled after Shutdown().
  absl::StatusOr<std::unique_ptr<RdmaChannel>> AcceptOne(absl::Time deadline);
  // Makes a blocked or later AcceptOne return Cancelled. Thread-safe.
  void Shutdown();
  uint16_t port() const;

 private:
  RdmaListener(EventChannelPtr events, CmIdPtr id, const RdmaOptions& options, int wake_fd);

  EventChannelPtr events_;
  CmIdPtr id_;
  const RdmaOptions options_;
  const int wake_fd_;
};

}  // namespace p9::rdma

#endif  // P9_RDMA_LISTENER_H_
