// client/trace.h: the one-line description of each 9P message for `debug`.
#include "client/trace.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "client/codec.h"
#include "client/messages.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace p9 {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

template <typename M>
std::string Trace(uint16_t tag, const M& m) {
  std::vector<uint8_t> buf;
  EXPECT_TRUE(EncodeMessage(tag, m, &buf));
  return FormatMessage(buf);
}

TEST(FormatMessage, KernelLikeLines) {
  EXPECT_EQ(Trace(3, Twalk{1, 2, WalkNames{{"foo"}}}),
            "TWALK tag 3 fid 1 newfid 2 nwname 1 wname[0] foo");
  EXPECT_EQ(Trace(3, Rwalk{WalkQids{{Qid{0x80, 0, 0x2a}, Qid{0, 7, 0x1f}}}}),
            "RWALK tag 3 nwqid 2 wqid[0] 80.2a.0 wqid[1] 0.1f.7");
  EXPECT_EQ(Trace(5, Tread{7, 0, 131072}), "TREAD tag 5 fid 7 offset 0 count 131072");
  EXPECT_EQ(Trace(5, Rlerror{2}), "RLERROR tag 5 ecode 2");
  EXPECT_EQ(Trace(kNoTag, Tversion{131072, "9P2000.L"}),
            "TVERSION tag NOTAG msize 131072 version 9P2000.L");
  EXPECT_EQ(Trace(1, Rclunk{}), "RCLUNK tag 1");
  EXPECT_EQ(Trace(4, Tgetattr{9, kGetattrBasic}), "TGETATTR tag 4 fid 9 request_mask 0x7ff");
  Rgetattr ga;
  ga.valid = kGetattrBasic;
  ga.qid = Qid{0, 1, 2};
  ga.mode = 0100644;
  ga.size = 4096;
  EXPECT_THAT(Trace(3, ga), StartsWith("RGETATTR tag 3 valid 0x7ff qid 0.2.1 mode 0100644 uid 0 "
                                       "gid 0 nlink 0 rdev 0 size 4096 "));
  EXPECT_EQ(Trace(6, Tlcreate{1, "new file", 0x8002, 0644, 100}),
            "TLCREATE tag 6 fid 1 name new\\x20file flags 0x8002 mode 0644 gid 100");
}

TEST(FormatMessage, PayloadsAreSummarizedBySize) {
  std::string big(100000, 'x');
  std::string line = Trace(8, Twrite{7, 4096, Bytes{big}});
  EXPECT_EQ(line, "TWRITE tag 8 fid 7 offset 4096 count 100000");
  EXPECT_EQ(Trace(8, Rread{Bytes{big}}), "RREAD tag 8 count 100000");
  Rreaddir rd;
  for (int i = 0; i < 20; ++i) {
    rd.entries.entries.push_back(Dirent{Qid{}, uint64_t(i + 1), 8, "f" + std::to_string(i)});
  }
  line = Trace(9, rd);
  EXPECT_THAT(line, StartsWith("RREADDIR tag 9 entries 20 next_offset 20 name[0] f0 name[1] f1"));
  EXPECT_THAT(line, HasSubstr("name[15] f15 ..."));
  EXPECT_FALSE(absl::StrContains(line, "f16"));
}

TEST(FormatMessage, EveryMessageTypeDecodes) {
  int n = 0;
  ForEachMessageType([&](auto m) {
    using M = decltype(m);
    std::string line = Trace(1, m);
    std::string upper;
    for (char c : std::string(M::kName)) upper.push_back(static_cast<char>(toupper(c)));
    EXPECT_THAT(line, StartsWith(upper + " tag 1")) << line;
    EXPECT_FALSE(absl::StrContains(line, "malformed")) << line;
    ++n;
  });
  EXPECT_EQ(n, 57);
}

TEST(FormatMessage, MalformedMessagesAreSaidToBe) {
  EXPECT_EQ(FormatMessage({}), "malformed message: 0 bytes, shorter than a 9P header");
  std::vector<uint8_t> m;
  ASSERT_TRUE(EncodeMessage(3, Twalk{1, 2, WalkNames{{"foo"}}}, &m));
  std::vector<uint8_t> cut(m.begin(), m.end() - 2);
  EXPECT_EQ(FormatMessage(cut), "TWALK tag 3 malformed: size field 22, message 20 bytes");
  // Size patched to match: the body itself is short.
  cut[0] = static_cast<uint8_t>(cut.size());
  EXPECT_THAT(FormatMessage(cut), StartsWith("TWALK tag 3 malformed (20 bytes): "));
  // Extra bytes after the last field.
  std::vector<uint8_t> longer = m;
  longer.push_back(0);
  longer[0] = static_cast<uint8_t>(longer.size());
  EXPECT_THAT(FormatMessage(longer), HasSubstr("trailing bytes"));
  // A type byte that is no message.
  std::vector<uint8_t> odd = {7, 0, 0, 0, 250, 1, 0};
  EXPECT_EQ(FormatMessage(odd), "type 250 tag 1 size 7 (not a message this client decodes)");
}

}  // namespace
}  // namespace p9
