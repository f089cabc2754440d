"""Shared test harness: diod on 127.0.0.1 with a fresh export, mounted with
the built mount.9prdma at a temporary mountpoint, always cleaned up.

Standard library only; run with Debian's /usr/bin/python3. Needs root (diod
and the FUSE mount). Environment:
  MOUNT_9PRDMA  path of the built helper (default: build/bin/mount.9prdma)
  DIOD          diod binary (default: diod on PATH, else /usr/sbin/diod)
  P9_TEST_TMP   where exports and mountpoints are made (default: /tmp)
  P9_TEST_TRANSPORT  tcp (default): mount diod over TCP on loopback;
                relay: diod over TCP behind build/bin/9prdma-relay, mounted
                with trans=rdma at P9_RDMA_IP (Soft-RoCE guest);
                rdma-diod: the RDMA-enabled diod ($VM_DIOD_RDMA, all users
                squashed to nobody, RDMA port 5640) mounted with trans=rdma
"""

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
SKIP = 77  # ctest SKIP_RETURN_CODE

_cleanups = []


def _run_cleanups():
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception as e:  # cleanup must go on
            print(f"p9harness: cleanup failed: {e}", file=sys.stderr)


def _on_signal(signum, frame):
    _run_cleanups()
    sys.exit(128 + signum)


atexit.register(_run_cleanups)
for _s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(_s, _on_signal)


def mount_binary():
    b = os.environ.get("MOUNT_9PRDMA") or os.path.join(REPO, "build", "bin", "mount.9prdma")
    b = os.path.abspath(b)
    if not os.access(b, os.X_OK):
        sys.exit(f"p9harness: mount.9prdma not found at {b} (set MOUNT_9PRDMA)")
    return b


def diod_binary():
    return os.environ.get("DIOD") or shutil.which("diod") or "/usr/sbin/diod"


def require_root():
    if os.geteuid() != 0:
        print("p9harness: needs root (diod + FUSE mount); skipping", file=sys.stderr)
        sys.exit(SKIP)
    if not os.path.exists("/dev/fuse"):
        print("p9harness: no /dev/fuse; skipping", file=sys.stderr)
        sys.exit(SKIP)


TRANSPORT = os.environ.get("P9_TEST_TRANSPORT", "tcp")
RDMA_IP = os.environ.get("P9_RDMA_IP", "")
RDMA_DIOD_PORT = 5640


def rdma_listening(port):
    r = subprocess.run(["rdma", "res", "show", "cm_id"], capture_output=True, text=True)
    return any("LISTEN" in line and f":{port} " in line + " " for line in r.stdout.splitlines())


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tmp_base():
    base = os.environ.get("P9_TEST_TMP", "/tmp")
    os.makedirs(base, exist_ok=True)
    return base


def make_tmpdir(prefix):
    d = tempfile.mkdtemp(prefix=prefix, dir=tmp_base())
    os.chmod(d, 0o755)  # other users (setpriv tests) must traverse it

    def remove():
        if not is_mounted(d):  # never recurse into a mount left behind
            shutil.rmtree(d, ignore_errors=True)

    _cleanups.append(remove)
    return d


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 1 and fields[1].replace("\\040", " ") == path:
                return True
    return False


def mount_entry(path):
    path = os.path.realpath(path)
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 1 and fields[1] == path:
                return fields
    return None


def daemon_pids(mountpoint):
    """Live (non-zombie) mount.9prdma processes serving `mountpoint`."""
    mountpoint = os.path.realpath(mountpoint)
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z" or not argv or not argv[0].endswith(b"mount.9prdma"):
            continue
        if mountpoint.encode() in argv:
            out.append(int(pid))
    return out


