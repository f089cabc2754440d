// The 9P2000.L codec (client/codec.h, client/wire.h): every message type
// round-trips, hand-written golden vectors pin the wire layout to the spec,
// and every malformed input (cut short, over-long counts, wrong type, over
// msize, trailing bytes) is rejected without reading outside the buffer; the
// ASan build of this test is what proves the last part.
#include "client/codec.h"

#include <cstdint>
#include <ostream>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/types/span.h"
#include "client/messages.h"
#include "client/protocol.h"
#include "client/tunables.h"
#include "client/wire.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fuzz/message_fill.h"

namespace p9 {

// Readable failure output for messages: gtest finds these through ADL.
inline void PrintField(std::ostream* os, uint8_t v) { *os << unsigned{v}; }
inline void PrintField(std::ostream* os, uint16_t v) { *os << v; }
inline void PrintField(std::ostream* os, uint32_t v) { *os << v; }
inline void PrintField(std::ostream* os, uint64_t v) { *os << v; }
inline void PrintField(std::ostream* os, const std::string& v) { *os << '"' << v << '"'; }
inline void PrintField(std::ostream* os, const Qid& q) {
  *os << absl::StrFormat("qid{%#x,%u,%#x}", q.type, q.version, q.path);
}
inline void PrintField(std::ostream* os, const Bytes& b) { *os << b.data.size() << " bytes"; }
inline void PrintField(std::ostream* os, const DirentList& l) {
  *os << "[";
  for (const Dirent& d : l.entries) {
    PrintField(os, d.qid);
    *os << absl::StrFormat(" off=%u type=%u \"%s\"; ", d.offset, d.type, d.name);
  }
  *os << "]";
}
inline void PrintField(std::ostream* os, const WalkNames& w) {
  *os << "[";
  for (const std::string& s : w.names) *os << '"' << s << "\" ";
  *os << "]";
}
inline void PrintField(std::ostream* os, const WalkQids& w) {
  *os << "[";
  for (const Qid& q : w.qids) {
    PrintField(os, q);
    *os << " ";
  }
  *os << "]";
}
template <typename M>
requires requires { M::kName; }
void PrintTo(const M& m, std::ostream* os) {
  *os << M::kName << "{";
  std::apply([&](const auto&... f) { ((PrintField(os, f), *os << " "), ...); }, m.Fields());
  *os << "}";
}

namespace {

using p9_test::Encode;
using p9_test::FillOptions;
using p9_test::MessageFiller;
using p9_test::PatchSizeField;
using ::testing::AllOf;
using ::testing::HasSubstr;

using Buf = std::vector<uint8_t>;

constexpr uint32_t kMsize = tunables::kMaxMsize;
// size[4] type[1] tag[2] count[4] of Rread/Rreaddir: where the payload starts.
constexpr size_t kCountedHeader = 11;

std::string Hex(absl::Span<const uint8_t> b) {
  std::string s;
  for (uint8_t c : b) absl::StrAppendFormat(&s, "%02x ", c);
  return s;
}

uint32_t LoadLe32(const Buf& b, size_t at) {
  return b[at] | b[at + 1] << 8 | b[at + 2] << 16 | uint32_t{b[at + 3]} << 24;
}

void StoreLe(Buf& b, size_t at, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

// Every strict prefix must be rejected twice over: as received (the size
// field promises more than there is), and re-framed with the size field set
// to the prefix length, where the header is fine and only the field decoders
// stand between the bytes and acceptance.
template <typename M>
void ExpectEveryPrefixRejected(const Buf& msg) {
  for (size_t len = 0; len < msg.size(); ++len) {
    SCOPED_TRACE(absl::StrCat(M::kName, " cut to ", len, " of ", msg.size(), " bytes"));
    Buf cut(msg.begin(), msg.begin() + len);
    EXPECT_FALSE(DecodeMessage<M>(cut, kMsize).ok());
    PatchSizeField(cut);
    absl::StatusOr<M> r = DecodeMessage<M>(cut, kMsize);
    ASSERT_FALSE(r.ok()) << ::testing::PrintToString(*r);
    if (len >= kHeaderSize) {
      EXPECT_THAT(r.status().message(), HasSubstr("truncated"));
    }
  }
}

template <typename M>
void ExpectGolden(const Buf& golden, uint16_t tag, const M& want) {
  SCOPED_TRACE(M::kName);
  ASSERT_EQ(LoadLe32(golden, 0), golden.size()) << "golden vector's own size field is wrong";
  uint16_t got_tag = 0;
  absl::StatusOr<M> got = DecodeMessage<M>(golden, kMsize, &got_tag);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, want);
  EXPECT_EQ(got_tag, tag);
  EXPECT_EQ(Hex(Encode(want, tag)), Hex(golden));
  ExpectEveryPrefixRejected<M>(golden);
}

// ---------------------------------------------------------------------------
// Round trips over every message type.

TEST(CodecRoundTrip, EveryMessageTypeWithEveryFieldSet) {
  int types = 0;
  ForEachMessageType([&](auto proto) {
    using M = decltype(proto);
    SCOPED_TRACE(M::kName);
    const uint16_t tag = static_cast<uint16_t>(0x0a00 + types++);
    const M m = MessageFiller().Make<M>();
    // The filler must actually have set every field, or a field the codec
    // forgets could round-trip as its default.
    int field = 0;
    auto expect_set = [&](const auto& f) {
      EXPECT_FALSE(f == std::decay_t<decltype(f)>{}) << "field " << field;
      ++field;
    };
    std::apply([&](const auto&... f) { (expect_set(f), ...); }, m.Fields());

    const Buf bytes = Encode(m, tag);
    ASSERT_GE(bytes.size(), kHeaderSize);
    EXPECT_EQ(LoadLe32(bytes, 0), bytes.size());
    EXPECT_EQ(bytes[4], static_cast<uint8_t>(M::kType));
    EXPECT_EQ(bytes[5] | bytes[6] << 8, tag);

    uint16_t got_tag = 0;
    absl::StatusOr<M> got = DecodeMessage<M>(bytes, kMsize, &got_tag);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, m);
    EXPECT_EQ(got_tag, tag);
    EXPECT_EQ(Hex(Encode(*got, tag)), Hex(bytes));
  });
  EXPECT_EQ(types, 57);
}

TEST(CodecRoundTrip, EveryMessageTypeWithDefaultFields) {
  ForEachMessageType([&](auto m) {
    using M = decltype(m);
    SCOPED_TRACE(M::kName);
    absl::StatusOr<M> got = DecodeMessage<M>(Encode(m, 0), kMsize);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, m);
  });
}

