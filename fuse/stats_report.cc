#include "fuse/stats_report.h"

#include <algorithm>
#include <cstdio>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace p9::fuse {
namespace {

using Words = std::vector<absl::string_view>;

absl::Status BadLine(int n, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("stats file line ", n, ": ", why));
}

bool SplitKv(absl::string_view word, absl::string_view* key, absl::string_view* value) {
  size_t eq = word.find('=');
  if (eq == absl::string_view::npos) return false;
  *key = word.substr(0, eq);
  *value = word.substr(eq + 1);
  return true;
}

// Applies key=value words to `set(key, value)`, which returns false for a
// value it cannot parse; words without '=' are left to the caller.
template <typename F>
absl::Status EachKv(int n, const Words& words, size_t from, F&& set) {
  for (size_t i = from; i < words.size(); ++i) {
    absl::string_view k, v;
    if (!SplitKv(words[i], &k, &v)) continue;
    if (!set(k, v)) return BadLine(n, absl::StrCat("bad value in \"", words[i], "\""));
  }
  return absl::OkStatus();
}

bool ParseBuckets(absl::string_view v, std::array<uint64_t, kLatencyBuckets>* out) {
  std::vector<absl::string_view> parts = absl::StrSplit(v, ',');
  // A newer daemon may have more buckets: fold them into the last one.
  out->fill(0);
  for (size_t i = 0; i < parts.size(); ++i) {
    uint64_t c = 0;
    if (!absl::SimpleAtoi(parts[i], &c)) return false;
    (*out)[std::min(i, out->size() - 1)] += c;
  }
  return true;
}

absl::Status ParseQueue(int n, const Words& w, QueueStats* q) {
  if (w.size() < 2 || !absl::SimpleAtoi(w[1], &q->index))
    return BadLine(n, "queue without a number");
  std::vector<absl::string_view> peer;
  for (size_t i = 2; i < w.size() && w[i].find('=') == absl::string_view::npos; ++i) {
    peer.push_back(w[i]);
  }
  q->peer = absl::StrJoin(peer, " ");
  struct U64Field {
    const char* key;
    uint64_t QueueStats::*field;
  };
  static constexpr U64Field kU64[] = {
      {"requests", &QueueStats::requests},
      {"bytes_sent", &QueueStats::bytes_sent},
      {"bytes_received", &QueueStats::bytes_received},
      {"errors", &QueueStats::errors},
      {"protocol_errors", &QueueStats::protocol_errors},
      {"timeouts", &QueueStats::timeouts},
      {"flushes", &QueueStats::flushes},
      {"interrupts", &QueueStats::interrupts},
      {"reconnects", &QueueStats::reconnects},
  };
  return EachKv(n, w, 2, [&](absl::string_view k, absl::string_view v) {
    for (const U64Field& f : kU64) {
      if (k == f.key) return absl::SimpleAtoi(v, &(q->*f.field));
    }
    if (k == "in_flight") return absl::SimpleAtoi(v, &q->in_flight);
    if (k == "alive") {
      q->alive = v == "1";
      return v == "0" || v == "1";
    }
    if (k == "latency_us_log2") return ParseBuckets(v, &q->latency_us_log2);
    return true;
  });
}

// What the table shows for one queue (or the total): counts over the
// period, rates over its length.
struct Period {
  double seconds = 0;
  bool since_mount = true;
};

Period PeriodOf(const StatsSnapshot& cur, const StatsSnapshot* prev) {
  if (prev != nullptr && cur.unix_ms > prev->unix_ms) {
    return {static_cast<double>(cur.unix_ms - prev->unix_ms) / 1000.0, false};
  }
  return {static_cast<double>(cur.uptime_ms) / 1000.0, true};
}

// Counter growth since `prev`; a counter that went down (the daemon was
// restarted under the same name) counts from zero.
uint64_t Grew(uint64_t now, uint64_t before) { return now >= before ? now - before : now; }