def wait_for(pred, timeout, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


class Diod:
    """diod serving one fresh export on 127.0.0.1:<free port>; with
    P9_TEST_TRANSPORT=relay also a 9prdma-relay in front of it, with
    rdma-diod the RDMA-enabled diod instead (see the module docstring)."""

    def __init__(self, export=None, debug=False, auth=False):
        self.export = export or make_tmpdir("p9exp-")
        self.port = free_port()
        self.log = os.path.join(tmp_base(), f"diod-{self.port}.log")
        self.relay = None
        binary, extra = diod_binary(), []
        if TRANSPORT == "rdma-diod":
            # Its RDMA listener must be made after its credential changes,
            # so it runs all-squashed: the export belongs to nobody.
            binary, extra = os.environ["VM_DIOD_RDMA"], ["-S"]
            os.chown(self.export, 65534, 65534)
        # auth: diod's default, a MUNGE credential before every attach;
        # otherwise -n (none).
        cmd = [binary, "-f"] + ([] if auth else ["-n"]) + [
            "-c", "/dev/null", "-e", self.export,
            "-l", f"127.0.0.1:{self.port}", "-L", self.log] + extra
        if debug:
            cmd += ["-d", "1"]
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
        _cleanups.append(self.stop)
        if not wait_for(self._listening, 10):
            raise RuntimeError(f"diod did not start: {self.read_log()}")
        self.trans, self.host, self.mount_port = "tcp", "127.0.0.1", self.port
        if TRANSPORT == "rdma-diod":
            if not wait_for(lambda: rdma_listening(RDMA_DIOD_PORT), 20):
                raise RuntimeError("the RDMA diod does not listen on rdma port 5640")
            self.trans, self.host, self.mount_port = "rdma", RDMA_IP, RDMA_DIOD_PORT
        elif TRANSPORT == "relay":
            rport = free_port()
            relay = os.path.join(REPO, "build", "bin", "9prdma-relay")
            self.relay = subprocess.Popen(
                [relay, "--listen", f"{RDMA_IP}:{rport}", "--to", f"127.0.0.1:{self.port}"],
                stdin=subprocess.DEVNULL)
            if not wait_for(lambda: rdma_listening(rport), 20):
                raise RuntimeError("9prdma-relay did not start listening")
            self.trans, self.host, self.mount_port = "rdma", RDMA_IP, rport

    def kill(self, sig=signal.SIGKILL):
        """The server dies (a crash with SIGKILL); every connection drops."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait()

    def start_again(self):
        """A new server process on the same port and export."""
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL)
        if not wait_for(self._listening, 10):
            raise RuntimeError(f"diod did not restart: {self.read_log()}")

    def restart(self, down=0.5, sig=signal.SIGKILL):
        """Kill the server, leave it down for `down` seconds, start it again."""
        self.kill(sig)
        time.sleep(down)
        self.start_again()

    def _listening(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"diod exited with {self.proc.returncode}: {self.read_log()}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def read_log(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    @property
    def source(self):
        return f"{self.host}:{self.export}"

    def stop(self):
        if self.relay is not None and self.relay.poll() is None:
            self.relay.terminate()
            try:
                self.relay.wait(5)
            except subprocess.TimeoutExpired:
                self.relay.kill()
                self.relay.wait()
        if self.proc.poll() is None and TRANSPORT == "rdma-diod":
            self.proc.kill()  # it ignores TERM while waiting for RDMA connections
            self.proc.wait()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with contextlib.suppress(OSError):
            os.unlink(self.log)


def unmount(mountpoint, timeout=10):
    """umount, then lazy umount if busy; waits for the daemon to go."""
    if is_mounted(mountpoint):
        r = subprocess.run(["umount", mountpoint], capture_output=True, text=True)
        if r.returncode != 0 and is_mounted(mountpoint):
            subprocess.run(["fusermount3", "-u", "-z", mountpoint], capture_output=True)
            if is_mounted(mountpoint):
                subprocess.run(["umount", "-l", mountpoint], capture_output=True)
    gone = wait_for(lambda: not daemon_pids(mountpoint), timeout)
    if not gone:
        for pid in daemon_pids(mountpoint):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    return gone


class Mount:
    """A mount.9prdma mount of `server` with -o `opts` (trans=tcp,port= added)."""

    def __init__(self, server, opts="", mountpoint=None):
        self.server = server
        self.mountpoint = mountpoint or make_tmpdir("p9mnt-")
        full = f"trans={server.trans},port={server.mount_port}" + (f",{opts}" if opts else "")
        self.opts = full
        cmd = [mount_binary(), "-o", full, server.source, self.mountpoint]
        _cleanups.append(self.unmount)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"mount failed ({r.returncode}): {r.stderr.strip()}")
        if not is_mounted(self.mountpoint):
            raise RuntimeError("mount.9prdma exited 0 but nothing is mounted")

    def path(self, *parts):
        return os.path.join(self.mountpoint, *parts)

    def export(self, *parts):
        return os.path.join(self.server.export, *parts)

    def unmount(self):
        return unmount(self.mountpoint)


def setup(opts="", debug=False):
    """Starts diod and mounts its export; both are undone at exit."""
    require_root()
    server = Diod(debug=debug)
    return server, Mount(server, opts)


def tool(name, package):
    path = shutil.which(name)
    if path is None:
        print(f"p9harness: {name} not installed (Debian package {package}); skipping",
              file=sys.stderr)
        sys.exit(SKIP)
    return path


class TimedResult(unittest.TextTestResult):
    """A unittest result that records how long each test took (in
    TimedResult.durations), to say which ones are slow."""

    durations = []  # (seconds, test name)

    def startTest(self, test):
        self._started = time.monotonic()
        super().startTest(test)

    def stopTest(self, test):
        super().stopTest(test)
        TimedResult.durations.append((time.monotonic() - self._started,
                                      test.id().rsplit(".", 1)[-1]))


def slowest(n=5):
    """"name 1.2s, ..." of the n slowest tests a TimedResult recorded."""
    return ", ".join(f"{name} {d:.1f}s" for d, name in sorted(TimedResult.durations)[::-1][:n])
