#!/usr/bin/python3
"""A mount by an ordinary user, through fusermount3 (setuid root), of diod
running as root on loopback: the user reads and writes as themself, nobody
else (another user, root) can use the mount, it is nosuid,nodev, what only
root may ask for is refused before connecting, and fusermount3 -u ends it.

The mounting user is `p9user`, created (and removed at exit) when missing;
the other user is nobody (65534)."""

import errno
import os
import pwd
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import p9harness  # noqa: E402
from p9harness import Diod, daemon_pids, is_mounted, make_tmpdir, mount_binary, wait_for  # noqa: E402,E501

USER = "p9user"
NOBODY = 65534
SERVER = None
UID = GID = None
# Probe run as another user: prints the errno name of listing a directory,
# or "allowed".
LIST_PROBE = ("import errno, os, sys\n"
              "try:\n"
              "    os.listdir(sys.argv[1])\n"
              "except OSError as e:\n"
              "    print(errno.errorcode[e.errno])\n"
              "else:\n"
              "    print('allowed')\n")


def as_user(uid, gid, argv):
    """argv run with uid/gid and no supplementary groups, in a minimal
    environment (root's XDG_RUNTIME_DIR is not the user's)."""
    return subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"] + argv,
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})


def mount_as_user(opts, mountpoint, port=None):
    full = f"trans=tcp,port={port or SERVER.port}" + (f",{opts}" if opts else "")
    return as_user(UID, GID, [mount_binary(), "-o", full, SERVER.source, mountpoint])


def user_mountpoint():
    mnt = make_tmpdir("p9umnt-")
    os.chown(mnt, UID, GID)
    return mnt


def ensure_user():
    try:
        pwd.getpwnam(USER)
        return
    except KeyError:
        pass
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    USER], check=True, capture_output=True)
    # Registered after the servers' and mounts' cleanups, so it runs last.
    p9harness._cleanups.insert(0, lambda: subprocess.run(["userdel", USER], capture_output=True))


class UserMount(unittest.TestCase):

    def test_own_mount_private_nosuid_nodev_and_fusermount3_u(self):
        mnt = user_mountpoint()
        self.addCleanup(p9harness.unmount, mnt)
        r = mount_as_user("", mnt)
        self.assertEqual(r.returncode, 0, r.stderr)
        opts = p9harness.mount_entry(mnt)[3].split(",")
        for want in ("nosuid", "nodev", f"user_id={UID}", f"group_id={GID}"):
            self.assertIn(want, opts)

        r = as_user(UID, GID, ["sh", "-c", f"echo hello > {mnt}/mine && cat {mnt}/mine"])
        self.assertEqual(r.stdout, "hello\n", r.stderr)
        st = os.stat(os.path.join(SERVER.export, "mine"))
        self.assertEqual((st.st_uid, st.st_gid), (UID, GID))
        with open(os.path.join(SERVER.export, "mine")) as f:
            self.assertEqual(f.read(), "hello\n")

        # Without allow_other FUSE lets only the mounting user in: another
        # user and root both get EACCES, even on the world-readable root.
        os.chmod(SERVER.export, 0o755)
        r = as_user(NOBODY, NOBODY, [sys.executable, "-c", LIST_PROBE, mnt])
        self.assertEqual(r.stdout.strip(), "EACCES", r.stderr)
        with self.assertRaises(PermissionError):
            os.listdir(mnt)
        r = as_user(UID, GID, [sys.executable, "-c", LIST_PROBE, mnt])
        self.assertEqual(r.stdout.strip(), "allowed", r.stderr)

        r = as_user(UID, GID, ["fusermount3", "-u", mnt])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(is_mounted(mnt))
        self.assertTrue(wait_for(lambda: not daemon_pids(mnt), 5), "daemon left running")

    def check_refused(self, opts, message):
        """-o opts by the user fails with exit 1 and exactly `message`,
        without connecting: the port belongs to a listener that must see
        no connection."""
        if "allow_other" in message and self.fuse_conf_allows_other():
            self.skipTest("/etc/fuse.conf has user_allow_other here")
        mnt = user_mountpoint()
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            listener.setblocking(False)
            r = mount_as_user(opts, mnt, port=listener.getsockname()[1])
            with self.assertRaises(BlockingIOError):
                listener.accept()
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stderr, f"mount.9prdma: {message}\n")
        self.assertFalse(is_mounted(mnt))
        self.assertEqual(daemon_pids(mnt), [])

    @staticmethod
    def fuse_conf_allows_other():
        try:
            with open("/etc/fuse.conf") as f:
                return any(l.split("#")[0].strip() == "user_allow_other" for l in f)
        except OSError:
            return False

    def test_allow_other_refused_without_user_allow_other(self):
        self.check_refused("allow_other", "allow_other is not permitted for non-root users: "
                           "/etc/fuse.conf lacks a user_allow_other line")

    def test_access_for_another_uid_refused_without_user_allow_other(self):
        self.check_refused(f"access={NOBODY}",
                           f"access={NOBODY} (needs allow_other) is not permitted for non-root "
                           "users: /etc/fuse.conf lacks a user_allow_other line")

    def test_suid_and_dev_refused(self):
        self.check_refused("suid", "option suid is only allowed when root mounts")
        self.check_refused("dev", "option dev is only allowed when root mounts")


def main():
    global SERVER, UID, GID
    p9harness.require_root()
    for t, pkg in (("fusermount3", "fuse3"), ("setpriv", "util-linux"), ("useradd", "passwd")):
        p9harness.tool(t, pkg)
    ensure_user()
    UID, GID = pwd.getpwnam(USER).pw_uid, pwd.getpwnam(USER).pw_gid
    if as_user(UID, GID, ["test", "-x", mount_binary()]).returncode != 0:
        print(f"user_mount_test: {USER} cannot execute {mount_binary()} (a parent directory "
              "is private); skipping", file=sys.stderr)
        sys.exit(p9harness.SKIP)
    SERVER = Diod()
    os.chown(SERVER.export, UID, GID)
    prog = unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[1:], exit=False)
    sys.exit(0 if prog.result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
