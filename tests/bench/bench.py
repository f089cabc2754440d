#!/usr/bin/python3
"""Workloads of tests/bench/run: prepares the data set and measures targets.

  bench.py prepare --profile P --dest DIR --tarball FILE
      DIR/tree/dNNN/fNNNN  the stat tree      DIR/seq.bin   the file fio reads
      DIR/git/             a committed repo   DIR/py/       stdlib packages (+ .pyc)
      DIR/scratch/         where writers go   DIR/manifest.json
      FILE                 an uncompressed tarball of /usr/include files
  bench.py measure --profile P --targets TARGETS.json --export DIR --tarball FILE --out OUT.jsonl
      (first copies DIR/data/git to DIR/data/git-TARGET: each client gets a
      repository of its own, whose index only it refreshes)

TARGETS.json lists what to measure side by side: [{"name", "root" (where the
export is seen), "mount"/"umount"/"verify" (shell commands, or null),
"backing" (the export directory itself, for fast clean-up, or null)}].
Targets are mounted together and measured round-robin (workload by
workload, run by run, in a rotating order), so the load of the machine
falls on all of them alike. Each sample is one JSON line in OUT:
  {"target", "workload", "run", "value", "unit", "extra"} or {"target", "workload", "error"}.
Standard library only; run with Debian's /usr/bin/python3.
"""
import argparse
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tarfile
import time

# Sizes per profile. "host*" run on the development machine, "guest*" in the
# TCG guest (10-30 MB/s, ~0.1 s per exec: everything smaller).
PROFILES = {
    "host": dict(runs=5, tree_dirs=100, tree_files=100, seq_mib=256, rand_ios=16384,
                 small_files=2000, src_files=3000, git_files=3000,
                 py_pkgs=["asyncio", "email", "json", "xml", "http", "logging",
                          "unittest", "urllib", "concurrent", "html"]),
    "host-quick": dict(runs=3, tree_dirs=20, tree_files=100, seq_mib=64, rand_ios=8192,
                       small_files=500, src_files=800, git_files=800,
                       py_pkgs=["asyncio", "email", "json", "xml", "logging"]),
    "guest": dict(runs=3, tree_dirs=2, tree_files=40, seq_mib=8, rand_ios=1024,
                  small_files=30, src_files=40, git_files=60, py_pkgs=["email"]),
    "guest-quick": dict(runs=2, tree_dirs=1, tree_files=50, seq_mib=4, rand_ios=512,
                        small_files=20, src_files=20, git_files=40, py_pkgs=["email"]),
}

# What each package's import statement pulls in (submodules, not just the
# package's __init__).
PY_IMPORTS = {
    "asyncio": ["asyncio"],
    "email": ["email.parser", "email.mime.multipart", "email.mime.text", "email.policy",
              "email.headerregistry", "email.generator"],
    "json": ["json", "json.tool"],
    "xml": ["xml.dom.minidom", "xml.etree.ElementTree", "xml.sax.saxutils"],
    "http": ["http.client", "http.cookiejar"],
    "logging": ["logging.handlers", "logging.config"],
    "unittest": ["unittest", "unittest.mock"],
    "urllib": ["urllib.request", "urllib.parse", "urllib.robotparser"],
    "concurrent": ["concurrent.futures"],
    "html": ["html.parser"],
}

# Workloads: (name, unit, better). Order = order of the report.
WORKLOADS = [
    ("seq_read", "MiB/s", "higher"),
    ("seq_write", "MiB/s", "higher"),
    ("rand_read_qd1", "us", "lower"),
    ("rand_read_qd16", "IOPS", "higher"),
    ("stat_cold", "ms", "lower"),
    ("stat_warm", "ms", "lower"),
    ("small_files", "ms", "lower"),
    ("untar", "ms", "lower"),
    ("git_status", "ms", "lower"),
    ("py_import", "ms", "lower"),
]

# Order of execution: the figures the targets are about first, so that a
# time budget (--deadline, in the guest) cuts the least telling ones.
EXEC_ORDER = ["seq_read", "seq_write", "rand_read_qd1", "stat_cold", "git_status",
              "rand_read_qd16", "py_import", "small_files", "untar"]

