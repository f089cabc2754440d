#include "fuse/stats_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/log.h"

namespace p9::fuse {

std::string FormatStats(const Filesystem& fs, const std::string& header, absl::Time now,
                        absl::Time started) {
  std::string out = header + "\n";
  absl::StrAppend(&out, "time unix_ms=", absl::ToUnixMillis(now),
                  " uptime_ms=", absl::ToInt64Milliseconds(now - started), "\n");
  auto v = [](const auto& a) { return a.load(std::memory_order_relaxed); };
  for (int q = 0; q < fs.channels(); ++q) {
    const Session* s = fs.session(q);
    const SessionStats& st = s->stats();
    absl::StrAppend(&out, "queue ", q, " ", s->Describe(), " requests=", v(st.requests),
                    " bytes_sent=", v(st.bytes_sent), " bytes_received=", v(st.bytes_received),
                    " in_flight=", v(st.in_flight), " errors=", v(st.errors),
                    " protocol_errors=", v(st.protocol_errors), " timeouts=", v(st.timeouts),
                    " flushes=", v(st.flushes), " interrupts=", v(st.interrupts),
                    " reconnects=", v(st.reconnects), " alive=", s->alive() ? 1 : 0,
                    " latency_us_log2=");
    for (int b = 0; b < kLatencyBuckets; ++b) {
      absl::StrAppend(&out, b == 0 ? "" : ",", v(st.latency_us_log2[b]));
    }
    out += "\n";
  }
  absl::StrAppend(&out, "ops ", fs.op_counts.Format(), "\n");
  // Lookups and readdirplus entries answered from cached attributes (none
  // under cache=none, which keeps nothing).
  if (fs.policy().attr_timeout > 0) {
    const cache::AttrCache& ac = fs.attr_cache();
    absl::StrAppend(&out, "cache attr hits=", ac.hits(), " misses=", ac.misses(),
                    " entries=", ac.size(), "\n");
    const cache::XattrAbsence& xa = fs.xattr_absence();
    absl::StrAppend(&out, "cache xattr_absent hits=", xa.hits(), " misses=", xa.misses(), "\n");
    // Read-only opens answered with an opened fid kept from an earlier close.
    absl::StrAppend(&out, "cache open_fid hits=", fs.parked_hits(), " misses=", fs.parked_misses(),
                    " entries=", fs.parked_fids(), "\n");
  }
  return out;
}

StatsWriter::StatsWriter(const Filesystem* fs, std::string mountpoint, std::string header)
    : fs_(fs), path_(StatsPath(mountpoint)), header_(std::move(header)), started_(absl::Now()) {
  std::string dir = path_.substr(0, path_.rfind('/'));
  mkdir(dir.c_str(), 0755);
  thread_ = std::thread([this] {
    do {
      WriteOnce();
    } while (!stop_.WaitForNotificationWithTimeout(absl::Seconds(1)));
  });
}

StatsWriter::~StatsWriter() {
  stop_.Notify();
  thread_.join();
  unlink(path_.c_str());
}

void StatsWriter::WriteOnce() {
  std::string text = FormatStats(*fs_, header_, absl::Now(), started_);
  std::string tmp = absl::StrCat(path_, ".", getpid());
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) return;
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  ok = (std::fclose(f) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path_.c_str()) != 0) {
    unlink(tmp.c_str());
    static bool warned = false;  // only the writer thread touches it
    if (!warned) P9_LOG(kWarning, "cannot write %s", path_);
    warned = true;
  }
}

}  // namespace p9::fuse
