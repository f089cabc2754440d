#include "client/codec.h"

namespace p9 {

const char* MsgTypeName(uint8_t type) {
  switch (static_cast<MsgType>(type)) {
#define P9_NAME(N)    \
  case MsgType::k##N: \
    return #N;
    P9_NAME(Tlerror)
    P9_NAME(Rlerror)
    P9_NAME(Tstatfs)
    P9_NAME(Rstatfs)
    P9_NAME(Tlopen)
    P9_NAME(Rlopen) P9_NAME(Tlcreate) P9_NAME(Rlcreate) P9_NAME(Tsymlink) P9_NAME(Rsymlink) P9_NAME(
        Tmknod) P9_NAME(Rmknod) P9_NAME(Trename) P9_NAME(Rrename) P9_NAME(Treadlink)
        P9_NAME(Rreadlink) P9_NAME(Tgetattr) P9_NAME(Rgetattr) P9_NAME(Tsetattr) P9_NAME(Rsetattr)
            P9_NAME(Txattrwalk) P9_NAME(Rxattrwalk) P9_NAME(Txattrcreate) P9_NAME(Rxattrcreate)
                P9_NAME(Treaddir) P9_NAME(Rreaddir) P9_NAME(Tfsync) P9_NAME(Rfsync) P9_NAME(Tlock)
                    P9_NAME(Rlock) P9_NAME(Tgetlock) P9_NAME(Rgetlock) P9_NAME(Tlink) P9_NAME(Rlink)
                        P9_NAME(Tmkdir) P9_NAME(Rmkdir) P9_NAME(Trenameat) P9_NAME(Rrenameat)
                            P9_NAME(Tunlinkat) P9_NAME(Runlinkat) P9_NAME(Tversion)
                                P9_NAME(Rversion) P9_NAME(Tauth) P9_NAME(Rauth) P9_NAME(Tattach)
                                    P9_NAME(Rattach) P9_NAME(Tflush) P9_NAME(Rflush) P9_NAME(Twalk)
                                        P9_NAME(Rwalk) P9_NAME(Tread) P9_NAME(Rread) P9_NAME(Twrite)
                                            P9_NAME(Rwrite) P9_NAME(Tclunk) P9_NAME(Rclunk)
                                                P9_NAME(Tremove) P9_NAME(Rremove)
#undef P9_NAME
  }
  return "unknown";
}

absl::StatusOr<Header> ParseHeader(absl::Span<const uint8_t> msg, uint32_t msize) {
  if (msg.size() < kHeaderSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("message of ", msg.size(), " bytes is shorter than a header"));
  }
  Decoder d(msg);
  Header h;
  h.size = d.U32();
  h.type = d.U8();
  h.tag = d.U16();
  if (h.size != msg.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("size field ", h.size, " disagrees with message length ", msg.size()));
  }
  if (h.size > msize) {
    return absl::InvalidArgumentError(
        absl::StrCat("message of ", h.size, " bytes exceeds msize ", msize));
  }
  return h;
}

namespace wire_field {

void Put(Encoder& e, const Qid& v) {
  e.U8(v.type);
  e.U32(v.version);
  e.U64(v.path);
}
void Get(Decoder& d, Qid& v) {
  v.type = d.U8();
  v.version = d.U32();
  v.path = d.U64();
}

void Put(Encoder& e, const Bytes& v) {
  if (v.data.size() > 0xFFFFFFFFu) return e.Fail();
  e.U32(static_cast<uint32_t>(v.data.size()));
  e.Raw(v.data.data(), v.data.size());
}
void Get(Decoder& d, Bytes& v) {
  uint32_t n = d.U32();
  const uint8_t* p = d.Take(n);  // fails if n exceeds what is left
  v.data.assign(p ? reinterpret_cast<const char*>(p) : "", p ? n : 0);
}

void Put(Encoder& e, const DirentList& v) {
  size_t at = e.size();
  e.U32(0);
  for (const Dirent& de : v.entries) {
    Put(e, de.qid);
    e.U64(de.offset);
    e.U8(de.type);
    e.Str(de.name);
  }
  e.PatchU32(at, static_cast<uint32_t>(e.size() - at - 4));
}
void Get(Decoder& d, DirentList& v) {
  uint32_t n = d.U32();
  const uint8_t* p = d.Take(n);
  if (p == nullptr) return;
  absl::StatusOr<std::vector<Dirent>> entries = ParseDirents(absl::MakeConstSpan(p, n));
  if (!entries.ok()) {
    d.Fail();
    return;
  }
  v.entries = *std::move(entries);
}

void Put(Encoder& e, const WalkNames& v) {
  if (v.names.size() > kMaxWalkElements) return e.Fail();
  e.U16(static_cast<uint16_t>(v.names.size()));
  for (const std::string& s : v.names) e.Str(s);
}
void Get(Decoder& d, WalkNames& v) {
  uint16_t n = d.U16();
  if (n > kMaxWalkElements) return d.Fail();
  v.names.resize(n);
  for (std::string& s : v.names) s = d.Str();
}

void Put(Encoder& e, const WalkQids& v) {
  if (v.qids.size() > kMaxWalkElements) return e.Fail();
  e.U16(static_cast<uint16_t>(v.qids.size()));
  for (const Qid& q : v.qids) Put(e, q);
}
void Get(Decoder& d, WalkQids& v) {
  uint16_t n = d.U16();
  // Both limits are checked before allocating, so a hostile count cannot
  // make us reserve memory the message does not back.
  if (n > kMaxWalkElements || size_t{n} * kQidSize > d.remaining()) return d.Fail();
  v.qids.resize(n);
  for (Qid& q : v.qids) Get(d, q);
}

}  // namespace wire_field

absl::StatusOr<std::vector<Dirent>> ParseDirents(absl::Span<const uint8_t> data) {
  Decoder d(data);
  std::vector<Dirent> out;
  while (d.ok() && d.remaining() > 0) {
    Dirent de;
    wire_field::Get(d, de.qid);
    de.offset = d.U64();
    de.type = d.U8();
    de.name = d.Str();
    if (!d.ok()) break;
    out.push_back(std::move(de));
  }
  if (!d.ok()) return absl::InvalidArgumentError("readdir entry is truncated");
  return out;
}

}  // namespace p9
