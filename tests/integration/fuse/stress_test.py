#!/usr/bin/python3
"""Randomized namespace stress: processes race creates, writes, reads,
renames, unlinks (also of open files), hard links, symlinks, mkdir/rmdir
and chmod on a dozen shared names. Every error must be one POSIX allows for
the race (never EIO, ESTALE, ENOTCONN, EBADF...), the daemon must survive,
unmount cleanly, and leave no hidden unlinked-while-open files behind.

usage: stress_test.py [--opts MOUNT_OPTIONS] [--seconds N] [--procs N]
"""

import argparse
import os
import subprocess
import sys
import textwrap

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import p9harness  # noqa: E402

WORKER = textwrap.dedent("""
    import errno, os, random, sys, time
    d, seed, dur = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    rnd = random.Random(seed)
    names = [f"n{i}" for i in range(12)]
    ok = {"EEXIST", "EISDIR", "ENOENT", "ENOTDIR", "ENOTEMPTY", "EPERM", "ELOOP", "EINVAL"}
    weights = [("write", 20), ("read", 15), ("rename", 15), ("unlink", 12), ("mkdir", 3),
               ("rmdir", 3), ("stat", 8), ("list", 4), ("sub", 4), ("open", 5), ("fdops", 6),
               ("symlink", 2), ("link", 4), ("chmod", 2)]
    ops = [o for o, w in weights for _ in range(w)]
    fds, count, bad = [], 0, []
    end = time.time() + dur
    while time.time() < end:
        a = os.path.join(d, rnd.choice(names))
        b = os.path.join(d, rnd.choice(names))
        op = rnd.choice(ops)
        try:
            if op == "write":
                with open(a, "wb") as f:
                    f.write(os.urandom(rnd.randrange(1, 70000)))
            elif op == "read":
                with open(a, "rb") as f:
                    f.read()
            elif op == "rename":
                os.rename(a, b)
            elif op == "unlink":
                os.unlink(a)
            elif op == "mkdir":
                os.mkdir(a)
            elif op == "rmdir":
                os.rmdir(a)
            elif op == "stat":
                os.stat(a)
            elif op == "list":
                os.listdir(d)
            elif op == "sub":
                with open(os.path.join(a, rnd.choice(names)), "wb") as f:
                    f.write(b"x")
            elif op == "open":
                fds.append(os.open(a, os.O_RDWR))
            elif op == "fdops" and fds:
                fd = fds.pop(rnd.randrange(len(fds)))
                os.fstat(fd)
                os.pread(fd, 100, 0)
                os.pwrite(fd, b"y", 10)
                os.close(fd)
            elif op == "symlink":
                os.symlink(rnd.choice(names), a)
            elif op == "link":
                os.link(a, b)
            elif op == "chmod":
                os.chmod(a, 0o644)
            count += 1
        except OSError as e:
            name = errno.errorcode.get(e.errno, str(e.errno))
            if name not in ok:
                bad.append(f"{op}: {name}")
    for fd in fds:
        os.fstat(fd)
        os.close(fd)
    print(count, len(bad))
    for b in bad[:20]:
        print(b)
""")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--opts", default="queues=3")
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--procs", type=int, default=6)
    args = ap.parse_args()
    server, m = p9harness.setup(args.opts)
    d = m.path("stress")
    os.mkdir(d)
    print(f"stress: {args.procs} processes x {args.seconds:.0f}s on {m.mountpoint} (-o {m.opts})",
          flush=True)
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, d, str(k), str(args.seconds)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k in range(args.procs)]
    failed = False
    total = 0
    for k, p in enumerate(procs):
        out, err = p.communicate(timeout=args.seconds + 300)
        lines = out.split("\n")
        if p.returncode != 0 or not lines[0]:
            print(f"worker {k} died ({p.returncode}): {err[-2000:]}")
            failed = True
            continue
        count, nbad = map(int, lines[0].split())
        total += count
        if nbad:
            print(f"worker {k}: {nbad} unexpected errors: {lines[1:]}")
            failed = True
    # The mount still works, agrees with the export, and can go away cleanly.
    listing = sorted(os.listdir(d))
    if listing != sorted(os.listdir(m.export("stress"))):
        print(f"listing differs from the export: {listing}")
        failed = True
    print(f"stress: {total} operations", flush=True)
    if not m.unmount():
        print("daemon did not exit after umount")
        failed = True
    hidden = os.path.join(server.export, ".9prdma-unlinked")
    if os.path.exists(hidden):
        print(f"unlinked-while-open files left behind: {os.listdir(hidden)}")
        failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