PY = "/usr/bin/python3"
SRC_TREE = "/usr/include"
PY_LIB = "/usr/lib/python3.%d" % sys.version_info[1]


T0 = time.monotonic()


def log(msg):
    print("bench: [%4.0fs] %s" % (time.monotonic() - T0, msg), file=sys.stderr, flush=True)


# ---------------------------------------------------------------- prepare

def source_files(n):
    """The first N regular files of SRC_TREE in sorted walk order (relative)."""
    out = []
    for d, dirs, files in os.walk(SRC_TREE):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(d, f)
            if os.path.isfile(p) and not os.path.islink(p):
                out.append(os.path.relpath(p, SRC_TREE))
                if len(out) == n:
                    return out
    return out


def git(args, cwd, check=True):
    env = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@localhost",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@localhost",
               GIT_AUTHOR_DATE="2024-01-01T00:00:00Z", GIT_COMMITTER_DATE="2024-01-01T00:00:00Z")
    return subprocess.run(["git", "-c", "safe.directory=*", "-c", "init.defaultBranch=main"] + args,
                          cwd=cwd, env=env, check=check, capture_output=True, text=True, timeout=300)


def prepare(args):
    p = PROFILES[args.profile]
    dest = args.dest
    if os.path.exists(dest):
        shutil.rmtree(dest)
    os.makedirs(dest)
    # The stat tree.
    blob = b"x" * 64
    for i in range(p["tree_dirs"]):
        d = os.path.join(dest, "tree", "d%03d" % i)
        os.makedirs(d)
        for j in range(p["tree_files"]):
            with open(os.path.join(d, "f%04d" % j), "wb") as f:
                f.write(blob)
    # The sequential/random read file.
    chunk = os.urandom(1 << 20)
    with open(os.path.join(dest, "seq.bin"), "wb") as f:
        for i in range(p["seq_mib"]):
            f.write(i.to_bytes(8, "little") + chunk[8:])
    # A committed git repository, files older than the index (no racy entries).
    repo = os.path.join(dest, "git")
    old = time.time() - 7200
    for rel in source_files(p["git_files"]):
        dst = os.path.join(repo, "src", rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(os.path.join(SRC_TREE, rel), dst)
        os.utime(dst, (old, old))
    git(["init", "-q"], repo)
    git(["add", "-A"], repo)
    git(["commit", "-q", "-m", "bench tree"], repo)
    git(["status", "--porcelain"], repo)  # refresh the index once
    # Pure-python packages with their byte code, as an installed package has.
    py = os.path.join(dest, "py")
    os.makedirs(py)
    for pkg in p["py_pkgs"]:
        shutil.copytree(os.path.join(PY_LIB, pkg), os.path.join(py, pkg),
                        ignore=shutil.ignore_patterns("__pycache__", "test", "tests"))
    subprocess.run([PY, "-m", "compileall", "-q", py], check=True, timeout=600)
    # A tarball of the first src_files headers (uncompressed: no CPU-bound
    # decompression hiding the file system).
    os.makedirs(os.path.dirname(os.path.abspath(args.tarball)), exist_ok=True)
    files = source_files(p["src_files"])
    with tarfile.open(args.tarball, "w") as t:
        for rel in files:
            t.add(os.path.join(SRC_TREE, rel), arcname=os.path.join("src", rel))
    os.makedirs(os.path.join(dest, "scratch"))
    os.chmod(os.path.join(dest, "scratch"), 0o777)
    manifest = dict(profile=args.profile, tree_files=p["tree_dirs"] * p["tree_files"],
                    seq_mib=p["seq_mib"], git_files=p["git_files"], src_files=len(files),
                    tarball_bytes=os.path.getsize(args.tarball), py_pkgs=p["py_pkgs"],
                    py_files=sum(len([f for f in fs if f.endswith(".py")])
                                 for _, _, fs in os.walk(py)),
                    small_files=p["small_files"])
    with open(os.path.join(dest, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    log("prepared %s: %s" % (dest, json.dumps(manifest)))


# ---------------------------------------------------------------- measure

class Failed(Exception):
    pass


class TimedOut(Exception):
    pass


def isolated(fn, timeout):
    """Runs fn() in a forked child, in a process group of its own, and returns
    its (JSON-able) result. A child still running after TIMEOUT seconds is
    killed with everything it started: a hung server leaves its clients'
    callers in killable waits, which SIGKILL ends, where no signal handler in
    this process could."""
    sys.stdout.flush()
    sys.stderr.flush()
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rfd)
            os.setpgid(0, 0)
            try:
                res = {"ok": fn()}
            except BaseException as e:  # noqa: BLE001 - reported to the parent
                res = {"error": "%s: %s" % (type(e).__name__, e)}
            os.write(wfd, json.dumps(res).encode())
        finally:
            os._exit(0)
    os.close(wfd)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass
    data, timed_out = b"", False
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            if select.select([rfd], [], [], left)[0]:
                chunk = os.read(rfd, 1 << 16)
                if not chunk:
                    break
                data += chunk
    except BaseException:  # SIGTERM (SystemExit), ^C: the sample goes too
        os.killpg(pid, signal.SIGKILL)
        raise
    finally:
        os.close(rfd)
    if timed_out:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for _ in range(100):  # reap, but never wait forever on an unkillable child
        if os.waitpid(pid, os.WNOHANG)[0]:
            break
        time.sleep(0.1)
    if timed_out:
        raise TimedOut("no result within %d s (hung client or server)" % timeout)
    res = json.loads(data) if data else {"error": "the sample's process died"}
    if "error" in res:
        raise Failed(res["error"])
    return res["ok"]


def sh(cmd, timeout=90):
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        msg = (r.stderr.strip() or r.stdout.strip()).splitlines()
        raise Failed("`%s` failed (%d): %s" % (cmd, r.returncode, msg[-1] if msg else ""))
    return r.stdout


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == path for line in f)


class Target:
    def __init__(self, spec, data_rel):
        self.name = spec["name"]
        self.root = spec["root"]
        self.mount_cmd = spec.get("mount")
        self.umount_cmd = spec.get("umount")
        self.verify_cmd = spec.get("verify")
        self.backing = spec.get("backing")
        self.data = os.path.join(self.root, data_rel)
        self.data_rel = data_rel
        self.error = None  # set when the target is dead

    def mount(self):
        if not self.mount_cmd:
            return
        sh(self.mount_cmd)
        if self.verify_cmd:
            sh(self.verify_cmd)

    def umount(self):
        if self.mount_cmd and self.umount_cmd:
            try:
                sh(self.umount_cmd, timeout=60)
            except (Failed, subprocess.TimeoutExpired):
                subprocess.run(["umount", "-l", self.root], capture_output=True, timeout=60)

    def remount(self):
        """A cold client: unmount and mount again."""
        if not self.mount_cmd:
            return False
        self.umount()
        for _ in range(100):
            if not is_mounted(self.root):
                break
            time.sleep(0.05)
        self.mount()
        return True

    def scratch(self, name):
        """(path seen through the target, path to remove it by)."""
        via = os.path.join(self.data, "scratch", name)
        if self.backing:
            return via, os.path.join(self.backing, self.data_rel, "scratch", name)
        return via, via


def rmtree(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.unlink(path)


def fio(args, timeout):
    cmd = ["fio", "--output-format=json", "--ioengine=psync", "--fallocate=none",
           "--invalidate=1"] + args
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        err = (r.stderr.strip() or r.stdout.strip()).splitlines()
        raise Failed("fio: " + (err[-1] if err else "exit %d" % r.returncode))
    out = r.stdout
    return json.loads(out[out.index("{"):])


class Bench:
    def __init__(self, args, profile, targets):
        self.p = profile
        self.args = args
        self.targets = targets
        self.out = open(args.out, "a")
        with open(os.path.join(args.export, args.data, "manifest.json")) as f:
            self.manifest = json.load(f)
        self.seq_bytes = self.manifest["seq_mib"] << 20

    def record(self, **rec):
        self.out.write(json.dumps(rec) + "\n")
        self.out.flush()

    # Each workload returns (value, extra dict).
    def stat_walk(self, t):
        n = 0
        t0 = time.perf_counter()
        top = os.path.join(t.data, "tree")
        os.lstat(top)
        for d in os.scandir(top):
            os.lstat(d.path)
            for e in os.scandir(d.path):
                os.lstat(e.path)
                n += 1
        dt = time.perf_counter() - t0
        if n != self.manifest["tree_files"]:
            raise Failed("stat tree: saw %d files, expected %d" % (n, self.manifest["tree_files"]))
        return dt * 1e3, {"files": n, "us_per_file": round(dt * 1e6 / n, 2)}

    def w_stat_cold(self, t, run):
        cold = t.remount()
        v, extra = self.stat_walk(t)
        extra["cold"] = cold  # False: nothing to unmount (direct access)
        # The warm walk right after, in the same mount.
        v2, extra2 = self.stat_walk(t)
        self.pending_warm = (v2, extra2)
        return v, extra

    def w_stat_warm(self, t, run):
        # Measured by w_stat_cold (the walk right after the cold one).
        raise AssertionError

    def w_seq_read(self, t, run):
        # Sequential 1 MiB read()s of the whole file, the client's page cache
        # for it dropped first (POSIX_FADV_DONTNEED), like a first cat.
        buf = bytearray(1 << 20)
        fd = os.open(os.path.join(t.data, "seq.bin"), os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            n = 0
            t0 = time.perf_counter()
            while True:
                k = os.readv(fd, [buf])
                if k == 0:
                    break
                n += k
            dt = time.perf_counter() - t0
        finally:
            os.close(fd)
        if n != self.seq_bytes:
            raise Failed("read %d bytes of %d" % (n, self.seq_bytes))
        return n / dt / 1048576, {"secs": round(dt, 4)}

    def w_seq_write(self, t, run):
        # Create, 1 MiB write()s, fsync, close: all of it timed.
        via, rm = t.scratch("seqw-%s-%d" % (t.name, run))
        buf = bytes(range(256)) * 4096
        try:
            t0 = time.perf_counter()
            fd = os.open(via, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            try:
                for _ in range(self.seq_bytes >> 20):
                    if os.write(fd, buf) != len(buf):
                        raise Failed("short write")
                os.fsync(fd)
            finally:
                os.close(fd)
            dt = time.perf_counter() - t0
        finally:
            rmtree(rm)
        return self.seq_bytes / dt / 1048576, {"secs": round(dt, 4)}

    def rand(self, t, jobs):
        # Buffered 4 KiB reads with POSIX_FADV_RANDOM (no readahead), the
        # file's page cache dropped first, fio's random map on: no block is
        # read twice, so a page cache cannot help and every read reaches
        # the server, whatever the client. (O_DIRECT would be simpler, but the
        # guest kernel's 9p client refuses it.) 16 jobs: 16 threads, each on
        # its own sixteenth of the file.
        n = min(self.p["rand_ios"], self.seq_bytes // 4096)
        part = self.seq_bytes // jobs
        args = ["--name=randread", "--filename=" + os.path.join(t.data, "seq.bin"),
                "--rw=randread", "--bs=4k", "--direct=0", "--fadvise_hint=1",
                "--size=%d" % part, "--io_size=%d" % (n * 4096 // jobs), "--randrepeat=0"]
        if jobs > 1:
            args += ["--numjobs=%d" % jobs, "--offset_increment=%d" % part, "--thread",
                     "--group_reporting"]
        r = fio(args, self.args.op_timeout)
        j = r["jobs"][0]["read"]
        clat = j["clat_ns"]
        p50 = clat.get("percentile", {}).get("50.000000", clat["mean"])
        p99 = clat.get("percentile", {}).get("99.000000", 0)
        return j["iops"], {"p50_us": p50 / 1e3, "p99_us": p99 / 1e3, "mean_us": clat["mean"] / 1e3,
                           "reads": j["total_ios"]}

    def w_rand_read_qd1(self, t, run):
        iops, extra = self.rand(t, 1)
        extra["iops"] = iops
        return extra["p50_us"], extra

    def w_rand_read_qd16(self, t, run):
        return self.rand(t, 16)

    def w_small_files(self, t, run):
        via, rm = t.scratch("small-%s-%d" % (t.name, run))
        os.mkdir(via)
        data = b"s" * 1024
        n = self.p["small_files"]
        try:
            t0 = time.perf_counter()
            for i in range(n):
                fd = os.open(os.path.join(via, "f%05d" % i), os.O_CREAT | os.O_EXCL | os.O_WRONLY,
                             0o644)
                os.write(fd, data)
                os.close(fd)
            dt = time.perf_counter() - t0
        finally:
            rmtree(rm)
        return dt * 1e3, {"files": n, "files_per_s": round(n / dt)}

    def w_untar(self, t, run):
        via, rm = t.scratch("untar-%s-%d" % (t.name, run))
        os.mkdir(via)
        try:
            t0 = time.perf_counter()
            r = subprocess.run(["tar", "--no-same-owner", "-xf", self.args.tarball, "-C", via],
                               capture_output=True, text=True, timeout=600)
            dt = time.perf_counter() - t0
        finally:
            rmtree(rm)
        if r.returncode != 0:
            raise Failed("tar: " + (r.stderr.strip().splitlines() or ["?"])[-1])
        return dt * 1e3, {"files": self.manifest["src_files"]}

    def git_status(self, t):
        t0 = time.perf_counter()
        r = subprocess.run(["git", "-c", "safe.directory=*", "-c", "core.fsmonitor=false",
                            "-c", "core.untrackedCache=false", "status", "--porcelain"],
                           cwd=os.path.join(t.data, "git-" + t.name), capture_output=True, text=True,
                           timeout=600)
        dt = time.perf_counter() - t0
        if r.returncode != 0:
            raise Failed("git status: " + (r.stderr.strip().splitlines() or ["?"])[-1])
        return dt * 1e3, {"changed": len(r.stdout.splitlines())}

    def w_git_status(self, t, run):
        # Warm: right after another run in the same mount, as stat_warm is
        # (the other clients' runs in between would otherwise outlast every
        # cache lifetime but the kernel client's unbounded loose one). The
        # first run also refreshes the index where inodes differ.
        self.git_status(t)
        return self.git_status(t)

    def py_import(self, t):
        mods = [m for pkg in self.manifest["py_pkgs"] for m in PY_IMPORTS[pkg]]
        code = ("import sys, time\nt = time.perf_counter()\nimport %s\n"
                "dt = time.perf_counter() - t\n"
                "for m in %r:\n"
                "    f = sys.modules[m.split('.')[0]].__file__\n"
                "    assert f.startswith(sys.argv[1]), f\n"
                "print(dt)\n") % (", ".join(mods), self.manifest["py_pkgs"])
        pyroot = os.path.join(t.data, "py")
        t0 = time.perf_counter()
        r = subprocess.run([PY, "-S", "-B", "-c", code, pyroot], capture_output=True, text=True,
                           timeout=300, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": pyroot})
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            raise Failed("python import: " + (r.stderr.strip().splitlines() or ["?"])[-1])
        return float(r.stdout.strip()) * 1e3, {"wall_ms": round(wall * 1e3, 1), "modules": len(mods)}

    def w_py_import(self, t, run):
        self.py_import(t)  # warm-up, right before (see w_git_status)
        return self.py_import(t)

    def run(self, only):
        unit = {w: u for w, u, _ in WORKLOADS}
        for t in self.targets:
            try:
                isolated(t.mount, self.args.op_timeout)
            except (Failed, TimedOut) as e:
                t.error = "mount: %s" % e
                log("%s: %s" % (t.name, t.error))
        runs = self.args.runs or self.p["runs"]
        names = [w for w in EXEC_ORDER if not only or w in only or
                 (w == "stat_cold" and "stat_warm" in only)]
        start = time.monotonic()
        for w in names:
            log("%s (%d runs x %d targets)" % (w, runs, len(self.targets)))
            for run in range(runs):
                k = run % len(self.targets)
                for t in self.targets[k:] + self.targets[:k]:
                    over = self.args.deadline and time.monotonic() - start > self.args.deadline
                    err = t.error or ("skipped: over the %d s time budget" % self.args.deadline
                                      if over else None)
                    if err:
                        self.record(target=t.name, workload=w, run=run, error=err)
                        if w == "stat_cold":
                            self.record(target=t.name, workload="stat_warm", run=run, error=err)
                        continue
                    self.one(t, w, run, unit)

    def one(self, t, w, run, unit):
        def sample():
            self.pending_warm = None
            v, extra = getattr(self, "w_" + w)(t, run)
            return [v, extra, self.pending_warm]

        try:
            v, extra, warm = isolated(sample, self.args.op_timeout)
            self.record(target=t.name, workload=w, run=run, value=v, unit=unit[w], extra=extra)
            if warm:
                self.record(target=t.name, workload="stat_warm", run=run, value=warm[0],
                            unit=unit["stat_warm"], extra=warm[1])
            return
        except (Failed, TimedOut) as e:
            msg = str(e)
            log("%s %s run %d: %s" % (t.name, w, run, msg))
            self.record(target=t.name, workload=w, run=run, error=msg)
            if w == "stat_cold":
                self.record(target=t.name, workload="stat_warm", run=run, error=msg)
            hung = isinstance(e, TimedOut)
        if hung:
            # Not again: each further sample would cost the whole timeout.
            t.error = "out after %s run %d hung (%s)" % (w, run, msg)
            log("%s: %s" % (t.name, t.error))
            subprocess.run(["umount", "-l", t.root], capture_output=True, timeout=60)
            self.after_hang(t)
            return
        # A failed sample may have left the mount broken: one remount; if that
        # fails too, the target is out for the rest of the run.
        try:
            isolated(t.remount, self.args.op_timeout)
        except (Failed, TimedOut) as e2:
            t.error = "after %s failed, remount failed: %s" % (w, e2)
            log("%s: %s" % (t.name, t.error))

    def after_hang(self, t):
        """Runs --on-hang with the hung target's name: a hung client may have
        wedged its server (seen with the RDMA diod, whose listener then stops
        accepting), which would take every other client of it down too."""
        if not self.args.on_hang:
            return
        log("%s hung: running the --on-hang command" % t.name)
        try:
            with open(os.devnull, "rb") as null, open(self.args.out + ".on-hang.log", "ab") as out:
                # Its own session and no pipes: a server it starts outlives it.
                r = subprocess.run(["bash", "-c", self.args.on_hang, "on-hang", t.name],
                                   stdin=null, stdout=out, stderr=out, timeout=120,
                                   start_new_session=True)
            log("--on-hang exited with %d" % r.returncode)
        except subprocess.TimeoutExpired:
            log("--on-hang did not finish within 120 s")

    def close(self):
        for t in self.targets:
            t.umount()


def measure(args):
    profile = PROFILES[args.profile]
    with open(args.targets) as f:
        specs = json.load(f)
    targets = [Target(s, args.data) for s in specs]
    # SIGTERM (tests/bench/run's clean-up, timeout): unwind, unmounting all.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    src = os.path.join(args.export, args.data, "git")
    owner = os.stat(src)
    for t in targets:
        dst = os.path.join(args.export, args.data, "git-" + t.name)
        rmtree(dst)
        shutil.copytree(src, dst, symlinks=True)
        for d, dirs, files in os.walk(dst):
            for n in [d] + [os.path.join(d, f) for f in dirs + files]:
                os.lchown(n, owner.st_uid, owner.st_gid)
    b = Bench(args, profile, targets)
    try:
        b.run(set(args.only.split(",")) if args.only else None)
    finally:
        b.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--profile", choices=PROFILES, required=True)
    p.add_argument("--dest", required=True)
    p.add_argument("--tarball", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--profile", choices=PROFILES, required=True)
    m.add_argument("--targets", required=True)
    m.add_argument("--data", default="data", help="the data set's directory relative to each root")
    m.add_argument("--export", required=True, help="the exported directory itself")
    m.add_argument("--tarball", required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--runs", type=int, default=0)
    m.add_argument("--only", default="", help="comma-separated workloads")
    m.add_argument("--op-timeout", type=int, default=300, help="seconds per sample")
    m.add_argument("--on-hang", help="bash command run (with the target's name as $1) after a "
                   "target hung, e.g. to restart a server it may have wedged")
    m.add_argument("--deadline", type=int, default=0,
                   help="seconds; samples not started by then are recorded as skipped")
    a = ap.parse_args()
    if a.cmd == "prepare":
        prepare(a)
    else:
        measure(a)


if __name__ == "__main__":
    main()
