// Encoding and decoding of whole 9P messages: header, framing and the field
// list of each message type (client/messages.h).
#ifndef P9_CLIENT_CODEC_H_
#define P9_CLIENT_CODEC_H_

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "client/messages.h"
#include "client/protocol.h"
#include "client/wire.h"

namespace p9 {

// The fixed part of every message.
struct Header {
  uint32_t size = 0;
  uint8_t type = 0;
  uint16_t tag = 0;
};

// Reads the header of a complete message. Fails unless size[4] equals the
// buffer length, is at least the header size and at most msize.
absl::StatusOr<Header> ParseHeader(absl::Span<const uint8_t> msg, uint32_t msize);

// Encodes and decodes single fields; overloads chosen by field type.
namespace wire_field {
inline void Put(Encoder& e, uint8_t v) { e.U8(v); }
inline void Put(Encoder& e, uint16_t v) { e.U16(v); }
inline void Put(Encoder& e, uint32_t v) { e.U32(v); }
inline void Put(Encoder& e, uint64_t v) { e.U64(v); }
inline void Put(Encoder& e, const std::string& v) { e.Str(v); }
void Put(Encoder& e, const Qid& v);
void Put(Encoder& e, const Bytes& v);
void Put(Encoder& e, const DirentList& v);
void Put(Encoder& e, const WalkNames& v);
void Put(Encoder& e, const WalkQids& v);

inline void Get(Decoder& d, uint8_t& v) { v = d.U8(); }
inline void Get(Decoder& d, uint16_t& v) { v = d.U16(); }
inline void Get(Decoder& d, uint32_t& v) { v = d.U32(); }
inline void Get(Decoder& d, uint64_t& v) { v = d.U64(); }
inline void Get(Decoder& d, std::string& v) { v = d.Str(); }
void Get(Decoder& d, Qid& v);
void Get(Decoder& d, Bytes& v);
void Get(Decoder& d, DirentList& v);
void Get(Decoder& d, WalkNames& v);
void Get(Decoder& d, WalkQids& v);
}  // namespace wire_field

// Appends the fields of `m` (no header).
template <typename M>
void EncodeBody(Encoder& e, const M& m) {
  std::apply([&](const auto&... f) { (wire_field::Put(e, f), ...); }, m.Fields());
}

// Decodes the fields of `m` (no header); check d.ok() afterwards.
template <typename M>
void DecodeBody(Decoder& d, M& m) {
  std::apply([&](auto&... f) { (wire_field::Get(d, f), ...); }, m.Fields());
}

// Replaces *out with the complete framed message: size[4] type[1] tag[2]
// body. Returns false if a field cannot be represented on the wire (a string
// over 65535 bytes, more than 16 walk elements); *out is then unusable.
template <typename M>
bool EncodeMessage(uint16_t tag, const M& m, std::vector<uint8_t>* out) {
  out->clear();
  Encoder e(out);
  e.U32(0);
  e.U8(static_cast<uint8_t>(M::kType));
  e.U16(tag);
  EncodeBody(e, m);
  e.PatchU32(0, static_cast<uint32_t>(out->size()));
  return e.ok();
}

// Decodes a complete framed message of type M. Fails on a wrong type, a size
// field that disagrees with the buffer or exceeds msize, any field that runs
// past the end, or bytes left over after the last field.
template <typename M>
absl::StatusOr<M> DecodeMessage(absl::Span<const uint8_t> msg, uint32_t msize,
                                uint16_t* tag = nullptr) {
  absl::StatusOr<Header> h = ParseHeader(msg, msize);
  if (!h.ok()) return h.status();
  if (h->type != static_cast<uint8_t>(M::kType)) {
    return absl::InvalidArgumentError(absl::StrCat("expected ", M::kName, ", got ",
                                                   MsgTypeName(h->type), " (type ",
                                                   static_cast<int>(h->type), ")"));
  }
  Decoder d(msg.subspan(kHeaderSize));
  M m;
  DecodeBody(d, m);
  if (!d.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(M::kName, " is truncated or malformed"));
  }
  if (d.remaining() != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(M::kName, " has ", d.remaining(), " trailing bytes"));
  }
  if (tag != nullptr) *tag = h->tag;
  return m;
}

// Decodes the packed dirents of an Rreaddir payload (also used directly on
// data a caller already holds).
absl::StatusOr<std::vector<Dirent>> ParseDirents(absl::Span<const uint8_t> data);

}  // namespace p9

#endif  // P9_CLIENT_CODEC_H_
