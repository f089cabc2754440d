// libFuzzer target for the 9P decoders (the list is in decoders.h).
//
// The clang build compiles this file once per decoder with
// -DP9_FUZZ_DECODER="Twalk" (etc.), giving one libFuzzer binary per decoder
// that contains only that decoder's code. Without the definition (the gcc
// replay driver, ad-hoc fuzzing) every decoder is compiled in, and
// P9_FUZZ_TYPE=<name> in the environment picks one; unset, each input goes
// through all of them.
//
// The oracle is stronger than "does not crash": whatever a decoder accepts
// must re-encode to exactly the input bytes. 9P has one encoding per value,
// so any difference means a field was misread, skipped or double-counted.
// Every input also goes through the `debug` trace formatter (client/trace.h),
// which runs on whatever a peer sends: it must describe it in one line.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "absl/types/span.h"
#include "client/codec.h"
#include "client/messages.h"
#include "client/protocol.h"
#include "client/trace.h"
#include "client/tunables.h"
#include "client/wire.h"
#include "tests/fuzz/decoders.h"

namespace {

#ifdef P9_FUZZ_DECODER
constexpr std::string_view kOnlyDecoder = P9_FUZZ_DECODER;
#else
constexpr std::string_view kOnlyDecoder;
#endif

// Compile-time so that a per-decoder binary instantiates only its decoder.
constexpr bool Wanted(std::string_view name) {
  return kOnlyDecoder.empty() || kOnlyDecoder == name;
}

using Input = absl::Span<const uint8_t>;
using FuzzFn = void (*)(Input);

// Generous, so inputs are judged by their own framing; each accepted input is
// also checked against an msize one byte too small.
constexpr uint32_t kFuzzMsize = p9::tunables::kMaxMsize;

void Require(bool ok, const char* decoder, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz_decode: %s: %s\n", decoder, what);
  std::abort();
}

bool SameBytes(const std::vector<uint8_t>& a, Input b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

template <typename M>
void FuzzMessage(Input in) {
  uint16_t tag = 0;
  absl::StatusOr<M> m = p9::DecodeMessage<M>(in, kFuzzMsize, &tag);
  if (!m.ok()) return;
  std::vector<uint8_t> out;
  p9::EncodeMessage(tag, *m, &out);
  Require(SameBytes(out, in), M::kName, "accepted input does not re-encode to the same bytes");
  Require(!p9::DecodeMessage<M>(in, static_cast<uint32_t>(in.size() - 1)).ok(), M::kName,
          "accepted a message larger than msize");
}

// maybe_unused: a per-message binary compiles these out of its table.
[[maybe_unused]] void FuzzDirents(Input in) {
  absl::StatusOr<std::vector<p9::Dirent>> entries = p9::ParseDirents(in);
  if (!entries.ok()) return;
  std::vector<uint8_t> out;
  p9::Encoder e(&out);
  p9::wire_field::Put(e, p9::DirentList{*std::move(entries)});
  // Put() prefixes the count[4] that Rreaddir carries; the input has none.
  Require(out.size() >= 4 && SameBytes(std::vector<uint8_t>(out.begin() + 4, out.end()), in),
          p9_test::kDirentsDecoder, "accepted input does not re-encode to the same bytes");
}

[[maybe_unused]] void FuzzHeader(Input in) {
  absl::StatusOr<p9::Header> h = p9::ParseHeader(in, kFuzzMsize);
  if (!h.ok()) return;
  Require(in.size() >= p9::kHeaderSize && h->size == in.size(), p9_test::kHeaderDecoder,
          "accepted a size field that disagrees with the length");
  std::vector<uint8_t> out;
  p9::Encoder e(&out);
  e.U32(h->size);
  e.U8(h->type);
  e.U16(h->tag);
  Require(SameBytes(out, in.first(p9::kHeaderSize)), p9_test::kHeaderDecoder,
          "header fields do not re-encode to the same bytes");
  Require(!p9::ParseHeader(in, static_cast<uint32_t>(in.size() - 1)).ok(), p9_test::kHeaderDecoder,
          "accepted a message larger than msize");
}

struct Decoder {
  std::string name;
  FuzzFn fn;
};

std::vector<Decoder> CompiledDecoders() {
  std::vector<Decoder> all;
  p9::ForEachMessageType([&](auto m) {
    using M = decltype(m);
    if constexpr (Wanted(M::kName)) all.push_back({M::kName, &FuzzMessage<M>});
  });
  if constexpr (Wanted(p9_test::kDirentsDecoder)) {
    all.push_back({p9_test::kDirentsDecoder, &FuzzDirents});
  }
  if constexpr (Wanted(p9_test::kHeaderDecoder)) {
    all.push_back({p9_test::kHeaderDecoder, &FuzzHeader});
  }
  // The corpus directories and ctest tests are named after DecoderNames();
  // a decoder missing here would pass its tests without being exercised.
  std::vector<std::string> want;
  for (const std::string& name : p9_test::DecoderNames()) {
    if (Wanted(name)) want.push_back(name);
  }
  std::vector<std::string> have;
  for (const Decoder& d : all) have.push_back(d.name);
  Require(!have.empty() && have == want, "fuzz_decode",
          "decoder table out of sync with DecoderNames()");
  return all;
}

std::vector<FuzzFn> Selected() {
  const char* env = std::getenv("P9_FUZZ_TYPE");
  const std::string_view want = env == nullptr ? "" : env;
  std::vector<FuzzFn> out;
  for (const Decoder& d : CompiledDecoders()) {
    if (want.empty() || d.name == want) out.push_back(d.fn);
  }
  if (out.empty()) {
    // A typo must not turn a fuzz test into one that checks nothing.
    std::fprintf(stderr, "fuzz_decode: P9_FUZZ_TYPE=%s names no decoder in this binary\n", env);
    std::abort();
  }
  return out;
}

void FuzzTrace(Input in) {
  const std::string line = p9::FormatMessage(in);
  Require(!line.empty() && line.find('\n') == std::string::npos, "FormatMessage",
          "the trace of a message is not exactly one line");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<FuzzFn> fns = Selected();
  for (FuzzFn fn : fns) fn(Input(data, size));
  FuzzTrace(Input(data, size));
  return 0;
}
