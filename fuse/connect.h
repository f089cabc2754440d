// Opening a mount's connections: one transport (RDMA or TCP) + session +
// attach per queue.
#ifndef P9_FUSE_CONNECT_H_
#define P9_FUSE_CONNECT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/messages.h"
#include "client/session.h"
#include "fuse/options.h"

namespace p9::fuse {

// Who the mount attaches as.
struct Identity {
  std::string uname;
  // n_uname of Tattach (kNoUid: the server resolves `uname`).
  uint32_t n_uname = 0;
  // The uid the server acts as, if known locally (kNoUid otherwise).
  uint32_t uid = 0;
};
Identity ResolveIdentity(const MountOptions& opts);

struct Connection {
  std::vector<std::unique_ptr<Session>> sessions;
  std::vector<uint32_t> root_fids;
  Qid root_qid;
  // The transport actually used: RDMA when it is the default but the host
  // has no RDMA device falls back to TCP.
  Transport transport = Transport::kTcp;
  uint16_t port = 0;
};

// access=user: Tattach of `opts.export_path` on `fid` as local user `uid`
// (n_uname = uid, uname from the password database, else the number).
// With auth=munge: after a Tauth when our credential is that user's, else
// on the strength of the connection's authenticated attach (see .cc).
absl::StatusOr<Qid> AttachUser(Session& s, uint32_t fid, const MountOptions& opts, uint32_t uid);

// Connects every queue and attaches `opts.export_path`. Fails with a
// one-line, user-facing message; nothing is left open on failure.
absl::StatusOr<Connection> ConnectAndAttach(const MountOptions& opts, const Identity& who);

}  // namespace p9::fuse

#endif  // P9_FUSE_CONNECT_H_