QueueStats Delta(const QueueStats& cur, const QueueStats* prev) {
  if (prev == nullptr) return cur;
  QueueStats d = cur;
  d.requests = Grew(cur.requests, prev->requests);
  d.bytes_sent = Grew(cur.bytes_sent, prev->bytes_sent);
  d.bytes_received = Grew(cur.bytes_received, prev->bytes_received);
  for (int b = 0; b < kLatencyBuckets; ++b) {
    d.latency_us_log2[b] = Grew(cur.latency_us_log2[b], prev->latency_us_log2[b]);
  }
  return d;
}

const QueueStats* FindQueue(const StatsSnapshot* s, int index) {
  if (s == nullptr) return nullptr;
  for (const QueueStats& q : s->queues) {
    if (q.index == index) return &q;
  }
  return nullptr;
}

uint64_t FindOp(const StatsSnapshot* s, const std::string& name) {
  if (s == nullptr) return 0;
  for (const auto& [op, n] : s->ops) {
    if (op == name) return n;
  }
  return 0;
}

QueueStats Sum(const std::vector<QueueStats>& qs) {
  QueueStats t;
  t.index = -1;
  t.peer = "total";
  for (const QueueStats& q : qs) {
    t.requests += q.requests;
    t.bytes_sent += q.bytes_sent;
    t.bytes_received += q.bytes_received;
    t.in_flight += q.in_flight;
    t.errors += q.errors;
    t.protocol_errors += q.protocol_errors;
    t.timeouts += q.timeouts;
    t.flushes += q.flushes;
    t.interrupts += q.interrupts;
    t.reconnects += q.reconnects;
    for (int b = 0; b < kLatencyBuckets; ++b) t.latency_us_log2[b] += q.latency_us_log2[b];
  }
  return t;
}

// One queue (or the total) as the renderers need it.
struct Row {
  QueueStats total;   // cumulative counters
  QueueStats period;  // growth over the period
  std::string alive;
};

constexpr double kFractions[] = {0.5, 0.9, 0.99, 1.0};
constexpr const char* kFractionNames[] = {"p50", "p90", "p99", "max"};

double PerSecond(uint64_t n, const Period& p) {
  return p.seconds > 0 ? static_cast<double>(n) / p.seconds : 0.0;
}

std::vector<Row> Rows(const StatsSnapshot& cur, const StatsSnapshot* prev) {
  std::vector<Row> rows;
  std::vector<QueueStats> deltas;
  int alive = 0;
  for (const QueueStats& q : cur.queues) {
    Row r{q, Delta(q, FindQueue(prev, q.index)), q.alive ? "yes" : "NO"};
    deltas.push_back(r.period);
    alive += q.alive ? 1 : 0;
    rows.push_back(std::move(r));
  }
  rows.push_back({Sum(cur.queues), Sum(deltas), absl::StrCat(alive, "/", cur.queues.size())});
  return rows;
}

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out + "\"";
}