TEST(CodecRoundTrip, ListsAndStringsAtTheirLimits) {
  const FillOptions wide{.list_size = kMaxWalkElements, .data_size = 65536};
  Twalk tw = MessageFiller(wide).Make<Twalk>();
  ASSERT_EQ(tw.wnames.names.size(), 16u);
  tw.wnames.names[3] = std::string(0xFFFF, 'n');  // longest s[2]
  absl::StatusOr<Twalk> tw2 = DecodeMessage<Twalk>(Encode(tw, 1), kMsize);
  ASSERT_TRUE(tw2.ok()) << tw2.status();
  EXPECT_EQ(*tw2, tw);

  const Rwalk rw = MessageFiller(wide).Make<Rwalk>();
  ASSERT_EQ(rw.wqids.qids.size(), 16u);
  absl::StatusOr<Rwalk> rw2 = DecodeMessage<Rwalk>(Encode(rw, 1), kMsize);
  ASSERT_TRUE(rw2.ok()) << rw2.status();
  EXPECT_EQ(*rw2, rw);

  const Twrite w = MessageFiller(wide).Make<Twrite>();
  absl::StatusOr<Twrite> w2 = DecodeMessage<Twrite>(Encode(w, 1), kMsize);
  ASSERT_TRUE(w2.ok()) << w2.status();
  EXPECT_EQ(*w2, w);

  const Rreaddir rd = MessageFiller({.list_size = 500}).Make<Rreaddir>();
  absl::StatusOr<Rreaddir> rd2 = DecodeMessage<Rreaddir>(Encode(rd, 1), kMsize);
  ASSERT_TRUE(rd2.ok()) << rd2.status();
  EXPECT_EQ(*rd2, rd);
}

