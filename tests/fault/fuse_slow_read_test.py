#!/usr/bin/python3
"""A read the server is slow to answer, through the FUSE mount: p9_fault_proxy
(`slowread`) holds every Rread for minutes while other replies pass.

- Ctrl-C: a process blocked in read() gets SIGINT and is gone promptly (FUSE
  INTERRUPT → Tflush → EINTR), python with KeyboardInterrupt and cat killed
  by the signal; the daemon counts the interrupts and flushes, and the mount
  keeps working (stat, and reads once the proxy stops holding them).
- timeout=: a read held past the mount's timeout fails with ETIMEDOUT or
  EIO instead of hanging, other operations go on meanwhile, and the mount is
  usable afterwards.

usage: fuse_slow_read_test.py   (root; P9_FAULT_PROXY names the proxy binary)
"""

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration", "fuse"))
import p9harness  # noqa: E402
import p9sanitizer  # noqa: E402
from p9stats import read_stats  # noqa: E402

HOLD_MS = 600_000  # "forever" for the test; healing the proxy ends it
# Generous: the kernel, the daemon and the proxy answer in milliseconds, but
# the machine may be loaded (or the daemon built with a sanitizer).
PROMPT_S = 3.0

READER = textwrap.dedent("""
    import sys
    f = open(sys.argv[1], "rb")
    print("reading", flush=True)
    try:
        f.read()
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(42)
    print("read returned", flush=True)
""")


class FaultProxy:
    """p9_fault_proxy in front of `server`; stands in for it in
    p9harness.Mount (trans, mount_port, source, export)."""

    def __init__(self, server, fault, delay_ms):
        binary = os.environ.get("P9_FAULT_PROXY") or os.path.join(
            p9harness.REPO, "build", "bin", "p9_fault_proxy")
        port_file = os.path.join(p9harness.make_tmpdir("p9proxy-"), "port")
        self.proc = subprocess.Popen(
            [binary, "--listen", "127.0.0.1:0", "--to", f"127.0.0.1:{server.port}",
             "--fault", fault, "--delay-ms", str(delay_ms), "--port-file", port_file],
            stdin=subprocess.DEVNULL)
        p9harness._cleanups.append(self.stop)
        if not p9harness.wait_for(lambda: os.path.exists(port_file), 10):
            raise RuntimeError("p9_fault_proxy did not start")
        with open(port_file) as f:
            self.mount_port = int(f.read())
        self.trans, self.source, self.export = "tcp", server.source, server.export

    def heal(self):
        self.proc.send_signal(signal.SIGUSR1)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def wait_stats(mount, pred, what, timeout=10):
    """Waits (the file is rewritten every second) until pred(counters)."""
    seen = {}

    def check():
        nonlocal seen
        seen = read_stats(mount.mountpoint) or {}
        return bool(seen) and pred(seen)

    if not p9harness.wait_for(check, timeout, step=0.1):
        raise AssertionError(f"stats never showed {what}: {seen}")
    return seen


# x86-64 and arm64 numbers of the calls a reader may block in.
READ_SYSCALLS = {"x86_64": {0, 17, 19, 295, 326}, "aarch64": {63, 65, 67, 69, 285}}


def in_read(pid, mountpoint):
    """Whether `pid` sleeps in a read-like system call on a file under
    `mountpoint` (/proc/PID/syscall: number, then arguments; the first is
    the descriptor read from)."""
    try:
        with open(f"/proc/{pid}/syscall") as f:
            fields = f.read().split()
        nr, fd = int(fields[0]), int(fields[1], 16)
        path = os.readlink(f"/proc/{pid}/fd/{fd}")
    except (OSError, IndexError, ValueError):  # running: "running", no number
        return False
    return (nr in READ_SYSCALLS.get(os.uname().machine, {0}) and
            path.startswith(os.path.realpath(mountpoint) + "/"))


