#!/usr/bin/python3
"""The mount command itself: failures are fast, one line, non-zero, and leave
nothing mounted and no daemon; mount(8) and fstab-style invocations work;
umount ends the daemon with every fid clunked and the connection closed."""

import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import p9harness  # noqa: E402
from p9harness import Diod, Mount, daemon_pids, is_mounted, make_tmpdir, mount_binary, wait_for  # noqa: E402,E501

SERVER = None  # a diod shared by the tests that need a live server


def run_mount(args, timeout=30):
    t = time.monotonic()
    r = subprocess.run([mount_binary()] + args, capture_output=True, text=True, timeout=timeout)
    return r, time.monotonic() - t


def established(port):
    out = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True).stdout
    return len([l for l in out.splitlines() if l.strip()])


class Failures(unittest.TestCase):
    """Each bad mount fails fast, with one line naming the problem."""

    def check_fails(self, args, pattern, code=32):
        mnt = make_tmpdir("p9mnt-") if "MNT" in args else None
        args = [mnt if a == "MNT" else a for a in args]
        r, took = run_mount(args)
        self.assertEqual(r.returncode, code, r.stderr)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertTrue(lines[0].startswith("mount.9prdma: "), lines[0])
        self.assertRegex(lines[0], pattern)
        self.assertLess(took, 5.0)
        if mnt:
            self.assertFalse(is_mounted(mnt))
            # Nothing lingers: the forked child reported and exited.
            self.assertTrue(wait_for(lambda: not daemon_pids(mnt), 2), daemon_pids(mnt))
        self.assertEqual(r.stdout, "")
        return lines[0]

    def test_bad_host(self):
        self.check_fails(["-o", "trans=tcp", "no-such-host.invalid:/x", "MNT"],
                         r"no-such-host\.invalid")

    def test_closed_port(self):
        port = p9harness.free_port()
        self.check_fails(["-o", f"trans=tcp,port={port}", "127.0.0.1:/x", "MNT"],
                         rf"127\.0\.0\.1.*{port}.*(refused|Connection)")

    def test_missing_export(self):
        self.check_fails(["-o", f"trans=tcp,port={SERVER.port}", "127.0.0.1:/no/such/export",
                          "MNT"], r"attach export \"/no/such/export\"")

    def test_bad_option(self):
        self.check_fails(["-o", f"trans=tcp,port={SERVER.port},bogus=1", SERVER.source, "MNT"],
                         r"unknown option \"bogus=1\"", code=1)
        self.check_fails(["-o", "cache=sometimes", SERVER.source, "MNT"], r"cache=sometimes",
                         code=1)
        self.check_fails(["-o", "trans=udp", SERVER.source, "MNT"], r"trans=udp", code=1)

    def test_missing_mountpoint(self):
        missing = os.path.join(make_tmpdir("p9mnt-"), "does-not-exist")
        line = self.check_fails(["-o", f"trans=tcp,port={SERVER.port}", SERVER.source, missing],
                                r"does-not-exist")
        self.assertIn("No such file or directory", line)

    def test_bad_source(self):
        self.check_fails(["-o", "trans=tcp", "no-colon-here", "MNT"], r"HOST:/EXPORT", code=1)

    def test_server_not_9p(self):
        # A listener that accepts and says nothing: the session times out.
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        try:
            port = s.getsockname()[1]
            self.check_fails(["-o", f"trans=tcp,port={port},timeout=1", "127.0.0.1:/x", "MNT"],
                             r"127\.0\.0\.1")
        finally:
            s.close()


