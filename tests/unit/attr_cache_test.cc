// cache/attr_cache: lifetimes, invalidation racing a fetch, clearing, and
// the bound on its size.
#include "cache/attr_cache.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace p9::cache {
namespace {

Rgetattr Attr(uint64_t path, uint64_t size) {
  Rgetattr a;
  a.qid.path = path;
  a.size = size;
  a.mode = 0100644;
  return a;
}

constexpr int64_t kSecond = 1000000000;

TEST(AttrCache, AnswersWithinItsLifetimeOnly) {
  AttrCache c;
  const AttrCache::Clock t0 = AttrCache::Now();
  c.Put(7, Attr(7, 100), t0);
  ASSERT_TRUE(c.Get(7, absl::Seconds(1), t0 + kSecond / 2).has_value());
  EXPECT_EQ(c.Get(7, absl::Seconds(1), t0 + kSecond / 2)->attr.size, 100u);
  // What is handed on may live only for the rest of the lifetime.
  EXPECT_EQ(c.Get(7, absl::Seconds(1), t0 + kSecond / 4)->left, absl::Milliseconds(750));
  EXPECT_FALSE(c.Get(7, absl::Seconds(1), t0 + kSecond + 1).has_value());
  EXPECT_FALSE(c.Get(8, absl::Seconds(1), t0).has_value());
  EXPECT_EQ(c.hits(), 3u);
  EXPECT_EQ(c.misses(), 2u);
}

TEST(AttrCache, ZeroLifetimeNeverAnswers) {
  AttrCache c;
  c.Put(7, Attr(7, 1), AttrCache::Now());
  EXPECT_FALSE(c.Get(7, absl::ZeroDuration()).has_value());
}

TEST(AttrCache, AnswerToARequestSentBeforeAnInvalidationIsRefused) {
  AttrCache c;
  const AttrCache::Clock asked = AttrCache::Now();  // a getattr goes out...
  c.Invalidate(7);                                  // ...a write here completes...
  c.Put(7, Attr(7, 1), asked);                      // ...the old answer arrives
  EXPECT_FALSE(c.Get(7, absl::Seconds(10)).has_value());
  c.Put(7, Attr(7, 2), AttrCache::Now());  // asked afterwards: fine
  ASSERT_TRUE(c.Get(7, absl::Seconds(10)).has_value());
  EXPECT_EQ(c.Get(7, absl::Seconds(10))->attr.size, 2u);
}

TEST(AttrCache, InvalidateDropsAndOlderAnswersDoNotReplaceNewer) {
  AttrCache c;
  const AttrCache::Clock t0 = AttrCache::Now();
  c.Put(7, Attr(7, 2), t0 + 10);
  c.Put(7, Attr(7, 1), t0);  // an older request answered late
  EXPECT_EQ(c.Get(7, absl::Seconds(10))->attr.size, 2u);
  c.Invalidate(7);
  EXPECT_FALSE(c.Get(7, absl::Seconds(10)).has_value());
}

TEST(AttrCache, ReadsThatContradictTheSizeInvalidate) {
  AttrCache c;
  const absl::Duration ttl = absl::Seconds(10);
  c.Put(7, Attr(7, 100), AttrCache::Now());
  c.SizeSeen(7, 64, /*at_eof=*/false);  // within the file
  c.SizeSeen(7, 100, /*at_eof=*/false);
  c.SizeSeen(7, 100, /*at_eof=*/true);  // ends where the size says
  ASSERT_TRUE(c.Get(7, ttl).has_value());
  c.SizeSeen(7, 60, /*at_eof=*/true);  // shorter now
  EXPECT_FALSE(c.Get(7, ttl).has_value());
  c.Put(7, Attr(7, 100), AttrCache::Now());
  c.SizeSeen(7, 128, /*at_eof=*/false);  // grew past it
  EXPECT_FALSE(c.Get(7, ttl).has_value());
  const AttrCache::Clock asked = AttrCache::Now();
  c.Put(7, Attr(7, 100), asked);
  c.SizeSeen(7, 50, /*at_eof=*/true);
  c.Put(7, Attr(7, 100), asked);  // an answer sent before the read: refused
  EXPECT_FALSE(c.Get(7, ttl).has_value());
  c.SizeSeen(8, 1, true);  // nothing cached: nothing to do
  EXPECT_FALSE(c.Get(8, ttl).has_value());
}

TEST(AttrCache, ClearRefusesEverythingAskedBefore) {
  AttrCache c;
  const AttrCache::Clock asked = AttrCache::Now();
  c.Put(1, Attr(1, 1), asked);
  c.Clear();
  EXPECT_EQ(c.size(), 0u);
  c.Put(2, Attr(2, 1), asked);
  EXPECT_FALSE(c.Get(2, absl::Seconds(10)).has_value());
}

TEST(AttrCache, StaysWithinItsCapacity) {
  AttrCache c(64);
  const AttrCache::Clock t = AttrCache::Now();
  for (uint64_t i = 0; i < 1000; ++i) c.Put(i, Attr(i, i), t);
  EXPECT_LE(c.size(), 64u);
  EXPECT_TRUE(c.Get(999, absl::Seconds(10)).has_value());  // the newest is kept
}

TEST(AttrCache, ConcurrentUse) {
  AttrCache c(256);
  std::vector<std::thread> ts;
  for (int k = 0; k < 4; ++k) {
    ts.emplace_back([&c, k] {
      for (uint64_t i = 0; i < 20000; ++i) {
        uint64_t p = (i * 7 + static_cast<uint64_t>(k)) % 512;
        switch (i % 4) {
          case 0:
            c.Put(p, Attr(p, i), AttrCache::Now());
            break;
          case 1:
            if (auto a = c.Get(p, absl::Seconds(10))) {
              EXPECT_EQ(a->attr.qid.path, p);
            }
            break;
          case 2:
            c.Invalidate(p);
            break;
          default:
            if (i % 4096 == 3) c.Clear();
        }
      }
    });
  }
  for (std::thread& t : ts) t.join();
  EXPECT_LE(c.size(), 256u);
}

}  // namespace
}  // namespace p9::cache

