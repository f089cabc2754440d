#include "fuse/connect.h"

#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/errors.h"
#include "client/log.h"
#include "client/protocol.h"
#include "client/tcp_channel.h"
#include "client/tunables.h"

namespace p9::fuse {
namespace {

std::string UserName(uid_t uid) {
  passwd pw;
  passwd* out = nullptr;
  char buf[4096];
  if (getpwuid_r(uid, &pw, buf, sizeof(buf), &out) == 0 && out != nullptr) return pw.pw_name;
  return "";
}

bool UidOf(const std::string& name, uint32_t* uid) {
  passwd pw;
  passwd* out = nullptr;
  char buf[4096];
  if (getpwnam_r(name.c_str(), &pw, buf, sizeof(buf), &out) == 0 && out != nullptr) {
    *uid = pw.pw_uid;
    return true;
  }
  return false;
}

std::string Where(const MountOptions& o, uint16_t port) {
  bool v6 = o.host.find(':') != std::string::npos;
  return v6 ? absl::StrCat("[", o.host, "]:", port) : absl::StrCat(o.host, ":", port);
}

// The status text without a repeated tail ("...: Connection refused:
// Connection refused" when an errno text was already part of the message).
std::string Clean(const absl::Status& st) {
  std::string m(st.message());
  size_t last = m.rfind(": ");
  if (last != std::string::npos) {
    std::string tail = m.substr(last);
    if (m.size() >= 2 * tail.size() &&
        m.compare(m.size() - 2 * tail.size(), tail.size(), tail) == 0) {
      m.resize(m.size() - tail.size());
    }
  }
  return m;
}

}  // namespace

bool RdmaFallsBackToTcp() { return true; }

Identity ResolveIdentity(const MountOptions& o) {
  Identity id;
  if (o.access == AccessMode::kUid) {
    id.n_uname = o.access_uid;
    id.uid = o.access_uid;
    id.uname = o.uname_set ? o.uname : UserName(o.access_uid);
    return id;
  }
  if (o.uname_set) {
    id.uname = o.uname;
    id.n_uname = kNoUid;
    if (!UidOf(o.uname, &id.uid)) id.uid = kNoUid;
    return id;
  }
  uid_t me = geteuid();
  id.uname = UserName(me);
  if (id.uname.empty()) id.uname = me == 0 ? "root" : "nobody";
  id.n_uname = me;
  id.uid = me;
  return id;
}

absl::StatusOr<Connection> ConnectAndAttach(const MountOptions& o, const Identity& who) {
  Connection conn;
  conn.transport = o.trans;
  conn.port = o.port;
  if (o.trans == Transport::kRdma && RdmaFallsBackToTcp()) {
    conn.transport = Transport::kTcp;
    // The RDMA default port means nothing to a TCP server.
    if (o.port == DefaultPort(Transport::kRdma)) conn.port = DefaultPort(Transport::kTcp);
  }
  SessionOptions so;
  so.msize = o.msize != 0 ? o.msize : tunables::kDefaultMsize;
  so.timeout = o.timeout_seconds > 0 ? absl::Seconds(o.timeout_seconds) : absl::InfiniteDuration();
  so.debug = o.debug;
  const std::string where = Where(o, conn.port);
  for (int q = 0; q < o.queues; ++q) {
    absl::StatusOr<std::unique_ptr<TcpChannel>> ch =
        TcpChannel::Connect(o.host, conn.port, so.timeout, so.msize);
    if (!ch.ok()) return absl::UnavailableError(Clean(ch.status()));
    so.name = absl::StrCat("q", q);
    absl::StatusOr<std::unique_ptr<Session>> s = Session::Connect(std::move(*ch), so);
    if (!s.ok()) {
      return absl::UnavailableError(
          absl::StrCat(where, ": no 9P2000.L session: ", Clean(s.status())));
    }
    uint32_t fid = (*s)->AllocFid();
    absl::StatusOr<Qid> qid = (*s)->Attach(fid, kNoFid, who.uname, o.export_path, who.n_uname);
    if (!qid.ok()) {
      int e = ToErrno(qid.status());
      std::string why = e != 0 && e != EIO ? strerror(e) : Clean(qid.status());
      return absl::PermissionDeniedError(absl::StrCat(where, " refused to attach export \"",
                                                      o.export_path, "\" as user \"", who.uname,
                                                      "\": ", why));
    }
    if (!(qid->type & kQtDir)) {
      return absl::FailedPreconditionError(
          absl::StrCat(where, ": export \"", o.export_path, "\" is not a directory"));
    }
    if (q == 0) {
      conn.root_qid = *qid;
    } else if (qid->path != conn.root_qid.path) {
      return absl::FailedPreconditionError(
          absl::StrCat(where, ": queue ", q, " attached to a different root"));
    }
    P9_LOG(kInfo, "queue %d: %s, msize %u, attached \"%s\" as %s", q, (*s)->Describe(),
           (*s)->msize(), o.export_path, who.uname);
    conn.sessions.push_back(std::move(*s));
    conn.root_fids.push_back(fid);
  }
  return conn;
}

}  // namespace p9::fuse
