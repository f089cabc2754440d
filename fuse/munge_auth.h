// auth=munge: authenticating to a server the way diod expects (diod
// requires it unless run with -n). The client writes a MUNGE credential,
// which the local munged signs for this process's uid, to a fid opened with
// Tauth; the server decodes it with its munged (same key) and lets Tattach
// on that afid succeed only for the uid the credential names.
#ifndef P9_FUSE_MUNGE_AUTH_H_
#define P9_FUSE_MUNGE_AUTH_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "client/session.h"

namespace p9::fuse {

// A fresh credential from munged. Fails with one line (naming munged) when
// munged is not running or refuses; each call makes a new one because a
// server rejects a credential it has seen before.
absl::StatusOr<std::string> MungeCredential();

// Tauth as uname/n_uname for aname on `s`, then a fresh credential written
// to the afid. Returns the afid for Tattach; the caller clunks it after
// attaching (the server checks the credential during Tattach).
absl::StatusOr<uint32_t> MungeAuth(Session& s, const std::string& uname, const std::string& aname,
                                   uint32_t n_uname);

}  // namespace p9::fuse

#endif  // P9_FUSE_MUNGE_AUTH_H_