std::string Unescape(absl::string_view s) {
  // mountinfo writes space, tab, newline and backslash as \ooo.
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = 0;
      bool octal = true;
      for (size_t j = 1; j <= 3; ++j) {
        char c = s[i + j];
        if (c < '0' || c > '7') octal = false;
        v = v * 8 + (c - '0');
      }
      if (octal) {
        out.push_back(static_cast<char>(v));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

}  // namespace

absl::StatusOr<StatsSnapshot> ParseStats(absl::string_view text) {
  StatsSnapshot s;
  bool have_mount = false, have_time = false;
  int n = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++n;
    Words w = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (w.empty()) continue;
    absl::Status st;
    if (w[0] == "mount") {
      have_mount = true;
      s.mount_line = std::string(absl::StripLeadingAsciiWhitespace(line.substr(5)));
      if (w.size() >= 4 && w[2] == "on") {
        s.source = std::string(w[1]);
        s.mountpoint = std::string(w[3]);
      }
      st = EachKv(n, w, 1, [&](absl::string_view k, absl::string_view v) {
        return k != "pid" || absl::SimpleAtoi(v, &s.pid);
      });
    } else if (w[0] == "time") {
      have_time = true;
      st = EachKv(n, w, 1, [&](absl::string_view k, absl::string_view v) {
        if (k == "unix_ms") return absl::SimpleAtoi(v, &s.unix_ms);
        if (k == "uptime_ms") return absl::SimpleAtoi(v, &s.uptime_ms);
        return true;
      });
    } else if (w[0] == "queue") {
      s.queues.emplace_back();
      st = ParseQueue(n, w, &s.queues.back());
    } else if (w[0] == "ops") {
      st = EachKv(n, w, 1, [&](absl::string_view k, absl::string_view v) {
        uint64_t c = 0;
        if (!absl::SimpleAtoi(v, &c)) return false;
        s.ops.emplace_back(std::string(k), c);
        return true;
      });
    } else if (w[0] == "cache") {
      if (w.size() < 2 || w[1].find('=') != absl::string_view::npos) {
        return BadLine(n, "cache line without a cache name");
      }
      CacheStats c;
      c.name = std::string(w[1]);
      st = EachKv(n, w, 2, [&](absl::string_view k, absl::string_view v) {
        if (k == "hits") return absl::SimpleAtoi(v, &c.hits);
        if (k == "misses") return absl::SimpleAtoi(v, &c.misses);
        return true;
      });
      s.caches.push_back(std::move(c));
    }
    if (!st.ok()) return st;
  }
  if (!have_mount) return absl::InvalidArgumentError("stats file has no mount line");
  if (!have_time) {
    return absl::InvalidArgumentError(
        "stats file has no time line (written by a 9prdma older than this command)");
  }
  if (s.queues.empty()) return absl::InvalidArgumentError("stats file has no queue line");
  return s;
}

absl::Status CheckFresh(const StatsSnapshot& s, absl::Time now, absl::Duration max_age) {
  absl::Duration age = now - absl::FromUnixMillis(s.unix_ms);
  if (age <= max_age) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "the stats file was last written ", absl::FormatDuration(absl::Trunc(age, absl::Seconds(1))),
      " ago: the mount daemon", s.pid > 0 ? absl::StrCat(" (pid ", s.pid, ")") : "",
      " is not updating it (hung or stopped)"));
}

absl::StatusOr<std::string> MountTypeAt(absl::string_view mountinfo, absl::string_view path) {
  std::string found;
  bool any = false;
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n', absl::SkipEmpty())) {
    Words w = absl::StrSplit(line, ' ', absl::SkipEmpty());
    // id parent major:minor root MOUNTPOINT options [optional...] - TYPE source super
    if (w.size() < 8 || Unescape(w[4]) != path) continue;
    for (size_t i = 6; i + 1 < w.size(); ++i) {
      if (w[i] == "-") {
        found = std::string(w[i + 1]);
        any = true;
        break;
      }
    }
  }
  if (!any) return absl::NotFoundError(absl::StrCat(path, " is not a mount point"));
  return found;
}

std::string FormatBytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) return absl::StrCat(bytes, "B");
  double v = static_cast<double>(bytes) / 1024.0;
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  return absl::StrFormat("%.1f%s", v, kUnits[u]);
}

std::string FormatMicros(uint64_t us) {
  if (us < 1000) return absl::StrCat(us, "us");
  if (us < 1000000) return absl::StrFormat("%.1fms", static_cast<double>(us) / 1e3);
  return absl::StrFormat("%.1fs", static_cast<double>(us) / 1e6);
}

