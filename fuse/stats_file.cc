#include "fuse/stats_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "client/log.h"

namespace p9::fuse {

std::string StatsPath(const std::string& mountpoint) {
  std::string dir;
  if (geteuid() == 0) {
    dir = "/run/9prdma";
  } else if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x != nullptr && *x != '\0') {
    dir = absl::StrCat(x, "/9prdma");
  } else {
    dir = absl::StrCat("/tmp/9prdma-", geteuid());
  }
  return absl::StrCat(dir, "/", absl::StrReplaceAll(mountpoint, {{"/", "-"}}), ".stats");
}

std::string FormatStats(const Filesystem& fs, const std::string& header) {
  std::string out = header + "\n";
  for (int q = 0; q < fs.channels(); ++q) {
    const Session* s = fs.session(q);
    const SessionStats& st = s->stats();
    auto v = [](const auto& a) { return a.load(std::memory_order_relaxed); };
    absl::StrAppend(&out, "queue ", q, " ", s->Describe(), " requests=", v(st.requests),
                    " bytes_sent=", v(st.bytes_sent), " bytes_received=", v(st.bytes_received),
                    " in_flight=", v(st.in_flight), " errors=", v(st.errors),
                    " protocol_errors=", v(st.protocol_errors), " timeouts=", v(st.timeouts),
                    " flushes=", v(st.flushes), " interrupts=", v(st.interrupts),
                    " reconnects=", v(st.reconnects), " alive=", s->alive() ? 1 : 0, "\n");
  }
  return out;
}

StatsWriter::StatsWriter(const Filesystem* fs, std::string mountpoint, std::string header)
    : fs_(fs), path_(StatsPath(mountpoint)), header_(std::move(header)) {
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
  std::string text = FormatStats(*fs_, header_);
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
