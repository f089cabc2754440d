// The `debug` trace of 9P messages: one line per message, in the spirit of
// the kernel's net/9p debug output (">>> TWALK ..."), with every field of
// every 9P2000.L message by name.
#ifndef P9_CLIENT_TRACE_H_
#define P9_CLIENT_TRACE_H_

#include <cstdint>
#include <string>

#include "absl/types/span.h"

namespace p9 {

// Describes one encoded message, e.g.
//   "TWALK tag 3 fid 1 newfid 2 nwname 1 wname[0] foo"
//   "RLERROR tag 5 ecode 2"
// Qids are type.path.version in hex (as the kernel prints them), `mode` is
// octal, payloads are summarized by their size ("count 4096") and never
// dumped, names are printed with control and non-ASCII bytes escaped.
// Anything that does not decode is described as malformed, never trusted:
// this runs on whatever the peer sent.
std::string FormatMessage(absl::Span<const uint8_t> msg);

}  // namespace p9

#endif  // P9_CLIENT_TRACE_H_
