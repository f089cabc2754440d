// mount.9prdma: parse, connect and attach, mount through FUSE, then (unless
// -f) become a daemon. The parent process exits 0 only once the mount is up;
// any failure before that is one line on stderr and a non-zero exit, with
// nothing left mounted and no process left behind.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "client/log.h"
#include "client/mutex.h"
#include "fuse/connect.h"
#include "fuse/filesystem.h"
#include "fuse/fuse_api.h"
#include "fuse/ops.h"
#include "fuse/options.h"
#include "fuse/stats_file.h"
#include "fuse/user_mount.h"

namespace p9::fuse {
namespace {

constexpr char kProg[] = "mount.9prdma";
// mount(8) helper exit codes.
constexpr int kExitUsage = 1;
constexpr int kExitMountFailure = 32;
// FUSE worker threads: each blocks in one 9P call at a time, and blocking
// lock waits hold one each, so allow more than libfuse's default of 10.
constexpr unsigned kMaxFuseThreads = 64;

// The sysfs directory of the backing device of the mount on `mountpoint`
// ("/sys/class/bdi/0:NN"), from /proc/self/mountinfo (a stat of the
// mountpoint would wait for the FUSE loop, which has not started), or "".
std::string BdiOf(const std::string& mountpoint) {
  FILE* f = fopen("/proc/self/mountinfo", "re");
  if (f == nullptr) return "";
  std::string found;
  char* line = nullptr;
  size_t cap = 0;
  while (getline(&line, &cap, f) > 0) {
    // ID PARENT MAJOR:MINOR ROOT MOUNTPOINT ... (the last match wins: the
    // newest mount on that path)
    std::vector<std::string> w = absl::StrSplit(line, ' ');
    if (w.size() > 4 && w[4] == mountpoint) found = w[2];
  }
  free(line);
  fclose(f);
  return found.empty() ? "" : absl::StrCat("/sys/class/bdi/", found);
}

// libfuse's own messages. Until the mount is up they are kept (the last
// error becomes part of our one-line message); afterwards they are logged.
Mutex g_fuse_log_mu;
bool g_fuse_log_capture ABSL_GUARDED_BY(g_fuse_log_mu) = true;
std::string g_fuse_last_error ABSL_GUARDED_BY(g_fuse_log_mu);

void FuseLog(enum fuse_log_level level, const char* fmt, va_list ap) {
  char buf[1024];
  vsnprintf(buf, sizeof(buf), fmt, ap);
  std::string line(absl::StripTrailingAsciiWhitespace(buf));
  MutexLock lock(&g_fuse_log_mu);
  if (g_fuse_log_capture) {
    if (level <= FUSE_LOG_ERR) g_fuse_last_error = line;
    return;
  }
  if (level <= FUSE_LOG_ERR) {
    P9_LOG(kError, "libfuse: %s", line);
  } else if (level <= FUSE_LOG_WARNING) {
    P9_LOG(kWarning, "libfuse: %s", line);
  } else {
    P9_LOG(kDebug, "libfuse: %s", line);
  }
}

std::string TakeFuseError() {
  MutexLock lock(&g_fuse_log_mu);
  std::string s = std::move(g_fuse_last_error);
  g_fuse_last_error.clear();
  return s;
}

void StopCapturingFuseLog() {
  MutexLock lock(&g_fuse_log_mu);
  g_fuse_log_capture = false;
}

// Where the outcome of the mount goes: the waiting parent (daemon mode) or
// stderr (foreground).
class Reporter {
 public:
  explicit Reporter(int fd) : fd_(fd) {}
  // Reports failure and returns the exit code to use.
  int Fail(int code, const std::string& msg) {
    std::string line = absl::StrCat(kProg, ": ", msg, "\n");
    if (fd_ >= 0) {
      std::string m = absl::StrCat(code, " ", line);
      WriteAll(m);
      close(fd_);
      fd_ = -1;
    } else {
      fputs(line.c_str(), stderr);
    }
    return code;
  }
  void Success() {
    if (fd_ >= 0) {
      WriteAll("0\n");
      close(fd_);
      fd_ = -1;
    }
  }

