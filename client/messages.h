// One type per 9P2000.L message, T and R. Each type lists its wire fields
// once (P9_FIELDS); encoding, decoding and equality are derived from that
// list, so the wire layout of a message is written in exactly one place.
#ifndef P9_CLIENT_MESSAGES_H_
#define P9_CLIENT_MESSAGES_H_

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "client/protocol.h"

namespace p9 {

// type[1] version[4] path[8]: the server's unique identity of a file.
struct Qid {
  uint8_t type = 0;
  uint32_t version = 0;
  uint64_t path = 0;
  bool operator==(const Qid&) const = default;
};

// count[4] data[count]: opaque payload of Tread/Twrite/Rread.
struct Bytes {
  std::string data;
  bool operator==(const Bytes&) const = default;
};

// One directory entry of Rreaddir: qid[13] offset[8] type[1] name[s].
struct Dirent {
  Qid qid;
  uint64_t offset = 0;
  uint8_t type = 0;
  std::string name;
  bool operator==(const Dirent&) const = default;
};

// count[4] then `count` bytes of packed Dirents.
struct DirentList {
  std::vector<Dirent> entries;
  bool operator==(const DirentList&) const = default;
};

// nwname[2] nwname*wname[s], at most kMaxWalkElements.
struct WalkNames {
  std::vector<std::string> names;
  bool operator==(const WalkNames&) const = default;
};

// nwqid[2] nwqid*qid[13], at most kMaxWalkElements.
struct WalkQids {
  std::vector<Qid> qids;
  bool operator==(const WalkQids&) const = default;
};

// kFieldNames: the field list as written ("fid, newfid, wnames"), for the
// debug trace (client/trace.h), which prints each field by its name.
#define P9_FIELDS(...)                                     \
  static constexpr const char* kFieldNames = #__VA_ARGS__; \
  auto Fields() { return std::tie(__VA_ARGS__); }          \
  auto Fields() const { return std::tie(__VA_ARGS__); }

#define P9_NO_FIELDS()                           \
  static constexpr const char* kFieldNames = ""; \
  std::tuple<> Fields() const { return {}; }

#define P9_MESSAGE(Name)                             \
  static constexpr MsgType kType = MsgType::k##Name; \
  static constexpr const char* kName = #Name;        \
  bool operator==(const Name&) const = default

struct Tversion {
  P9_MESSAGE(Tversion);
  uint32_t msize = 0;
  std::string version;
  P9_FIELDS(msize, version)
};
struct Rversion {
  P9_MESSAGE(Rversion);
  uint32_t msize = 0;
  std::string version;
  P9_FIELDS(msize, version)
};

struct Tauth {
  P9_MESSAGE(Tauth);
  uint32_t afid = 0;
  std::string uname;
  std::string aname;
  uint32_t n_uname = kNoUid;
  P9_FIELDS(afid, uname, aname, n_uname)
};
struct Rauth {
  P9_MESSAGE(Rauth);
  Qid aqid;
  P9_FIELDS(aqid)
};

struct Tattach {
  P9_MESSAGE(Tattach);
  uint32_t fid = 0;
  uint32_t afid = kNoFid;
  std::string uname;
  std::string aname;
  uint32_t n_uname = kNoUid;
  P9_FIELDS(fid, afid, uname, aname, n_uname)
};
struct Rattach {
  P9_MESSAGE(Rattach);
  Qid qid;
  P9_FIELDS(qid)
};

struct Rlerror {
  P9_MESSAGE(Rlerror);
  uint32_t ecode = 0;
  P9_FIELDS(ecode)
};

struct Tflush {
  P9_MESSAGE(Tflush);
  uint16_t oldtag = 0;
  P9_FIELDS(oldtag)
};
struct Rflush {
  P9_MESSAGE(Rflush);
  P9_NO_FIELDS()
};

struct Twalk {
  P9_MESSAGE(Twalk);
  uint32_t fid = 0;
  uint32_t newfid = 0;
  WalkNames wnames;
  P9_FIELDS(fid, newfid, wnames)
};
struct Rwalk {
  P9_MESSAGE(Rwalk);
  WalkQids wqids;
  P9_FIELDS(wqids)
};

struct Tread {
  P9_MESSAGE(Tread);
  uint32_t fid = 0;
  uint64_t offset = 0;
  uint32_t count = 0;
  P9_FIELDS(fid, offset, count)
};
struct Rread {
  P9_MESSAGE(Rread);
  Bytes data;
  P9_FIELDS(data)
};

struct Twrite {
  P9_MESSAGE(Twrite);
  uint32_t fid = 0;
  uint64_t offset = 0;
  Bytes data;
  P9_FIELDS(fid, offset, data)
};
struct Rwrite {
  P9_MESSAGE(Rwrite);
  uint32_t count = 0;
  P9_FIELDS(count)
};

struct Tclunk {
  P9_MESSAGE(Tclunk);
  uint32_t fid = 0;
  P9_FIELDS(fid)
};
struct Rclunk {
  P9_MESSAGE(Rclunk);
  P9_NO_FIELDS()
};

struct Tremove {
  P9_MESSAGE(Tremove);
  uint32_t fid = 0;
  P9_FIELDS(fid)
};
struct Rremove {
  P9_MESSAGE(Rremove);
  P9_NO_FIELDS()
};

struct Tstatfs {
  P9_MESSAGE(Tstatfs);
  uint32_t fid = 0;
  P9_FIELDS(fid)
};
struct Rstatfs {
  P9_MESSAGE(Rstatfs);
  uint32_t type = 0;
  uint32_t bsize = 0;
  uint64_t blocks = 0;
  uint64_t bfree = 0;
  uint64_t bavail = 0;
  uint64_t files = 0;
  uint64_t ffree = 0;
  uint64_t fsid = 0;
  uint32_t namelen = 0;
  P9_FIELDS(type, bsize, blocks, bfree, bavail, files, ffree, fsid, namelen)
};

struct Tlopen {
  P9_MESSAGE(Tlopen);
  uint32_t fid = 0;
  uint32_t flags = 0;
  P9_FIELDS(fid, flags)
};
struct Rlopen {
  P9_MESSAGE(Rlopen);
  Qid qid;
  uint32_t iounit = 0;
  P9_FIELDS(qid, iounit)
};

struct Tlcreate {
  P9_MESSAGE(Tlcreate);
  uint32_t fid = 0;
  std::string name;
  uint32_t flags = 0;
  uint32_t mode = 0;
  uint32_t gid = 0;
  P9_FIELDS(fid, name, flags, mode, gid)
};
struct Rlcreate {
  P9_MESSAGE(Rlcreate);
  Qid qid;
  uint32_t iounit = 0;
  P9_FIELDS(qid, iounit)
};

struct Tsymlink {
  P9_MESSAGE(Tsymlink);
  uint32_t fid = 0;
  std::string name;
  std::string symtgt;
  uint32_t gid = 0;
  P9_FIELDS(fid, name, symtgt, gid)
};
struct Rsymlink {
  P9_MESSAGE(Rsymlink);
  Qid qid;
  P9_FIELDS(qid)
};

struct Tmknod {
  P9_MESSAGE(Tmknod);
  uint32_t dfid = 0;
  std::string name;
  uint32_t mode = 0;
  uint32_t major = 0;
  uint32_t minor = 0;
  uint32_t gid = 0;
  P9_FIELDS(dfid, name, mode, major, minor, gid)
};
struct Rmknod {
  P9_MESSAGE(Rmknod);
  Qid qid;
  P9_FIELDS(qid)
};

struct Trename {
  P9_MESSAGE(Trename);
  uint32_t fid = 0;
  uint32_t dfid = 0;
  std::string name;
  P9_FIELDS(fid, dfid, name)
};
struct Rrename {
  P9_MESSAGE(Rrename);
  P9_NO_FIELDS()
};

struct Treadlink {
  P9_MESSAGE(Treadlink);
  uint32_t fid = 0;
  P9_FIELDS(fid)
};
struct Rreadlink {
  P9_MESSAGE(Rreadlink);
  std::string target;
  P9_FIELDS(target)
};

struct Tgetattr {
  P9_MESSAGE(Tgetattr);
  uint32_t fid = 0;
  uint64_t request_mask = 0;
  P9_FIELDS(fid, request_mask)
};
struct Rgetattr {
  P9_MESSAGE(Rgetattr);
  uint64_t valid = 0;
  Qid qid;
  uint32_t mode = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t nlink = 0;
  uint64_t rdev = 0;
  uint64_t size = 0;
  uint64_t blksize = 0;
  uint64_t blocks = 0;
  uint64_t atime_sec = 0;
  uint64_t atime_nsec = 0;
  uint64_t mtime_sec = 0;
  uint64_t mtime_nsec = 0;
  uint64_t ctime_sec = 0;
  uint64_t ctime_nsec = 0;
  uint64_t btime_sec = 0;
  uint64_t btime_nsec = 0;
  uint64_t gen = 0;
  uint64_t data_version = 0;
  P9_FIELDS(valid, qid, mode, uid, gid, nlink, rdev, size, blksize, blocks, atime_sec, atime_nsec,
            mtime_sec, mtime_nsec, ctime_sec, ctime_nsec, btime_sec, btime_nsec, gen, data_version)
};

struct Tsetattr {
  P9_MESSAGE(Tsetattr);
  uint32_t fid = 0;
  uint32_t valid = 0;
  uint32_t mode = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;
  uint64_t atime_sec = 0;
  uint64_t atime_nsec = 0;
  uint64_t mtime_sec = 0;
  uint64_t mtime_nsec = 0;
  P9_FIELDS(fid, valid, mode, uid, gid, size, atime_sec, atime_nsec, mtime_sec, mtime_nsec)
};
struct Rsetattr {
  P9_MESSAGE(Rsetattr);
  P9_NO_FIELDS()
};

struct Txattrwalk {
  P9_MESSAGE(Txattrwalk);
  uint32_t fid = 0;
  uint32_t newfid = 0;
  std::string name;
  P9_FIELDS(fid, newfid, name)
};
struct Rxattrwalk {
  P9_MESSAGE(Rxattrwalk);
  uint64_t size = 0;
  P9_FIELDS(size)
};

struct Txattrcreate {
  P9_MESSAGE(Txattrcreate);
  uint32_t fid = 0;
  std::string name;
  uint64_t attr_size = 0;
  uint32_t flags = 0;
  P9_FIELDS(fid, name, attr_size, flags)
};
struct Rxattrcreate {
  P9_MESSAGE(Rxattrcreate);
  P9_NO_FIELDS()
};

struct Treaddir {
  P9_MESSAGE(Treaddir);
  uint32_t fid = 0;
  uint64_t offset = 0;
  uint32_t count = 0;
  P9_FIELDS(fid, offset, count)
};
struct Rreaddir {
  P9_MESSAGE(Rreaddir);
  DirentList entries;
  P9_FIELDS(entries)
};

struct Tfsync {
  P9_MESSAGE(Tfsync);
  uint32_t fid = 0;
  uint32_t datasync = 0;
  P9_FIELDS(fid, datasync)
};
struct Rfsync {
  P9_MESSAGE(Rfsync);
  P9_NO_FIELDS()
};

struct Tlock {
  P9_MESSAGE(Tlock);
  uint32_t fid = 0;
  uint8_t type = 0;
  uint32_t flags = 0;
  uint64_t start = 0;
  uint64_t length = 0;
  uint32_t proc_id = 0;
  std::string client_id;
  P9_FIELDS(fid, type, flags, start, length, proc_id, client_id)
};
struct Rlock {
  P9_MESSAGE(Rlock);
  uint8_t status = 0;
  P9_FIELDS(status)
};

struct Tgetlock {
  P9_MESSAGE(Tgetlock);
  uint32_t fid = 0;
  uint8_t type = 0;
  uint64_t start = 0;
  uint64_t length = 0;
  uint32_t proc_id = 0;
  std::string client_id;
  P9_FIELDS(fid, type, start, length, proc_id, client_id)
};
struct Rgetlock {
  P9_MESSAGE(Rgetlock);
  uint8_t type = 0;
  uint64_t start = 0;
  uint64_t length = 0;
  uint32_t proc_id = 0;
  std::string client_id;
  P9_FIELDS(type, start, length, proc_id, client_id)
};

struct Tlink {
  P9_MESSAGE(Tlink);
  uint32_t dfid = 0;
  uint32_t fid = 0;
  std::string name;
  P9_FIELDS(dfid, fid, name)
};
struct Rlink {
  P9_MESSAGE(Rlink);
  P9_NO_FIELDS()
};

struct Tmkdir {
  P9_MESSAGE(Tmkdir);
  uint32_t dfid = 0;
  std::string name;
  uint32_t mode = 0;
  uint32_t gid = 0;
  P9_FIELDS(dfid, name, mode, gid)
};
struct Rmkdir {
  P9_MESSAGE(Rmkdir);
  Qid qid;
  P9_FIELDS(qid)
};

struct Trenameat {
  P9_MESSAGE(Trenameat);
  uint32_t olddirfid = 0;
  std::string oldname;
  uint32_t newdirfid = 0;
  std::string newname;
  P9_FIELDS(olddirfid, oldname, newdirfid, newname)
};
struct Rrenameat {
  P9_MESSAGE(Rrenameat);
  P9_NO_FIELDS()
};

struct Tunlinkat {
  P9_MESSAGE(Tunlinkat);
  uint32_t dirfid = 0;
  std::string name;
  uint32_t flags = 0;
  P9_FIELDS(dirfid, name, flags)
};
struct Runlinkat {
  P9_MESSAGE(Runlinkat);
  P9_NO_FIELDS()
};

#undef P9_FIELDS
#undef P9_NO_FIELDS
#undef P9_MESSAGE

// Invokes F on a value-initialised instance of every message type, T and R;
// used by tests and fuzzers to cover the whole protocol generically.
template <typename F>
void ForEachMessageType(F&& f) {
  f(Tversion{}), f(Rversion{}), f(Tauth{}), f(Rauth{}), f(Tattach{}), f(Rattach{});
  f(Rlerror{}), f(Tflush{}), f(Rflush{}), f(Twalk{}), f(Rwalk{}), f(Tread{}), f(Rread{});
  f(Twrite{}), f(Rwrite{}), f(Tclunk{}), f(Rclunk{}), f(Tremove{}), f(Rremove{});
  f(Tstatfs{}), f(Rstatfs{}), f(Tlopen{}), f(Rlopen{}), f(Tlcreate{}), f(Rlcreate{});
  f(Tsymlink{}), f(Rsymlink{}), f(Tmknod{}), f(Rmknod{}), f(Trename{}), f(Rrename{});
  f(Treadlink{}), f(Rreadlink{}), f(Tgetattr{}), f(Rgetattr{}), f(Tsetattr{}), f(Rsetattr{});
  f(Txattrwalk{}), f(Rxattrwalk{}), f(Txattrcreate{}), f(Rxattrcreate{}), f(Treaddir{});
  f(Rreaddir{}), f(Tfsync{}), f(Rfsync{}), f(Tlock{}), f(Rlock{}), f(Tgetlock{}), f(Rgetlock{});
  f(Tlink{}), f(Rlink{}), f(Tmkdir{}), f(Rmkdir{}), f(Trenameat{}), f(Rrenameat{});
  f(Tunlinkat{}), f(Runlinkat{});
}

}  // namespace p9

#endif  // P9_CLIENT_MESSAGES_H_
