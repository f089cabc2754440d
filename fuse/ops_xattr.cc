// Extended attributes through Txattrwalk / Txattrcreate.
#include <string>

#include "fuse/ops.h"

namespace p9::fuse::ops {
namespace {

// Replies to getxattr/listxattr with `value` under the size protocol:
// size 0 asks for the length, a too-small buffer is ERANGE.
void ReplyXattr(fuse_req_t req, const absl::StatusOr<std::string>& value, size_t size) {
  if (!value.ok()) return ReplyStatus(req, value.status());
  if (size == 0) {
    fuse_reply_xattr(req, value->size());
  } else if (value->size() > size) {
    fuse_reply_err(req, ERANGE);
  } else {
    fuse_reply_buf(req, value->data(), value->size());
  }
}

InodeRef InodeOr(fuse_req_t req, fuse_ino_t ino) {
  if (!Fs(req)->Allowed(req)) {
    fuse_reply_err(req, EACCES);
    return nullptr;
  }
  InodeRef i = Fs(req)->inodes().Get(ino);
  if (i == nullptr) fuse_reply_err(req, ESTALE);
  return i;
}

}  // namespace

void Setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
              int flags) {
  Run(req, "setxattr", [&] {
    Filesystem* fs = Fs(req);
    InodeRef inode = InodeOr(req, ino);
    if (inode == nullptr) return;
    auto data = absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(value), size);
    absl::Status st = fs->WithFid(inode, fs->PickChannel(), [&](const FidRef& f) {
      return f->session()->SetXattr(f->num(), name, data, static_cast<uint32_t>(flags));
    });
    ReplyStatus(req, st);
  });
}

void Getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  Run(req, "getxattr", [&] {
    Filesystem* fs = Fs(req);
    InodeRef inode = InodeOr(req, ino);
    if (inode == nullptr) return;
    if (fs->xattr_absence().Absent(inode->qid_path, name, fs->policy().attr_ttl())) {
      return Err(req, ENODATA);
    }
    const cache::AttrCache::Clock asked = cache::AttrCache::Now();
    absl::StatusOr<std::string> v = fs->WithFid(inode, fs->PickChannel(), [&](const FidRef& f) {
      return f->session()->GetXattr(f->num(), name);
    });
    if (!v.ok() && ToErrno(v.status()) == ENODATA) {
      fs->xattr_absence().PutAbsent(inode->qid_path, name, asked);
    }
    ReplyXattr(req, v, size);
  });
}

void Listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Run(req, "listxattr", [&] {
    Filesystem* fs = Fs(req);
    InodeRef inode = InodeOr(req, ino);
    if (inode == nullptr) return;
    absl::StatusOr<std::string> v = fs->WithFid(inode, fs->PickChannel(), [&](const FidRef& f) {
      return f->session()->GetXattr(f->num(), "");
    });
    ReplyXattr(req, v, size);
  });
}

void Removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  Run(req, "removexattr", [&] {
    Filesystem* fs = Fs(req);
    InodeRef inode = InodeOr(req, ino);
    if (inode == nullptr) return;
    // 9P2000.L has no remove: an empty Txattrcreate (as the kernel client
    // sends) makes the server remove the attribute when the fid is clunked.
    absl::Status st = fs->WithFid(inode, fs->PickChannel(), [&](const FidRef& f) {
      return f->session()->SetXattr(f->num(), name, {}, kXattrReplace);
    });
    ReplyStatus(req, st);
  });
}

}  // namespace p9::fuse::ops
