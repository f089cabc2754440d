// Minimal leveled logging (Abseil 20220623 has no absl/log): to stderr in the
// foreground, to syslog once the mount helper daemonizes. Errors and
// warnings are rate-limited per call site (client/rate_limiter.h).
#ifndef P9_CLIENT_LOG_H_
#define P9_CLIENT_LOG_H_

#include <cstdint>

#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "client/rate_limiter.h"

namespace p9 {

enum class LogLevel { kError = 0, kWarning = 1, kInfo = 2, kDebug = 3 };

// Messages above `level` are dropped. Default kWarning. Thread-safe.
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// Route messages to syslog (true, with `ident`) or stderr (false).
void SetLogToSyslog(bool syslog, const char* ident = "9prdma");
// Writes one line. Prefer the P9_LOG macro, which skips formatting when the
// level is off and rate-limits errors and warnings.
void LogLine(LogLevel level, absl::string_view line);
// Writes one line of the `debug` 9P message trace: never filtered by level
// or rate-limited (a trace with holes would mislead), at syslog's debug
// priority, tagged "trace" on stderr.
void LogTrace(absl::string_view line);
// The line P9_LOG writes before the first line a rate limiter lets through
// after it dropped `suppressed` lines of the call site `file`:`line`.
void LogSuppressed(LogLevel level, const char* file, int line, uint64_t suppressed,
                   const RateLimiter& limiter);

}  // namespace p9

// P9_LOG(kWarning, "format", args...). For kError and kWarning each call
// site has its own RateLimiter (allocated once and never destroyed, so a
// thread logging during exit never finds it gone).
#define P9_LOG(level, ...)                                                                    \
  do {                                                                                        \
    if (static_cast<int>(::p9::LogLevel::level) <= static_cast<int>(::p9::GetLogLevel())) {   \
      if constexpr (::p9::LogLevel::level <= ::p9::LogLevel::kWarning) {                      \
        static ::p9::RateLimiter* const p9_log_limiter = new ::p9::RateLimiter();             \
        const ::p9::RateLimiter::Verdict p9_log_verdict = p9_log_limiter->Check(absl::Now()); \
        if (p9_log_verdict.suppressed > 0) {                                                  \
          ::p9::LogSuppressed(::p9::LogLevel::level, __FILE__, __LINE__,                      \
                              p9_log_verdict.suppressed, *p9_log_limiter);                    \
        }                                                                                     \
        if (p9_log_verdict.print) {                                                           \
          ::p9::LogLine(::p9::LogLevel::level, absl::StrFormat(__VA_ARGS__));                 \
        }                                                                                     \
      } else {                                                                                \
        ::p9::LogLine(::p9::LogLevel::level, absl::StrFormat(__VA_ARGS__));                   \
      }                                                                                       \
    }                                                                                         \
  } while (0)

#endif  // P9_CLIENT_LOG_H_