// The list of 9P2000.L messages is the MsgType enum; each must have a
// struct in ForEachMessageType whose name and type byte agree.
TEST(CodecRoundTrip, ForEachMessageTypeCoversTheProtocol) {
  std::vector<bool> covered(256, false);
  ForEachMessageType([&](auto m) {
    using M = decltype(m);
    const uint8_t type = static_cast<uint8_t>(M::kType);
    EXPECT_STREQ(MsgTypeName(type), M::kName);
    EXPECT_FALSE(covered[type]) << M::kName << " listed twice";
    covered[type] = true;
  });
  for (int t = 0; t < 256; ++t) {
    const std::string name = MsgTypeName(static_cast<uint8_t>(t));
    // Tlerror is reserved: 9P2000.L defines no request with that number.
    if (name == "unknown" || name == "Tlerror") continue;
    EXPECT_TRUE(covered[t]) << name << " (" << t << ") has no message struct";
    // T-messages are even and their reply is T + 1.
    const std::string peer = MsgTypeName(static_cast<uint8_t>(t % 2 == 0 ? t + 1 : t - 1));
    EXPECT_EQ(peer.substr(1), name.substr(1)) << name;
  }
}

// Truncation of every message type, not just the golden ones.
TEST(CodecTruncation, EveryPrefixOfEveryFilledMessageIsRejected) {
  ForEachMessageType([&](auto m) {
    using M = decltype(m);
    ExpectEveryPrefixRejected<M>(Encode(MessageFiller().Make<M>(), 7));
  });
}

// A deterministic mini-fuzz: single-byte mutations of every message. Nothing
// may crash (ASan watches), and whatever is still accepted must re-encode to
// exactly the mutated bytes, the same oracle as tests/fuzz/fuzz_decode.cc.
TEST(CodecMutation, AcceptedMutantsReencodeExactly) {
  int accepted = 0;
  int rejected = 0;
  ForEachMessageType([&](auto m) {
    using M = decltype(m);
    const Buf msg = Encode(MessageFiller({.list_size = 2, .data_size = 5}).Make<M>(), 9);
    for (size_t i = 0; i < msg.size(); ++i) {
      for (uint8_t v : {uint8_t{0}, uint8_t{1}, uint8_t{0xff}, static_cast<uint8_t>(msg[i] ^ 0x80),
                        static_cast<uint8_t>(msg[i] + 1)}) {
        Buf mutant = msg;
        mutant[i] = v;
        uint16_t tag = 0;
        absl::StatusOr<M> got = DecodeMessage<M>(mutant, kMsize, &tag);
        if (!got.ok()) {
          ++rejected;
          continue;
        }
        ++accepted;
        ASSERT_EQ(Hex(Encode(*got, tag)), Hex(mutant)) << M::kName << " byte " << i;
      }
    }
  });
  // Both outcomes must occur, or the mutations tested nothing.
  EXPECT_GT(accepted, 1000);
  EXPECT_GT(rejected, 1000);
}

// ---------------------------------------------------------------------------
// Golden vectors, written from the 9P2000.L spec: size[4] (which counts
// itself) type[1] tag[2] then the body; every integer little-endian; s[2] is
// a 16-bit length then the bytes; qid[13] is type[1] version[4] path[8].

TEST(CodecGolden, Tversion) {
  const Buf golden = {
      0x15, 0x00, 0x00, 0x00,                               // size 21
      100,                                                  // Tversion
      0xff, 0xff,                                           // tag NOTAG
      0x00, 0x20, 0x00, 0x00,                               // msize 8192
      0x08, 0x00, '9',  'P',  '2', '0', '0', '0', '.', 'L'  // version[s] "9P2000.L"
  };
  ExpectGolden(golden, kNoTag, Tversion{.msize = 8192, .version = "9P2000.L"});
}

TEST(CodecGolden, RlerrorEnoent) {
  const Buf golden = {
      0x0b, 0x00, 0x00, 0x00,  // size 11
      7,                       // Rlerror
      0x01, 0x00,              // tag 1
      0x02, 0x00, 0x00, 0x00,  // ecode ENOENT
  };
  ExpectGolden(golden, 1, Rlerror{.ecode = 2});
}

TEST(CodecGolden, TattachWithoutAuth) {
  const Buf golden = {
      0x1f, 0x00, 0x00, 0x00,            // size 31
      104,                               // Tattach
      0x00, 0x00,                        // tag 0
      0x00, 0x00, 0x00, 0x00,            // fid 0
      0xff, 0xff, 0xff, 0xff,            // afid NOFID
      0x04, 0x00, 'r',  'o',  'o', 't',  // uname[s] "root"
      0x04, 0x00, '/',  's',  'r', 'v',  // aname[s] "/srv"
      0xe8, 0x03, 0x00, 0x00,            // n_uname 1000
  };
  ExpectGolden(
      golden, 0,
      Tattach{.fid = 0, .afid = kNoFid, .uname = "root", .aname = "/srv", .n_uname = 1000});
}

