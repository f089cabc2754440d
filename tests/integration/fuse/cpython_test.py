#!/usr/bin/python3
"""CPython's own file-system tests (Debian package libpython3.11-testsuite)
run with TMPDIR and the working directory on a mount.9prdma mount.

usage: cpython_test.py [--opts MOUNT_OPTIONS] [TEST ...]
Runs Debian's /usr/bin/python3 (3.11; a pyenv python on PATH lacks the
test suite) as: python3 -m test -j1 -u-network TESTS.
"""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import p9harness  # noqa: E402

PYTHON = "/usr/bin/python3"
DEFAULT_TESTS = ["test_os", "test_shutil", "test_tempfile", "test_glob", "test_fileio",
                 "test_posix", "test_pathlib"]


def main():
    args = sys.argv[1:]
    opts = ""
    if len(args) >= 2 and args[0] == "--opts":
        opts, args = args[1], args[2:]
    tests = args or DEFAULT_TESTS
    p9harness.require_root()
    probe = subprocess.run([PYTHON, "-c", "import test.support, test.test_os"],
                           capture_output=True)
    if probe.returncode != 0:
        print("cpython_test: CPython's test suite is missing (Debian package "
              "libpython3.11-testsuite); skipping", file=sys.stderr)
        sys.exit(p9harness.SKIP)
    server, m = p9harness.setup(opts)
    tmp = m.path("tmp")
    os.mkdir(tmp)
    os.chmod(tmp, 0o1777)
    env = dict(os.environ, TMPDIR=tmp, TMP=tmp, TEMP=tmp, PYTHONDONTWRITEBYTECODE="1")
    cmd = [PYTHON, "-m", "test", "-j1", "-u-network", "--timeout", "900"] + tests
    print(f"cpython: {' '.join(cmd)}\n  TMPDIR and cwd {tmp} on {server.source} "
          f"(-o {m.opts})", flush=True)
    t = time.monotonic()
    r = subprocess.run(cmd, cwd=tmp, env=env, stdin=subprocess.DEVNULL, timeout=3000)
    print(f"cpython: exit {r.returncode} after {time.monotonic() - t:.0f}s", flush=True)
    leftovers = [n for n in os.listdir(m.export("tmp"))]
    if leftovers:
        print(f"cpython: left in TMPDIR: {leftovers[:10]}", flush=True)
    if not m.unmount():
        print("cpython: daemon did not exit after umount", file=sys.stderr)
        sys.exit(1)
    sys.exit(0 if r.returncode == 0 else 1)


if __name__ == "__main__":
    main()
