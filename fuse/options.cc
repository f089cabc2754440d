#include "fuse/options.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/tunables.h"

#ifndef P9_VERSION
#define P9_VERSION "0.0.0"
#endif

namespace p9::fuse {
namespace {

// Flags FUSE (libfuse's mount code and the kernel) understands as they are.
constexpr absl::string_view kFusePassThrough[] = {
    "ro",      "rw",      "suid",       "nosuid",      "dev",
    "nodev",   "exec",    "noexec",     "async",       "sync",
    "dirsync", "noatime", "nodiratime", "allow_other", "default_permissions",
};

// Options mount(8) and fstab hand to helpers that mean nothing to us, and
// atime flavours libfuse does not take (FUSE mounts default to relatime).
constexpr absl::string_view kIgnored[] = {
    "defaults", "auto",       "noauto",     "_netdev",     "nofail",        "user",
    "nouser",   "users",      "owner",      "group",       "loud",          "silent",
    "atime",    "relatime",   "norelatime", "strictatime", "nostrictatime", "diratime",
    "lazytime", "nolazytime", "iversion",   "noiversion",  "mand",          "nomand",
};

constexpr int kMaxQueues = 64;

absl::Status Bad(absl::string_view what) { return absl::InvalidArgumentError(what); }

bool ParseUnsigned(absl::string_view v, uint64_t max, uint64_t* out) {
  if (v.empty() || !absl::ascii_isdigit(static_cast<unsigned char>(v[0]))) return false;
  uint64_t x = 0;
  if (!absl::SimpleAtoi(v, &x) || x > max) return false;
  *out = x;
  return true;
}

// msize=N with an optional k/K or m/M suffix.
bool ParseSize(absl::string_view v, uint64_t* out) {
  uint64_t mult = 1;
  if (!v.empty()) {
    char last = absl::ascii_tolower(static_cast<unsigned char>(v.back()));
    if (last == 'k') mult = 1024;
    if (last == 'm') mult = 1024 * 1024;
    if (mult != 1) v.remove_suffix(1);
  }
  uint64_t x = 0;
  if (!ParseUnsigned(v, UINT32_MAX, &x)) return false;
  *out = x * mult;
  return *out <= UINT32_MAX;
}

absl::Status ApplyOne(absl::string_view opt, MountOptions* o) {
  absl::string_view key = opt;
  absl::string_view value;
  bool has_value = false;
  if (size_t eq = opt.find('='); eq != absl::string_view::npos) {
    key = opt.substr(0, eq);
    value = opt.substr(eq + 1);
    has_value = true;
  }
  auto need_value = [&]() -> absl::Status {
    if (!has_value || value.empty()) return Bad(absl::StrCat("option ", key, " needs a value"));
    return absl::OkStatus();
  };
  auto no_value = [&]() -> absl::Status {
    if (has_value) return Bad(absl::StrCat("option ", key, " takes no value"));
    return absl::OkStatus();
  };

  if (key == "trans") {
    if (auto st = need_value(); !st.ok()) return st;
    if (value == "rdma") {
      o->trans = Transport::kRdma;
    } else if (value == "tcp") {
      o->trans = Transport::kTcp;
    } else {
      return Bad(absl::StrCat("trans=", value, ": must be rdma or tcp"));
    }
    o->trans_set = true;
    return absl::OkStatus();
  }
  if (key == "port") {
    if (auto st = need_value(); !st.ok()) return st;
    uint64_t p = 0;
    if (!ParseUnsigned(value, 65535, &p) || p == 0) {
      return Bad(absl::StrCat("port=", value, ": must be 1-65535"));
    }
    o->port = static_cast<uint16_t>(p);
    return absl::OkStatus();
  }
  if (key == "msize") {
    if (auto st = need_value(); !st.ok()) return st;
    uint64_t m = 0;
    if (!ParseSize(value, &m) || m < tunables::kMinMsize || m > tunables::kMaxMsize) {
      return Bad(absl::StrCat("msize=", value, ": must be ", tunables::kMinMsize, "-",
                              tunables::kMaxMsize, " bytes"));
    }
    o->msize = static_cast<uint32_t>(m);
    return absl::OkStatus();
  }
  if (key == "queues") {
    if (auto st = need_value(); !st.ok()) return st;
    uint64_t q = 0;
    if (!ParseUnsigned(value, kMaxQueues, &q) || q == 0) {
      return Bad(absl::StrCat("queues=", value, ": must be 1-", kMaxQueues));
    }
    o->queues = static_cast<int>(q);
    return absl::OkStatus();
  }
  if (key == "sq" || key == "rq") {
    if (auto st = need_value(); !st.ok()) return st;
    uint64_t d = 0;
    if (!ParseUnsigned(value, 1024, &d) || d == 0) {
      return Bad(absl::StrCat(key, "=", value, ": must be 1-1024"));
    }
    (key == "sq" ? o->sq : o->rq) = static_cast<uint32_t>(d);
    return absl::OkStatus();
  }
  if (key == "uname") {
    if (auto st = need_value(); !st.ok()) return st;
    o->uname = std::string(value);
    o->uname_set = true;
    return absl::OkStatus();
  }
  if (key == "auth") {
    if (auto st = need_value(); !st.ok()) return st;
    if (value == "none") {
      o->auth = AuthMode::kNone;
    } else if (value == "munge") {
      o->auth = AuthMode::kMunge;
    } else {
      return Bad(absl::StrCat("auth=", value, ": must be none or munge"));
    }
    return absl::OkStatus();
  }
  if (key == "access") {
    if (auto st = need_value(); !st.ok()) return st;
    uint64_t uid = 0;
    if (value == "client") {
      o->access = AccessMode::kClient;
    } else if (value == "user") {
      o->access = AccessMode::kUser;
    } else if (value == "any") {
      o->access = AccessMode::kAny;
    } else if (ParseUnsigned(value, UINT32_MAX - 1, &uid)) {
      o->access = AccessMode::kUid;
      o->access_uid = static_cast<uint32_t>(uid);
    } else {
      return Bad(absl::StrCat("access=", value, ": must be client, user, any or a numeric uid"));
    }
    return absl::OkStatus();
  }
  if (key == "cache") {
    if (auto st = need_value(); !st.ok()) return st;
    if (value == "none") {
      o->cache = CacheMode::kNone;
    } else if (value == "loose") {
      o->cache = CacheMode::kLoose;
    } else if (value == "readonly") {
      o->cache = CacheMode::kReadonly;
    } else {
      return Bad(absl::StrCat("cache=", value, ": must be none, loose or readonly"));
    }
    return absl::OkStatus();
  }
  if (key == "actimeo") {
    if (auto st = need_value(); !st.ok()) return st;
    double t = 0;
    if (!absl::SimpleAtod(value, &t) || !(t >= 0) || t > 24 * 3600) {
      return Bad(absl::StrCat("actimeo=", value, ": must be 0 to 86400 seconds"));
    }
    o->actimeo = t;
    return absl::OkStatus();
  }
  if (key == "writeback_cache") {
    if (auto st = no_value(); !st.ok()) return st;
    o->writeback = true;
    return absl::OkStatus();
  }
  if (key == "timeout") {
    if (auto st = need_value(); !st.ok()) return st;
    uint64_t t = 0;
    if (!ParseUnsigned(value, 24 * 3600, &t)) {
      return Bad(absl::StrCat("timeout=", value, ": must be 0 (forever) to 86400 seconds"));
    }
    o->timeout_seconds = static_cast<int>(t);
    return absl::OkStatus();
  }
  if (key == "recover") {
    if (auto st = need_value(); !st.ok()) return st;
    if (value == "on") {
      o->recover = true;
    } else if (value == "off") {
      o->recover = false;
    } else {
      return Bad(absl::StrCat("recover=", value, ": must be on or off"));
    }
    return absl::OkStatus();
  }
  if (key == "loglevel") {
    if (auto st = need_value(); !st.ok()) return st;
    static constexpr std::pair<absl::string_view, LogLevel> kLevels[] = {
        {"error", LogLevel::kError},
        {"warning", LogLevel::kWarning},
        {"info", LogLevel::kInfo},
        {"debug", LogLevel::kDebug},
    };
    for (const auto& [name, level] : kLevels) {
      if (value == name) {
        o->log_level = level;
        o->log_level_set = true;
        return absl::OkStatus();
      }
    }
    return Bad(absl::StrCat("loglevel=", value, ": must be error, warning, info or debug"));
  }
  if (key == "debug") {
    if (auto st = no_value(); !st.ok()) return st;
    o->debug = true;
    return absl::OkStatus();
  }
  for (absl::string_view f : kFusePassThrough) {
    if (key == f) {
      if (auto st = no_value(); !st.ok()) return st;
      std::string s(f);
      if (s == "ro") o->read_only = true;
      if (s == "rw") o->read_only = false;
      if (s == "allow_other") o->allow_other = true;
      if (s == "default_permissions") o->default_permissions = true;
      // Keep the last of ro/rw only; repeated flags are harmless to FUSE.
      if (s == "ro" || s == "rw") {
        std::erase_if(o->fuse_options, [](const std::string& x) { return x == "ro" || x == "rw"; });
      }
      if (std::find(o->fuse_options.begin(), o->fuse_options.end(), s) == o->fuse_options.end()) {
        o->fuse_options.push_back(s);
      }
      return absl::OkStatus();
    }
  }
  for (absl::string_view f : kIgnored) {
    if (key == f) {
      o->ignored_options.emplace_back(opt);
      return absl::OkStatus();
    }
  }
  if (absl::StartsWith(key, "x-") || key == "comment" || key == "context" || key == "fscontext" ||
      key == "defcontext" || key == "rootcontext") {
    o->ignored_options.emplace_back(opt);
    return absl::OkStatus();
  }
  if (o->sloppy) {
    o->ignored_options.emplace_back(opt);
    return absl::OkStatus();
  }
  return Bad(absl::StrCat("unknown option \"", opt, "\""));
}

}  // namespace

MountOptions::MountOptions() : timeout_seconds(tunables::kDefaultTimeoutSeconds) {}

const char* TransportName(Transport t) { return t == Transport::kRdma ? "rdma" : "tcp"; }

const char* AccessModeName(AccessMode a) {
  switch (a) {
    case AccessMode::kClient:
      return "client";
    case AccessMode::kUser:
      return "user";
    case AccessMode::kUid:
      return "uid";
    case AccessMode::kAny:
      return "any";
  }
  return "?";
}

uint16_t DefaultPort(Transport t) {
  return t == Transport::kRdma ? tunables::kDefaultRdmaPort : tunables::kDefaultTcpPort;
}

LogLevel EffectiveLogLevel(const MountOptions& opts) {
  if (opts.log_level_set) return opts.log_level;
  if (opts.debug) return LogLevel::kDebug;
  return opts.verbose ? LogLevel::kInfo : LogLevel::kWarning;
}

absl::Status ParseSource(absl::string_view source, std::string* host, std::string* export_path) {
  absl::string_view rest;
  if (absl::StartsWith(source, "[")) {
    size_t close = source.find(']');
    if (close == absl::string_view::npos) {
      return Bad(absl::StrCat("source \"", source, "\": unbalanced [ in IPv6 address"));
    }
    *host = std::string(source.substr(1, close - 1));
    rest = source.substr(close + 1);
    if (!absl::StartsWith(rest, ":")) {
      return Bad(absl::StrCat("source \"", source, "\" must be HOST:/EXPORT"));
    }
    rest.remove_prefix(1);
  } else {
    size_t colon = source.find(':');
    if (colon == absl::string_view::npos) {
      return Bad(absl::StrCat("source \"", source, "\" must be HOST:/EXPORT"));
    }
    *host = std::string(source.substr(0, colon));
    rest = source.substr(colon + 1);
    if (host->find(':') != std::string::npos || rest.find(':') != absl::string_view::npos) {
      // "fe80::1:/x": an IPv6 address must be bracketed.
      if (!absl::StartsWith(rest, "/")) {
        return Bad(absl::StrCat("source \"", source, "\": write an IPv6 host as [ADDRESS]"));
      }
    }
  }
  if (host->empty()) return Bad(absl::StrCat("source \"", source, "\" has no host"));
  if (rest.empty()) return Bad(absl::StrCat("source \"", source, "\" has no export path"));
  *export_path = std::string(rest);
  return absl::OkStatus();
}

absl::Status ParseOptionString(absl::string_view text, MountOptions* opts) {
  for (absl::string_view opt : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    if (absl::Status st = ApplyOne(opt, opts); !st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::StatusOr<MountOptions> ParseCommandLine(const std::vector<std::string>& args) {
  MountOptions o;
  std::vector<std::string> positional;
  std::vector<std::string> option_strings;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto next = [&](const char* what) -> absl::StatusOr<std::string> {
      if (i + 1 >= args.size()) return Bad(absl::StrCat(what, " needs an argument"));
      return args[++i];
    };
    if (a == "-h" || a == "--help") {
      o.help = true;
    } else if (a == "-V" || a == "--version") {
      o.version = true;
    } else if (a == "-f" || a == "--foreground") {
      o.foreground = true;
    } else if (a == "-s") {
      o.sloppy = true;
    } else if (a == "-v") {
      o.verbose = true;
    } else if (a == "-n") {
      // mount(8): "do not write mtab"; we never do.
    } else if (a == "-o") {
      absl::StatusOr<std::string> v = next("-o");
      if (!v.ok()) return v.status();
      option_strings.push_back(*v);
    } else if (absl::StartsWith(a, "-o") && a.size() > 2) {
      option_strings.push_back(a.substr(2));
    } else if (a == "-t") {
      absl::StatusOr<std::string> v = next("-t");
      if (!v.ok()) return v.status();
      if (*v != "9prdma" && *v != "fuse.9prdma") {
        return Bad(absl::StrCat("-t ", *v, ": this helper mounts type 9prdma"));
      }
    } else if (a == "-N") {
      // mount(8) passes -N for a mount namespace; mounting into another
      // namespace is not supported.
      return Bad("-N (mount namespace) is not supported");
    } else if (a == "--") {
      for (++i; i < args.size(); ++i) positional.push_back(args[i]);
    } else if (a.size() > 1 && a[0] == '-') {
      return Bad(absl::StrCat("unknown argument \"", a, "\" (see --help)"));
    } else {
      positional.push_back(a);
    }
  }
  // Sloppy must apply to every -o, wherever -s came.
  for (const std::string& s : option_strings) {
    if (absl::Status st = ParseOptionString(s, &o); !st.ok()) return st;
  }
  if (o.help || o.version) return o;
  if (o.writeback && o.cache == CacheMode::kNone) {
    return Bad(
        "writeback_cache needs cache=loose or cache=readonly (cache=none keeps no page cache)");
  }
  if (positional.size() != 2) {
    return Bad(positional.size() < 2 ? "need HOST:/EXPORT and MOUNTPOINT (see --help)"
                                     : "too many arguments (see --help)");
  }
  o.source = positional[0];
  o.mountpoint = positional[1];
  if (absl::Status st = ParseSource(o.source, &o.host, &o.export_path); !st.ok()) return st;
  if (o.port == 0) o.port = DefaultPort(o.trans);
  return o;
}

bool ImpliesDefaultPermissions(AccessMode a) {
  return a == AccessMode::kClient || a == AccessMode::kUser;
}

std::string FuseOptionString(const MountOptions& opts, bool force_default_permissions) {
  std::vector<std::string> parts;
  // The source shows in /proc/mounts and df; commas would split the option.
  std::string fsname = opts.source;
  std::replace(fsname.begin(), fsname.end(), ',', '_');
  parts.push_back("fsname=" + fsname);
  parts.push_back("subtype=9prdma");
  for (const std::string& f : opts.fuse_options) parts.push_back(f);
  if (force_default_permissions && !opts.default_permissions) {
    parts.push_back("default_permissions");
  }
  return absl::StrJoin(parts, ",");
}

std::string UsageText(absl::string_view prog) {
  return absl::StrCat("usage: ", prog, " [-f] [-s] [-v] [-o OPTIONS] HOST:/EXPORT MOUNTPOINT\n",
                      R"(
Mounts the 9P2000.L export EXPORT of HOST (a name, an IPv4 address or
[IPv6]) on MOUNTPOINT through FUSE. EXPORT is sent as the attach name.
Also runs as the mount(8) helper: mount -t 9prdma HOST:/EXPORT MOUNTPOINT.

  -f            stay in the foreground (log to stderr) instead of daemonizing
  -s            sloppy: ignore unknown -o options instead of failing
  -v            verbose: log mount progress
  -h, --help    this text
  -V, --version print the version

9P options (-o, comma separated):
  trans=rdma|tcp   transport (default rdma: RC queue pair through rdma_cm)
  port=N           server port (default 5640 for rdma, 564 for tcp)
  msize=N[k|m]     largest 9P message asked for (default 512k over tcp, 128k
                   over rdma; the server may lower it; large reads/writes
                   are sized from it)
  queues=N         N connections, each its own 9P session (default 1)
  sq=N, rq=N       rdma: sends in flight / receives posted per queue
                   (default 32/32; rq is raised to sq; registered memory per
                   queue is (sq + rq) x msize)
  uname=NAME       user name sent in Tattach (default: the mounting user)
  access=client    one attach as uname; the kernel checks permissions with
                   the mode bits (implies default_permissions) [default]
  access=UID       one attach as numeric UID; other local users get EACCES
                   (implies allow_other when UID is not the mounting user)
  access=user      one attach per local user (n_uname = their uid, made on
                   their first request): the server acts as that user and
                   new files are theirs; the kernel checks the mode bits
                   too, as v9fs does (implies default_permissions). Other
                   users than the mounting one need allow_other
  access=any       one attach as uname; no client-side permission checks:
                   the server decides as that one identity for every user
                   (other users than the mounting one need allow_other)
  auth=munge       authenticate with a MUNGE credential of the mounting
                   user (Tauth, as diod requires unless run with -n);
                   needs munged running here and sharing the server's key
  auth=none        no Tauth [default]
  cache=none       no caching: every operation goes to the server [default]
  cache=loose      page cache (kept while mtime and size are unchanged),
                   cached directory listings and symlinks, 1 s attribute/
                   entry/negative-entry caching: changes made elsewhere are
                   seen within 1 s, changes made here at once
  cache=readonly   the same for trees that do not change: 300 s
  actimeo=SECONDS  those lifetimes for cache=loose|readonly (0 to 86400;
                   fractions allowed)
  writeback_cache  let the kernel gather writes in the page cache and send
                   them later, in large requests (cache=loose|readonly;
                   for data this client alone writes)
  timeout=SECONDS  deadline of each 9P request, 0 = none (default 60); also
                   how long a call waits for a lost server to come back
  recover=on|off   reconnect when a connection dies (server restart, link
                   flap): files are walked and opened again, reads and
                   writes in flight are re-sent, other calls in flight fail
                   with EIO, a lock held then is lost (EIO) [default on]
  loglevel=error|warning|info|debug
                   what the daemon logs (default warning; info with -v,
                   debug with debug); repeated errors and warnings are
                   rate-limited (10 per 5 s per message)
  debug            trace every 9P message (stderr with -f, else syslog),
                   whatever loglevel says

FUSE/mount options passed through: ro, rw, nosuid, suid, nodev, dev, noexec,
exec, sync, async, dirsync, noatime, nodiratime, allow_other,
default_permissions. Accepted and ignored (fstab/mount(8)): defaults, auto,
noauto, _netdev, nofail, user, users, owner, group, x-*, comment=*, atime,
relatime, strictatime, lazytime and their no- forms.

Mounts by non-root users go through fusermount3 and are always nosuid,nodev
(suid and dev are refused); only the mounting user can use them unless
allow_other, which needs a user_allow_other line in /etc/fuse.conf (else the
mount is refused with exit status 1 before connecting).

Exit status: 0 mounted, 1 bad usage or option, 32 mount failure (mount(8)
conventions). Unmount with umount MOUNTPOINT or fusermount3 -u MOUNTPOINT.
)");
}

std::string VersionText() { return absl::StrCat("mount.9prdma ", P9_VERSION, "\n"); }

}  // namespace p9::fuse