TEST(CodecGolden, TwalkTwoNames) {
  const Buf golden = {
      0x1b, 0x00, 0x00, 0x00,       // size 27
      110,                          // Twalk
      0x02, 0x00,                   // tag 2
      0x01, 0x00, 0x00, 0x00,       // fid 1
      0x02, 0x00, 0x00, 0x00,       // newfid 2
      0x02, 0x00,                   // nwname 2
      0x03, 0x00, 'u',  's',  'r',  // wname[s] "usr"
      0x03, 0x00, 'l',  'i',  'b',  // wname[s] "lib"
  };
  ExpectGolden(golden, 2, Twalk{.fid = 1, .newfid = 2, .wnames = {{"usr", "lib"}}});
}

TEST(CodecGolden, RwalkOneQid) {
  const Buf golden = {
      0x16, 0x00, 0x00, 0x00,                          // size 22
      111,                                             // Rwalk
      0x02, 0x00,                                      // tag 2
      0x01, 0x00,                                      // nwqid 1
      0x80,                                            // qid.type QTDIR
      0x04, 0x03, 0x02, 0x01,                          // qid.version 0x01020304
      0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,  // qid.path 0x1122334455667788
  };
  ExpectGolden(golden, 2, Rwalk{.wqids = {{Qid{kQtDir, 0x01020304, 0x1122334455667788}}}});
}

TEST(CodecGolden, Rgetattr) {
  const Buf golden = {
      0xa0, 0x00, 0x00, 0x00,                          // size 160
      25,                                              // Rgetattr
      0x07, 0x00,                                      // tag 7
      0xff, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // valid P9_GETATTR_BASIC
      0x00,                                            // qid.type QTFILE
      0x07, 0x00, 0x00, 0x00,                          // qid.version 7
      0x2a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // qid.path 42
      0xa4, 0x81, 0x00, 0x00,                          // mode 0100644
      0xe8, 0x03, 0x00, 0x00,                          // uid 1000
      0x64, 0x00, 0x00, 0x00,                          // gid 100
      0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // nlink 1
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // rdev 0
      0x88, 0x13, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // size 5000
      0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // blksize 4096
      0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // blocks 16
      0x00, 0xf1, 0x53, 0x65, 0x00, 0x00, 0x00, 0x00,  // atime_sec 1700000000
      0x15, 0xcd, 0x5b, 0x07, 0x00, 0x00, 0x00, 0x00,  // atime_nsec 123456789
      0x01, 0xf1, 0x53, 0x65, 0x00, 0x00, 0x00, 0x00,  // mtime_sec 1700000001
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // mtime_nsec 0
      0x02, 0xf1, 0x53, 0x65, 0x00, 0x00, 0x00, 0x00,  // ctime_sec 1700000002
      0xff, 0xc9, 0x9a, 0x3b, 0x00, 0x00, 0x00, 0x00,  // ctime_nsec 999999999
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // btime_sec 0
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // btime_nsec 0
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // gen 0
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // data_version 0
  };
  Rgetattr want;
  want.valid = kGetattrBasic;
  want.qid = Qid{kQtFile, 7, 42};
  want.mode = 0100644;
  want.uid = 1000;
  want.gid = 100;
  want.nlink = 1;
  want.size = 5000;
  want.blksize = 4096;
  want.blocks = 16;
  want.atime_sec = 1700000000;
  want.atime_nsec = 123456789;
  want.mtime_sec = 1700000001;
  want.ctime_sec = 1700000002;
  want.ctime_nsec = 999999999;
  ExpectGolden(golden, 7, want);
}

TEST(CodecGolden, Tread) {
  const Buf golden = {
      0x17, 0x00, 0x00, 0x00,                          // size 23
      116,                                             // Tread
      0x03, 0x00,                                      // tag 3
      0x05, 0x00, 0x00, 0x00,                          // fid 5
      0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // offset 4096
      0x00, 0x10, 0x00, 0x00,                          // count 4096
  };
  ExpectGolden(golden, 3, Tread{.fid = 5, .offset = 4096, .count = 4096});
}

TEST(CodecGolden, Rread) {
  const Buf golden = {
      0x10, 0x00, 0x00, 0x00,       // size 16
      117,                          // Rread
      0x03, 0x00,                   // tag 3
      0x05, 0x00, 0x00, 0x00,       // count 5
      'h',  'e',  'l',  'l',  'o',  // data
  };
  ExpectGolden(golden, 3, Rread{.data = {"hello"}});
}

