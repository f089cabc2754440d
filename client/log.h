// Minimal leveled logging (Abseil 20220623 has no absl/log): to stderr in the
// foreground, to syslog once the mount helper daemonizes.
#ifndef P9_CLIENT_LOG_H_
#define P9_CLIENT_LOG_H_

#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace p9 {

enum class LogLevel { kError = 0, kWarning = 1, kInfo = 2, kDebug = 3 };

// Messages above `level` are dropped. Default kWarning. Thread-safe.
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// Route messages to syslog (true, with `ident`) or stderr (false).
void SetLogToSyslog(bool syslog, const char* ident = "9prdma");
// Writes one line. Prefer the P9_LOG macro, which skips formatting when the
// level is off.
void LogLine(LogLevel level, absl::string_view line);

}  // namespace p9

#define P9_LOG(level, ...)                                                                  \
  do {                                                                                      \
    if (static_cast<int>(::p9::LogLevel::level) <= static_cast<int>(::p9::GetLogLevel())) { \
      ::p9::LogLine(::p9::LogLevel::level, absl::StrFormat(__VA_ARGS__));                   \
    }                                                                                       \
  } while (0)

#endif  // P9_CLIENT_LOG_H_
