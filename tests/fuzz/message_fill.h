// Deterministic, fully populated 9P messages for the codec tests, the fuzz
// seed corpus and the benchmarks. Every integer byte is non-zero and the
// bytes change from field to field, so an encoder/decoder pair that drops,
// swaps or duplicates a field cannot round-trip by accident, and a message
// built this way differs from its value-initialised twin in every field.
#ifndef P9_TESTS_FUZZ_MESSAGE_FILL_H_
#define P9_TESTS_FUZZ_MESSAGE_FILL_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "client/codec.h"
#include "client/messages.h"
#include "client/protocol.h"

namespace p9_test {

struct FillOptions {
  // Entries of each list field (walk names/qids capped at kMaxWalkElements).
  size_t list_size = 3;
  // Payload bytes of Bytes fields (Tread/Twrite/Rread data).
  size_t data_size = 37;
  // Shifts every generated value, so two fillers give different messages.
  uint8_t seed = 0;
};

class MessageFiller {
 public:
  explicit MessageFiller(FillOptions options = {}) : options_(options), next_(options.seed) {}

  template <typename M>
  M Make() {
    M m;
    std::apply([&](auto&... f) { (Fill(f), ...); }, m.Fields());
    return m;
  }

  void Fill(uint8_t& v) { v = Byte(); }
  void Fill(uint16_t& v) { v = static_cast<uint16_t>(Int(2)); }
  void Fill(uint32_t& v) { v = static_cast<uint32_t>(Int(4)); }
  void Fill(uint64_t& v) { v = Int(8); }
  // Lengths vary with the counter so string length fields differ too.
  void Fill(std::string& v) {
    v.assign(1 + Byte() % 11, '\0');
    for (char& c : v) c = static_cast<char>('a' + Byte() % 26);
  }
  void Fill(p9::Qid& v) {
    Fill(v.type);
    Fill(v.version);
    Fill(v.path);
  }
  // Payloads are binary: include NUL and 0xff to catch string-style handling.
  void Fill(p9::Bytes& v) {
    const uint8_t base = Byte();
    v.data.resize(options_.data_size);
    for (size_t i = 0; i < v.data.size(); ++i) v.data[i] = static_cast<char>(base + i * 37);
    if (!v.data.empty()) v.data.front() = '\0';
    if (v.data.size() > 1) v.data.back() = '\xff';
  }
  void Fill(p9::DirentList& v) {
    v.entries.resize(options_.list_size);
    for (p9::Dirent& de : v.entries) {
      Fill(de.qid);
      Fill(de.offset);
      Fill(de.type);
      Fill(de.name);
    }
  }
  void Fill(p9::WalkNames& v) {
    v.names.resize(std::min<size_t>(options_.list_size, p9::kMaxWalkElements));
    for (std::string& s : v.names) Fill(s);
  }
  void Fill(p9::WalkQids& v) {
    v.qids.resize(std::min<size_t>(options_.list_size, p9::kMaxWalkElements));
    for (p9::Qid& q : v.qids) Fill(q);
  }

 private:
  // 1..255, cycling: never zero, so no field can equal its default.
  uint8_t Byte() {
    next_ = static_cast<uint8_t>(next_ % 255 + 1);
    return next_;
  }
  uint64_t Int(int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= uint64_t{Byte()} << (8 * i);
    return v;
  }

  FillOptions options_;
  uint8_t next_;
};

template <typename M>
std::vector<uint8_t> Encode(const M& m, uint16_t tag) {
  std::vector<uint8_t> out;
  p9::EncodeMessage(tag, m, &out);
  return out;
}

// Rewrites size[4] to the buffer's length, making a cut or extended message
// well-framed so that only the field decoders can reject it.
inline void PatchSizeField(std::vector<uint8_t>& msg) {
  if (msg.size() < 4) return;
  const uint32_t n = static_cast<uint32_t>(msg.size());
  for (int i = 0; i < 4; ++i) msg[i] = static_cast<uint8_t>(n >> (8 * i));
}

}  // namespace p9_test

#endif  // P9_TESTS_FUZZ_MESSAGE_FILL_H_
