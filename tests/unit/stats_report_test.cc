// `9prdma stats`: parsing the stats file, mountinfo lookup, rendering with
// rates and percentiles, and its command line (fuse/stats_report.h).
#include "fuse/stats_report.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace p9::fuse {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// 32 buckets, all zero but the given ones.
std::string Buckets(std::vector<std::pair<int, uint64_t>> set) {
  std::vector<uint64_t> b(kLatencyBuckets, 0);
  for (auto [i, n] : set) b[i] = n;
  std::string out;
  for (size_t i = 0; i < b.size(); ++i) absl::StrAppend(&out, i ? "," : "", b[i]);
  return out;
}

std::string File(int64_t unix_ms, uint64_t req0, uint64_t req1, const std::string& lat0,
                 uint64_t lookups) {
  return absl::StrCat(
      "mount 10.0.0.1:/export on /mnt/data trans=tcp port=564 queues=2 cache=none pid=4242\n",
      "time unix_ms=", unix_ms, " uptime_ms=10000\n", "queue 0 tcp 10.0.0.1:564 requests=", req0,
      " bytes_sent=2048 bytes_received=1048576 in_flight=1 errors=2 protocol_errors=0 "
      "timeouts=1 flushes=1 interrupts=0 reconnects=3 alive=1 latency_us_log2=",
      lat0, "\n", "queue 1 tcp 10.0.0.1:564 requests=", req1,
      " bytes_sent=0 bytes_received=0 in_flight=0 errors=0 protocol_errors=0 timeouts=0 "
      "flushes=0 interrupts=0 reconnects=0 alive=0 latency_us_log2=",
      Buckets({{4, req1}}), "\n", "ops lookup=", lookups, " getattr=0 read=7\n");
}

TEST(ParseStats, ReadsEveryField) {
  absl::StatusOr<StatsSnapshot> s = ParseStats(File(1000, 100, 5, Buckets({{7, 100}}), 9));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->source, "10.0.0.1:/export");
  EXPECT_EQ(s->mountpoint, "/mnt/data");
  EXPECT_EQ(s->pid, 4242);
  EXPECT_EQ(s->unix_ms, 1000);
  EXPECT_EQ(s->uptime_ms, 10000);
  ASSERT_EQ(s->queues.size(), 2u);
  const QueueStats& q = s->queues[0];
  EXPECT_EQ(q.index, 0);
  EXPECT_EQ(q.peer, "tcp 10.0.0.1:564");
  EXPECT_EQ(q.requests, 100u);
  EXPECT_EQ(q.bytes_sent, 2048u);
  EXPECT_EQ(q.bytes_received, 1048576u);
  EXPECT_EQ(q.in_flight, 1);
  EXPECT_EQ(q.errors, 2u);
  EXPECT_EQ(q.timeouts, 1u);
  EXPECT_EQ(q.flushes, 1u);
  EXPECT_EQ(q.reconnects, 3u);
  EXPECT_TRUE(q.alive);
  EXPECT_FALSE(s->queues[1].alive);
  EXPECT_EQ(q.latency_us_log2[7], 100u);
  ASSERT_EQ(s->ops.size(), 3u);
  EXPECT_EQ(s->ops[0], std::make_pair(std::string("lookup"), uint64_t{9}));
  EXPECT_TRUE(s->caches.empty());
}

TEST(ParseStats, SkipsUnknownLinesAndFieldsAndReadsCacheLines) {
  std::string text = File(1000, 1, 1, Buckets({}), 0) +
                     "queue_v9 something new\ncache attr hits=90 misses=10 evictions=4\n";
  // An unknown field in a queue line.
  text = absl::StrReplaceAll(text, {{"alive=1", "alive=1 future_field=x"}});
  absl::StatusOr<StatsSnapshot> s = ParseStats(text);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->caches.size(), 1u);
  EXPECT_EQ(s->caches[0].name, "attr");
  EXPECT_EQ(s->caches[0].hits, 90u);
  EXPECT_EQ(s->caches[0].misses, 10u);
  EXPECT_THAT(RenderTable(*s, nullptr), HasSubstr("cache attr: 90 hits, 10 misses (90.0% hits)"));
}

TEST(ParseStats, RejectsMalformedFiles) {
  EXPECT_FALSE(ParseStats("").ok());
  EXPECT_FALSE(ParseStats("not a stats file\n").ok());
  // The format of 9prdma before `time` lines: no way to tell its age.
  absl::StatusOr<StatsSnapshot> old =
      ParseStats("mount a:/b on /c pid=1\nqueue 0 tcp x requests=1 alive=1\n");
  ASSERT_FALSE(old.ok());
  EXPECT_THAT(old.status().message(), HasSubstr("time"));
  absl::StatusOr<StatsSnapshot> bad = ParseStats(
      absl::StrReplaceAll(File(1, 1, 1, Buckets({}), 0), {{"requests=1 ", "requests=lots "}}));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("line 3"));
  EXPECT_THAT(bad.status().message(), HasSubstr("requests=lots"));
  EXPECT_FALSE(ParseStats(absl::StrReplaceAll(File(1, 1, 1, Buckets({}), 0),
                                              {{"latency_us_log2=0,", "latency_us_log2=x,"}}))
                   .ok());
}

