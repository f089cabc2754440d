#!/usr/bin/python3
"""Who the server sees, with several local users on one mount made by root
(allow_other) of diod running as root (multi-user: it acts as each
attach's user):

- access=user: each user's requests go out under their own Tattach
  (n_uname = their uid), so what a user creates is made by the server as
  them (no chown afterwards); a user's 0600 file is theirs alone (the
  other gets EACCES: diod lets every attach on a connection root attached
  on bypass DAC, so, as with the kernel's v9fs, the kernel checks the mode
  bits too). Root keeps the mount's own attach. After a server restart
  each user's attach is made again.
- access=client: one root attach, default_permissions: the kernel refuses
  what the mode bits forbid, although the server would allow root.
- access=any: one root attach and no client-side checks: the server
  decides as root, so another user's 0600 file is readable (documented).

Two users (p9ua, p9ub) are created for the test and removed at exit."""

import os
import pwd
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import p9harness  # noqa: E402
from p9harness import Diod, Mount, is_mounted, make_tmpdir, mount_binary, wait_for  # noqa: E402

USERS = ("p9ua", "p9ub")
SERVER = None
A = B = None  # pwd entries of the two users
# Run as a user: prints the file's contents, or the errno name of opening it.
READ_PROBE = ("import errno, sys\n"
              "try:\n"
              "    print(open(sys.argv[1]).read(), end='')\n"
              "except OSError as e:\n"
              "    print(errno.errorcode[e.errno], end='')\n")

# Run as a user: creates a file, unlinks it while open, reads it back and
# counts what the directory argv[2] then holds.
UNLINK_OPEN_PROBE = ("import os, sys\n"
                     "with open(sys.argv[1], 'w+') as f:\n"
                     "    f.write('still here')\n"
                     "    f.flush()\n"
                     "    os.unlink(sys.argv[1])\n"
                     "    f.seek(0)\n"
                     "    print(f.read(), len(os.listdir(sys.argv[2])), end='')\n")


def as_user(u, argv):
    return subprocess.run(["setpriv", f"--reuid={u.pw_uid}", f"--regid={u.pw_gid}",
                           "--init-groups"] + argv,
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})


def read_as(u, path):
    r = as_user(u, [sys.executable, "-c", READ_PROBE, path])
    return r.stdout or r.stderr


def create_as(u, path, text):
    """`text` into a new file `path` with mode 0600 (umask 077), as u."""
    r = as_user(u, ["sh", "-c", f"umask 077 && printf %s '{text}' > '{path}'"])
    return r.returncode, r.stderr


def ensure_users():
    for name in USERS:
        try:
            pwd.getpwnam(name)
            continue
        except KeyError:
            pass
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", name], check=True, capture_output=True)
        # First in the list: runs after the servers' and mounts' cleanups.
        p9harness._cleanups.insert(
            0, lambda n=name: subprocess.run(["userdel", n], capture_output=True))


