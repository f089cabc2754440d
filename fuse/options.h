// Command line and -o option parsing of mount.9prdma. Pure functions: no I/O,
// no network, so every rule is unit-tested (tests/unit/fuse_options_test.cc).
#ifndef P9_FUSE_OPTIONS_H_
#define P9_FUSE_OPTIONS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cache/policy.h"
#include "client/log.h"

namespace p9::fuse {

enum class Transport { kRdma, kTcp };
enum class AccessMode { kClient, kUser, kUid, kAny };
using cache::CacheMode;
using cache::CacheModeName;
// How the mount proves who it is to the server before attaching.
enum class AuthMode { kNone, kMunge };

const char* TransportName(Transport t);
const char* AccessModeName(AccessMode a);

// Everything the command line asks for. Fields not given keep the defaults
// written here; *_set says whether the user gave the option explicitly.
struct MountOptions {
  // HOST:/EXPORT split up. `host` keeps IPv6 brackets off ("::1").
  std::string source;
  std::string host;
  std::string export_path;
  std::string mountpoint;

  Transport trans = Transport::kRdma;
  bool trans_set = false;
  // 0 until resolved: DefaultPort(trans) unless port= was given.
  uint16_t port = 0;
  // 0 = the client default (tunables::kDefaultMsize).
  uint32_t msize = 0;
  int queues = 1;
  // RDMA send/receive queue depths (requests in flight per queue); rq >= sq.
  uint32_t sq = 0;  // 0: tunables::kDefaultSendQueueDepth
  uint32_t rq = 0;  // 0: tunables::kDefaultRecvQueueDepth
  std::string uname;
  bool uname_set = false;
  AccessMode access = AccessMode::kClient;
  uint32_t access_uid = 0;  // for AccessMode::kUid
  CacheMode cache = CacheMode::kNone;
  // actimeo=: seconds names, attributes and absent names are trusted under
  // cache=loose|readonly; < 0 keeps the mode's default.
  double actimeo = -1;
  // writeback_cache: the kernel buffers writes (cache=loose|readonly only).
  bool writeback = false;
  // auth=munge: a MUNGE credential written to a Tauth fid (what diod
  // requires unless run with -n).
  AuthMode auth = AuthMode::kNone;
  // Seconds per RPC; 0 waits forever.
  int timeout_seconds;
  // Re-establish a dead connection (recover=on, the default) or let the
  // mount fail every call from then on (recover=off).
  bool recover = true;
  bool debug = false;
  // loglevel=: what the daemon logs; unset, -v means info and debug means
  // debug (otherwise warnings and errors). `debug` traces 9P messages
  // whatever the level.
  LogLevel log_level = LogLevel::kWarning;
  bool log_level_set = false;

  // Mount flags handled by FUSE/the kernel, in the order given (ro, nosuid,
  // allow_other, default_permissions, ...).
  std::vector<std::string> fuse_options;
  bool read_only = false;
  bool allow_other = false;
  bool default_permissions = false;
  // Options accepted for fstab/mount(8) compatibility and ignored.
  std::vector<std::string> ignored_options;

  // Command-line flags.
  bool foreground = false;  // -f
  bool verbose = false;     // -v (from mount -v)
  bool sloppy = false;      // -s: unknown -o options are warnings, not errors
  bool help = false;
  bool version = false;

  MountOptions();
};

// Parses argv (argv[0] excluded) in mount(8) helper form:
//   SOURCE MOUNTPOINT [-f] [-s] [-n] [-v] [-N NS] [-t TYPE] [-o OPTS]...
// Options may come before or after the positional arguments. With --help or
// --version, positional arguments may be missing.
absl::StatusOr<MountOptions> ParseCommandLine(const std::vector<std::string>& args);

// Applies one comma-separated -o string to *opts. Unknown options are an
// error naming them (unless opts->sloppy, then they are ignored).
absl::Status ParseOptionString(absl::string_view text, MountOptions* opts);

// Splits "HOST:/EXPORT" (HOST a name, IPv4 or [IPv6]) into host and export.
absl::Status ParseSource(absl::string_view source, std::string* host, std::string* export_path);

uint16_t DefaultPort(Transport t);

// The log level the daemon runs at: loglevel= if given, else from debug
// and -v.
LogLevel EffectiveLogLevel(const MountOptions& opts);

// Whether the kernel must check permissions with the mode bits
// (default_permissions). access=client: the server sees one identity for
// every local user. access=user: the server checks too, as each user, but
// diod trusts a connection once root attached on it and then lets every
// attach bypass DAC (np_setfsid, SRV_FLAGS_DAC_BYPASS), relying on the
// client to check, as the kernel's v9fs does (generic_permission) in every
// access mode. access=any leaves it to the server as the one attach
// identity; access=UID admits one user only (Filesystem::Allowed).
bool ImpliesDefaultPermissions(AccessMode a);

// The -o string handed to fuse_session_new: fsname, subtype and the
// pass-through flags. `force_default_permissions` adds default_permissions.
std::string FuseOptionString(const MountOptions& opts, bool force_default_permissions);

// --help text and --version line.
std::string UsageText(absl::string_view prog);
std::string VersionText();

}  // namespace p9::fuse

#endif  // P9_FUSE_OPTIONS_H_
