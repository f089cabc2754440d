// What a cache mode keeps, and for how long. The kernel's FUSE caches
// (entries, negative entries, attributes, page cache, cached directory
// listings and symlinks) are the first level and are driven by these
// timeouts and flags; the userspace caches in this directory keep the same
// lifetimes, so neither level can hold something the other would not.
#ifndef P9_CACHE_POLICY_H_
#define P9_CACHE_POLICY_H_

#include "absl/time/time.h"

namespace p9::cache {

enum class CacheMode { kNone, kLoose, kReadonly };

// Default lifetimes per mode (actimeo= overrides them for loose/readonly).
// cache=loose: one second, like NFS's lower bound and FUSE's default: a
// change made on the server is seen within it.
inline constexpr double kLooseTimeoutSeconds = 1.0;
// cache=none: how long the attributes a lookup has just fetched stand for
// the path walk that asked for them: the permission checks of the
// directories on the way (default_permissions) and the stat at its end.
// Without it each of those was one more Tgetattr right after the lookup's
// own: a stat of a/b/f waited for seven round trips instead of four. The
// kernel's 9p client takes lookup-time attributes as current the same way. Every path
// walk still looks each name up again (cache=none keeps no entry), so the
// next walk sees a change on the server; only a getattr without a walk
// (fstat) within this window may be answered with the lookup's attributes.
inline constexpr double kNoneLookupAttrSeconds = 0.01;
// cache=readonly is for trees that do not change while mounted (software
// stacks, reference data): five minutes.
inline constexpr double kReadonlyTimeoutSeconds = 300.0;

struct Policy {
  // Seconds the kernel (and we) may trust a name, an attribute, a
  // known-absent name. 0 = ask the server every time.
  double entry_timeout = 0;
  double attr_timeout = 0;
  // 0: no negative dentries (ENOENT is returned instead).
  double negative_timeout = 0;
  // With attr_timeout 0: how long the kernel may use the attributes sent
  // with a lookup's entry (kNoneLookupAttrSeconds).
  double lookup_attr_timeout = 0;
  // File data bypasses the page cache (cache=none: every read and write goes
  // to the server, as the kernel client's cache=none does).
  bool direct_io = true;
  // Page cache kept across opens while mtime and size are unchanged (the
  // kernel drops it when a getattr shows them changed: auto_inval_data).
  bool keep_cache = false;
  // Directory listings kept in the kernel across opens, dropped when the
  // directory's mtime changes or this mount changes it.
  bool cache_dir = false;
  // Symlink targets kept in the kernel's page cache (a symlink's target
  // never changes: a new target is a new file).
  bool cache_symlinks = false;
  // Listings carry attributes, so `ls -l` and `find` need no lookup each.
  bool readdirplus = false;
  // writeback_cache: the kernel gathers small writes and sends them later
  // (data private to this client until flushed).
  bool writeback = false;

  // The attribute lifetime as a duration (for the userspace caches).
  absl::Duration attr_ttl() const { return absl::Seconds(attr_timeout); }
};

// The policy of `mode`. `actimeo` < 0 keeps the mode's default lifetimes;
// otherwise it replaces them (ignored for cache=none, which caches nothing).
Policy PolicyFor(CacheMode mode, double actimeo = -1, bool writeback = false);

const char* CacheModeName(CacheMode c);

}  // namespace p9::cache

#endif  // P9_CACHE_POLICY_H_