TEST(CodecGolden, Twrite) {
  const Buf golden = {
      0x19, 0x00, 0x00, 0x00,                          // size 25
      118,                                             // Twrite
      0x09, 0x00,                                      // tag 9
      0x03, 0x00, 0x00, 0x00,                          // fid 3
      0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // offset 16
      0x02, 0x00, 0x00, 0x00,                          // count 2
      0x00, 0xff,                                      // data: binary, with a NUL
  };
  ExpectGolden(golden, 9, Twrite{.fid = 3, .offset = 16, .data = {std::string("\0\xff", 2)}});
}

TEST(CodecGolden, RreaddirTwoEntries) {
  const Buf golden = {
      0x3e, 0x00, 0x00, 0x00,  // size 62
      41,                      // Rreaddir
      0x04, 0x00,              // tag 4
      0x33, 0x00, 0x00, 0x00,  // count 51: the two entries below
      // entry 1: qid[13] offset[8] type[1] name[s]
      0x80, 0x00, 0x00, 0x00, 0x00,                    // qid.type QTDIR, version 0
      0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // qid.path 16
      0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // offset 1
      0x04,                                            // type DT_DIR
      0x01, 0x00, '.',                                 // name "."
      // entry 2
      0x00, 0x03, 0x00, 0x00, 0x00,                    // qid.type QTFILE, version 3
      0x11, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // qid.path 17
      0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // offset 2
      0x08,                                            // type DT_REG
      0x02, 0x00, 'a', 'b',                            // name "ab"
  };
  const Rreaddir want{.entries = {{
                          Dirent{Qid{kQtDir, 0, 16}, 1, 4, "."},
                          Dirent{Qid{kQtFile, 3, 17}, 2, 8, "ab"},
                      }}};
  ExpectGolden(golden, 4, want);

  absl::StatusOr<std::vector<Dirent>> direct =
      ParseDirents(absl::MakeConstSpan(golden).subspan(kCountedHeader));
  ASSERT_TRUE(direct.ok()) << direct.status();
  EXPECT_EQ(*direct, want.entries.entries);
}

TEST(CodecGolden, Tlcreate) {
  const Buf golden = {
      0x20, 0x00, 0x00, 0x00,                           // size 32
      14,                                               // Tlcreate
      0x05, 0x00,                                       // tag 5
      0x07, 0x00, 0x00, 0x00,                           // fid 7
      0x07, 0x00, 'n',  'e',  'w', '.', 't', 'x', 't',  // name[s] "new.txt"
      0x41, 0x00, 0x00, 0x00,                           // flags O_WRONLY|O_CREAT
      0xa4, 0x01, 0x00, 0x00,                           // mode 0644
      0x64, 0x00, 0x00, 0x00,                           // gid 100
  };
  ExpectGolden(golden, 5,
               Tlcreate{.fid = 7, .name = "new.txt", .flags = 0x41, .mode = 0644, .gid = 100});
}

TEST(CodecGolden, RclunkIsHeaderOnly) {
  const Buf golden = {
      0x07, 0x00, 0x00, 0x00,  // size 7
      121,                     // Rclunk
      0x0c, 0x00,              // tag 12
  };
  ExpectGolden(golden, 12, Rclunk{});
}

// ---------------------------------------------------------------------------
// Rejection of specific malformed inputs.

Buf TwalkWithNames(uint16_t nwname) {
  Buf b = Encode(Twalk{.fid = 1, .newfid = 2}, 2);  // nwname 0 at offset 15
  StoreLe(b, 15, nwname, 2);
  for (int i = 0; i < nwname; ++i) b.insert(b.end(), {0x01, 0x00, 'x'});
  PatchSizeField(b);
  return b;
}

Buf RwalkWithQids(uint16_t nwqid) {
  Buf b = Encode(Rwalk{}, 2);  // nwqid 0 at offset 7
  StoreLe(b, 7, nwqid, 2);
  b.resize(b.size() + size_t{nwqid} * kQidSize, 0x5a);
  PatchSizeField(b);
  return b;
}

TEST(CodecReject, WalkOfSixteenIsTheLimit) {
  absl::StatusOr<Twalk> tw = DecodeMessage<Twalk>(TwalkWithNames(16), kMsize);
  ASSERT_TRUE(tw.ok()) << tw.status();
  EXPECT_EQ(tw->wnames.names.size(), 16u);
  EXPECT_FALSE(DecodeMessage<Twalk>(TwalkWithNames(17), kMsize).ok());

  absl::StatusOr<Rwalk> rw = DecodeMessage<Rwalk>(RwalkWithQids(16), kMsize);
  ASSERT_TRUE(rw.ok()) << rw.status();
  EXPECT_EQ(rw->wqids.qids.size(), 16u);
  EXPECT_FALSE(DecodeMessage<Rwalk>(RwalkWithQids(17), kMsize).ok());
}