class TracedMount:
    """mount.9prdma -f with `debug`: the 9P trace goes to a log file."""

    def __init__(self, opts):
        self.mountpoint = make_tmpdir("p9mnt-")
        self.log = os.path.join(make_tmpdir("p9log-"), "mount.log")
        full = f"trans=tcp,port={SERVER.port},debug,{opts}"
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen([mount_binary(), "-f", "-o", full, SERVER.source,
                                          self.mountpoint],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        p9harness._cleanups.append(self.unmount)
        if not wait_for(lambda: is_mounted(self.mountpoint) or self.proc.poll() is not None, 20):
            raise RuntimeError("mount did not appear")
        if not is_mounted(self.mountpoint):
            raise RuntimeError(f"mount failed: {self.read_log()}")

    def path(self, *parts):
        return os.path.join(self.mountpoint, *parts)

    def read_log(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def attach_uids(self):
        """n_uname of every Tattach sent, in order."""
        return [int(m) for m in re.findall(r">>> TATTACH .*?n_uname (\d+)", self.read_log())]

    def unmount(self):
        p9harness.unmount(self.mountpoint)
        if self.proc.poll() is None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def shared_dir(name):
    """A fresh world-writable sticky directory on the export, like /tmp."""
    d = os.path.join(SERVER.export, name)
    os.mkdir(d)
    os.chmod(d, 0o1777)
    return name


class Access(unittest.TestCase):

    def test_user_server_decides_as_each_user(self):
        m = TracedMount("access=user,allow_other,queues=2")
        opts = p9harness.mount_entry(m.mountpoint)[3].split(",")
        self.assertIn("default_permissions", opts)
        shared = shared_dir("user")
        self.assertEqual(create_as(A, m.path(shared, "a"), "from a"), (0, ""))
        self.assertEqual(create_as(B, m.path(shared, "b"), "from b"), (0, ""))

        # The server made them as their creators (not chowned afterwards by
        # a root attach: the trace shows no Tsetattr).
        for u, name in ((A, "a"), (B, "b")):
            st = os.stat(os.path.join(SERVER.export, shared, name))
            self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o777),
                             (u.pw_uid, u.pw_gid, 0o600), name)
        self.assertNotIn("TSETATTR", m.read_log())

        # Each reads their own; the other is refused (by the kernel's check
        # of the mode bits: diod trusts a connection root attached on).
        self.assertEqual(read_as(A, m.path(shared, "a")), "from a")
        self.assertEqual(read_as(B, m.path(shared, "b")), "from b")
        self.assertEqual(read_as(B, m.path(shared, "a")), "EACCES")
        self.assertEqual(read_as(A, m.path(shared, "b")), "EACCES")
        # Root uses the mount's own (root) attach.
        with open(m.path(shared, "a")) as f:
            self.assertEqual(f.read(), "from a")

        # mkdir and its contents: the user's.
        r = as_user(B, ["sh", "-c", f"mkdir '{m.path(shared, 'bdir')}' && "
                                    f"touch '{m.path(shared, 'bdir', 'f')}'"])
        self.assertEqual(r.returncode, 0, r.stderr)
        for p in ("bdir", "bdir/f"):
            st = os.stat(os.path.join(SERVER.export, shared, p))
            self.assertEqual((st.st_uid, st.st_gid), (B.pw_uid, B.pw_gid), p)
        # A cannot create in B's directory (0755 after B's umask 022).
        self.assertNotEqual(create_as(A, m.path(shared, "bdir", "x"), "x")[0], 0)
        self.assertFalse(os.path.exists(os.path.join(SERVER.export, shared, "bdir", "x")))

        # A file unlinked while open goes to the hidden directory as its
        # user (who can write there: it is sticky and world-writable), is
        # still readable through the descriptor, and goes on close.
        hidden = os.path.join(SERVER.export, ".9prdma-unlinked")
        r = as_user(A, [sys.executable, "-c", UNLINK_OPEN_PROBE, m.path(shared, "gone"), hidden])
        self.assertEqual(r.stdout, "still here 1", r.stderr)
        self.assertEqual(os.stat(hidden).st_mode & 0o7777, 0o1777)
        self.assertTrue(wait_for(lambda: os.listdir(hidden) == [], 5), os.listdir(hidden))
        self.assertFalse(os.path.exists(os.path.join(SERVER.export, shared, "gone")))

        # One attach per user and queue used: root's on both queues at
        # mount time, then A's and B's (on the queue(s) their requests took).
        uids = m.attach_uids()
        self.assertEqual(uids[:2], [0, 0], m.read_log()[-2000:])
        self.assertEqual(sorted(set(uids)), sorted({0, A.pw_uid, B.pw_uid}))
        before = {u: uids.count(u) for u in (A.pw_uid, B.pw_uid)}
        for n in before.values():
            self.assertIn(n, (1, 2))

        # A server restart: the mount's own attach is restored by the
        # session, each user's again on their next request.
        SERVER.restart()
        self.assertEqual(read_as(A, m.path(shared, "a")), "from a")
        self.assertEqual(read_as(B, m.path(shared, "a")), "EACCES")
        self.assertEqual(create_as(B, m.path(shared, "b2"), "again"), (0, ""))
        st = os.stat(os.path.join(SERVER.export, shared, "b2"))
        self.assertEqual(st.st_uid, B.pw_uid)
        uids = m.attach_uids()
        for u, n in before.items():
            self.assertGreater(uids.count(u), n)
        # The sessions restore the mount's own attach on both queues.
        self.assertTrue(wait_for(lambda: m.attach_uids().count(0) == 4, 20), m.attach_uids())

    def test_client_kernel_checks_mode_bits(self):
        m = Mount(SERVER, "access=client,allow_other")
        self.assertIn("default_permissions", p9harness.mount_entry(m.mountpoint)[3].split(","))
        shared = shared_dir("client")
        self.assertEqual(create_as(A, m.path(shared, "a"), "from a"), (0, ""))
        st = os.stat(os.path.join(SERVER.export, shared, "a"))
        # Created by the root attach, then given to its creator.
        self.assertEqual((st.st_uid, st.st_gid), (A.pw_uid, A.pw_gid))
        self.assertEqual(read_as(A, m.path(shared, "a")), "from a")
        # The server would let root read it: the refusal is the kernel's.
        self.assertEqual(read_as(B, m.path(shared, "a")), "EACCES")

    def test_any_server_decides_as_the_one_attach(self):
        m = Mount(SERVER, "access=any,allow_other")
        self.assertNotIn("default_permissions", p9harness.mount_entry(m.mountpoint)[3].split(","))
        shared = shared_dir("any")
        a = os.path.join(SERVER.export, shared, "a")
        with open(a, "w") as f:
            f.write("from a")
        os.chown(a, A.pw_uid, A.pw_gid)
        os.chmod(a, 0o600)
        # No check here, and the server acts as root for everyone.
        self.assertEqual(read_as(B, m.path(shared, "a")), "from a")
        # New files belong to the attach identity (no chown, as the kernel).
        self.assertEqual(create_as(B, m.path(shared, "b"), "from b"), (0, ""))
        st = os.stat(os.path.join(SERVER.export, shared, "b"))
        self.assertEqual(st.st_uid, 0)


def main():
    global SERVER, A, B
    p9harness.require_root()
    for t, pkg in (("setpriv", "util-linux"), ("useradd", "passwd")):
        p9harness.tool(t, pkg)
    ensure_users()
    A, B = (pwd.getpwnam(n) for n in USERS)
    SERVER = Diod()
    os.chmod(SERVER.export, 0o755)
    prog = unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[1:], exit=False)
    sys.exit(0 if prog.result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