 private:
  void WriteAll(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = write(fd_, s.data() + off, s.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }
  int fd_;
};

// Parent side of the daemon fork: waits for the child's verdict.
int WaitForChild(pid_t child, int fd) {
  std::string msg;
  char buf[512];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    msg.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  if (msg.empty()) {
    int status = 0;
    waitpid(child, &status, 0);
    fprintf(stderr, "%s: mount process died before the mount was up (status %d)\n", kProg, status);
    return kExitMountFailure;
  }
  if (msg == "0\n") return 0;
  // "<code> <line>"
  size_t sp = msg.find(' ');
  int code = atoi(msg.substr(0, sp).c_str());
  fputs(msg.substr(sp + 1).c_str(), stderr);
  // The child exits right after reporting; reap it so nothing lingers.
  waitpid(child, nullptr, 0);
  return code == 0 ? kExitMountFailure : code;
}

// Whether /etc/fuse.conf lets users mount with allow_other; a missing or
// unreadable file does not (fusermount3 would refuse too).
bool ReadFuseConfAllowsOther() {
  FILE* f = fopen(kFuseConfPath, "re");
  if (f == nullptr) return false;
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
  fclose(f);
  return FuseConfAllowsOther(text);
}

void RedirectStdio() {
  int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (fd < 0) return;
  dup2(fd, STDIN_FILENO);
  dup2(fd, STDOUT_FILENO);
  dup2(fd, STDERR_FILENO);
  if (fd > STDERR_FILENO) close(fd);
}

int RunMount(const MountOptions& o, const std::string& mountpoint, Reporter* report) {
  Identity who = ResolveIdentity(o);
  absl::StatusOr<Connection> conn = ConnectAndAttach(o, who);
  if (!conn.ok()) return report->Fail(kExitMountFailure, std::string(conn.status().message()));

  FsConfig cfg;
  cfg.cache = o.cache;
  cfg.actimeo = o.actimeo;
  cfg.writeback = o.writeback;
  cfg.access = o.access;
  cfg.access_uid = o.access_uid;
  cfg.attach_uid = who.uid;
  cfg.read_only = o.read_only;
  if (o.access == AccessMode::kUser) {
    cfg.attach_user = [o](Session& s, uint32_t fid, uint32_t uid) {
      return AttachUser(s, fid, o, uid);
    };
  }
  auto fs =
      std::make_unique<Filesystem>(std::move(conn->sessions), conn->root_fids, conn->root_qid, cfg);
  // Known root attributes and statistics let umount(8) stat and statfs the
  // mountpoint while the server is away (see GetattrInode, Statfs).
  (void)fs->GetattrInode(fs->inodes().root(), 0, nullptr);
  (void)fs->Statfs(fs->inodes().root(), 0);

  bool force_dp = ImpliesDefaultPermissions(o.access);
  std::string fuse_opts =
      absl::StrCat(FuseOptionString(o, force_dp), ",max_read=", fs->fuse_max_read());
  std::vector<std::string> argv_s = {kProg, "-o", fuse_opts};
  std::vector<char*> argv;
  for (std::string& s : argv_s) argv.push_back(s.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  const fuse_lowlevel_ops& ops = LowLevelOps();
  fuse_session* se = fuse_session_new(&args, &ops, sizeof(ops), fs.get());
  fuse_opt_free_args(&args);
  if (se == nullptr) {
    fs->Shutdown();
    return report->Fail(kExitMountFailure, absl::StrCat("FUSE refused the options \"", fuse_opts,
                                                        "\": ", TakeFuseError()));
  }
  if (fuse_set_signal_handlers(se) != 0) {
    fuse_session_destroy(se);
    fs->Shutdown();
    return report->Fail(kExitMountFailure, "cannot install signal handlers");
  }
  if (fuse_session_mount(se, mountpoint.c_str()) != 0) {
    std::string why = TakeFuseError();
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    fs->Shutdown();
    return report->Fail(kExitMountFailure,
                        absl::StrCat("cannot mount on ", mountpoint, why.empty() ? "" : ": ", why));
  }
  fs->SetReadaheadTarget(BdiOf(mountpoint));
  P9_LOG(kInfo, "mounted %s on %s (%s, port %u, queues=%d, cache=%s)", o.source, mountpoint,
         TransportName(conn->transport), conn->port, o.queues, CacheModeName(o.cache));
  report->Success();
  StopCapturingFuseLog();
  if (!o.foreground) {
    SetLogToSyslog(true, kProg);
    RedirectStdio();
    if (chdir("/") != 0) P9_LOG(kWarning, "chdir /: %s", strerror(errno));
  }

  int ret;
  {
    StatsWriter stats(
        fs.get(), mountpoint,
        absl::StrCat("mount ", o.source, " on ", mountpoint,
                     " trans=", TransportName(conn->transport), " port=", conn->port,
                     " queues=", o.queues, " cache=", CacheModeName(o.cache), " pid=", getpid()));
    fuse_loop_config* loop = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(loop, kMaxFuseThreads);
    fuse_loop_cfg_set_clone_fd(loop, 0);
    ret = fuse_session_loop_mt(se, loop);
    fuse_loop_cfg_destroy(loop);
  }

  fuse_session_unmount(se);
  fuse_remove_signal_handlers(se);
  fuse_session_destroy(se);
  fs->Shutdown();
  P9_LOG(kInfo, "%s unmounted from %s", o.source, mountpoint);
  return ret == 0 ? 0 : 1;
}

int Main(int argc, char** argv) {
  // Debian's libabsl tracks lock order for deadlock detection in a graph
  // guarded by locks TSan cannot see (and every inode has a mutex); the
  // lock order is reviewed, not checked at run time.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::vector<std::string> args(argv + 1, argv + argc);
  absl::StatusOr<MountOptions> parsed = ParseCommandLine(args);
  if (!parsed.ok()) {
    fprintf(stderr, "%s: %s\n", kProg, std::string(parsed.status().message()).c_str());
    return kExitUsage;
  }
  MountOptions& o = *parsed;
  if (o.help) {
    fputs(UsageText(kProg).c_str(), stdout);
    return 0;
  }
  if (o.version) {
    fputs(VersionText().c_str(), stdout);
    printf("using libfuse %s\n", fuse_pkgversion());
    return 0;
  }
  SetLogLevel(EffectiveLogLevel(o));
  fuse_set_log_func(FuseLog);

  // The mount point must be an existing directory; say so before any
  // network traffic.
  char* real = realpath(o.mountpoint.c_str(), nullptr);
  if (real == nullptr) {
    fprintf(stderr, "%s: mount point %s: %s\n", kProg, o.mountpoint.c_str(), strerror(errno));
    return kExitMountFailure;
  }
  std::string mountpoint = real;
  free(real);
  struct stat st;
  if (stat(mountpoint.c_str(), &st) != 0) {
    fprintf(stderr, "%s: mount point %s: %s\n", kProg, mountpoint.c_str(), strerror(errno));
    return kExitMountFailure;
  }
  if (!S_ISDIR(st.st_mode)) {
    fprintf(stderr, "%s: mount point %s is not a directory\n", kProg, mountpoint.c_str());
    return kExitMountFailure;
  }

  // Refuse what fusermount3 or the kernel would refuse only after we had
  // connected, and make user mounts nosuid,nodev.
  uid_t uid = getuid();
  if (absl::Status st = ApplyUserMountPolicy(&o, uid, uid != 0 && ReadFuseConfAllowsOther());
      !st.ok()) {
    fprintf(stderr, "%s: %s\n", kProg, std::string(st.message()).c_str());
    return kExitUsage;
  }

  if (o.access == AccessMode::kUser && !o.allow_other) {
    // FUSE itself admits only the mounting user then: one attach in use.
    P9_LOG(kWarning, "access=user without allow_other: only the mounting user can use the mount");
  }
  if (!o.ignored_options.empty()) {
    P9_LOG(kInfo, "ignored options: %s", absl::StrJoin(o.ignored_options, ","));
  }
  signal(SIGPIPE, SIG_IGN);

  if (o.foreground) {
    Reporter report(-1);
    return RunMount(o, mountpoint, &report);
  }
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    fprintf(stderr, "%s: pipe: %s\n", kProg, strerror(errno));
    return kExitMountFailure;
  }
  fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "%s: fork: %s\n", kProg, strerror(errno));
    return kExitMountFailure;
  }
  if (pid > 0) {
    close(p[1]);
    return WaitForChild(pid, p[0]);
  }
  close(p[0]);
  setsid();
  Reporter report(p[1]);
  return RunMount(o, mountpoint, &report);
}

}  // namespace
}  // namespace p9::fuse

int main(int argc, char** argv) { return p9::fuse::Main(argc, argv); }