TEST(CodecReject, HugeWalkCountsFailBeforeAllocating) {
  // nwname/nwqid 0xffff with nothing behind them: rejected on the count
  // alone (an allocation of 65535 strings would show up under ASan).
  Buf tw = TwalkWithNames(0);
  StoreLe(tw, 15, 0xffff, 2);
  EXPECT_FALSE(DecodeMessage<Twalk>(tw, kMsize).ok());
  Buf rw = RwalkWithQids(0);
  StoreLe(rw, 7, 0xffff, 2);
  EXPECT_FALSE(DecodeMessage<Rwalk>(rw, kMsize).ok());
}

TEST(CodecReject, WalkCountAboveWhatFollows) {
  Buf tw = TwalkWithNames(2);
  StoreLe(tw, 15, 3, 2);
  EXPECT_FALSE(DecodeMessage<Twalk>(tw, kMsize).ok());
  Buf rw = RwalkWithQids(1);
  StoreLe(rw, 7, 2, 2);
  EXPECT_FALSE(DecodeMessage<Rwalk>(rw, kMsize).ok());
}

TEST(CodecReject, StringLongerThanWhatRemains) {
  // Tlcreate: fid[4] at 7, then name[s] with its length at 11.
  const Buf ok = Encode(Tlcreate{.fid = 7, .name = "new.txt", .flags = 1, .mode = 2, .gid = 3}, 5);
  ASSERT_TRUE(DecodeMessage<Tlcreate>(ok, kMsize).ok());
  // 19 bytes follow the length: 7 of name, 12 of flags/mode/gid.
  for (uint16_t len : {uint16_t{8}, uint16_t{19}, uint16_t{20}, uint16_t{0xffff}}) {
    Buf bad = ok;
    StoreLe(bad, 11, len, 2);
    absl::StatusOr<Tlcreate> r = DecodeMessage<Tlcreate>(bad, kMsize);
    EXPECT_FALSE(r.ok()) << "name length " << len << " decoded as " << ::testing::PrintToString(*r);
  }
}

TEST(CodecReject, DataCountNotMatchingWhatRemains) {
  // Twrite: count[4] at 19, then 2 data bytes that end the message.
  const Buf ok = Encode(Twrite{.fid = 3, .offset = 16, .data = {"ab"}}, 9);
  ASSERT_TRUE(DecodeMessage<Twrite>(ok, kMsize).ok());
  for (uint32_t count : {3u, 0x7fffffffu, 0xffffffffu}) {
    Buf bad = ok;
    StoreLe(bad, 19, count, 4);
    EXPECT_THAT(DecodeMessage<Twrite>(bad, kMsize).status().message(), HasSubstr("truncated"))
        << count;
  }
  Buf shorter = ok;
  StoreLe(shorter, 19, 1, 4);
  EXPECT_THAT(DecodeMessage<Twrite>(shorter, kMsize).status().message(),
              HasSubstr("1 trailing bytes"));

  // Rread: count[4] at 7.
  Buf rread = Encode(Rread{.data = {"hello"}}, 3);
  StoreLe(rread, 7, 6, 4);
  EXPECT_FALSE(DecodeMessage<Rread>(rread, kMsize).ok());
}

TEST(CodecReject, ReaddirCountNotMatchingItsEntries) {
  const Rreaddir two{.entries = {{
                         Dirent{Qid{kQtDir, 0, 16}, 1, 4, "."},
                         Dirent{Qid{kQtFile, 3, 17}, 2, 8, "ab"},
                     }}};
  const Buf ok = Encode(two, 4);  // count[4] at 7 = 51
  ASSERT_EQ(LoadLe32(ok, 7), 51u);
  // Past the end of the message.
  for (uint32_t count : {52u, 0xffffffffu}) {
    Buf bad = ok;
    StoreLe(bad, 7, count, 4);
    EXPECT_FALSE(DecodeMessage<Rreaddir>(bad, kMsize).ok()) << count;
  }
  // Ending inside the second entry: the entry parser is bounded by count,
  // not by the message, even though the rest of the entry follows.
  for (uint32_t count : {26u, 40u, 50u}) {
    Buf bad = ok;
    StoreLe(bad, 7, count, 4);
    absl::StatusOr<Rreaddir> r = DecodeMessage<Rreaddir>(bad, kMsize);
    EXPECT_FALSE(r.ok()) << count << " decoded as " << ::testing::PrintToString(*r);
  }
  // A name length that runs past count into bytes that do exist after it.
  Buf overrun = ok;
  overrun.push_back('c');
  PatchSizeField(overrun);
  StoreLe(overrun, kCountedHeader + 25 + 22, 3, 2);  // entry 2's name length: "abc"
  EXPECT_THAT(DecodeMessage<Rreaddir>(overrun, kMsize).status().message(), HasSubstr("truncated"));
}

