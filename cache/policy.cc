#include "cache/policy.h"

namespace p9::cache {

Policy PolicyFor(CacheMode mode, double actimeo, bool writeback) {
  Policy p;
  if (mode == CacheMode::kNone) {
    p.lookup_attr_timeout = kNoneLookupAttrSeconds;
    return p;
  }
  // loose and readonly keep the same things, for different lifetimes.
  const double lifetime =
      mode == CacheMode::kLoose ? kLooseTimeoutSeconds : kReadonlyTimeoutSeconds;
  p.entry_timeout = p.attr_timeout = p.negative_timeout = lifetime;
  p.direct_io = false;
  p.keep_cache = true;
  p.cache_dir = true;
  p.cache_symlinks = true;
  p.readdirplus = true;
  if (actimeo >= 0) p.entry_timeout = p.attr_timeout = p.negative_timeout = actimeo;
  p.writeback = writeback;
  return p;
}

const char* CacheModeName(CacheMode c) {
  switch (c) {
    case CacheMode::kNone:
      return "none";
    case CacheMode::kLoose:
      return "loose";
    case CacheMode::kReadonly:
      return "readonly";
  }
  return "?";
}

}  // namespace p9::cache