class TcpProxy:
    """Forwards connections from [::1]:<port> to a 127.0.0.1 port (diod
    listens on IPv4 only), to mount through an IPv6 address."""

    def __init__(self, target_port):
        import socket
        import threading
        self.target = target_port
        self.sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        self.sock.bind(("::1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import socket
        import threading
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            u = socket.create_connection(("127.0.0.1", self.target))
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        import socket
        try:
            while True:
                data = a.recv(1 << 16)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.sock.close()


class Addresses(unittest.TestCase):
    def mount_and_check(self, source, port):
        mnt = make_tmpdir("p9mnt-")
        r, _ = run_mount(["-o", f"trans=tcp,port={port}", source, mnt])
        try:
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(os.path.join(mnt, "via"), "w") as f:
                f.write(source)
            with open(os.path.join(SERVER.export, "via")) as f:
                self.assertEqual(f.read(), source)
            self.assertEqual(p9harness.mount_entry(mnt)[0], source)
        finally:
            p9harness.unmount(mnt)

    def test_hostname(self):
        self.mount_and_check(f"localhost:{SERVER.export}", SERVER.port)

    def test_bracketed_ipv6(self):
        try:
            proxy = TcpProxy(SERVER.port)
        except OSError as e:
            self.skipTest(f"no IPv6 loopback: {e}")
        try:
            self.mount_and_check(f"[::1]:{SERVER.export}", proxy.port)
        finally:
            proxy.close()


class HelpAndVersion(unittest.TestCase):
    def test_help(self):
        r, _ = run_mount(["--help"])
        self.assertEqual(r.returncode, 0)
        for word in ("trans=rdma|tcp", "port=", "msize=", "queues=", "uname=", "access=",
                     "cache=", "timeout=", "debug", "allow_other", "_netdev"):
            self.assertIn(word, r.stdout)

    def test_version(self):
        r, _ = run_mount(["--version"])
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^mount\.9prdma \d+\.\d+\.\d+")


class Lifecycle(unittest.TestCase):
    def test_umount_clunks_every_fid_and_closes(self):
        server = Diod(debug=True)
        m = Mount(server, "cache=none")
        os.makedirs(m.path("a", "b"))
        for i in range(20):
            with open(m.path("a", "b", f"f{i}"), "w") as f:
                f.write("x" * i)
        os.listdir(m.path("a", "b"))
        fd = os.open(m.path("a", "b", "f3"), os.O_RDONLY)
        os.setxattr(m.path("a"), "user.t", b"1")
        os.getxattr(m.path("a"), "user.t")
        os.rename(m.path("a", "b", "f4"), m.path("a", "f4"))
        os.unlink(m.path("a", "b", "f5"))
        os.unlink(m.path("a", "b", "f3"))  # open: hidden until closed
        os.close(fd)
        self.assertEqual(established(server.port), 1)
        mnt = m.mountpoint
        self.assertTrue(m.unmount(), "daemon still running after umount")
        self.assertFalse(is_mounted(mnt))
        # Unmount sends no Tclunk per fid (one round trip each, serially, kept
        # the daemon alive for seconds with many inodes): closing the
        # connection makes the server release every fid on it.
        self.assertTrue(wait_for(lambda: established(server.port) == 0, 5))
        self.assertTrue(wait_for(lambda: "connection closed" in server.read_log(), 5),
                        server.read_log()[-2000:])
        self.assertEqual(sorted(os.listdir(os.path.join(server.export, "a", "b"))),
                         sorted(f"f{i}" for i in range(20) if i not in (3, 4, 5)))

    def test_fids_follow_kernel_lookup_count(self):
        server = Diod(debug=True)
        m = Mount(server, "cache=loose")
        os.mkdir(m.path("many"))
        for i in range(300):
            open(m.path("many", f"f{i}"), "w").close()
        for i in range(300):
            os.stat(m.path("many", f"f{i}"))
        held = len(live_fids(server.read_log()))
        self.assertGreater(held, 300)
        # Make the kernel forget its inodes: their fids must be clunked.
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("2\n")
        self.assertTrue(wait_for(lambda: len(live_fids(server.read_log())) < 20, 10),
                        len(live_fids(server.read_log())))
        # And everything still works afterwards.
        self.assertEqual(len(os.listdir(m.path("many"))), 300)
        os.stat(m.path("many", "f7"))
        self.assertTrue(m.unmount())
        self.assertTrue(wait_for(lambda: established(server.port) == 0, 5))

    def test_readdirplus_and_max_write(self):
        server = Diod()
        os.mkdir(os.path.join(server.export, "d"))
        for i in range(50):
            open(os.path.join(server.export, "d", f"f{i}"), "w").close()
        mnt = make_tmpdir("p9mnt-")
        # The trace goes to a file: a pipe nobody reads until the end would
        # fill and stall the daemon.
        log = open(os.path.join(make_tmpdir("p9log-"), "stderr"), "w+")
        p = subprocess.Popen([mount_binary(), "-f", "-o",
                              f"trans=tcp,port={server.port},debug,cache=loose",
                              server.source, mnt], stderr=log, text=True)
        try:
            self.assertTrue(wait_for(lambda: is_mounted(mnt), 10))
            names = subprocess.run(["ls", "-l", os.path.join(mnt, "d")], capture_output=True,
                                   text=True, check=True).stdout
            self.assertIn("f49", names)
            # One write(2) and one read(2) of many msize: 1 MiB FUSE
            # requests, each split into pipelined Twrites/Treads.
            data = os.urandom((3 << 20) + 17)
            fd = os.open(os.path.join(mnt, "big"), os.O_CREAT | os.O_WRONLY, 0o644)
            try:
                self.assertEqual(os.pwrite(fd, data, 4093), len(data))
            finally:
                os.close(fd)
            with open(os.path.join(server.export, "big"), "rb") as f:
                self.assertEqual(f.read(), bytes(4093) + data)
            fd = os.open(os.path.join(mnt, "big"), os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                self.assertEqual(os.pread(fd, len(data) + 100, 4093), data)
            finally:
                os.close(fd)
            subprocess.run(["umount", mnt], check=True)
            p.wait(timeout=10)
            log.seek(0)
            err = log.read()
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            log.close()
        self.assertIn("FUSE readdirplus", err)
        # diod grants msize 64 KiB, but FUSE requests are 1 MiB whatever
        # msize is; the session splits them.
        m = re.search(r"max_write (\d+)", err)
        self.assertIsNotNone(m, err[-2000:])
        self.assertEqual(int(m.group(1)), 1 << 20)
        m = re.search(r"max_read (\d+)", err)
        self.assertEqual(int(m.group(1)), 1 << 20)
        # The 3 MiB write went out as Twrites of at most msize - 24 bytes.
        counts = [int(c) for c in
                  re.findall(r">>> TWRITE tag \d+ fid \d+ offset \d+ count (\d+)", err)]
        self.assertTrue(counts, err[-2000:])
        self.assertLessEqual(max(counts), 65536 - 24)
        self.assertEqual(sum(counts), (3 << 20) + 17)

    def test_queues_open_n_connections(self):
        server = Diod()
        m = Mount(server, "queues=3")
        self.assertEqual(established(server.port), 3)
        # Work from several threads spreads over the channels.
        subprocess.run(["sh", "-c", " & ".join(
            f"for i in $(seq 50); do echo $i > {m.path(f't{j}')}; cat {m.path(f't{j}')} "
            "> /dev/null; done" for j in range(6)) + "; wait"], check=True)
        self.assertTrue(m.unmount())
        self.assertTrue(wait_for(lambda: established(server.port) == 0, 5))

    def test_fusermount3_u(self):
        server = Diod(debug=True)
        m = Mount(server)
        os.listdir(m.mountpoint)
        r = subprocess.run(["fusermount3", "-u", m.mountpoint], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(is_mounted(m.mountpoint))
        self.assertTrue(wait_for(lambda: not daemon_pids(m.mountpoint), 5))
        self.assertTrue(wait_for(lambda: established(server.port) == 0, 5))

    def test_hung_then_dead_server_never_hangs_callers(self):
        server = Diod()
        m = Mount(server, "timeout=1")
        with open(m.path("f"), "w") as f:
            f.write("x")
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            t = time.monotonic()
            with self.assertRaises(OSError) as cm:
                os.stat(m.path("f"))
            took = time.monotonic() - t
            # timeout=1 plus the client's flush timeout (tunables.h), then
            # the channel is declared dead.
            self.assertLess(took, 20)
            self.assertIn(cm.exception.errno, (errno.ENOTCONN, errno.ETIMEDOUT, errno.EIO))
            # The channel is dead and being made again (recover=on); the
            # stopped server never answers the new Tversion, so each request
            # waits for it up to its deadline (timeout=1), then fails.
            t = time.monotonic()
            with self.assertRaises(OSError):
                open(m.path("f")).read()
            self.assertLess(time.monotonic() - t, 8)
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        server.stop()
        with self.assertRaises(OSError):
            os.listdir(m.mountpoint)
        self.assertTrue(p9harness.unmount(m.mountpoint, timeout=5))

    def test_unprivileged_mount_with_fusermount3(self):
        p9harness.tool("fusermount3", "fuse3")
        server = Diod()
        os.chown(server.export, 65534, 65534)
        mnt = make_tmpdir("p9mnt-")
        os.chown(mnt, 65534, 65534)
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        if subprocess.run(nobody + ["test", "-x", mount_binary()]).returncode != 0:
            self.skipTest(f"uid 65534 cannot execute {mount_binary()} (a parent directory "
                          "is private)")
        r = subprocess.run(nobody + [mount_binary(), "-o", f"trans=tcp,port={server.port}",
                                     server.source, mnt], capture_output=True, text=True,
                           timeout=30)
        try:
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("user_id=65534", p9harness.mount_entry(mnt)[3])
            r = subprocess.run(nobody + ["sh", "-c", f"echo hi > {mnt}/x && cat {mnt}/x"],
                               capture_output=True, text=True)
            self.assertEqual(r.stdout, "hi\n", r.stderr)
            st = os.stat(os.path.join(server.export, "x"))
            self.assertEqual((st.st_uid, st.st_gid), (65534, 65534))
            r = subprocess.run(nobody + ["fusermount3", "-u", mnt], capture_output=True,
                               text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(wait_for(lambda: not daemon_pids(mnt), 5))
        finally:
            p9harness.unmount(mnt)

    def test_sigterm_unmounts(self):
        server = Diod()
        m = Mount(server)
        pids = daemon_pids(m.mountpoint)
        self.assertEqual(len(pids), 1)
        os.kill(pids[0], signal.SIGTERM)
        self.assertTrue(wait_for(lambda: not is_mounted(m.mountpoint), 5))
        self.assertTrue(wait_for(lambda: not daemon_pids(m.mountpoint), 5))

    def test_foreground_and_debug_trace(self):
        """-o debug traces every 9P message, one line each, like the kernel's
        net/9p debug output."""
        server = Diod()
        mnt = make_tmpdir("p9mnt-")
        p = subprocess.Popen([mount_binary(), "-f", "-o", f"trans=tcp,port={server.port},debug",
                              server.source, mnt], stderr=subprocess.PIPE, text=True)
        try:
            self.assertTrue(wait_for(lambda: is_mounted(mnt), 10))
            with open(os.path.join(mnt, "traced"), "w") as f:
                f.write("x" * 5000)
            os.listdir(mnt)
            subprocess.run(["umount", mnt], check=True)
            _, err = p.communicate(timeout=10)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertEqual(p.returncode, 0, err)
        trace = [line for line in err.splitlines() if line.startswith("9prdma: trace: ")]
        text = "\n".join(trace)
        for pattern in (
                r"q0 >>> TVERSION tag NOTAG msize \d+ version 9P2000\.L",
                r"q0 <<< RVERSION tag NOTAG msize \d+ version 9P2000\.L",
                r"q0 >>> TATTACH tag \d+ fid \d+ afid \d+ uname \S+ aname \S+ n_uname \d+",
                r"q0 <<< RATTACH tag \d+ qid 80\.[0-9a-f]+\.[0-9a-f]+",
                r"q0 >>> TWALK tag \d+ fid \d+ newfid \d+ nwname 1 wname\[0\] traced",
                r"q0 <<< RLERROR tag \d+ ecode 2",  # the lookup before the create
                r"q0 >>> TLCREATE tag \d+ fid \d+ name traced flags 0x[0-9a-f]+ mode 0\d+ gid",
                r"q0 >>> TWRITE tag \d+ fid \d+ offset 0 count 5000",
                r"q0 <<< RWRITE tag \d+ count 5000",
                r"q0 >>> TREADDIR tag \d+ fid \d+ offset 0 count \d+",
                r"q0 <<< RREADDIR tag \d+ entries \d+",
                r"q0 <<< RGETATTR tag \d+ valid 0x[0-9a-f]+ qid ",
                r"q0 >>> TCLUNK tag \d+ fid \d+"):
            self.assertRegex(text, "trace: " + pattern)
        # Every trace line is one whole message: direction, type, tag.
        for line in trace:
            self.assertRegex(line, r"^9prdma: trace: q\d+ (>>>|<<<) [A-Z]+ tag ")

    def test_rdma_default_falls_back_to_tcp_with_warning(self):
        server = Diod()
        mnt = make_tmpdir("p9mnt-")
        r, _ = run_mount(["-o", f"port={server.port}", server.source, mnt])
        try:
            self.assertEqual(r.returncode, 0, r.stderr)
            # This host has no RDMA device: the default transport falls back.
            self.assertRegex(r.stderr, r"no RDMA device.*using TCP")
            self.assertTrue(is_mounted(mnt))
            self.assertEqual(p9harness.mount_entry(mnt)[2], "fuse.9prdma")
        finally:
            p9harness.unmount(mnt)

    def test_read_only(self):
        server = Diod()
        with open(os.path.join(server.export, "f"), "w") as f:
            f.write("ro")
        m = Mount(server, "ro")
        with open(m.path("f")) as f:
            self.assertEqual(f.read(), "ro")
        with self.assertRaises(OSError) as cm:
            open(m.path("g"), "w")
        self.assertEqual(cm.exception.errno, errno.EROFS)
        self.assertIn("ro", p9harness.mount_entry(m.mountpoint)[3].split(","))
        self.assertTrue(m.unmount())

    def test_access_uid(self):
        server = Diod()
        m = Mount(server, "access=65534,allow_other")
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            "sh", "-c", f"ls {m.mountpoint} >/dev/null && echo ok"],
                           capture_output=True, text=True)
        self.assertEqual(r.stdout.strip(), "ok", r.stderr)
        with self.assertRaises(PermissionError):
            os.listdir(m.mountpoint)  # root is not uid 65534
        # No default_permissions here: access(2) is answered by the access op.
        with open(os.path.join(server.export, "ro"), "w") as f:
            f.write("x")
        os.chmod(os.path.join(server.export, "ro"), 0o444)
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                            sys.executable, "-c",
                            f"import os; p={m.path('ro')!r}; "
                            "print(os.access(p, os.R_OK), os.access(p, os.W_OK), "
                            "os.access(p, os.X_OK))"], capture_output=True, text=True)
        self.assertEqual(r.stdout.split(), ["True", "False", "False"], r.stderr)
        self.assertTrue(m.unmount())


class MountHelper(unittest.TestCase):
    """mount(8) runs the helper; fstab lines work.

    The helper is installed in a temporary sbin directory that is put on
    PATH. libmount 2.38 (bookworm) does not search PATH for helpers, only
    /sbin:/sbin/fs.d:/sbin/fs, so each test runs in a private mount
    namespace where that directory is overlaid on /usr/sbin (= /sbin).
    Nothing outside the test sees the overlay or the mounts made in it.
    """

    def setUp(self):
        p9harness.tool("unshare", "util-linux")
        self.sbin = make_tmpdir("p9sbin-")
        os.symlink(mount_binary(), os.path.join(self.sbin, "mount.9prdma"))
        self.env = dict(os.environ, PATH=self.sbin + ":" + os.environ.get("PATH", ""))

    def in_namespace(self, script):
        full = (f"mount -t overlay overlay -o lowerdir={self.sbin}:/usr/sbin /usr/sbin || "
                "{ echo NO-OVERLAY; exit 0; }\n" + script)
        r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", full],
                           env=self.env, capture_output=True, text=True, timeout=60)
        if "NO-OVERLAY" in r.stdout:
            self.skipTest("overlayfs not available to place the helper in /sbin")
        return r

    def test_mount_t_9prdma(self):
        server = Diod()
        mnt = make_tmpdir("p9mnt-")
        r = self.in_namespace(f"""
            set -e
            mount -t 9prdma -o trans=tcp,port={server.port} {server.source} {mnt}
            grep " {mnt} fuse.9prdma " /proc/mounts
            echo via-mount8 > {mnt}/hello
            umount {mnt}
            ! grep -q " {mnt} " /proc/mounts
            echo DONE""")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("DONE", r.stdout)
        self.assertRegex(r.stdout, rf"^{re.escape(server.source)} {mnt} fuse.9prdma ")
        with open(os.path.join(server.export, "hello")) as f:
            self.assertEqual(f.read(), "via-mount8\n")
        self.assertTrue(wait_for(lambda: not daemon_pids(mnt), 5))

    def test_fstab_line(self):
        server = Diod()
        mnt = make_tmpdir("p9mnt-")
        fstab = os.path.join(make_tmpdir("p9fstab-"), "fstab")
        with open(fstab, "w") as f:
            f.write(f"{server.source} {mnt} 9prdma "
                    f"_netdev,noauto,nofail,x-systemd.automount,trans=tcp,port={server.port},"
                    "cache=loose,nosuid,nodev 0 0\n")
        r = self.in_namespace(f"""
            set -e
            mount -T {fstab} {mnt}
            grep " {mnt} fuse.9prdma " /proc/mounts
            ls {mnt} >/dev/null
            umount {mnt}
            echo DONE""")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("DONE", r.stdout)
        self.assertIn("nosuid", r.stdout)
        self.assertTrue(wait_for(lambda: not daemon_pids(mnt), 5))

    def test_mount_failure_through_mount8(self):
        mnt = make_tmpdir("p9mnt-")
        port = p9harness.free_port()
        r = self.in_namespace(f"""
            mount -t 9prdma -o trans=tcp,port={port} 127.0.0.1:/x {mnt}
            echo "rc=$?"
            grep -c " {mnt} " /proc/mounts || true""")
        self.assertRegex(r.stdout, r"rc=[1-9]")
        self.assertIn("mount.9prdma:", r.stderr)
        self.assertTrue(r.stdout.strip().endswith("0"), r.stdout)
        self.assertFalse(daemon_pids(mnt))


