#include "fuse/connect.h"

#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/errors.h"
#include "client/log.h"
#include "client/protocol.h"
#include "client/tcp_channel.h"
#include "client/tunables.h"
#include "fuse/munge_auth.h"
#include "rdma/rdma_channel.h"

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

namespace {

// The transport and limits of one queue's channel.
absl::StatusOr<std::unique_ptr<Channel>> OpenChannel(const MountOptions& o, Transport t,
                                                     uint16_t port, const SessionOptions& so) {
  if (t == Transport::kTcp) {
    absl::StatusOr<std::unique_ptr<TcpChannel>> ch =
        TcpChannel::Connect(o.host, port, so.timeout, so.msize);
    if (!ch.ok()) return ch.status();
    return std::unique_ptr<Channel>(*std::move(ch));
  }
  rdma::RdmaOptions ro;
  ro.max_message = so.msize;
  ro.send_depth = o.sq != 0 ? o.sq : tunables::kDefaultSendQueueDepth;
  // Every request in flight needs a posted receive for its reply.
  ro.recv_depth = std::max(o.rq != 0 ? o.rq : tunables::kDefaultRecvQueueDepth, ro.send_depth);
  ro.timeout = so.timeout == absl::InfiniteDuration()
                   ? absl::Seconds(tunables::kDefaultTimeoutSeconds)
                   : so.timeout;
  absl::StatusOr<std::unique_ptr<rdma::RdmaChannel>> ch =
      rdma::RdmaChannel::Connect(o.host, port, ro);
  if (!ch.ok()) return ch.status();
  return std::unique_ptr<Channel>(*std::move(ch));
}

// Tattach of the export root on `fid` as `who`, MUNGE-authenticated first
// with auth=munge.
absl::StatusOr<Qid> AttachRoot(Session& s, uint32_t fid, const MountOptions& o,
                               const Identity& who) {
  uint32_t afid = kNoFid;
  if (o.auth == AuthMode::kMunge) {
    absl::StatusOr<uint32_t> a = MungeAuth(s, who.uname, o.export_path, who.n_uname);
    if (!a.ok()) return a.status();
    afid = *a;
  }
  absl::StatusOr<Qid> qid = s.Attach(fid, afid, who.uname, o.export_path, who.n_uname);
  // The server checked the credential in Tattach; the afid is done.
  if (afid != kNoFid) (void)s.Clunk(afid);
  return qid;
}

// How queue `fid`'s session comes back after its connection dies: the
// same transport and port, and the root attached again with the same fid
// number, which must still be the export's root directory.
RecoveryOptions Recovery(const MountOptions& o, const Connection& conn, SessionOptions so,
                         uint32_t root_fid, const Identity& who) {
  RecoveryOptions r;
  // A redial must give up soon: unmounting waits for one in progress.
  so.timeout = std::min(so.timeout, absl::Seconds(tunables::kReconnectDialTimeoutSeconds));
  Transport t = conn.transport;
  uint16_t port = conn.port;
  r.dial = [o, t, port, so]() { return OpenChannel(o, t, port, so); };
  uint64_t root_path = conn.root_qid.path;
  r.restore = [o, root_fid, who, root_path](Session& s) -> absl::Status {
    absl::StatusOr<Qid> qid = AttachRoot(s, root_fid, o, who);
    if (!qid.ok()) return qid.status();
    if (qid->path != root_path) {
      return absl::FailedPreconditionError(absl::StrCat(
          "export \"", o.export_path, "\" is now a different directory (root qid.path ", qid->path,
          ", was ", root_path, "); not reusing this mount's files"));
    }
    return absl::OkStatus();
  };
  return r;
}

}  // namespace

absl::StatusOr<Qid> AttachUser(Session& s, uint32_t fid, const MountOptions& o, uint32_t uid) {
  Identity who;
  who.uname = UserName(uid);
  if (who.uname.empty()) who.uname = absl::StrCat(uid);
  who.n_uname = uid;
  who.uid = uid;
  if (o.auth == AuthMode::kMunge && uid != geteuid()) {
    // Our MUNGE credential names our own uid, and diod refuses it for any
    // other user ("does not authenticate uid"). diod instead trusts a
    // connection whose earlier attach authenticated root (or this very
    // user), which the mount's own attach did on this connection, again
    // after every reconnect before any of these: attach without Tauth, as
    // the kernel client does on a connection diodmount authenticated.
    MountOptions trusted = o;
    trusted.auth = AuthMode::kNone;
    return AttachRoot(s, fid, trusted, who);
  }
  return AttachRoot(s, fid, o, who);
}

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
  SessionOptions so;
  so.timeout = o.timeout_seconds > 0 ? absl::Seconds(o.timeout_seconds) : absl::InfiniteDuration();
  so.debug = o.debug;
  if (o.trans == Transport::kRdma) {
    so.msize = o.msize != 0 ? o.msize : tunables::kDefaultRdmaMsize;
    // The session never has more requests out than receives are posted, so
    // a reply always finds a buffer and credits never stall a sender.
    so.max_tags =
        static_cast<uint16_t>(std::max(o.rq != 0 ? o.rq : tunables::kDefaultRecvQueueDepth,
                                       o.sq != 0 ? o.sq : tunables::kDefaultSendQueueDepth));
  } else {
    so.msize = o.msize != 0 ? o.msize : tunables::kDefaultMsize;
  }
  const std::string where = Where(o, conn.port);
  if (o.auth == AuthMode::kMunge) {
    // No credential, no mount: say so before connecting anywhere.
    if (absl::StatusOr<std::string> cred = MungeCredential(); !cred.ok()) return cred.status();
  }
  for (int q = 0; q < o.queues; ++q) {
    absl::StatusOr<std::unique_ptr<Channel>> ch = OpenChannel(o, conn.transport, conn.port, so);
    if (!ch.ok() && q == 0 && conn.transport == Transport::kRdma && !o.trans_set &&
        ch.status().code() == absl::StatusCode::kUnavailable &&
        absl::StrContains(ch.status().message(), "no RDMA device")) {
      // RDMA is only the default here, not asked for: a host without an RDMA
      // device mounts over TCP instead, and says so.
      conn.transport = Transport::kTcp;
      if (o.port == DefaultPort(Transport::kRdma)) conn.port = DefaultPort(Transport::kTcp);
      so.msize = o.msize != 0 ? o.msize : tunables::kDefaultMsize;
      so.max_tags = tunables::kDefaultMaxTags;
      P9_LOG(kWarning, "%s; using TCP to port %u instead (give trans=tcp or trans=rdma to choose)",
             ch.status().message(), conn.port);
      ch = OpenChannel(o, conn.transport, conn.port, so);
    }
    if (!ch.ok()) return absl::UnavailableError(Clean(ch.status()));
    so.name = absl::StrCat("q", q);
    absl::StatusOr<std::unique_ptr<Session>> s = Session::Connect(std::move(*ch), so);
    if (!s.ok()) {
      return absl::UnavailableError(
          absl::StrCat(where, ": no 9P2000.L session: ", Clean(s.status())));
    }
    uint32_t fid = (*s)->AllocFid();
    absl::StatusOr<Qid> qid = AttachRoot(**s, fid, o, who);
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
    if (o.recover) (*s)->EnableRecovery(Recovery(o, conn, so, fid, who));
    conn.sessions.push_back(std::move(*s));
    conn.root_fids.push_back(fid);
  }
  return conn;
}

}  // namespace p9::fuse
