// The one place that picks the libfuse API level; fuse/ includes libfuse only
// through this header.
#ifndef P9_FUSE_FUSE_API_H_
#define P9_FUSE_FUSE_API_H_

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif
#include <fuse_lowlevel.h>

#endif  // P9_FUSE_FUSE_API_H_