TEST(CheckFresh, StaleFileNamesTheDaemon) {
  absl::StatusOr<StatsSnapshot> s = ParseStats(File(1000000, 1, 1, Buckets({}), 0));
  ASSERT_TRUE(s.ok());
  absl::Time written = absl::FromUnixMillis(1000000);
  EXPECT_TRUE(CheckFresh(*s, written + absl::Seconds(2), absl::Seconds(5)).ok());
  absl::Status st = CheckFresh(*s, written + absl::Seconds(60), absl::Seconds(5));
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("1m ago"));
  EXPECT_THAT(st.message(), HasSubstr("pid 4242"));
  EXPECT_THAT(st.message(), HasSubstr("not updating"));
}

TEST(MountTypeAt, FindsTheTopmostMountAndUnescapes) {
  const std::string mountinfo =
      "22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
      "30 1 0:25 / /mnt/data rw shared:1 - ext4 /dev/sda1 rw\n"
      "31 30 0:26 / /mnt/data rw,nosuid,nodev shared:2 - fuse.9prdma 10.0.0.1:/export rw\n"
      "32 1 0:27 / /mnt/with\\040space rw - fuse.9prdma h:/x rw\n";
  EXPECT_EQ(*MountTypeAt(mountinfo, "/mnt/data"), "fuse.9prdma");
  EXPECT_EQ(*MountTypeAt(mountinfo, "/proc"), "proc");
  EXPECT_EQ(*MountTypeAt(mountinfo, "/mnt/with space"), "fuse.9prdma");
  EXPECT_EQ(MountTypeAt(mountinfo, "/tmp").status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(MountTypeAt(mountinfo, "/mnt").ok());
}

// The column of `header` in the row that starts with `row` (split on spaces).
std::string Cell(const std::string& table, const std::string& row, const std::string& header) {
  std::vector<std::string> lines = absl::StrSplit(table, '\n');
  std::vector<std::string> head, cells;
  for (const std::string& l : lines) {
    std::vector<std::string> w = absl::StrSplit(l, ' ', absl::SkipEmpty());
    if (!w.empty() && w[0] == "queue") head = w;
    if (!w.empty() && w[0] == row && head.size() > 0) cells = w;
  }
  // Peers are two words ("tcp host:port"), the header has one ("peer");
  // the total row has one word ("total") where the queue number and peer are.
  for (size_t i = 0; i < head.size(); ++i) {
    if (head[i] != header) continue;
    size_t at = row == "total" ? i - 1 : i + 1;
    return at < cells.size() ? cells[at] : "";
  }
  return "";
}

TEST(RenderTable, AveragesSinceMountWithoutAPreviousReading) {
  // 100 requests on queue 0 in bucket 7 ([64, 128) us), 5 on queue 1 in
  // bucket 4; uptime 10 s.
  absl::StatusOr<StatsSnapshot> s = ParseStats(File(1000, 100, 5, Buckets({{7, 100}}), 9));
  ASSERT_TRUE(s.ok());
  std::string t = RenderTable(*s, nullptr);
  EXPECT_THAT(t, HasSubstr("10.0.0.1:/export on /mnt/data (pid 4242)"));
  EXPECT_THAT(t, HasSubstr("averages since the mount, 10 s ago"));
  EXPECT_EQ(Cell(t, "0", "requests"), "100");
  EXPECT_EQ(Cell(t, "0", "req/s"), "10.0");
  EXPECT_EQ(Cell(t, "0", "p50"), "128us");
  EXPECT_EQ(Cell(t, "0", "max"), "128us");
  EXPECT_EQ(Cell(t, "0", "received"), "1.0MiB");
  EXPECT_EQ(Cell(t, "0", "reconn"), "3");
  EXPECT_EQ(Cell(t, "0", "alive"), "yes");
  EXPECT_EQ(Cell(t, "1", "alive"), "NO");
  EXPECT_EQ(Cell(t, "1", "p99"), "16us");
  // Totals: every request, both queues' latencies (5 of 105 at 16 us).
  EXPECT_EQ(Cell(t, "total", "requests"), "105");
  EXPECT_EQ(Cell(t, "total", "p50"), "128us");
  EXPECT_EQ(Cell(t, "total", "alive"), "1/2");
  EXPECT_THAT(t, HasSubstr("lookup 9 (0.9/s), read 7 (0.7/s)"));
  EXPECT_THAT(t, Not(HasSubstr("getattr")));  // zero counts are left out
  EXPECT_THAT(t, HasSubstr("cache hit rates: none (cache=none"));
}

TEST(RenderTable, RatesAndPercentilesOverTheIntervalBetweenReadings) {
  absl::StatusOr<StatsSnapshot> before = ParseStats(File(1000, 100, 5, Buckets({{7, 100}}), 9));
  // 2 s later: 40 more requests on queue 0, all slow (bucket 11: < 2048 us).
  absl::StatusOr<StatsSnapshot> after =
      ParseStats(File(3000, 140, 5, Buckets({{7, 100}, {11, 40}}), 19));
  ASSERT_TRUE(before.ok() && after.ok());
  std::string t = RenderTable(*after, &*before);
  EXPECT_THAT(t, HasSubstr("over the last 2.0 s"));
  EXPECT_EQ(Cell(t, "0", "requests"), "140");  // the total so far
  EXPECT_EQ(Cell(t, "0", "req/s"), "20.0");    // 40 in 2 s
  EXPECT_EQ(Cell(t, "0", "p50"), "2.0ms");     // only the interval's requests
  EXPECT_EQ(Cell(t, "1", "req/s"), "0.0");
  EXPECT_EQ(Cell(t, "1", "p50"), "-");  // nothing in the interval
  EXPECT_THAT(t, HasSubstr("lookup 19 (5.0/s)"));
}

TEST(RenderTable, AnUnchangedReadingGivesAveragesSinceMountNotZeroRates) {
  absl::StatusOr<StatsSnapshot> s = ParseStats(File(1000, 100, 5, Buckets({{7, 100}}), 9));
  ASSERT_TRUE(s.ok());
  std::string t = RenderTable(*s, &*s);
  EXPECT_THAT(t, HasSubstr("averages since the mount"));
  EXPECT_EQ(Cell(t, "0", "req/s"), "10.0");
  EXPECT_EQ(Cell(t, "0", "p50"), "128us");
  EXPECT_EQ(t, RenderTable(*s, nullptr));
}

TEST(RenderJson, CarriesTheSameNumbers) {
  absl::StatusOr<StatsSnapshot> s = ParseStats(File(1000, 100, 5, Buckets({{7, 100}}), 9));
  ASSERT_TRUE(s.ok());
  std::string j = RenderJson(*s, nullptr);
  EXPECT_TRUE(absl::StartsWith(j, "{\"source\":\"10.0.0.1:/export\""));
  EXPECT_THAT(j, HasSubstr("\"queue\":0,\"peer\":\"tcp 10.0.0.1:564\",\"requests\":100,"));
  EXPECT_THAT(j, HasSubstr("\"latency_p50_us\":128"));
  EXPECT_THAT(j, HasSubstr("\"total\":{\"requests\":105,"));
  EXPECT_THAT(j, HasSubstr("\"ops\":{\"lookup\":9,\"getattr\":0,\"read\":7}"));
  EXPECT_THAT(j, HasSubstr("\"cache\":[]}"));
}

TEST(Format, BytesAndMicros) {
  EXPECT_EQ(FormatBytes(0), "0B");
  EXPECT_EQ(FormatBytes(1023), "1023B");
  EXPECT_EQ(FormatBytes(1536), "1.5KiB");
  EXPECT_EQ(FormatBytes(uint64_t{3} << 30), "3.0GiB");
  EXPECT_EQ(FormatMicros(64), "64us");
  EXPECT_EQ(FormatMicros(2048), "2.0ms");
  EXPECT_EQ(FormatMicros(2100000), "2.1s");
}

TEST(ParseStatsArgs, WatchIntervalJsonAndErrors) {
  absl::StatusOr<StatsArgs> a = ParseStatsArgs({"/mnt"});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->mountpoint, "/mnt");
  EXPECT_FALSE(a->watch);
  a = ParseStatsArgs({"-w", "/mnt"});
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->watch);
  EXPECT_EQ(a->interval, absl::Seconds(2));
  a = ParseStatsArgs({"-w", "0.5", "--json", "/mnt"});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->interval, absl::Milliseconds(500));
  EXPECT_TRUE(a->json);
  EXPECT_FALSE(ParseStatsArgs({}).ok());
  EXPECT_FALSE(ParseStatsArgs({"/a", "/b"}).ok());
  EXPECT_FALSE(ParseStatsArgs({"-x", "/a"}).ok());
  EXPECT_FALSE(ParseStatsArgs({"-w", "0", "/a"}).ok());
}

}  // namespace
}  // namespace p9::fuse