#include "cache/xattr_absence.h"

namespace p9::cache {
namespace {

TEST(XattrAbsence, AbsentWithinTheLifetimeUntilSetHere) {
  XattrAbsence x;
  const AttrCache::Clock t0 = AttrCache::Now();
  EXPECT_FALSE(x.Absent(7, "security.capability", absl::Seconds(1), t0));
  x.PutAbsent(7, "security.capability", t0);
  EXPECT_TRUE(x.Absent(7, "security.capability", absl::Seconds(1), t0 + kSecond / 2));
  EXPECT_FALSE(x.Absent(7, "security.capability", absl::Seconds(1), t0 + 2 * kSecond));
  EXPECT_FALSE(x.Absent(7, "user.other", absl::Seconds(1), t0));
  EXPECT_FALSE(x.Absent(8, "security.capability", absl::Seconds(1), t0));
  EXPECT_FALSE(x.Absent(7, "security.capability", absl::ZeroDuration(), t0));
  x.Invalidate(7);
  EXPECT_FALSE(x.Absent(7, "security.capability", absl::Seconds(10)));
  // An ENODATA to a request sent before the setxattr is not believed.
  x.PutAbsent(7, "security.capability", t0);
  EXPECT_FALSE(x.Absent(7, "security.capability", absl::Seconds(10)));
  x.PutAbsent(7, "security.capability", AttrCache::Now());
  EXPECT_TRUE(x.Absent(7, "security.capability", absl::Seconds(10)));
}

TEST(XattrAbsence, StaysWithinItsCapacity) {
  XattrAbsence x(32);
  for (uint64_t i = 0; i < 500; ++i) x.PutAbsent(i, "a", AttrCache::Now());
  EXPECT_TRUE(x.Absent(499, "a", absl::Seconds(10)));
  int kept = 0;
  for (uint64_t i = 0; i < 500; ++i) kept += x.Absent(i, "a", absl::Seconds(10)) ? 1 : 0;
  EXPECT_LE(kept, 33);
}

}  // namespace
}  // namespace p9::cache
