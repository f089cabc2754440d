#include "client/errors.h"

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/types/optional.h"

namespace p9 {
namespace {
constexpr char kErrnoPayload[] = "p9/errno";
constexpr char kProtocolPayload[] = "p9/protocol";
constexpr char kConnectionLostPayload[] = "p9/connection-lost";
}  // namespace

absl::Status ErrnoError(int err, absl::string_view what) {
  // Only the code from absl's mapping: callers' messages already name the
  // error, and absl::ErrnoToStatus would append strerror() a second time.
  absl::Status s(absl::ErrnoToStatusCode(err), what);
  s.SetPayload(kErrnoPayload, absl::Cord(absl::StrCat(err)));
  return s;
}

absl::Status ProtocolError(absl::string_view what) {
  absl::Status s = absl::DataLossError(absl::StrCat("9P protocol error: ", what));
  s.SetPayload(kProtocolPayload, absl::Cord("1"));
  return s;
}

absl::Status ConnectionLost(absl::string_view what) {
  absl::Status s = absl::UnavailableError(what);
  s.SetPayload(kErrnoPayload, absl::Cord(absl::StrCat(EIO)));
  s.SetPayload(kConnectionLostPayload, absl::Cord("1"));
  return s;
}

bool IsConnectionLost(const absl::Status& s) {
  return !s.ok() && s.GetPayload(kConnectionLostPayload).has_value();
}

int ToErrno(const absl::Status& s) {
  if (s.ok()) return 0;
  if (absl::optional<absl::Cord> p = s.GetPayload(kErrnoPayload)) {
    int err = 0;
    if (absl::SimpleAtoi(std::string(*p), &err) && err > 0) return err;
  }
  switch (s.code()) {
    case absl::StatusCode::kDeadlineExceeded:
      return ETIMEDOUT;
    case absl::StatusCode::kUnavailable:
      return ENOTCONN;
    case absl::StatusCode::kCancelled:
      return EINTR;
    case absl::StatusCode::kNotFound:
      return ENOENT;
    case absl::StatusCode::kAlreadyExists:
      return EEXIST;
    case absl::StatusCode::kPermissionDenied:
      return EACCES;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return EINVAL;
    case absl::StatusCode::kResourceExhausted:
      return ENOMEM;
    case absl::StatusCode::kUnimplemented:
      return EOPNOTSUPP;
    default:
      return EIO;
  }
}

}  // namespace p9