def live_fids(log):
    """Fids still held at the end of a diod -d 1 trace (one connection)."""
    pending = {}
    live = set()
    for line in log.splitlines():
        m = re.search(r"P9_(\w+) tag (\d+)(.*)", line)
        if not m:
            continue
        kind, tag, rest = m.group(1), m.group(2), m.group(3)
        fields = dict(re.findall(r"(\w+) (-?\d+)", rest))
        if kind == "TATTACH":
            pending[tag] = ("add", fields["fid"])
        elif kind == "TWALK":
            pending[tag] = ("add", fields["newfid"])
        elif kind == "TXATTRWALK":
            pending[tag] = ("add", fields["attrfid"])
        elif kind in ("TCLUNK", "TREMOVE"):
            pending[tag] = ("del", fields["fid"])
        elif kind.startswith("R") and tag in pending:
            op, fid = pending.pop(tag)
            if op == "del":
                live.discard(fid)  # gone even when the reply is Rlerror
            elif kind != "RLERROR":
                live.add(fid)
    return live


def main():
    global SERVER
    p9harness.require_root()
    for t, pkg in (("ss", "iproute2"), ("setpriv", "util-linux"), ("mount", "mount")):
        p9harness.tool(t, pkg)
    SERVER = Diod()
    prog = unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[1:], exit=False)
    sys.exit(0 if prog.result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
