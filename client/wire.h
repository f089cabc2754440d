// Little-endian primitives of the 9P wire format: an Encoder that appends to
// a byte vector and a Decoder over a borrowed span whose errors are sticky.
#ifndef P9_CLIENT_WIRE_H_
#define P9_CLIENT_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "absl/types/span.h"

namespace p9 {

// Appends wire values to a caller-owned vector. A value the wire cannot
// represent (a string over 65535 bytes, too many walk names) marks the
// encoder failed instead of silently wrapping its length field; callers
// check ok() once, and the final size against msize.
class Encoder {
 public:
  // Appends to *out, which must outlive the encoder.
  explicit Encoder(std::vector<uint8_t>* out) : out_(out) {}

  void U8(uint8_t v) { out_->push_back(v); }
  void U16(uint16_t v) { Le(v, 2); }
  void U32(uint32_t v) { Le(v, 4); }
  void U64(uint64_t v) { Le(v, 8); }
  // s[2] string: 16-bit length then bytes, no NUL.
  void Str(std::string_view s) {
    if (s.size() > 0xFFFF) {
      Fail();
      return;
    }
    U16(static_cast<uint16_t>(s.size()));
    Raw(s.data(), s.size());
  }
  void Raw(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out_->insert(out_->end(), b, b + n);
  }
  // Marks the encoding failed (a count that does not fit its field).
  void Fail() { failed_ = true; }
  bool ok() const { return !failed_; }
  // Current length of the output; used to back-patch counts.
  size_t size() const { return out_->size(); }
  // Overwrites a previously written u32 at byte offset `at`.
  void PatchU32(size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) (*out_)[at + i] = static_cast<uint8_t>(v >> (8 * i));
  }

 private:
  void Le(uint64_t v, int n) {
    size_t at = out_->size();
    out_->resize(at + static_cast<size_t>(n));
    uint8_t* p = out_->data() + at;
    for (int i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
  }
  std::vector<uint8_t>* out_;
  bool failed_ = false;
};

// Reads wire values from a span it does not own. Every read past the end sets
// a sticky failure flag and yields zero/empty; callers decode a whole message
// and check ok() once at the end, so no read can ever touch memory past the
// buffer whatever the input says.
class Decoder {
 public:
  explicit Decoder(absl::Span<const uint8_t> in) : p_(in.data()), left_(in.size()) {}

  uint8_t U8() { return static_cast<uint8_t>(Le(1)); }
  uint16_t U16() { return static_cast<uint16_t>(Le(2)); }
  uint32_t U32() { return static_cast<uint32_t>(Le(4)); }
  uint64_t U64() { return Le(8); }
  std::string Str() {
    uint16_t n = U16();
    const uint8_t* b = Take(n);
    return b ? std::string(reinterpret_cast<const char*>(b), n) : std::string();
  }
  // Returns a pointer to the next n bytes and consumes them, or nullptr (and
  // marks failure) if fewer remain.
  const uint8_t* Take(size_t n) {
    if (failed_ || n > left_) {
      failed_ = true;
      return nullptr;
    }
    const uint8_t* b = p_;
    p_ += n;
    left_ -= n;
    return b;
  }
  // Marks the decode failed; used for semantic limits (nwname > 16 …).
  void Fail() { failed_ = true; }
  bool ok() const { return !failed_; }
  size_t remaining() const { return left_; }

 private:
  uint64_t Le(int n) {
    const uint8_t* b = Take(static_cast<size_t>(n));
    if (b == nullptr) return 0;
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= static_cast<uint64_t>(b[i]) << (8 * i);
    return v;
  }
  const uint8_t* p_;
  size_t left_;
  bool failed_ = false;
};

}  // namespace p9

#endif  // P9_CLIENT_WIRE_H_