std::string RenderTable(const StatsSnapshot& cur, const StatsSnapshot* prev) {
  const Period period = PeriodOf(cur, prev);
  // A reading no newer than `cur` cannot give rates: averages since the
  // mount instead, as without one.
  if (period.since_mount) prev = nullptr;
  const std::vector<Row> rows = Rows(cur, prev);
  std::string out = absl::StrCat(cur.source, " on ", cur.mountpoint);
  if (cur.pid > 0) absl::StrAppend(&out, " (pid ", cur.pid, ")");
  absl::StrAppend(
      &out, "\n",
      period.since_mount
          ? absl::StrFormat("rates: averages since the mount, %.0f s ago", period.seconds)
          : absl::StrFormat("rates: over the last %.1f s", period.seconds),
      "; latency: round trip of each 9P request, upper bounds of powers of two\n");
  size_t peer_w = 4;
  for (const Row& r : rows) peer_w = std::max(peer_w, r.total.peer.size());
  const int pw = static_cast<int>(peer_w);
  absl::StrAppendFormat(&out,
                        "%-5s %-*s %10s %8s %9s %9s %7s %5s %6s %6s %6s %6s %5s %5s %5s %5s %5s "
                        "%6s %5s\n",
                        "queue", pw, "peer", "requests", "req/s", "sent", "received", "MB/s",
                        "infl", "p50", "p90", "p99", "max", "err", "proto", "tmo", "flush", "intr",
                        "reconn", "alive");
  for (const Row& r : rows) {
    const QueueStats& t = r.total;
    const QueueStats& p = r.period;
    std::string lat[4];
    for (int i = 0; i < 4; ++i) {
      uint64_t us = LatencyPercentile(p.latency_us_log2, kFractions[i]);
      lat[i] = p.requests == 0 && us == 0 ? "-" : FormatMicros(us);
    }
    double mbs = PerSecond(p.bytes_sent + p.bytes_received, period) / 1e6;
    absl::StrAppendFormat(
        &out,
        "%-5s %-*s %10u %8.1f %9s %9s %7.2f %5d %6s %6s %6s %6s %5u %5u %5u %5u %5u %6u %5s\n",
        t.index < 0 ? "" : absl::StrCat(t.index), pw, t.peer, t.requests,
        PerSecond(p.requests, period), FormatBytes(t.bytes_sent), FormatBytes(t.bytes_received),
        mbs, t.in_flight, lat[0], lat[1], lat[2], lat[3], t.errors, t.protocol_errors, t.timeouts,
        t.flushes, t.interrupts, t.reconnects, r.alive);
  }
  // FUSE requests: what the kernel's caches did not answer.
  std::vector<std::string> ops;
  for (const auto& [name, n] : cur.ops) {
    if (n == 0) continue;
    ops.push_back(absl::StrFormat("%s %u (%.1f/s)", name, n,
                                  PerSecond(Grew(n, prev ? FindOp(prev, name) : 0), period)));
  }
  absl::StrAppend(&out, "\nFUSE requests received (not answered by the kernel's caches):\n  ",
                  ops.empty() ? "none yet" : absl::StrJoin(ops, ", "), "\n");
  if (cur.caches.empty()) {
    absl::StrAppend(&out, "cache hit rates: none (cache=none keeps no userspace cache)\n");
  }
  for (const CacheStats& c : cur.caches) {
    uint64_t all = c.hits + c.misses;
    absl::StrAppendFormat(&out, "cache %s: %u hits, %u misses", c.name, c.hits, c.misses);
    if (all > 0) {
      absl::StrAppendFormat(&out, " (%.1f%% hits)", 100.0 * static_cast<double>(c.hits) / all);
    }
    out += "\n";
  }
  return out;
}

