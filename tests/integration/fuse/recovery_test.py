#!/usr/bin/python3
"""Server restarts under a mounted 9prdma (recover=on, the default): diod is
killed (SIGKILL, a crash) and started again on the same port and export
while files are open and jobs run. Jobs finish with correct data or fail
with an error, never hang (every job is bounded by `timeout`), and the mount
works afterwards.

usage: recovery_test.py [--opts MOUNT_OPTIONS] [unittest args...]
"""

import errno
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import p9harness  # noqa: E402

OPTS = ""
# Per-request deadline of the main mount: long enough for a restart, short
# enough that a test of "the server stays away" ends soon.
TIMEOUT = 20


def stats_of(mountpoint):
    """key=value counters of every queue line of the mount's stats file."""
    path = "/run/9prdma/" + os.path.realpath(mountpoint).replace("/", "-") + ".stats"
    # The file is rewritten once a second.
    time.sleep(1.2)
    out = []
    with open(path) as f:
        for line in f:
            if line.startswith("queue "):
                out.append(dict(kv.split("=", 1) for kv in line.split() if "=" in kv))
    return out


def total(mountpoint, key):
    return sum(int(q.get(key, 0)) for q in stats_of(mountpoint))


def tree_digest(root):
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(root)):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        h.update(f"D {rel}\n".encode())
        for name in sorted(filenames):
            p = os.path.join(dirpath, name)
            h.update(f"F {os.path.join(rel, name)} {os.lstat(p).st_mode:o}\n".encode())
            if os.path.islink(p):
                h.update(os.readlink(p).encode())
            else:
                with open(p, "rb") as f:
                    h.update(f.read())
    return h.hexdigest()


