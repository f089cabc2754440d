#include "fuse/munge_auth.h"

#include <munge.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"

namespace p9::fuse {

absl::StatusOr<std::string> MungeCredential() {
  char* cred = nullptr;
  munge_err_t err = munge_encode(&cred, nullptr, nullptr, 0);
  if (err != EMUNGE_SUCCESS) {
    free(cred);
    return absl::UnavailableError(
        absl::StrCat("auth=munge: no MUNGE credential: ", munge_strerror(err),
                     err == EMUNGE_SOCKET ? " (is munged running?)" : ""));
  }
  std::string out(cred);
  free(cred);
  return out;
}

absl::StatusOr<uint32_t> MungeAuth(Session& s, const std::string& uname, const std::string& aname,
                                   uint32_t n_uname) {
  absl::StatusOr<std::string> cred = MungeCredential();
  if (!cred.ok()) return cred.status();
  uint32_t afid = s.AllocFid();
  absl::StatusOr<Qid> aqid = s.Auth(afid, uname, aname, n_uname);
  if (!aqid.ok()) {
    s.FreeFid(afid);
    return aqid.status();
  }
  // diod takes the credential in pieces only at consecutive offsets.
  auto bytes = absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(cred->data()), cred->size());
  uint64_t off = 0;
  while (off < bytes.size()) {
    absl::StatusOr<uint32_t> n = s.Write(afid, off, bytes.subspan(off));
    if (!n.ok() || *n == 0) {
      (void)s.Clunk(afid);
      return n.ok() ? absl::DataLossError("the server took no credential bytes") : n.status();
    }
    off += *n;
  }
  return afid;
}

}  // namespace p9::fuse
