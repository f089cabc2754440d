// absl::Status values that carry a POSIX errno, so an error travels as a
// Status inside and becomes the right errno at the FUSE boundary.
#ifndef P9_CLIENT_ERRORS_H_
#define P9_CLIENT_ERRORS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace p9 {

// A Status whose code follows absl::ErrnoToStatus and that remembers `err`
// exactly. `what` says what failed ("Tlopen").
absl::Status ErrnoError(int err, absl::string_view what);

// The errno a caller should see for `s`: the remembered errno when there is
// one, otherwise one derived from the status code (deadline → ETIMEDOUT,
// unavailable → ENOTCONN, data loss/protocol → EIO, …). 0 for OK.
int ToErrno(const absl::Status& s);

// A malformed or unexpected message from the peer.
absl::Status ProtocolError(absl::string_view what);

}  // namespace p9

#endif  // P9_CLIENT_ERRORS_H_
