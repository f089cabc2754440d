// The set of decoders under fuzz: DecodeMessage<M> for every message type
// in p9::ForEachMessageType, plus the two parsers that take raw bytes. The
// fuzz target, the seed generator and (through the corpus directories it
// writes) the ctest registration all derive from this, so a message type
// added to client/messages.h is fuzzed without editing any list here.
#ifndef P9_TESTS_FUZZ_DECODERS_H_
#define P9_TESTS_FUZZ_DECODERS_H_

#include <string>
#include <vector>

#include "client/messages.h"

namespace p9_test {

inline constexpr char kDirentsDecoder[] = "ParseDirents";
inline constexpr char kHeaderDecoder[] = "ParseHeader";

inline std::vector<std::string> DecoderNames() {
  std::vector<std::string> names;
  p9::ForEachMessageType([&](auto m) { names.push_back(decltype(m)::kName); });
  names.push_back(kDirentsDecoder);
  names.push_back(kHeaderDecoder);
  return names;
}

}  // namespace p9_test

#endif  // P9_TESTS_FUZZ_DECODERS_H_
