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

// The connection carrying a request died before its reply came, so the
// server may or may not have executed it. The caller sees EIO; the FUSE
// layer re-sends requests that are safe to repeat on a new connection.
absl::Status ConnectionLost(absl::string_view what);
// True for a ConnectionLost() status.
bool IsConnectionLost(const absl::Status& s);

}  // namespace p9

#endif  // P9_CLIENT_ERRORS_H_