std::string RenderJson(const StatsSnapshot& cur, const StatsSnapshot* prev) {
  const Period period = PeriodOf(cur, prev);
  if (period.since_mount) prev = nullptr;
  const std::vector<Row> rows = Rows(cur, prev);
  std::string out = absl::StrCat(
      "{\"source\":", JsonString(cur.source), ",\"mountpoint\":", JsonString(cur.mountpoint),
      ",\"pid\":", cur.pid, ",\"unix_ms\":", cur.unix_ms, ",\"uptime_ms\":", cur.uptime_ms,
      ",\"period_s\":", absl::StrFormat("%.3f", period.seconds),
      ",\"since_mount\":", period.since_mount ? "true" : "false", ",\"queues\":[");
  for (size_t i = 0; i < rows.size(); ++i) {
    const QueueStats& t = rows[i].total;
    const QueueStats& p = rows[i].period;
    bool total = i + 1 == rows.size();
    if (total) absl::StrAppend(&out, "],\"total\":");
    if (i > 0 && !total) out += ",";
    absl::StrAppend(&out, "{");
    if (!total) absl::StrAppend(&out, "\"queue\":", t.index, ",\"peer\":", JsonString(t.peer), ",");
    absl::StrAppend(&out, "\"requests\":", t.requests,
                    ",\"requests_per_s\":", absl::StrFormat("%.3f", PerSecond(p.requests, period)),
                    ",\"bytes_sent\":", t.bytes_sent, ",\"bytes_received\":", t.bytes_received,
                    ",\"bytes_per_s\":",
                    absl::StrFormat("%.1f", PerSecond(p.bytes_sent + p.bytes_received, period)),
                    ",\"in_flight\":", t.in_flight, ",\"errors\":", t.errors,
                    ",\"protocol_errors\":", t.protocol_errors, ",\"timeouts\":", t.timeouts,
                    ",\"flushes\":", t.flushes, ",\"interrupts\":", t.interrupts,
                    ",\"reconnects\":", t.reconnects);
    if (!total) absl::StrAppend(&out, ",\"alive\":", t.alive ? "true" : "false");
    for (int f = 0; f < 4; ++f) {
      absl::StrAppend(&out, ",\"latency_", kFractionNames[f],
                      "_us\":", LatencyPercentile(p.latency_us_log2, kFractions[f]));
    }
    out += "}";
  }
  out += ",\"ops\":{";
  for (size_t i = 0; i < cur.ops.size(); ++i) {
    absl::StrAppend(&out, i ? "," : "", JsonString(cur.ops[i].first), ":", cur.ops[i].second);
  }
  out += "},\"cache\":[";
  for (size_t i = 0; i < cur.caches.size(); ++i) {
    absl::StrAppend(&out, i ? "," : "", "{\"name\":", JsonString(cur.caches[i].name),
                    ",\"hits\":", cur.caches[i].hits, ",\"misses\":", cur.caches[i].misses, "}");
  }
  return out + "]}\n";
}

absl::StatusOr<StatsArgs> ParseStatsArgs(const std::vector<std::string>& args) {
  StatsArgs a;
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& x = args[i];
    if (x == "-w" || x == "--watch") {
      a.watch = true;
      // An optional number of seconds follows.
      double s = 0;
      if (i + 1 < args.size() && absl::SimpleAtod(args[i + 1], &s)) {
        if (!(s >= 0.1 && s <= 3600)) {
          return absl::InvalidArgumentError(
              absl::StrCat("-w ", args[i + 1], ": the interval must be 0.1 to 3600 seconds"));
        }
        a.interval = absl::Seconds(s);
        ++i;
      }
    } else if (x == "--json") {
      a.json = true;
    } else if (x.size() > 1 && x[0] == '-') {
      return absl::InvalidArgumentError(absl::StrCat("unknown option \"", x, "\""));
    } else {
      positional.push_back(x);
    }
  }
  if (positional.size() != 1) {
    return absl::InvalidArgumentError(positional.empty() ? "stats needs a MOUNTPOINT"
                                                         : "stats takes one MOUNTPOINT");
  }
  a.mountpoint = positional[0];
  return a;
}

}  // namespace p9::fuse