def interrupt_blocked(mount, argv, expect_rc, expect_out):
    """Starts argv (a reader of a held file), waits until its read is out
    at the server, sends SIGINT, and checks it ends promptly as expected."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # The Tread is sent and its Rread held: the process sits in read().
        if not p9harness.wait_for(lambda: in_read(p.pid, mount.mountpoint), 10):
            raise AssertionError(f"{argv[0]} never blocked in read()")
        wait_stats(mount, lambda s: s["in_flight"] >= 1, "the read in flight")
        time.sleep(0.3)
        assert in_read(p.pid, mount.mountpoint), f"{argv[0]} left read() by itself"
        assert p.poll() is None, f"{argv[0]} finished a read that should block: {p.communicate()}"
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        try:
            out, err = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{argv[0]} still blocked 60 s after SIGINT")
        took = time.monotonic() - t0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == expect_rc, (argv[0], p.returncode, out, err)
    assert expect_out in out, (argv[0], out, err)
    assert took < PROMPT_S, f"{argv[0]} took {took:.2f} s to go after SIGINT"
    print(f"  {os.path.basename(argv[0])}: gone {took * 1000:.0f} ms after SIGINT")


def check_usable(mount, contents):
    for name, data in contents.items():
        assert os.stat(mount.path(name)).st_size == len(data), name
        with open(mount.path(name), "rb") as f:
            assert f.read() == data, name


def test_sigint(server, contents):
    proxy = FaultProxy(server, "slowread", HOLD_MS)
    mount = p9harness.Mount(proxy)
    wait_stats(mount, lambda s: s["alive"] >= 1, "the session")
    interrupt_blocked(mount, [sys.executable, "-c", READER, mount.path("held")], 42,
                      "interrupted")
    interrupt_blocked(mount, ["cat", mount.path("held")], -signal.SIGINT, "")
    # Both reads were abandoned with a flush, not a timeout, and the daemon
    # holds nothing for them any more.
    s = wait_stats(mount, lambda s: s["interrupts"] >= 2 and s["flushes"] >= 2 and
                   s["in_flight"] == 0, "two interrupts, two flushes, nothing in flight")
    assert s["timeouts"] == 0 and s["alive"] == 1, s
    # Still faulted, anything but a read works.
    assert os.stat(mount.path("other")).st_size == len(contents["other"])
    assert sorted(os.listdir(mount.mountpoint)) == sorted(contents)
    proxy.heal()
    check_usable(mount, contents)
    assert mount.unmount()
    proxy.stop()


def test_timeout(server, contents):
    proxy = FaultProxy(server, "slowread", HOLD_MS)
    mount = p9harness.Mount(proxy, "timeout=3")
    t0 = time.monotonic()
    failure = None
    try:
        with open(mount.path("held"), "rb") as f:
            f.read()
    except OSError as e:
        failure = e.errno
    took = time.monotonic() - t0
    assert failure in (errno.ETIMEDOUT, errno.EIO), \
        f"a read held for minutes ended with {failure} (None: data) under timeout=3"
    # timeout=3 plus the flush (answered at once here): never a hang.
    assert took < 30, f"the held read failed only after {took:.1f} s"
    print(f"  read failed with {errno.errorcode[failure]} after {took:.1f} s")
    s = wait_stats(mount, lambda s: s["timeouts"] >= 1 and s["flushes"] >= 1 and
                   s["in_flight"] == 0, "the timeout and its flush")
    assert s["alive"] == 1, s
    assert os.stat(mount.path("other")).st_size == len(contents["other"])
    proxy.heal()
    check_usable(mount, contents)
    assert mount.unmount()
    proxy.stop()


def main():
    p9harness.require_root()
    p9sanitizer.capture()
    server = p9harness.Diod()
    contents = {"held": os.urandom(5000), "other": b"still readable\n"}
    for name, data in contents.items():
        with open(os.path.join(server.export, name), "wb") as f:
            f.write(data)
    for test in (test_sigint, test_timeout):
        print(test.__name__, flush=True)
        test(server, contents)
    p9sanitizer.check()
    print("ok")


if __name__ == "__main__":
    main()
