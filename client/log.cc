#include "client/log.h"

#include <syslog.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"

namespace p9 {
namespace {
// Relaxed: each is an independent setting read on every log call; a caller
// racing with a change may log one line under the old setting.
std::atomic<int> g_level{static_cast<int>(LogLevel::kWarning)};
std::atomic<bool> g_syslog{false};

void Write(int priority, const char* tag, absl::string_view line) {
  if (g_syslog.load(std::memory_order_relaxed)) {
    syslog(priority, "%.*s", static_cast<int>(line.size()), line.data());
    return;
  }
  // One write per line so concurrent lines do not interleave.
  std::string out = absl::StrCat("9prdma: ", tag, ": ", line, "\n");
  ssize_t ignored = write(STDERR_FILENO, out.data(), out.size());
  (void)ignored;
}
}  // namespace

void SetLogLevel(LogLevel level) {
  g_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load(std::memory_order_relaxed)); }

void SetLogToSyslog(bool to_syslog, const char* ident) {
  if (to_syslog) openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
  g_syslog.store(to_syslog, std::memory_order_relaxed);
}

void LogLine(LogLevel level, absl::string_view line) {
  static constexpr int kPriority[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
  static constexpr const char* kTag[] = {"error", "warning", "info", "debug"};
  int i = static_cast<int>(level);
  Write(kPriority[i], kTag[i], line);
}

void LogTrace(absl::string_view line) { Write(LOG_DEBUG, "trace", line); }

void LogSuppressed(LogLevel level, const char* file, int line, uint64_t suppressed,
                   const RateLimiter& limiter) {
  absl::string_view f(file);
  if (size_t slash = f.rfind('/'); slash != absl::string_view::npos) f.remove_prefix(slash + 1);
  LogLine(level,
          absl::StrCat(suppressed, " messages from ", f, ":", line, " suppressed (at most ",
                       limiter.burst(), " per ", absl::FormatDuration(limiter.interval()), ")"));
}

}  // namespace p9
