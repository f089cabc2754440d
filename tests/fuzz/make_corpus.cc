// Generates the committed seed corpus, tests/fuzz/corpus/<Decoder>/<seed>,
// from filled messages, plus the reply streams of the session target
// (corpus/Session, session_stream.h), and checks that the committed corpus
// is current.
//
//   p9_make_corpus DIR                  (re)writes every seed under DIR
//   p9_make_corpus --check DIR NAME...  fails unless NAME... (the decoder
//                                       list in tests/fuzz/CMakeLists.txt)
//                                       is exactly DecoderNames() and DIR
//                                       holds every seed, byte for byte
//
// Seeds are few and small on purpose: each decoder gets a valid message with
// every field set, an empty one, long lists where it has any, and a few
// near-misses (cut short, one byte extra, over a limit) so the fuzzer starts
// right at the rejection paths.
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <vector>

#include "client/codec.h"
#include "client/messages.h"
#include "client/protocol.h"
#include "client/wire.h"
#include "tests/fuzz/decoders.h"
#include "tests/fuzz/message_fill.h"
#include "tests/fuzz/session_stream.h"

namespace {

namespace fs = std::filesystem;
using p9_test::Encode;
using p9_test::FillOptions;
using p9_test::MessageFiller;
using p9_test::PatchSizeField;

using Bytes = std::vector<uint8_t>;
// decoder name → seed name → contents.
using Corpus = std::map<std::string, std::map<std::string, Bytes>>;

template <typename T>
constexpr bool kIsVariableList =
    std::is_same_v<T, p9::WalkNames> || std::is_same_v<T, p9::WalkQids> ||
    std::is_same_v<T, p9::DirentList> || std::is_same_v<T, p9::Bytes>;

// Whether M has a field whose length is a count on the wire (worth a seed
// with a long list / payload).
template <typename M>
constexpr bool HasListField() {
  using Tuple = decltype(std::declval<const M&>().Fields());
  return []<size_t... I>(std::index_sequence<I...>) {
    return (kIsVariableList<std::decay_t<std::tuple_element_t<I, Tuple>>> || ...);
  }
  (std::make_index_sequence<std::tuple_size_v<Tuple>>());
}

Bytes Cut(Bytes b, size_t drop) {
  b.resize(b.size() - std::min(drop, b.size()));
  PatchSizeField(b);
  return b;
}

Bytes Extend(Bytes b, uint8_t extra) {
  b.push_back(extra);
  PatchSizeField(b);
  return b;
}

// Tag as real traffic has it: NOTAG only for version messages.
template <typename M>
uint16_t TagFor() {
  return M::kType == p9::MsgType::kTversion || M::kType == p9::MsgType::kRversion ? p9::kNoTag
                                                                                  : 0x0102;
}

template <typename M>
void AddMessageSeeds(Corpus& corpus) {
  std::map<std::string, Bytes>& seeds = corpus[M::kName];
  const Bytes filled = Encode(MessageFiller().Make<M>(), TagFor<M>());
  seeds["filled"] = filled;
  seeds["zero"] = Encode(M{}, 0);
  if constexpr (HasListField<M>()) {
    seeds["wide"] = Encode(
        MessageFiller({.list_size = 16, .data_size = 300, .seed = 101}).Make<M>(), TagFor<M>());
  }
  if (filled.size() > p9::kHeaderSize) seeds["truncated"] = Cut(filled, 1);
  seeds["trailing"] = Extend(filled, 0xAA);
}

// One more walk element than the protocol allows.
// The encoder refuses a 17th walk element, so these over-limit seeds are
// made from a 16-element message with its count bumped and one more element
// appended by hand.
Bytes BumpCount(Bytes msg, size_t count_at, const Bytes& extra) {
  msg[count_at] = static_cast<uint8_t>(p9::kMaxWalkElements + 1);
  msg.insert(msg.end(), extra.begin(), extra.end());
  uint32_t size = static_cast<uint32_t>(msg.size());
  for (int i = 0; i < 4; ++i) msg[i] = static_cast<uint8_t>(size >> (8 * i));
  return msg;
}

void AddWalkLimitSeeds(Corpus& corpus) {
  p9::Twalk tw = MessageFiller().Make<p9::Twalk>();
  tw.wnames.names.assign(p9::kMaxWalkElements, "x");
  // size[4] type[1] tag[2] fid[4] newfid[4] nwname[2]
  corpus[p9::Twalk::kName]["nwname17"] = BumpCount(Encode(tw, 0x0102), 15, {1, 0, 'x'});
  p9::Rwalk rw = MessageFiller().Make<p9::Rwalk>();
  rw.wqids.qids.assign(p9::kMaxWalkElements, p9::Qid{p9::kQtDir, 1, 2});
  // size[4] type[1] tag[2] nwqid[2]; one more qid: type[1] version[4] path[8]
  corpus[p9::Rwalk::kName]["nwqid17"] =
      BumpCount(Encode(rw, 0x0102), 7, {p9::kQtDir, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0});
}

Bytes DirentPayload(const FillOptions& options) {
  Bytes out;
  p9::Encoder e(&out);
  p9::wire_field::Put(e, MessageFiller(options).Make<p9::Rreaddir>().entries);
  return Bytes(out.begin() + 4, out.end());  // ParseDirents takes no count[4]
}

void AddDirentSeeds(Corpus& corpus) {
  std::map<std::string, Bytes>& seeds = corpus[p9_test::kDirentsDecoder];
  seeds["filled"] = DirentPayload({});
  seeds["one"] = DirentPayload({.list_size = 1});
  seeds["wide"] = DirentPayload({.list_size = 16, .seed = 101});
  Bytes cut = seeds["filled"];
  cut.pop_back();
  seeds["truncated"] = cut;
}

void AddHeaderSeeds(Corpus& corpus) {
  std::map<std::string, Bytes>& seeds = corpus[p9_test::kHeaderDecoder];
  seeds["filled"] = Encode(MessageFiller().Make<p9::Twalk>(), 0x0102);
  seeds["header_only"] = Encode(p9::Rclunk{}, 0x0102);
  seeds["short"] = Bytes(seeds["header_only"].begin(), seeds["header_only"].end() - 1);
  Bytes oversize = seeds["filled"];
  oversize[0] ^= 0x40;  // size field no longer matches the length
  seeds["oversize"] = oversize;
}

// Reply streams for the session target: the three calls answered in
// order and out of it, with errors, wrong types, duplicates, strangers'
// tags, broken frames, and left unanswered (timeouts, flushes).
void AddSessionSeeds(Corpus& corpus) {
  namespace ss = p9_test::session_stream;
  std::map<std::string, Bytes>& seeds = corpus[ss::kTargetName];
  const p9::Qid dir{p9::kQtDir, 1, 2};
  const p9::Qid file{p9::kQtFile, 3, 4};
  p9::Rwalk rwalk;
  rwalk.wqids.qids = {dir, file};
  const Bytes walk = Encode(rwalk, ss::kWalkTag);
  const Bytes read = Encode(p9::Rread{p9::Bytes{"hello"}}, ss::kReadTag);
  const Bytes getattr = Encode(MessageFiller().Make<p9::Rgetattr>(), ss::kGetattrTag);
  auto stream = [](uint8_t flags, std::initializer_list<Bytes> messages) {
    Bytes out = {flags};
    for (const Bytes& m : messages) out.insert(out.end(), m.begin(), m.end());
    return out;
  };
  auto lerror = [](uint16_t tag) { return Encode(p9::Rlerror{ENOENT}, tag); };
  seeds["answers"] = stream(0, {walk, read, getattr});
  seeds["answers_reversed"] = stream(0, {getattr, read, walk});
  seeds["lerror"] =
      stream(0, {lerror(ss::kWalkTag), lerror(ss::kReadTag), lerror(ss::kGetattrTag)});
  seeds["wrong_types"] =
      stream(0, {Encode(p9::Rread{}, ss::kWalkTag), Encode(p9::Rclunk{}, ss::kReadTag),
                 Encode(rwalk, ss::kGetattrTag)});
  seeds["duplicate"] = stream(0, {walk, walk, read, getattr, getattr});
  seeds["unknown_tags"] = stream(0, {Encode(p9::Rclunk{}, 7), Encode(p9::Rclunk{}, p9::kNoTag),
                                     Encode(p9::Rclunk{}, 300), walk, read, getattr});
  p9::Rwalk extra = rwalk;
  extra.wqids.qids.push_back(file);
  seeds["walk_extra_qid"] = stream(0, {Encode(extra, ss::kWalkTag), read, getattr});
  seeds["read_overcount"] = stream(
      0, {walk, Encode(p9::Rread{p9::Bytes{std::string(ss::kReadCount + 1, 'x')}}, ss::kReadTag),
          getattr});
  Bytes oversize = Encode(p9::Rread{p9::Bytes{std::string(ss::kMsize, 'x')}}, ss::kReadTag);
  seeds["oversize"] = stream(0, {walk, oversize, getattr});
  seeds["cut_short"] = stream(0, {walk, read, Bytes(getattr.begin(), getattr.end() - 3)});
  seeds["size_below_header"] = stream(0, {walk, Bytes{3, 0, 0, 0, 0, 0, 0}, read});
  seeds["unanswered"] = stream(ss::kKeepOpen, {});
  seeds["flushed"] = stream(ss::kKeepOpen | ss::kAnswerFlush, {walk});
  seeds["rflush_unasked"] = stream(ss::kKeepOpen | ss::kAnswerFlush,
                                   {Encode(p9::Rflush{}, 3), Encode(p9::Rflush{}, 4), read});
  const Bytes rversion = Encode(p9::Rversion{4096, p9::kVersion9P2000L}, p9::kNoTag);
  seeds["own_rversion"] = stream(ss::kOwnRversion, {rversion, walk, read, getattr});
  seeds["own_rversion_9p2000"] =
      stream(ss::kOwnRversion, {Encode(p9::Rversion{4096, "9P2000"}, p9::kNoTag), walk});
  // The same read made with ReadTo (its payload goes to a sink on the
  // delivery thread): answered, refused, too long, and flushed.
  seeds["readto_answers"] = stream(ss::kReadTo, {walk, read, getattr});
  seeds["readto_lerror"] = stream(ss::kReadTo, {walk, lerror(ss::kReadTag), getattr});
  seeds["readto_overcount"] = stream(
      ss::kReadTo,
      {walk, Encode(p9::Rread{p9::Bytes{std::string(ss::kReadCount + 1, 'x')}}, ss::kReadTag),
       getattr});
  seeds["readto_flushed"] = stream(ss::kReadTo | ss::kKeepOpen | ss::kAnswerFlush, {walk, getattr});
  // And with ReadAsync, which nobody waits on: the same four endings, and
  // one whose flush is never answered (the channel closes).
  seeds["readasync_answers"] = stream(ss::kReadAsync, {walk, read, getattr});
  seeds["readasync_lerror"] = stream(ss::kReadAsync, {walk, lerror(ss::kReadTag), getattr});
  seeds["readasync_overcount"] = stream(
      ss::kReadAsync,
      {walk, Encode(p9::Rread{p9::Bytes{std::string(ss::kReadCount + 1, 'x')}}, ss::kReadTag),
       getattr});
  seeds["readasync_flushed"] =
      stream(ss::kReadAsync | ss::kKeepOpen | ss::kAnswerFlush, {walk, getattr});
  seeds["readasync_flush_unanswered"] = stream(ss::kReadAsync | ss::kKeepOpen, {walk, getattr});
  // ReadMany/WriteMany: four pipelined pieces answered out of order, one
  // short (end of file), one refused in the middle, one too long, and all
  // flushed.
  const Bytes many_getattr = Encode(MessageFiller().Make<p9::Rgetattr>(), ss::kManyGetattrTag);
  auto piece_tag = [](uint32_t i) { return static_cast<uint16_t>(ss::kReadTag + i); };
  auto rread = [&](uint32_t i, size_t n) {
    return Encode(p9::Rread{p9::Bytes{std::string(n, static_cast<char>('a' + i))}}, piece_tag(i));
  };
  auto rwrite = [&](uint32_t i, uint32_t n) { return Encode(p9::Rwrite{n}, piece_tag(i)); };
  seeds["readmany_answers"] =
      stream(ss::kReadMany, {walk, rread(3, ss::kManyPiece), rread(1, ss::kManyPiece),
                             rread(0, ss::kManyPiece), rread(2, ss::kManyPiece), many_getattr});
  seeds["readmany_short"] = stream(ss::kReadMany, {walk, rread(0, ss::kManyPiece), rread(1, 3),
                                                   rread(2, 0), rread(3, 0), many_getattr});
  seeds["readmany_lerror"] =
      stream(ss::kReadMany, {walk, rread(0, ss::kManyPiece), lerror(piece_tag(1)),
                             rread(2, ss::kManyPiece), rread(3, ss::kManyPiece), many_getattr});
  seeds["readmany_overcount"] =
      stream(ss::kReadMany, {walk, rread(0, ss::kManyPiece), rread(1, ss::kManyPiece + 1),
                             rread(2, ss::kManyPiece), rread(3, ss::kManyPiece), many_getattr});
  seeds["readmany_flushed"] =
      stream(ss::kReadMany | ss::kKeepOpen | ss::kAnswerFlush, {walk, rread(2, 1), many_getattr});
  seeds["writemany_answers"] =
      stream(ss::kWriteMany, {walk, rwrite(2, ss::kManyPiece), rwrite(0, ss::kManyPiece),
                              rwrite(3, ss::kManyPiece), rwrite(1, ss::kManyPiece), many_getattr});
  seeds["writemany_short_and_over"] =
      stream(ss::kWriteMany, {walk, rwrite(0, ss::kManyPiece), rwrite(1, 2),
                              rwrite(2, ss::kManyPiece + 1), lerror(piece_tag(3)), many_getattr});
  seeds["own_rversion_raised"] = stream(
      ss::kOwnRversion, {Encode(p9::Rversion{ss::kMsize * 2, p9::kVersion9P2000L}, p9::kNoTag)});
}

Corpus Generate() {
  Corpus corpus;
  p9::ForEachMessageType([&](auto m) { AddMessageSeeds<decltype(m)>(corpus); });
  AddWalkLimitSeeds(corpus);
  AddDirentSeeds(corpus);
  AddHeaderSeeds(corpus);
  AddSessionSeeds(corpus);
  return corpus;
}

bool ReadFile(const fs::path& path, Bytes* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return true;
}

int Write(const fs::path& root) {
  for (const auto& [decoder, seeds] : Generate()) {
    std::error_code ec;
    fs::create_directories(root / decoder, ec);
    for (const auto& [name, bytes] : seeds) {
      std::ofstream out(root / decoder / name, std::ios::binary | std::ios::trunc);
      out.write(reinterpret_cast<const char*>(bytes.data()),
                static_cast<std::streamsize>(bytes.size()));
      if (!out) {
        std::fprintf(stderr, "cannot write %s\n", (root / decoder / name).c_str());
        return 1;
      }
    }
  }
  return 0;
}

int Check(const fs::path& root, std::vector<std::string> listed) {
  int problems = 0;
  auto problem = [&](const std::string& what) {
    std::fprintf(stderr, "%s\n", what.c_str());
    ++problems;
  };
  std::vector<std::string> names = p9_test::DecoderNames();
  std::sort(names.begin(), names.end());
  std::sort(listed.begin(), listed.end());
  // Corpus directories: one per decoder, and the session target's.
  std::vector<std::string> dirs = names;
  dirs.push_back(p9_test::session_stream::kTargetName);
  std::sort(dirs.begin(), dirs.end());
  for (const std::string& n : names) {
    if (!std::binary_search(listed.begin(), listed.end(), n)) {
      problem("decoder " + n + " is missing from the list in tests/fuzz/CMakeLists.txt");
    }
  }
  for (const std::string& n : listed) {
    if (!std::binary_search(names.begin(), names.end(), n)) {
      problem("tests/fuzz/CMakeLists.txt lists " + n + ", which is no decoder");
    }
  }
  for (const auto& [decoder, seeds] : Generate()) {
    for (const auto& [name, want] : seeds) {
      const fs::path path = root / decoder / name;
      Bytes have;
      if (!ReadFile(path, &have)) {
        problem("missing seed " + path.string());
      } else if (have != want) {
        problem("stale seed " + path.string());
      }
    }
  }
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(root, ec)) {
    if (!std::binary_search(dirs.begin(), dirs.end(), e.path().filename().string())) {
      problem("corpus entry " + e.path().string() + " belongs to no fuzz target");
    }
  }
  if (ec) problem("cannot list " + root.string() + ": " + ec.message());
  if (problems != 0) {
    std::fprintf(stderr, "regenerate with: p9_make_corpus %s\n", root.c_str());
    return 1;
  }
  std::printf("corpus %s is current for %zu decoders\n", root.c_str(), names.size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && argv[1][0] != '-') return Write(argv[1]);
  if (argc >= 3 && std::string(argv[1]) == "--check") {
    return Check(argv[2], std::vector<std::string>(argv + 3, argv + argc));
  }
  std::fprintf(stderr, "usage: %s DIR | --check DIR DECODER...\n", argv[0]);
  return 2;
}