TEST(CodecReject, ParseDirentsRejectsPartialEntries) {
  Buf payload;
  Encoder e(&payload);
  wire_field::Put(e, DirentList{{Dirent{Qid{kQtFile, 1, 2}, 3, 8, "name"}}});
  payload.erase(payload.begin(), payload.begin() + 4);  // drop count[4]
  ASSERT_TRUE(ParseDirents(payload).ok());
  for (size_t len = 1; len < payload.size(); ++len) {
    Buf cut(payload.begin(), payload.begin() + len);
    EXPECT_FALSE(ParseDirents(cut).ok()) << len;
  }
  absl::StatusOr<std::vector<Dirent>> empty = ParseDirents({});
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(CodecReject, SizeAboveMsize) {
  const Buf tread = Encode(Tread{.fid = 5, .offset = 4096, .count = 4096}, 3);  // 23 bytes
  EXPECT_TRUE(DecodeMessage<Tread>(tread, 23).ok());
  EXPECT_THAT(DecodeMessage<Tread>(tread, 22).status().message(), HasSubstr("exceeds msize 22"));
  EXPECT_FALSE(ParseHeader(tread, 22).ok());
  // A payload-carrying message: its count fits the buffer but not msize.
  const Buf rread = Encode(Rread{.data = {std::string(5000, 'd')}}, 3);
  EXPECT_TRUE(DecodeMessage<Rread>(rread, 8192).ok());
  EXPECT_FALSE(DecodeMessage<Rread>(rread, 4096).ok());
}

TEST(CodecReject, SizeFieldDisagreesWithLength) {
  const Buf ok = Encode(Tclunk{.fid = 1}, 1);
  for (uint32_t size : {0u, 6u, 7u, 10u, 12u, 0xffffffffu}) {
    Buf bad = ok;
    StoreLe(bad, 0, size, 4);
    EXPECT_THAT(DecodeMessage<Tclunk>(bad, kMsize).status().message(), HasSubstr("disagrees"))
        << size;
  }
  for (size_t len = 0; len < kHeaderSize; ++len) {
    EXPECT_THAT(ParseHeader(Buf(ok.begin(), ok.begin() + len), kMsize).status().message(),
                HasSubstr("shorter than a header"));
  }
}

TEST(CodecReject, TrailingBytes) {
  ForEachMessageType([&](auto m) {
    using M = decltype(m);
    Buf b = Encode(MessageFiller().Make<M>(), 1);
    b.push_back(0);
    PatchSizeField(b);
    EXPECT_THAT(DecodeMessage<M>(b, kMsize).status().message(),
                AllOf(HasSubstr(M::kName), HasSubstr("1 trailing bytes")));
  });
}

TEST(CodecReject, WrongTypeNamesBoth) {
  const Buf twalk = Encode(Twalk{.fid = 1, .newfid = 2, .wnames = {{"a"}}}, 2);
  absl::Status st = DecodeMessage<Rwalk>(twalk, kMsize).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), AllOf(HasSubstr("Rwalk"), HasSubstr("Twalk")));

  // The reply a caller most often gets instead of the one it asked for.
  const Buf rlerror = Encode(Rlerror{.ecode = 5}, 2);
  EXPECT_THAT(DecodeMessage<Rgetattr>(rlerror, kMsize).status().message(),
              AllOf(HasSubstr("Rgetattr"), HasSubstr("Rlerror")));

  Buf junk = Encode(Rclunk{}, 2);
  junk[4] = 0;
  EXPECT_THAT(DecodeMessage<Rclunk>(junk, kMsize).status().message(),
              AllOf(HasSubstr("Rclunk"), HasSubstr("unknown")));
}

