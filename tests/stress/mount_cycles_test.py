#!/usr/bin/python3
"""Mount and unmount one diod export 1,000 times (P9_MOUNT_CYCLES), with a
stat, a read and a listing each time, and check from /proc that nothing
leaks: every daemon exits and removes its stats file, nothing stays in
/proc/mounts, and diod's descriptors and threads (it keeps a connection,
its fids and threads per client) come back to where they were. A client
that forgot to close its connection, or to clunk on the way out, shows
there.

usage: mount_cycles_test.py   (root; MOUNT_9PRDMA names the helper)
"""

import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration", "fuse"))
import p9harness  # noqa: E402
import p9sanitizer  # noqa: E402
from p9stats import stats_path  # noqa: E402

CYCLES = int(os.environ.get("P9_MOUNT_CYCLES", "1000"))
REPORT_EVERY = max(1, CYCLES // 10)


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def thread_count(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError(f"no Threads: in /proc/{pid}/status")


def gone(pid):
    """The process has exited (a zombie waiting for init counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def lowest(count, looks=5):
    """The lowest of a few looks at a count that is still going down."""
    low = count()
    for _ in range(looks):
        time.sleep(0.1)
        low = min(low, count())
    return low


def cycle(server, mountpoint, probe):
    # The invocation p9harness.Mount uses, without its per-mount cleanup
    # entry (a thousand of those would each scan /proc at exit).
    cmd = [p9harness.mount_binary(), "-o", f"trans=tcp,port={server.port}", server.source,
           mountpoint]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"mount failed ({r.returncode}): {r.stderr.strip()}"
    daemons = p9harness.daemon_pids(mountpoint)
    assert len(daemons) == 1, f"daemons serving the mount: {daemons}"
    assert os.stat(os.path.join(mountpoint, "probe")).st_size == len(probe)
    with open(os.path.join(mountpoint, "probe"), "rb") as f:
        assert f.read() == probe
    assert os.listdir(mountpoint) == ["probe"]
    r = subprocess.run(["umount", mountpoint], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"umount failed: {r.stderr.strip()}"
    assert p9harness.wait_for(lambda: gone(daemons[0]), 30, step=0.005), \
        f"mount.9prdma {daemons[0]} still running after umount"
    assert not p9harness.is_mounted(mountpoint), "still in /proc/mounts after umount"
    assert not os.path.exists(stats_path(mountpoint)), "the stats file outlived its daemon"


def settled(pid, fds, threads):
    return fd_count(pid) <= fds and thread_count(pid) <= threads


def main():
    p9harness.require_root()
    p9sanitizer.capture()
    server = p9harness.Diod()
    probe = b"mount cycle probe\n"
    with open(os.path.join(server.export, "probe"), "wb") as f:
        f.write(probe)
    mountpoint = p9harness.make_tmpdir("p9mnt-")
    p9harness._cleanups.append(lambda: p9harness.unmount(mountpoint))
    # Descriptors: diod with no client yet. Threads: diod starts its worker
    # pool with the first client and keeps it, so they are counted after one
    # cycle, once that client's connection is gone (the lowest of a few
    # looks: a connection's own thread goes a little after its socket).
    diod = server.proc.pid
    base_fds = lowest(lambda: fd_count(diod))  # the harness's probe may be open yet
    cycle(server, mountpoint, probe)
    assert p9harness.wait_for(lambda: fd_count(diod) <= base_fds, 30), "diod kept a connection"
    base_threads = lowest(lambda: thread_count(diod))
    print(f"diod {diod}: {base_fds} fds, {base_threads} threads before; {CYCLES} cycles",
          flush=True)
    t0 = time.monotonic()
    for i in range(1, CYCLES + 1):
        cycle(server, mountpoint, probe)
        if i % REPORT_EVERY == 0:
            print(f"  {i} cycles, {time.monotonic() - t0:.1f} s: diod {fd_count(diod)} fds,"
                  f" {thread_count(diod)} threads", flush=True)
    took = time.monotonic() - t0
    print(f"{CYCLES} cycles in {took:.1f} s ({took / CYCLES * 1000:.0f} ms each)")
    # diod tears a connection down on its own threads, a little after the
    # client has gone.
    if not p9harness.wait_for(lambda: settled(diod, base_fds, base_threads), 30, step=0.1):
        raise AssertionError(
            f"diod leaked: {fd_count(diod)} fds (was {base_fds}),"
            f" {thread_count(diod)} threads (was {base_threads}):"
            f" {sorted(os.readlink(f'/proc/{diod}/fd/{n}') for n in os.listdir(f'/proc/{diod}/fd'))}")
    assert not p9harness.daemon_pids(mountpoint)
    assert p9harness.mount_entry(mountpoint) is None
    p9sanitizer.check()
    print("ok")


if __name__ == "__main__":
    main()
