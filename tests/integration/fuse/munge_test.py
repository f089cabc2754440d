#!/usr/bin/python3
"""auth=munge against diod with authentication on (no -n): without munged
the mount fails at once with one line naming munged; with munged (started
here as user munge on its default socket, with the key the munge package
made) the mount works, with several queues and across a server restart,
also with access=user, and diod refuses a mount without auth=munge."""

import os
import pwd
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import p9harness  # noqa: E402
from p9harness import Diod, Mount, daemon_pids, is_mounted, make_tmpdir, mount_binary, wait_for  # noqa: E402,E501

SOCKET_DIR = "/run/munge"
SOCKET = os.path.join(SOCKET_DIR, "munge.socket.2")
KEY = "/etc/munge/munge.key"
SERVER = None


def munged_running():
    return subprocess.run(["munge", "-n"], capture_output=True).returncode == 0


def start_munged():
    """munged as user munge, in the foreground, until the test ends."""
    pw = pwd.getpwnam("munge")
    os.makedirs(SOCKET_DIR, mode=0o755, exist_ok=True)
    os.chown(SOCKET_DIR, pw.pw_uid, pw.pw_gid)
    log = os.path.join(make_tmpdir("p9munge-"), "munged.log")
    os.chown(os.path.dirname(log), pw.pw_uid, pw.pw_gid)
    proc = subprocess.Popen(
        ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups",
         "munged", "-F", f"--log-file={log}", f"--pid-file={log}.pid",
         f"--seed-file={log}.seed"], stdin=subprocess.DEVNULL)

    def stop():
        proc.terminate()
        proc.wait(10)
    p9harness._cleanups.append(stop)
    if not wait_for(munged_running, 10):
        with open(log) as f:
            raise RuntimeError(f"munged did not start: {f.read()}")


def try_mount(opts):
    mnt = make_tmpdir("p9mnt-")
    r = subprocess.run([mount_binary(), "-o", f"trans=tcp,port={SERVER.port},{opts}",
                        SERVER.source, mnt], capture_output=True, text=True, timeout=60)
    return r, mnt


class Munge(unittest.TestCase):

    def test_1_without_munged_one_clear_line(self):
        r, mnt = try_mount("auth=munge")
        self.assertEqual(r.returncode, 32, r.stderr)
        self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
        self.assertRegex(r.stderr, r"^mount\.9prdma: auth=munge: no MUNGE credential: .*"
                         r"\(is munged running\?\)\n$")
        self.assertFalse(is_mounted(mnt))
        self.assertEqual(daemon_pids(mnt), [])

    def test_2_with_munged(self):
        start_munged()
        m = Mount(SERVER, "auth=munge")
        with open(m.path("f"), "w") as f:
            f.write("authenticated\n")
        with open(m.export("f")) as f:
            self.assertEqual(f.read(), "authenticated\n")
        self.assertEqual(os.listdir(m.mountpoint), ["f"])
        self.assertTrue(m.unmount())
        # Every queue authenticates, and so does every reconnection (a
        # credential is good for one attach: diod refuses a replay).
        m = Mount(SERVER, "auth=munge,queues=2")
        with open(m.path("f")) as f:
            self.assertEqual(f.read(), "authenticated\n")
        SERVER.restart()
        with open(m.path("f")) as f:
            self.assertEqual(f.read(), "authenticated\n")
        with open(m.path("g"), "w") as f:
            f.write("after restart\n")
        with open(m.export("g")) as f:
            self.assertEqual(f.read(), "after restart\n")
        self.assertTrue(m.unmount())
        # The same diod refuses an attach without a credential.
        r, mnt = try_mount("auth=none")
        self.assertEqual(r.returncode, 32, r.stderr)
        self.assertIn("refused to attach", r.stderr)
        self.assertFalse(is_mounted(mnt))

    def test_3_access_user(self):
        # Our credential names root, which diod would not take for another
        # user's Tauth; it trusts a connection root authenticated on
        # instead, so each user's attach goes without one. After a restart
        # the session authenticates root again before any of them.
        if not munged_running():
            start_munged()
        m = Mount(SERVER, "auth=munge,access=user,allow_other,queues=2")
        os.mkdir(m.export("u"))
        os.chmod(m.export("u"), 0o1777)
        nobody = pwd.getpwnam("nobody")

        def create_as_nobody(name):
            return subprocess.run(
                ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                 "--clear-groups", "sh", "-c", f"echo {name} > {m.path('u', name)}"],
                capture_output=True, text=True, timeout=60)

        for name in ("before", "after"):
            r = create_as_nobody(name)
            self.assertEqual(r.returncode, 0, r.stderr)
            st = os.stat(m.export("u", name))
            self.assertEqual((st.st_uid, st.st_gid), (nobody.pw_uid, nobody.pw_gid))
            with open(m.path("u", name)) as f:
                self.assertEqual(f.read(), f"{name}\n")
            if name == "before":
                SERVER.restart()
        self.assertTrue(m.unmount())


def main():
    global SERVER
    p9harness.require_root()
    for t, pkg in (("munged", "munge"), ("munge", "munge"), ("setpriv", "util-linux")):
        p9harness.tool(t, pkg)
    if not os.path.exists(KEY):
        print(f"munge_test: no {KEY} (the munge package makes it); skipping", file=sys.stderr)
        sys.exit(p9harness.SKIP)
    if munged_running():
        print("munge_test: a munged is already running; it must be absent for the "
              "no-munged case; skipping", file=sys.stderr)
        sys.exit(p9harness.SKIP)
    SERVER = Diod(auth=True)
    prog = unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[1:], exit=False)
    sys.exit(0 if prog.result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