TEST(CodecHeader, FieldsAreLittleEndian) {
  const Buf msg = {0x0a, 0x00, 0x00, 0x00, 117, 0x34, 0x12, 0x00, 0x00, 0x00};
  absl::StatusOr<Header> h = ParseHeader(msg, kMsize);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->size, 10u);
  EXPECT_EQ(h->type, static_cast<uint8_t>(MsgType::kRread));
  EXPECT_EQ(h->tag, 0x1234);
}

// ---------------------------------------------------------------------------
// client/wire.h primitives.

TEST(WireDecoder, ReadsLittleEndian) {
  const Buf b = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
                 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x02, 0x00, 'h',  'i'};
  Decoder d(b);
  EXPECT_EQ(d.U8(), 0x01);
  EXPECT_EQ(d.U16(), 0x0302);
  EXPECT_EQ(d.U32(), 0x07060504u);
  EXPECT_EQ(d.U64(), 0x0f0e0d0c0b0a0908u);
  EXPECT_EQ(d.Str(), "hi");
  EXPECT_TRUE(d.ok());
  EXPECT_EQ(d.remaining(), 0u);
}

TEST(WireDecoder, FailureIsStickyAndConsumesNothing) {
  const Buf b = {0xaa, 0xbb, 0xcc};
  Decoder d(b);
  EXPECT_EQ(d.U32(), 0u);  // one byte short
  EXPECT_FALSE(d.ok());
  EXPECT_EQ(d.remaining(), 3u);
  // Later reads that would fit still fail: one check at the end is enough.
  EXPECT_EQ(d.U8(), 0u);
  EXPECT_EQ(d.U16(), 0u);
  EXPECT_EQ(d.Take(0), nullptr);
  EXPECT_EQ(d.Str(), "");
  EXPECT_FALSE(d.ok());
  EXPECT_EQ(d.remaining(), 3u);
}

TEST(WireDecoder, StringLongerThanInputFails) {
  const Buf b = {0x05, 0x00, 'a', 'b'};
  Decoder d(b);
  EXPECT_EQ(d.Str(), "");
  EXPECT_FALSE(d.ok());
}

TEST(WireDecoder, TakeExactlyWhatRemains) {
  const Buf b = {1, 2, 3};
  Decoder d(b);
  EXPECT_EQ(d.Take(3), b.data());
  EXPECT_TRUE(d.ok());
  EXPECT_EQ(d.Take(0), b.data() + 3);  // empty take at the end is fine
  EXPECT_TRUE(d.ok());
  EXPECT_EQ(d.Take(1), nullptr);
  EXPECT_FALSE(d.ok());
}

TEST(WireDecoder, ExplicitFailIsSticky) {
  const Buf b = {1, 2};
  Decoder d(b);
  d.Fail();
  EXPECT_FALSE(d.ok());
  EXPECT_EQ(d.U8(), 0);
  EXPECT_EQ(d.remaining(), 2u);
}

TEST(WireEncoder, WritesLittleEndianAndPatches) {
  Buf out;
  Encoder e(&out);
  e.U8(0x01);
  e.U16(0x0302);
  e.U32(0);
  e.U64(0x0c0b0a0908070605);
  e.Str("hi");
  e.PatchU32(3, 0x04030201);
  EXPECT_EQ(Hex(out), Hex({0x01, 0x02, 0x03, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09,
                           0x0a, 0x0b, 0x0c, 0x02, 0x00, 'h', 'i'}));
  EXPECT_EQ(e.size(), out.size());
}

}  // namespace
}  // namespace p9

namespace p9 {
namespace {

// The encoder must refuse what its length fields cannot say rather than
// wrap them: a 65536-byte string would otherwise go out with length 0 and
// its bytes read by the server as the next fields.
TEST(EncoderLimits, RefusesWhatTheWireCannotRepresent) {
  std::vector<uint8_t> out;
  EXPECT_FALSE(EncodeMessage(1, Tattach{0, kNoFid, "u", std::string(65536, 'a'), 0}, &out));
  EXPECT_TRUE(EncodeMessage(1, Tattach{0, kNoFid, "u", std::string(65535, 'a'), 0}, &out));
  Twalk w{1, 2, WalkNames{std::vector<std::string>(17, "x")}};
  EXPECT_FALSE(EncodeMessage(1, w, &out));
  w.wnames.names.resize(16);
  EXPECT_TRUE(EncodeMessage(1, w, &out));
  Rwalk r{WalkQids{std::vector<Qid>(17)}};
  EXPECT_FALSE(EncodeMessage(1, r, &out));
}

}  // namespace
}  // namespace p9