class Restarts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        p9harness.require_root()
        cls.server = p9harness.Diod()
        opts = f"timeout={TIMEOUT}" + (f",{OPTS}" if OPTS else "")
        cls.mnt = p9harness.Mount(cls.server, opts)

    def setUp(self):
        # Every test starts with the server up and the mount answering.
        if self.server.proc.poll() is not None:
            self.server.start_again()
        self.assertTrue(os.path.isdir(self.mnt.mountpoint))

    def run_across_restarts(self, cmd, times, every):
        """Runs cmd, restarting the server every `every` s while it runs (at
        most `times` times); returns (finished process, output, restarts)."""
        job = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        restarts = 0
        while job.poll() is None and restarts < times:
            time.sleep(every)
            if job.poll() is None:
                self.server.restart(down=0.3)
                restarts += 1
        out, _ = job.communicate()
        return job, out, restarts

    def test_open_files_survive_a_restart(self):
        data = os.urandom(3 << 20)
        with open(self.mnt.export("src"), "wb") as f:
            f.write(data)
        before = total(self.mnt.mountpoint, "reconnects")
        rd = open(self.mnt.path("src"), "rb", buffering=0)
        wr = open(self.mnt.path("dst"), "wb", buffering=0)
        half = len(data) // 2
        self.assertEqual(rd.read(half), data[:half])
        wr.write(data[:half])
        os.fsync(wr.fileno())
        self.server.restart()
        # The same descriptors go on where they were: reopened on the new
        # connection, by path, without truncating what was written.
        rest = b""
        while len(rest) < len(data) - half:
            chunk = rd.read(len(data) - half - len(rest))
            if not chunk:
                break
            rest += chunk
        self.assertEqual(rest, data[half:])
        wr.write(data[half:])
        os.fsync(wr.fileno())
        rd.close()
        wr.close()
        with open(self.mnt.export("dst"), "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).digest(), hashlib.sha256(data).digest())
        self.assertGreater(total(self.mnt.mountpoint, "reconnects"), before)

    def test_a_lock_lost_with_the_server_is_reported(self):
        path = self.mnt.path("locked")
        with open(path, "w") as f:
            f.write("x")
        locked = open(path, "r+")
        fcntl.flock(locked, fcntl.LOCK_EX)
        other = open(path, "r")
        self.server.restart()
        # The lock is gone on the server: the descriptor that held it must
        # not carry on as if protected.
        with self.assertRaises(OSError) as cm:
            os.pread(locked.fileno(), 1, 0)
        self.assertEqual(cm.exception.errno, errno.EIO)
        # A descriptor without a lock is simply reopened.
        self.assertEqual(os.pread(other.fileno(), 1, 0), b"x")
        locked.close()
        other.close()
        with open(path) as f:
            self.assertEqual(f.read(), "x")

    def test_fio_verify_across_restarts(self):
        p9harness.tool("fio", "fio")
        d = self.mnt.path("fio")
        os.mkdir(d)
        # Writing is paced (32 MiB/s for 4 s) so the restarts land in it;
        # verification then reads everything back.
        cmd = ["timeout", "300", "fio", "--directory", d, "--name=verify", "--ioengine=psync",
               "--rw=write", "--bs=64k", "--size=128m", "--rate=32m", "--verify=crc32c",
               "--do_verify=1", "--verify_fatal=1", "--output-format=terse"]
        job, out, restarts = self.run_across_restarts(cmd, times=3, every=0.8)
        self.assertNotEqual(job.returncode, 124, f"fio hung across restarts:\n{out}")
        print(f"    fio across {restarts} restarts: exit {job.returncode}", file=sys.stderr)
        # Positional writes and reads are re-sent after a reconnect, so the
        # job is expected to finish, with its data verified by fio itself.
        self.assertEqual(job.returncode, 0, out)
        fields = out.strip().splitlines()[-1].split(";")
        self.assertEqual(fields[4], "0", out)
        self.assertGreaterEqual(restarts, 1)

    def test_a_small_read_in_flight_is_repeated_on_the_new_connection(self):
        # A read of one Tread is answered on the delivery thread, with no
        # worker waiting for it; when its connection dies, it must still be
        # repeated on the next one, like any other read.
        data = os.urandom(4096)
        with open(self.mnt.export("inflight"), "wb") as f:
            f.write(data)
        fd = os.open(self.mnt.path("inflight"), os.O_RDONLY)
        before = total(self.mnt.mountpoint, "reconnects")
        got = {}
        self.server.proc.send_signal(signal.SIGSTOP)  # the Tread will sit unanswered
        reader = threading.Thread(target=lambda: got.update(data=os.pread(fd, 4096, 0)))
        reader.start()
        time.sleep(1)
        self.assertTrue(reader.is_alive(), "the read was answered by a stopped server")
        self.server.proc.kill()  # dies stopped, with the read in flight
        self.server.proc.wait()
        self.server.start_again()
        reader.join(TIMEOUT + 10)
        self.assertFalse(reader.is_alive(), "the read hung after the server came back")
        self.assertEqual(got.get("data"), data)
        os.close(fd)
        self.assertGreater(total(self.mnt.mountpoint, "reconnects"), before)

    def test_a_small_read_from_a_stalled_server_is_interruptible(self):
        # A stopped server answers neither the read nor its Tflush: after
        # the flush timeout (10 s) the connection is dropped and the read
        # ends with EINTR, as interrupted, not EIO and not a hang. Once the
        # server runs again the mount reconnects and the same descriptor
        # reads.
        with open(self.mnt.export("stalled"), "wb") as f:
            f.write(b"s" * 4096)
        fd = os.open(self.mnt.path("stalled"), os.O_RDONLY)
        child = textwrap.dedent("""
            import os, signal, sys, time
            class Alarm(Exception):
                pass
            def on_alarm(*args):
                raise Alarm()  # else Python retries the read (PEP 475)
            signal.signal(signal.SIGALRM, on_alarm)
            signal.alarm(1)
            t = time.monotonic()
            try:
                os.pread(int(sys.argv[1]), 4096, 0)
                print("read")
            except Alarm:
                print("EINTR", "%.1f" % (time.monotonic() - t))
        """)
        self.server.proc.send_signal(signal.SIGSTOP)
        try:
            r = subprocess.run([sys.executable, "-c", child, str(fd)], pass_fds=[fd],
                               capture_output=True, text=True, timeout=TIMEOUT + 30)
        finally:
            self.server.proc.send_signal(signal.SIGCONT)
        out = r.stdout.split()
        self.assertEqual(out[:1], ["EINTR"], r.stdout + r.stderr)
        self.assertLess(float(out[1]), 16)
        # The flushed read left nothing behind: the same descriptor reads.
        self.assertEqual(os.pread(fd, 4, 0), b"ssss")
        os.close(fd)

    def test_tar_extract_across_restarts(self):
        src = p9harness.make_tmpdir("p9tar-src-")
        # A tree of a few thousand small files: most of a tar x is
        # namespace operations, which are not re-sent blindly.
        for i in range(40):
            sub = os.path.join(src, f"dir{i:02d}")
            os.makedirs(os.path.join(sub, "deeper"))
            for j in range(40):
                with open(os.path.join(sub, f"f{j}.txt"), "wb") as f:
                    f.write(os.urandom(100 + 37 * j))
            os.symlink("f0.txt", os.path.join(sub, "link"))
            with open(os.path.join(sub, "deeper", "big"), "wb") as f:
                f.write(os.urandom(300_000))
        ball = os.path.join(p9harness.make_tmpdir("p9tar-ball-"), "t.tar")
        with tarfile.open(ball, "w") as t:
            t.add(src, arcname="tree")
        dest = self.mnt.path("untar")
        os.mkdir(dest)
        job, out, restarts = self.run_across_restarts(
            ["timeout", "300", "tar", "-xf", ball, "-C", dest], times=2, every=0.7)
        self.assertNotEqual(job.returncode, 124, f"tar hung across restarts:\n{out}")
        print(f"    tar x across {restarts} restarts: exit {job.returncode}"
              f"{' (' + out.splitlines()[0] + ')' if out else ''}", file=sys.stderr)
        if job.returncode == 0:
            self.assertEqual(tree_digest(os.path.join(dest, "tree")), tree_digest(src))
        # Either way the mount recovered: extracting again over what is
        # there now gives exactly the source tree.
        shutil.rmtree(dest)
        os.mkdir(dest)
        r = subprocess.run(["timeout", "300", "tar", "-xf", ball, "-C", dest],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(tree_digest(os.path.join(dest, "tree")), tree_digest(src))
        self.assertEqual(tree_digest(self.mnt.export("untar", "tree")), tree_digest(src))

    def test_calls_wait_for_an_absent_server_then_fail(self):
        with open(self.mnt.path("waiting"), "w") as f:
            f.write("w")
        self.server.kill()
        start = time.monotonic()
        with self.assertRaises(OSError) as cm:
            os.stat(self.mnt.path("waiting"))
        took = time.monotonic() - start
        self.assertIn(cm.exception.errno, (errno.ETIMEDOUT, errno.EIO))
        # It waited for the server (timeout=) rather than failing at once,
        # and did not hang.
        self.assertGreater(took, TIMEOUT / 2)
        self.assertLess(took, 3 * TIMEOUT)
        # A server that comes back meanwhile is used at once.
        result = {}

        def stat_later():
            try:
                result["st"] = os.stat(self.mnt.path("waiting"))
            except OSError as e:
                result["err"] = e

        t = threading.Thread(target=stat_later)
        t.start()
        time.sleep(1)
        self.server.start_again()
        t.join(60)
        self.assertFalse(t.is_alive())
        self.assertIn("st", result, result.get("err"))
        self.assertEqual(result["st"].st_size, 1)


class RecoverOff(unittest.TestCase):
    def test_without_recover_calls_fail_and_unmount_is_prompt(self):
        server = p9harness.Diod()
        mnt = p9harness.Mount(server, "recover=off,timeout=10")
        with open(mnt.path("f"), "w") as f:
            f.write("f")
        server.restart()
        start = time.monotonic()
        with self.assertRaises(OSError):
            os.stat(mnt.path("f"))
        self.assertLess(time.monotonic() - start, 5)
        self.assertTrue(mnt.unmount())


class UnmountWhileAway(unittest.TestCase):
    def test_unmount_with_the_server_gone_is_prompt(self):
        server = p9harness.Diod()
        mnt = p9harness.Mount(server, "timeout=60")
        os.mkdir(mnt.path("d"))
        keep = open(mnt.path("d", "file"), "w")
        keep.write("k")
        keep.close()
        server.kill()
        time.sleep(0.5)  # the daemon notices and starts redialing
        start = time.monotonic()
        self.assertTrue(mnt.unmount())
        self.assertLess(time.monotonic() - start, 15)
        self.assertFalse(p9harness.daemon_pids(mnt.mountpoint))


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "--opts":
        OPTS = args[1]
        args = args[2:]
    unittest.main(argv=[sys.argv[0]] + args, verbosity=2)
