#!/usr/bin/python3
"""Cache coherence of mount.9prdma, per cache mode, against diod on loopback.

One diod export, mounted several times at once:
  N   cache=none                       changes made in the export are seen at once
  L   cache=loose (default lifetime 1 s) ... seen within the lifetime; changes
                                       made through L are seen through L at once
  R   cache=readonly,actimeo=2         ... seen within 2 s
  W   cache=loose,writeback_cache      data written through W is on the export
                                       byte-exact after fsync+close
  A1, B1  cache=loose,actimeo=1        two clients of one export: what A does
                                       is never stale on B after the lifetime
                                       (and with A = N, B = B1)

"Within the lifetime" is checked by polling with a deadline of lifetime + 2 s;
how long each change took to be seen is printed ("seen after X ms"). While a
change is not seen yet, only the old state may be seen (names, listings,
modes, link targets, sizes; no other error); file contents may also be a mix
of old and new pages then (LIFETIME_MIXES below: recorded and printed, not
failed). Once seen, a change stays seen, exactly. Between two mounts the
check is strict: a lifetime (+ EPS) after the change, B must see it on its
first try. A rename-published file is never read torn or mixed, and the
versions read are non-decreasing and at most a lifetime behind.

A file replaced on the export by one with its inode number (ext4 reuses
them at once) is seen as the new file within the lifetime: a recreated
symlink's new target, a regular file that became a symlink
(ReusedInodeNumbers).

A file open on B that A replaces or unlinks stays readable through B's
descriptors, with its last attributes (test_open_file_replaced_or_unlinked_elsewhere).

ParkedOpenFids (its own diod, tracing): under cache=loose a read-only open
after a close reuses the opened fid instead of Twalk + Tlopen, sees the
file's current contents through it, never reuses it for a write open, after
a lock, or after a server restart, and drops it when the file is unlinked
through the mount or ten attribute lifetimes after the close (diod then
holds no open file of it). cache=none opens on the server every time.

usage: coherence_test.py [unittest args...]
"""

import errno
import fcntl
import os
import re
import stat
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import p9harness  # noqa: E402
import p9stats  # noqa: E402

# Margin of the polled checks: a change must be seen by lifetime + MARGIN
# (a pass over every case takes a while with a sanitized daemon on a loaded
# machine: the sanitizer runs set P9_TIME_MARGIN).
MARGIN = float(os.environ.get("P9_TIME_MARGIN", "2.0"))
# Slack of the strict checks (clock ticks, the kernel's jiffies rounding).
EPS = 0.25
LOOSE_TTL = 1.0      # cache=loose's default lifetime
READONLY_TTL = 2.0   # R's actimeo
PAIR_TTL = 1.0       # A1 and B1's actimeo

MOUNTS = {}          # name -> p9harness.Mount
SEEN = []            # (mode, case, seconds) for the summary
OLD_MTIME = 1_600_000_000  # set on prepared files: a change always moves mtime


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def rewrite_in_place(path, data):
    """New contents in the same file (same inode): O_TRUNC, write."""
    with open(path, "wb") as f:
        f.write(data)


def read_if_there(path):
    """The contents of `path`, or None if it does not exist."""
    try:
        return read(path)
    except FileNotFoundError:
        return None


def absent(path):
    """True if `path` does not exist (lstat ENOENT); other errors raise."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return True
    return False


def pread_all(fd):
    out, off = [], 0
    while True:
        b = os.pread(fd, 1 << 20, off)
        if not b:
            return b"".join(out)
        out.append(b)
        off += len(b)


# Reads that were neither the old nor the new contents while a change was
# not due to be seen yet: (what, bytes read). Tolerated within the lifetime
# (see LIFETIME_MIXES), printed at the end.
MIXED = []


def old_or_new(got, old, new, what, strict=True):
    """True if `got` is `new`, False if it is `old`. Anything else fails if
    `strict`; otherwise it is recorded in MIXED and counts as not seen yet."""
    if got == new:
        return True
    if got == old:
        return False
    msg = (f"{what}: neither the old nor the new contents ({len(got)} bytes, starts "
           f"{got[:16]!r}, ends {got[-16:]!r}; old {len(old)} bytes, new {len(new)} bytes)")
    if strict:
        raise AssertionError(msg)
    MIXED.append(msg)
    return False


def pattern(tag, size):
    unit = f"<{tag}:{size}>".encode()
    return (unit * (size // len(unit) + 1))[:size]


# LIFETIME_MIXES: within the lifetime, a cached mount can return a mix of
# old and new data. The kernel trusts its cached size and keeps the pages it
# has (keep_cache); a page it does not have (never read, or reclaimed) is
# read from the server, which now has the new file, and a short read there
# cuts the cached size. E.g. 70000 bytes cached, then rewritten to 300 bytes
# on the server, the tail pages dropped (reclaim: hosts running DAMON's
# proactive pageout drop such pages within a second; posix_fadvise DONTNEED
# reproduces it): the next read returns the first 28672 bytes of the OLD
# contents. That is the FUSE page cache's design (NFS has the same window
# within its attribute cache time), not something a read can be checked
# against, so within the lifetime such reads are recorded, not failed; once
# the lifetime is over every read must be exactly the new contents.

# ---------------------------------------------------------------------------
# Changes made in the export directory (on the server's side), each in its own
# directory. setup (export) -> prime (through the mount: the caches now hold
# the old state, which is asserted) -> change (export) -> seen (mount):
# True once the new state is seen, False while the old one still is; any
# other state fails the test (file contents: see LIFETIME_MIXES).

class Case:
    name = ""

    def __init__(self, mnt, rel):
        self.strict = True  # contents neither old nor new fail (LIFETIME_MIXES)
        self.m = mnt.path(rel, self.name)
        self.e = mnt.export(rel, self.name)
        os.mkdir(self.e)
        self.fds = []
        self.changed_at = None

    def mp(self, *p):
        return os.path.join(self.m, *p)

    def ep(self, *p):
        return os.path.join(self.e, *p)

    def setup(self):
        pass

    def prime(self):
        pass

    def change(self):
        raise NotImplementedError

    def seen(self):
        raise NotImplementedError

    def hold(self, path):
        fd = os.open(path, os.O_RDONLY)
        self.fds.append(fd)
        return fd

    def close(self):
        for fd in self.fds:
            os.close(fd)
        self.fds = []


class ContentCase(Case):
    """The file is rewritten in place; read through a fresh open and through
    a descriptor opened before the change."""
    old = new = b""

    def setup(self):
        write(self.ep("f"), self.old)
        os.utime(self.ep("f"), (OLD_MTIME, OLD_MTIME))

    def prime(self):
        assert read(self.mp("f")) == self.old, f"{self.name}: prime read"
        self.fd = self.hold(self.mp("f"))
        assert pread_all(self.fd) == self.old, f"{self.name}: prime pread"
        assert os.stat(self.mp("f")).st_size == len(self.old)

    def change(self):
        rewrite_in_place(self.ep("f"), self.new)

    def seen(self):
        fresh = old_or_new(read(self.mp("f")), self.old, self.new, f"{self.name}: open+read",
                           self.strict)
        held = old_or_new(pread_all(self.fd), self.old, self.new, f"{self.name}: held fd",
                          self.strict)
        size = os.stat(self.mp("f")).st_size
        if size not in (len(self.old), len(self.new)):
            if self.strict:
                raise AssertionError(f"{self.name}: size {size}")
            MIXED.append(f"{self.name}: stat size {size}")
        return fresh and held and size == len(self.new) and \
            os.fstat(self.fd).st_size == len(self.new)


class SameSize(ContentCase):
    name = "content_same_size"
    old, new = pattern("old", 6000), pattern("NEW", 6000)


class Grow(ContentCase):
    name = "content_grows"
    old, new = pattern("old", 5000), pattern("NEW", 12345)


class Shrink(ContentCase):
    name = "content_shrinks"
    old, new = pattern("old", 70000), pattern("NEW", 300)


class Append(ContentCase):
    name = "append"
    old = pattern("old", 7000)
    new = old + pattern("more", 900)

    def change(self):
        with open(self.ep("f"), "ab") as f:
            f.write(self.new[len(self.old):])


class Chmod(Case):
    name = "chmod"

    def setup(self):
        write(self.ep("f"), b"x")
        os.chmod(self.ep("f"), 0o644)

    def prime(self):
        assert stat.S_IMODE(os.stat(self.mp("f")).st_mode) == 0o644

    def change(self):
        os.chmod(self.ep("f"), 0o600)

    def seen(self):
        mode = stat.S_IMODE(os.stat(self.mp("f")).st_mode)
        if mode not in (0o644, 0o600):
            raise AssertionError(f"chmod: mode {mode:o}")
        return mode == 0o600


class NewFile(Case):
    """A name looked up (absent) before it is created: no negative entry may
    outlive the lifetime (cache=none: none at all)."""
    name = "new_file"

    def prime(self):
        assert absent(self.mp("f"))
        try:
            os.open(self.mp("f"), os.O_RDONLY)
            raise AssertionError("new_file: opened a missing file")
        except FileNotFoundError:
            pass
        assert os.listdir(self.m) == []

    def change(self):
        write(self.ep("f"), b"appeared")

    def seen(self):
        data = read_if_there(self.mp("f"))
        if data not in (None, b"appeared"):
            raise AssertionError(f"new_file: read {data!r}")
        return data is not None and os.listdir(self.m) == ["f"]


class Unlink(Case):
    name = "unlink"

    def setup(self):
        write(self.ep("f"), b"doomed")

    def prime(self):
        assert read(self.mp("f")) == b"doomed"
        assert os.listdir(self.m) == ["f"]

    def change(self):
        os.unlink(self.ep("f"))

    def seen(self):
        data = read_if_there(self.mp("f"))
        if data not in (None, b"doomed"):
            raise AssertionError(f"unlink: read {data!r}")
        return data is None and absent(self.mp("f")) and os.listdir(self.m) == []


class RenameFile(Case):
    name = "rename_file"

    def setup(self):
        write(self.ep("a"), b"moving")

    def prime(self):
        assert read(self.mp("a")) == b"moving"
        assert absent(self.mp("b"))
        assert os.listdir(self.m) == ["a"]

    def change(self):
        os.rename(self.ep("a"), self.ep("b"))

    def seen(self):
        data = read_if_there(self.mp("b"))
        if data not in (None, b"moving"):
            raise AssertionError(f"rename_file: b reads {data!r}")
        return data is not None and absent(self.mp("a")) and os.listdir(self.m) == ["b"]


class RenameDir(Case):
    name = "rename_dir"

    def setup(self):
        os.makedirs(self.ep("d1", "sub"))
        write(self.ep("d1", "sub", "f"), b"inside")

    def prime(self):
        assert read(self.mp("d1", "sub", "f")) == b"inside"
        assert absent(self.mp("d2"))
        assert os.listdir(self.m) == ["d1"]

    def change(self):
        os.rename(self.ep("d1"), self.ep("d2"))

    def seen(self):
        data = read_if_there(self.mp("d2", "sub", "f"))
        if data not in (None, b"inside"):
            raise AssertionError(f"rename_dir: d2/sub/f reads {data!r}")
        return (data is not None and absent(self.mp("d1")) and
                absent(self.mp("d1", "sub", "f")) and os.listdir(self.m) == ["d2"])


class MkdirListed(Case):
    name = "mkdir_in_listed_dir"

    def setup(self):
        os.mkdir(self.ep("a"))

    def prime(self):
        assert os.listdir(self.m) == ["a"]
        assert absent(self.mp("new"))

    def change(self):
        os.mkdir(self.ep("new"))

    def seen(self):
        names = sorted(os.listdir(self.m))
        if names not in (["a"], ["a", "new"]):
            raise AssertionError(f"mkdir: listing {names}")
        return names == ["a", "new"] and os.path.isdir(self.mp("new"))


class RmdirListed(Case):
    name = "rmdir_in_listed_dir"

    def setup(self):
        os.mkdir(self.ep("a"))
        os.mkdir(self.ep("b"))

    def prime(self):
        assert sorted(os.listdir(self.m)) == ["a", "b"]
        assert os.path.isdir(self.mp("b"))

    def change(self):
        os.rmdir(self.ep("b"))

    def seen(self):
        names = sorted(os.listdir(self.m))
        if names not in (["a"], ["a", "b"]):
            raise AssertionError(f"rmdir: listing {names}")
        return names == ["a"] and absent(self.mp("b"))


class SymlinkCase(Case):
    """A symlink l -> t1 replaced by one to t2 (cached symlink targets must
    not outlive the lifetime)."""

    def setup(self):
        write(self.ep("t1"), b"one")
        write(self.ep("t2"), b"two")
        os.symlink("t1", self.ep("l"))

    def prime(self):
        assert os.readlink(self.mp("l")) == "t1"
        assert read(self.mp("l")) == b"one"

    def seen(self):
        target = os.readlink(self.mp("l"))
        if target not in ("t1", "t2"):
            raise AssertionError(f"{self.name}: readlink {target!r}")
        data = read(self.mp("l"))
        if data not in (b"one", b"two"):
            raise AssertionError(f"{self.name}: read {data!r}")
        return target == "t2" and data == b"two"


class SymlinkRenamed(SymlinkCase):
    name = "symlink_replaced_by_rename"

    def change(self):
        os.symlink("t2", self.ep("l.new"))
        os.rename(self.ep("l.new"), self.ep("l"))


class SymlinkRecreated(SymlinkCase):
    name = "symlink_unlinked_and_recreated"

    def change(self):
        os.unlink(self.ep("l"))
        os.symlink("t2", self.ep("l"))


EXPORT_CASES = [SameSize, Grow, Shrink, Append, Chmod, NewFile, Unlink, RenameFile, RenameDir,
                MkdirListed, RmdirListed, SymlinkRenamed, SymlinkRecreated]


def run_export_cases(tc, mnt, rel, ttl):
    """All cases at once on `mnt`: ttl None = must be seen on the first try
    (cache=none); else polled until ttl + MARGIN. Returns {case: seconds}."""
    os.mkdir(mnt.export(rel))
    cases = [c(mnt, rel) for c in EXPORT_CASES]
    for c in cases:
        c.strict = ttl is None  # cache=none: no page cache, nothing can mix
    try:
        for c in cases:
            c.setup()
        for c in cases:
            c.prime()
        for c in cases:
            c.change()
            c.changed_at = time.monotonic()
        pending, took, stale_first = list(cases), {}, []
        first = True
        while pending:
            for c in list(pending):
                if c.seen():
                    took[c.name] = time.monotonic() - c.changed_at
                    pending.remove(c)
                elif first:
                    stale_first.append(c.name)
            first = False
            if ttl is None or not pending:
                break
            if all(time.monotonic() > c.changed_at + ttl + MARGIN for c in pending):
                break
            time.sleep(0.02)
        mode = mnt.opts.split(",", 2)[-1]
        for name, t in took.items():
            SEEN.append((mode, name, t))
        print(f"\n  [{mode}] " + ", ".join(f"{n} seen after {t * 1000:.0f} ms"
                                           for n, t in sorted(took.items(), key=lambda x: x[1])),
              flush=True)
        if stale_first:
            print(f"  [{mode}] still old on the first check: {', '.join(stale_first)}", flush=True)
        limit = "at once" if ttl is None else f"within {ttl + MARGIN:.1f} s"
        tc.assertEqual([c.name for c in pending], [], f"changes not seen {limit}")
        # Once seen, seen for good, exactly.
        for c in cases:
            c.strict = True
            tc.assertTrue(c.seen(), f"{c.name}: the new state was seen, then not")
        return took
    finally:
        for c in cases:
            c.close()


class ExportChanges(unittest.TestCase):
    def test_none_sees_export_changes_at_once(self):
        run_export_cases(self, MOUNTS["N"], "exp_none", None)

    def test_loose_sees_export_changes_within_lifetime(self):
        took = run_export_cases(self, MOUNTS["L"], "exp_loose", LOOSE_TTL)
        self.assertLessEqual(max(took.values()), LOOSE_TTL + MARGIN)

    def test_readonly_actimeo2_sees_export_changes_within_lifetime(self):
        took = run_export_cases(self, MOUNTS["R"], "exp_ro", READONLY_TTL)
        self.assertLessEqual(max(took.values()), READONLY_TTL + MARGIN)

    def test_cached_attrs_handed_on_keep_only_the_rest_of_their_lifetime(self):
        """Attributes fetched at t0 and handed to the kernel again from the
        mount's attribute cache at t0 + 0.75 lifetime (a listing's
        readdirplus) may be kept by the kernel until t0 + lifetime, not for a
        whole new lifetime: a change on the export after that is seen by
        t0 + lifetime + slack. (Was stale until t0 + 1.75 lifetimes.)"""
        mnt, ttl = MOUNTS["R"], READONLY_TTL
        os.mkdir(mnt.export("ttl_rest"))
        write(mnt.export("ttl_rest", "f"), b"x" * 10)
        t0 = time.monotonic()
        self.assertEqual(os.stat(mnt.path("ttl_rest", "f")).st_size, 10)
        time.sleep(max(0.0, t0 + 0.75 * ttl - time.monotonic()))
        self.assertEqual(os.listdir(mnt.path("ttl_rest")), ["f"])
        os.truncate(mnt.export("ttl_rest", "f"), 20)
        time.sleep(max(0.0, t0 + ttl + 0.3 * ttl - time.monotonic()))
        self.assertEqual(os.stat(mnt.path("ttl_rest", "f")).st_size, 20,
                         f"stale {time.monotonic() - t0:.2f} s after the attributes were "
                         f"fetched (lifetime {ttl:g} s)")

    def test_none_open_file_follows_export(self):
        """cache=none, no page cache: every read of an open descriptor sees
        the export's current contents."""
        mnt = MOUNTS["N"]
        os.mkdir(mnt.export("none_fd"))
        e, m = mnt.export("none_fd", "f"), mnt.path("none_fd", "f")
        write(e, b"a" * 100)
        fd = os.open(m, os.O_RDONLY)
        try:
            self.assertEqual(pread_all(fd), b"a" * 100)
            for i, data in enumerate([b"b" * 100, b"c" * 50, b"d" * 3000, b""]):
                rewrite_in_place(e, data)
                self.assertEqual(pread_all(fd), data, f"version {i}")
                self.assertEqual(os.fstat(fd).st_size, len(data))
        finally:
            os.close(fd)


def replace_reusing_inode(make, path):
    """Removes `path` on the export and calls make(path) until the new file
    has the old one's inode number (ext4 hands a freed number out again at
    once). Files that got another number are moved aside. Returns whether
    the number was reused."""
    old = os.lstat(path).st_ino
    os.unlink(path)
    for i in range(64):
        make(path)
        if os.lstat(path).st_ino == old:
            return True
        os.rename(path, f"{path}.miss{i}")
    return False


class ReusedInodeNumbers(unittest.TestCase):
    """A file replaced on the export by one with the same inode number (so
    the same qid.path) is still a new file: a symlink's cached target, the
    kernel's inode and our fids must not outlive the lifetime. The kernel
    drops a regular file's pages when its mtime or size changes, but keeps a
    cached symlink target for as long as the node id lives (was: the old
    target for good once a getattr had seen the new symlink's attributes)."""

    def check_symlink(self, mnt, rel, ttl, stat_between):
        d = mnt.export(rel)
        os.mkdir(d)
        write(os.path.join(d, "t1"), b"one")
        write(os.path.join(d, "t2"), b"two")
        os.symlink("t1", os.path.join(d, "l"))
        m = mnt.path(rel, "l")
        self.assertEqual(os.readlink(m), "t1")
        self.assertEqual(read(m), b"one")
        # An O_PATH descriptor keeps the old node id's inode in the kernel;
        # its fstat after the lifetime asks the server, which answers with
        # the new symlink's attributes (same number, same path).
        fd = os.open(m, os.O_PATH | os.O_NOFOLLOW)
        try:
            if not replace_reusing_inode(lambda p: os.symlink("t2", p), os.path.join(d, "l")):
                self.skipTest("the export's filesystem did not reuse the inode number")
            t0 = time.monotonic()
            if stat_between:
                time.sleep(ttl + EPS)
                self.assertTrue(stat.S_ISLNK(os.fstat(fd).st_mode))
            while os.readlink(m) != "t2":
                self.assertLess(time.monotonic() - t0, ttl + MARGIN,
                                "the old symlink's target outlived the lifetime")
                self.assertEqual(os.readlink(m), "t1")
                time.sleep(0.05)
            for _ in range(3):  # seen once, seen for good
                self.assertEqual(os.readlink(m), "t2")
                self.assertEqual(read(m), b"two")
                self.assertEqual(os.lstat(m).st_ino, os.lstat(os.path.join(d, "l")).st_ino)
        finally:
            os.close(fd)

    def test_recreated_symlink_seen_within_lifetime(self):
        self.check_symlink(MOUNTS["R"], "reuse_sym", READONLY_TTL, False)

    def test_recreated_symlink_seen_after_getattr_of_the_old_one(self):
        self.check_symlink(MOUNTS["L"], "reuse_sym_stat", LOOSE_TTL, True)

    def test_symlink_touched_through_the_mount_stays_the_same_file(self):
        """A symlink's mtime changed through the mount (touch -h) is our own
        change, not a newer file: a descriptor held on it keeps seeing it
        (nlink 1, the new mtime) after the next lookup."""
        mnt = MOUNTS["N"]  # every path walk looks the name up again
        d = mnt.export("touch_sym")
        os.mkdir(d)
        os.symlink("t", os.path.join(d, "l"))
        m = mnt.path("touch_sym", "l")
        fd = os.open(m, os.O_PATH | os.O_NOFOLLOW)
        try:
            os.utime(m, ns=(OLD_MTIME * 10**9, OLD_MTIME * 10**9), follow_symlinks=False)
            self.assertEqual(os.lstat(m).st_mtime, OLD_MTIME)
            self.assertEqual(os.lstat(os.path.join(d, "l")).st_mtime, OLD_MTIME)
            st = os.fstat(fd)
            self.assertEqual((st.st_nlink, st.st_mtime), (1, OLD_MTIME))
            self.assertEqual(os.readlink(m), "t")
        finally:
            os.close(fd)

    def test_file_replaced_by_symlink_with_its_number(self):
        mnt, ttl = MOUNTS["L"], LOOSE_TTL
        d = mnt.export("reuse_type")
        os.mkdir(d)
        write(os.path.join(d, "t"), b"target")
        write(os.path.join(d, "x"), b"file")
        m = mnt.path("reuse_type", "x")
        # Not opened: an open (or the fid parked after it) would keep the
        # number taken on the server.
        self.assertTrue(stat.S_ISREG(os.lstat(m).st_mode))
        if not replace_reusing_inode(lambda p: os.symlink("t", p), os.path.join(d, "x")):
            self.skipTest("the export's filesystem did not reuse the inode number")
        t0 = time.monotonic()
        while not os.path.islink(m):
            self.assertLess(time.monotonic() - t0, ttl + MARGIN)
            self.assertEqual(os.lstat(m).st_size, 4)
            time.sleep(0.05)
        self.assertEqual(os.readlink(m), "t")
        self.assertEqual(read(m), b"target")


class LooseOwnChanges(unittest.TestCase):
    """cache=loose: what this mount does, this mount sees at once (its caches
    are updated or dropped by its own operations), even with every name
    looked up and every listing read before."""

    def test_own_changes_seen_at_once(self):
        mnt = MOUNTS["L"]
        d = mnt.path("own")
        os.mkdir(d)
        e = mnt.export("own")
        p = lambda *x: os.path.join(d, *x)  # noqa: E731
        # Negative entries and a cached (empty) listing first.
        for name in ("f", "g", "sub", "l"):
            self.assertTrue(absent(p(name)))
        self.assertEqual(os.listdir(d), [])
        # create
        fd = os.open(p("f"), os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
        os.write(fd, b"hello")
        self.assertEqual(os.listdir(d), ["f"])
        self.assertEqual(os.stat(p("f")).st_size, 5)
        self.assertEqual(read(p("f")), b"hello")
        # write through another descriptor, seen through the first
        fd2 = os.open(p("f"), os.O_WRONLY)
        os.pwrite(fd2, b"XY", 2)
        os.close(fd2)
        self.assertEqual(os.pread(fd, 100, 0), b"heXYo")
        self.assertEqual(read(p("f")), b"heXYo")
        with open(p("f"), "ab") as f:
            f.write(b" world")
        self.assertEqual(os.stat(p("f")).st_size, 11)
        self.assertEqual(os.pread(fd, 100, 0), b"heXYo world")
        os.close(fd)
        # truncate
        os.truncate(p("f"), 3)
        self.assertEqual(os.stat(p("f")).st_size, 3)
        self.assertEqual(read(p("f")), b"heX")
        os.truncate(p("f"), 6)
        self.assertEqual(read(p("f")), b"heX\0\0\0")
        # rename onto a name known absent
        os.rename(p("f"), p("g"))
        self.assertTrue(absent(p("f")))
        self.assertEqual(read(p("g")), b"heX\0\0\0")
        self.assertEqual(os.listdir(d), ["g"])
        # rename over an existing, cached file
        write(p("f"), b"replacement")
        self.assertEqual(read(p("g")), b"heX\0\0\0")
        os.rename(p("f"), p("g"))
        self.assertEqual(read(p("g")), b"replacement")
        self.assertEqual(os.stat(p("g")).st_size, 11)
        self.assertEqual(os.listdir(d), ["g"])
        # chmod
        os.chmod(p("g"), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(p("g")).st_mode), 0o600)
        # unlink
        os.unlink(p("g"))
        self.assertTrue(absent(p("g")))
        self.assertRaises(FileNotFoundError, read, p("g"))
        self.assertEqual(os.listdir(d), [])
        # mkdir, listing, rmdir
        os.mkdir(p("sub"))
        self.assertEqual(os.listdir(d), ["sub"])
        self.assertTrue(os.path.isdir(p("sub")))
        write(p("sub", "x"), b"1")
        self.assertEqual(os.listdir(p("sub")), ["x"])
        os.unlink(p("sub", "x"))
        self.assertEqual(os.listdir(p("sub")), [])
        os.rmdir(p("sub"))
        self.assertEqual(os.listdir(d), [])
        self.assertTrue(absent(p("sub")))
        # symlink replaced through the mount
        os.symlink("t1", p("l"))
        self.assertEqual(os.readlink(p("l")), "t1")
        os.unlink(p("l"))
        os.symlink("t2", p("l"))
        self.assertEqual(os.readlink(p("l")), "t2")
        # and all of it really is on the server
        self.assertEqual(os.listdir(e), ["l"])
        self.assertEqual(os.readlink(os.path.join(e, "l")), "t2")


class LoosePageCache(unittest.TestCase):
    def test_page_cache_dropped_when_export_file_changes(self):
        """A file read through the mount (now in the page cache, kept across
        opens) and then rewritten in the export with other contents, size
        and mtime reads back the new contents once the lifetime is over,
        through a fresh open and through a descriptor opened before."""
        mnt = MOUNTS["L"]
        os.mkdir(mnt.export("pagecache"))
        e, m = mnt.export("pagecache", "f"), mnt.path("pagecache", "f")
        old, new = os.urandom(300_000), os.urandom(200_001)
        write(e, old)
        os.utime(e, (OLD_MTIME, OLD_MTIME))
        self.assertEqual(read(m), old)
        self.assertEqual(read(m), old)  # second open: from the kept page cache
        fd = os.open(m, os.O_RDONLY)
        try:
            self.assertEqual(pread_all(fd), old)
            rewrite_in_place(e, new)
            t0 = time.monotonic()
            deadline = t0 + LOOSE_TTL + MARGIN
            fresh_t = held_t = None
            while time.monotonic() < deadline and (fresh_t is None or held_t is None):
                if fresh_t is None and old_or_new(read(m), old, new, "page cache: fresh open",
                                                  strict=False):
                    fresh_t = time.monotonic() - t0
                if held_t is None and old_or_new(pread_all(fd), old, new, "page cache: held fd",
                                                 strict=False):
                    held_t = time.monotonic() - t0
                time.sleep(0.02)
            self.assertIsNotNone(fresh_t, "new contents not read through a fresh open")
            self.assertIsNotNone(held_t, "new contents not read through the open descriptor")
            print(f"\n  [cache=loose] page cache: fresh open new after {fresh_t * 1000:.0f} ms, "
                  f"held fd after {held_t * 1000:.0f} ms", flush=True)
            SEEN.append(("cache=loose", "page_cache_fresh_open", fresh_t))
            SEEN.append(("cache=loose", "page_cache_held_fd", held_t))
            self.assertEqual(os.fstat(fd).st_size, len(new))
            self.assertEqual(os.stat(m).st_mtime_ns, os.stat(e).st_mtime_ns)
            self.assertEqual(read(m), new)
            self.assertEqual(pread_all(fd), new)
        finally:
            os.close(fd)


class Writeback(unittest.TestCase):
    """-o cache=loose,writeback_cache: what is written through the mount is on
    the export, byte-exact, after fsync and close; sizes through the mount are
    right all along."""

    @classmethod
    def setUpClass(cls):
        cls.mnt = MOUNTS["W"]
        os.mkdir(cls.mnt.export("wb"))

    def paths(self, name):
        return self.mnt.path("wb", name), self.mnt.export("wb", name)

    def test_new_file_small_writes(self):
        m, e = self.paths("small")
        data = os.urandom(300_001)
        fd = os.open(m, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        off = 0
        for i, n in enumerate([1, 4095, 4097, 1000, 33333, 7] * 1000):
            if off >= len(data):
                break
            off += os.write(fd, data[off:off + n])
            if i % 50 == 0:
                self.assertEqual(os.fstat(fd).st_size, off)
                self.assertEqual(os.stat(m).st_size, off)
        self.assertEqual(off, len(data))
        os.fsync(fd)
        os.close(fd)
        self.assertEqual(read(e), data)
        self.assertEqual(os.stat(m).st_size, len(data))
        self.assertEqual(read(m), data)

    def test_write_only_partial_overwrite(self):
        m, e = self.paths("partial")
        base = bytearray(os.urandom(100_000))
        write(e, bytes(base))  # made on the server, not through the mount
        fd = os.open(m, os.O_WRONLY)  # no O_TRUNC: the rest must survive
        patches = [(40_123, os.urandom(5_000)), (1, b"Z"), (65_535, os.urandom(3)),
                   (99_990, os.urandom(20))]  # the last one extends the file
        for off, b in patches:
            self.assertEqual(os.pwrite(fd, b, off), len(b))
            end = off + len(b)
            if end > len(base):
                base.extend(b"\0" * (end - len(base)))
            base[off:end] = b
        self.assertEqual(os.fstat(fd).st_size, 100_010)
        os.fsync(fd)
        os.close(fd)
        self.assertEqual(read(e), bytes(base))
        self.assertEqual(os.stat(m).st_size, 100_010)
        self.assertEqual(read(m), bytes(base))

    def test_o_append(self):
        m, e = self.paths("append")
        write(e, b"from the server\n")  # its size is the server's
        expect = b"from the server\n"
        fd1 = os.open(m, os.O_WRONLY | os.O_APPEND)
        fd2 = os.open(m, os.O_RDWR | os.O_APPEND)
        for i in range(200):
            chunk = f"line {i} {'x' * (i % 37)}\n".encode()
            self.assertEqual(os.write(fd1 if i % 3 else fd2, chunk), len(chunk))
            expect += chunk
        # a positioned write on an O_APPEND descriptor still appends (Linux)
        os.lseek(fd2, 0, os.SEEK_SET)
        os.write(fd2, b"END\n")
        expect += b"END\n"
        self.assertEqual(os.fstat(fd1).st_size, len(expect))
        os.fsync(fd1)
        os.close(fd1)
        os.fsync(fd2)
        os.close(fd2)
        self.assertEqual(read(e), expect)
        self.assertEqual(os.stat(m).st_size, len(expect))
        self.assertEqual(read(m), expect)

    def test_truncate_and_write(self):
        m, e = self.paths("trunc")
        fd = os.open(m, os.O_RDWR | os.O_CREAT, 0o644)
        os.write(fd, b"a" * 10_000)
        os.ftruncate(fd, 3_000)
        os.pwrite(fd, b"b" * 100, 5_000)  # a hole from 3000 to 5000
        os.ftruncate(fd, 5_050)           # cuts the write in half
        self.assertEqual(os.fstat(fd).st_size, 5_050)
        os.fsync(fd)
        os.close(fd)
        expect = b"a" * 3_000 + b"\0" * 2_000 + b"b" * 50
        self.assertEqual(read(e), expect)
        self.assertEqual(os.stat(m).st_size, 5_050)
        self.assertEqual(read(m), expect)


# ---------------------------------------------------------------------------
# Two mounts of one export.

class TwoMounts(unittest.TestCase):
    def races(self, a, b, rel):
        """A (`a`) truncates, renames over, unlinks and rewrites files that B
        (`b`, lifetime PAIR_TTL) has open or cached. Until the lifetime is
        over B sees the old or the new state (contents: LIFETIME_MIXES); a
        lifetime after the changes B sees every new state on its first try,
        through fresh opens and through the descriptors it kept open."""
        A = lambda *p: a.path(rel, *p)  # noqa: E731
        B = lambda *p: b.path(rel, *p)  # noqa: E731
        os.mkdir(A())
        t_old, t_short = pattern("T", 50_000), pattern("S", 50_000)
        r_old, r_new = pattern("ro1", 40_000), pattern("RO2", 40_000)
        u_old = pattern("U", 20_000)
        w_old, w_new = pattern("w1", 30_000), pattern("W2", 20_000)
        files = (("trunc0", t_old), ("trunc", t_short), ("over", r_old), ("unl", u_old),
                 ("rw", w_old))
        for name, data in files:
            write(A(name), data)
            os.utime(b.export(rel, name), (OLD_MTIME, OLD_MTIME))
        # B reads everything (page cache, attributes, entries, the listing)
        # and keeps the files that stay open.
        self.assertEqual(sorted(os.listdir(B())), ["over", "rw", "trunc", "trunc0", "unl"])
        fds = {}
        for name, data in files:
            self.assertEqual(read(B(name)), data)
            self.assertEqual(os.stat(B(name)).st_size, len(data))
            if name in ("trunc0", "trunc", "rw"):
                fds[name] = os.open(B(name), os.O_RDONLY)
                self.assertEqual(pread_all(fds[name]), data)
        try:
            # A's changes.
            os.truncate(A("trunc0"), 0)        # to 0 and back: same size,
            os.truncate(A("trunc0"), 50_000)   # zeros, a new mtime
            t_new = b"\0" * 50_000
            os.truncate(A("trunc"), 1_000)
            write(A("over.tmp"), r_new)
            os.rename(A("over.tmp"), A("over"))
            os.unlink(A("unl"))
            rewrite_in_place(A("rw"), w_new)
            changed = time.monotonic()

            def check(strict):
                """True when B sees every new state; while not strict, old
                states are allowed too."""
                ok = []

                def size_ok(what, size, old, new):
                    if size not in (len(old), len(new)):
                        if strict:
                            raise AssertionError(f"{what}: size {size}")
                        MIXED.append(f"{what}: size {size}")
                    return size == len(new)

                for name, old, new in (("trunc0", t_old, t_new),
                                       ("trunc", t_short, t_short[:1000]),
                                       ("over", r_old, r_new), ("rw", w_old, w_new)):
                    ok.append(old_or_new(read(B(name)), old, new, f"{rel}: B open+read {name}",
                                         strict))
                    ok.append(size_ok(f"B stat {name}", os.stat(B(name)).st_size, old, new))
                    if name in fds:
                        ok.append(old_or_new(pread_all(fds[name]), old, new,
                                             f"{rel}: B held fd {name}", strict))
                        ok.append(size_ok(f"B fstat {name}", os.fstat(fds[name]).st_size,
                                          old, new))
                data = read_if_there(B("unl"))
                if data not in (None, u_old):
                    raise AssertionError(f"B read unl: {len(data)} bytes, not the old ones")
                ok.append(data is None and absent(B("unl")))
                names = sorted(os.listdir(B()))
                if names not in (["over", "rw", "trunc", "trunc0"],
                                 ["over", "rw", "trunc", "trunc0", "unl"]):
                    raise AssertionError(f"B listing {names}")
                ok.append("unl" not in names)
                if strict:
                    self.assertTrue(all(ok), f"B still stale {PAIR_TTL + EPS:.2f} s after the "
                                    f"changes: {ok}")
                return all(ok)

            first_seen = None
            while time.monotonic() < changed + PAIR_TTL - 0.1:
                if check(False) and first_seen is None:
                    first_seen = time.monotonic() - changed
                time.sleep(0.05)
            # Strict: B's first look after the lifetime is the new state.
            while time.monotonic() < changed + PAIR_TTL + EPS:
                time.sleep(0.01)
            check(True)
            if first_seen is None:
                first_seen = time.monotonic() - changed
            print(f"\n  [{a.opts.split(',', 2)[-1]} -> {b.opts.split(',', 2)[-1]}] B saw all of "
                  f"A's changes after {first_seen * 1000:.0f} ms", flush=True)
            SEEN.append(("pair " + rel, "races", first_seen))
        finally:
            for fd in fds.values():
                os.close(fd)

    # A file B has open that another client replaces or unlinks: B's
    # descriptors keep reading the old file, and fstat reports its last
    # attributes (diod stats even an open fid by its path, so the client
    # cannot ask the server about the old file any more).
    def test_open_file_replaced_or_unlinked_elsewhere(self):
        a, b, rel = MOUNTS["N"], MOUNTS["B1"], "held_elsewhere"
        os.mkdir(a.path(rel))
        old = {"over": pattern("over1", 40_000), "unl": pattern("unl1", 20_000)}
        fds = {}
        for name, data in old.items():
            write(a.path(rel, name), data)
            fds[name] = os.open(b.path(rel, name), os.O_RDONLY)
            self.assertEqual(pread_all(fds[name]), data)
        try:
            write(a.path(rel, "over.tmp"), pattern("over2", 40_000))
            os.rename(a.path(rel, "over.tmp"), a.path(rel, "over"))
            os.unlink(a.path(rel, "unl"))
            time.sleep(PAIR_TTL + EPS)
            errors = []
            for name, data in old.items():
                try:
                    self.assertEqual(os.fstat(fds[name]).st_size, len(data))
                    self.assertEqual(pread_all(fds[name]), data)
                except OSError as e:
                    errors.append(f"{name}: {e}")
            self.assertEqual(errors, [], "descriptors B kept open fail")
        finally:
            for fd in fds.values():
                os.close(fd)

    def test_races_loose_loose(self):
        self.races(MOUNTS["A1"], MOUNTS["B1"], "pair_ll")

    def test_races_none_loose(self):
        self.races(MOUNTS["N"], MOUNTS["B1"], "pair_nl")

    # A file published by rename (write a temporary file, rename it over the
    # name) while B's entry for the name is fresh: B's open finds the name's
    # file replaced (Rlopen's qid is not the inode's) and fails with ESTALE,
    # the kernel looks the name up again and opens the new file. B must
    # never read the old file's cached pages mixed with the new one's.
    def test_rename_published_file_not_mixed_after_reclaim(self):
        a, b, rel = MOUNTS["N"], MOUNTS["B1"], "publish_reclaim"
        os.mkdir(a.path(rel))
        v1, v2 = pattern("one", 65536), pattern("two", 65536)
        write(a.path(rel, "f"), v1)
        self.assertEqual(read(b.path(rel, "f")), v1)
        os.stat(b.path(rel, "f"))  # B's attributes and entry are fresh now
        write(a.path(rel, "f.tmp"), v2)
        os.rename(a.path(rel, "f.tmp"), a.path(rel, "f"))
        fd = os.open(b.path(rel, "f"), os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 32768, 0, os.POSIX_FADV_DONTNEED)
            got = pread_all(fd)
        finally:
            os.close(fd)
        self.assertTrue(got in (v1, v2), f"B read a mix of {len(got)} bytes: starts "
                        f"{got[:12]!r}, ends {got[-12:]!r}")

    # --- A publishes versions by rename, B reads them.
    BLOCK, BLOCKS = 4096, 16

    def version_data(self, v):
        return b"".join((f"v{v:09d} block {i:02d} ".encode() * 205)[:self.BLOCK]
                        for i in range(self.BLOCKS))

    class Mixed(AssertionError):
        pass

    def parse(self, data):
        """The version of a complete file; fails on a torn or mixed one."""
        size = self.BLOCK * self.BLOCKS
        if len(data) != size:
            raise AssertionError(f"B read {len(data)} bytes, not {size}: torn")
        v = int(data[1:10])
        if data != self.version_data(v):
            vs = sorted({bytes(data[i:i + 10]).decode() for i in range(0, size, self.BLOCK)})
            raise self.Mixed(f"B read a mixed file: block headers {vs}")
        return v

    def versions(self, a, b, rel, seconds=2.5):
        A = lambda *p: a.path(rel, *p)  # noqa: E731
        B = lambda *p: b.path(rel, *p)  # noqa: E731
        os.mkdir(A())
        write(A("f"), self.version_data(0))
        published = [(0, time.monotonic())]  # (version, when its rename returned)
        self.assertEqual(self.parse(read(B("f"))), 0)
        stop = threading.Event()
        errors = []

        def writer():
            try:
                v = 0
                while not stop.is_set():
                    v += 1
                    write(A("f.tmp"), self.version_data(v))
                    os.rename(A("f.tmp"), A("f"))
                    published.append((v, time.monotonic()))
                    time.sleep(0.005)
            except Exception as ex:  # reported by the main thread
                errors.append(ex)

        t = threading.Thread(target=writer)
        t.start()
        reads = []  # (start, version)
        estale, mixed = 0, []
        try:
            end = time.monotonic() + seconds
            while time.monotonic() < end and not errors:
                start = time.monotonic()
                try:
                    data = read(B("f"))
                except OSError as e:
                    # An open racing two replacements in a row: the client
                    # finds the name's file replaced (ESTALE), the kernel
                    # looks it up again and retries once, and A may have
                    # replaced it again meanwhile (NFS behaves the same). It
                    # must stay rare; any other error fails.
                    if e.errno != errno.ESTALE:
                        raise
                    estale += 1
                    continue
                try:
                    reads.append((start, self.parse(data)))
                except self.Mixed as e:
                    mixed.append(str(e))
        finally:
            stop.set()
            t.join()
        self.assertEqual(errors, [], "writer failed")
        self.assertEqual(mixed, [], "B read a file mixed from two versions")
        self.assertLessEqual(estale, max(2, len(reads) // 50), "opens failing with ESTALE")
        last = published[-1][0]
        self.assertGreater(last, 10, "the writer hardly ran")
        # Non-decreasing: B never goes back to an older version.
        seq = [v for _, v in reads]
        back = [(x, y) for x, y in zip(seq, seq[1:]) if y < x]
        self.assertEqual(back, [], "B went back to older versions")
        # Lag: a version older than one published more than a lifetime before
        # the read started is stale.
        stale, lag_max = [], 0.0
        for start, v in reads:
            newer = [(w, p) for w, p in published if w > v and p < start]
            if newer:
                lag = start - min(p for _, p in newer)  # how long v had been superseded
                lag_max = max(lag_max, lag)
                if lag > PAIR_TTL + EPS:
                    stale.append((v, round(lag, 3)))
        self.assertEqual(stale, [], f"B read versions superseded for more than "
                         f"{PAIR_TTL + EPS} s")
        # After A stops and a lifetime passes, B sees the last version.
        time.sleep(PAIR_TTL + EPS)
        self.assertEqual(self.parse(read(B("f"))), last)
        print(f"\n  [{a.opts.split(',', 2)[-1]} -> {b.opts.split(',', 2)[-1]}] {last} versions "
              f"published, {len(reads)} reads by B ({len(set(seq))} distinct), none torn, "
              f"longest lag {lag_max * 1000:.0f} ms; {estale} opens failed with ESTALE", flush=True)
        self.assertGreater(len(reads), 20, "B hardly read")
        SEEN.append(("pair " + rel, "versions_max_lag", lag_max))

    def test_versions_loose_loose(self):
        self.versions(MOUNTS["A1"], MOUNTS["B1"], "ver_ll")

    def test_versions_none_loose(self):
        self.versions(MOUNTS["N"], MOUNTS["B1"], "ver_nl")


class CountedRequests(unittest.TestCase):
    """One mount with OPTS of a diod that logs every request."""
    OPTS = ""

    @classmethod
    def setUpClass(cls):
        cls.server = p9harness.Diod(debug=True)
        cls.mount = p9harness.Mount(cls.server, cls.OPTS)

    @classmethod
    def tearDownClass(cls):
        cls.mount.unmount()
        cls.server.stop()

    def count(self, what):
        """How many T<what> requests (e.g. "GETATTR") the server saw so far."""
        return len(re.findall(r"P9_T%s tag" % what, self.server.read_log()))


class LooseCachedAttrAnswers(CountedRequests):
    """cache=loose: the kernel asks for attributes again after every read or
    listing it sends (it marks its atime stale); those are answered from the
    daemon's attribute cache, with no Tgetattr, and what this mount changes
    (links, truncation on open, writes) is still seen at once."""
    OPTS = "cache=loose,actimeo=30"

    def test_stat_after_reading_or_listing_asks_nothing(self):
        d = self.mount.path("atime")
        os.mkdir(d)
        f = os.path.join(d, "f")
        write(f, b"x" * 10000)

        def use():
            self.assertEqual(os.listdir(d), ["f"])
            os.stat(d)
            with open(f, "rb") as h:
                # A real FUSE read (not the page cache), as a first read is.
                os.posix_fadvise(h.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
                self.assertEqual(len(h.read()), 10000)
                os.fstat(h.fileno())
            os.stat(f)
        use()
        before = self.count("GETATTR")
        for _ in range(3):
            use()
        self.assertEqual(self.count("GETATTR") - before, 0)

    def test_short_read_is_not_answered_with_the_cached_size(self):
        """A file rewritten shorter on the export, read again from the server
        (its pages dropped): the kernel learns the new size from the short
        read, and the getattr it sends after the read must not hand it the
        cached old size back (was: fstat showed 300000 bytes after 200001
        were read)."""
        e, m = self.mount.export("shrunk"), self.mount.path("shrunk")
        write(e, b"o" * 300_000)
        self.assertEqual(read(m), b"o" * 300_000)
        self.assertEqual(os.stat(m).st_size, 300_000)
        rewrite_in_place(e, b"n" * 200_001)
        fd = os.open(m, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            self.assertEqual(pread_all(fd), b"n" * 200_001)
            self.assertEqual(os.fstat(fd).st_size, 200_001)
            self.assertEqual(os.stat(m).st_size, 200_001)
        finally:
            os.close(fd)

    def test_own_link_changes_and_truncation_seen_at_once(self):
        d = self.mount.path("own-attrs")
        os.mkdir(d)
        a, b, t = (os.path.join(d, n) for n in ("a", "b", "t"))
        write(a, b"data")
        os.link(a, b)
        # A read makes the kernel ask for attributes again: the daemon's
        # cache then holds nlink 2, which the unlink must drop.
        self.assertEqual(read(b), b"data")
        self.assertEqual(os.stat(b).st_nlink, 2)
        self.assertEqual(os.stat(a).st_nlink, 2)
        os.unlink(a)
        self.assertEqual(os.stat(b).st_nlink, 1)
        c = os.path.join(d, "c")
        os.rename(b, c)
        self.assertEqual(os.stat(c).st_nlink, 1)
        self.assertEqual(os.stat(d).st_nlink, 2)
        write(t, b"12345")
        self.assertEqual(os.stat(t).st_size, 5)
        os.close(os.open(t, os.O_WRONLY | os.O_TRUNC))
        self.assertEqual(os.stat(t).st_size, 0)
        with open(t, "ab") as h:
            h.write(b"abc")
        self.assertEqual(os.stat(t).st_size, 3)
        os.mkdir(os.path.join(d, "sub"))
        self.assertEqual(os.stat(d).st_nlink, 3)
        os.rmdir(os.path.join(d, "sub"))
        self.assertEqual(os.stat(d).st_nlink, 2)


class NoneLookupAttrs(CountedRequests):
    """cache=none: a path walk's permission checks and the stat at its end
    use the attributes its own lookups just fetched (one Twalk + Tgetattr per
    name, as the kernel's 9p client), and nothing outlives that walk: the
    next walk, or an fstat a moment later, sees a change on the server."""
    OPTS = "cache=none"

    def test_stat_by_path_asks_once_per_name(self):
        os.makedirs(self.mount.path("w", "x"))
        f = self.mount.path("w", "x", "f")
        write(f, b"1")
        os.stat(f)
        walks, getattrs = self.count("WALK"), self.count("GETATTR")
        self.assertEqual(os.stat(f).st_size, 1)
        walks, getattrs = self.count("WALK") - walks, self.count("GETATTR") - getattrs
        self.assertEqual(walks, 3)
        # One per name looked up, plus at most the root's permission check
        # (it is never looked up). Before: three more.
        self.assertLessEqual(getattrs, walks + 1)

    def test_server_changes_seen_by_next_walk_and_fstat(self):
        f = self.mount.path("n")
        e = self.mount.export("n")
        write(e, b"1")
        self.assertEqual(os.stat(f).st_size, 1)
        write(e, b"12345")
        self.assertEqual(os.stat(f).st_size, 5)
        fd = os.open(f, os.O_RDONLY)
        try:
            self.assertEqual(os.fstat(fd).st_size, 5)
            write(e, b"1234567")
            time.sleep(0.1)  # ten times the lookup's window
            self.assertEqual(os.fstat(fd).st_size, 7)
        finally:
            os.close(fd)


class ParkedOpenFids(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = p9harness.Diod(debug=True)
        cls.loose = p9harness.Mount(cls.server, "cache=loose,actimeo=30")
        cls.none = p9harness.Mount(cls.server, "cache=none")
        # Parked fids live ten attribute lifetimes: 2 s here.
        cls.brief = p9harness.Mount(cls.server, "cache=loose,actimeo=0.2")

    @classmethod
    def tearDownClass(cls):
        cls.loose.unmount()
        cls.none.unmount()
        cls.brief.unmount()
        cls.server.stop()

    def lopens(self):
        return len(re.findall(r"P9_TLOPEN tag", self.server.read_log()))

    def opens_during(self, fn):
        """Tlopens the server saw while fn() ran."""
        before = self.lopens()
        fn()
        return self.lopens() - before

    def wait_parked(self, mount):
        """Waits until the daemon has parked a fid. close() returns before the
        kernel's asynchronous FUSE release reaches the daemon, so an open
        right after it may find nothing parked yet (seen with the ASan
        daemon). The stats file (rewritten every second) counts them; only a
        file written after this call counts, or a count from before the last
        reopen took the parked fid would do (seen under ASan too)."""
        path = p9stats.stats_path(mount.mountpoint)
        since = time.time_ns()

        def parked():
            try:
                with open(path) as f:
                    # fstat of the file read: a rewrite replaces it.
                    if os.fstat(f.fileno()).st_mtime_ns <= since:
                        return False
                    m = re.search(r"^cache open_fid .*entries=(\d+)", f.read(), re.M)
            except OSError:
                return False
            return m is not None and int(m.group(1)) >= 1
        self.assertTrue(p9harness.wait_for(parked, 5 + MARGIN), "no fid was parked")

    def test_reopen_takes_parked_fid_under_loose_only(self):
        write(self.loose.export("pk1"), b"one")
        self.assertEqual(read(self.loose.path("pk1")), b"one")
        for _ in range(2):
            self.wait_parked(self.loose)
            self.assertEqual(self.opens_during(lambda: read(self.loose.path("pk1"))), 0)
        # The same file object: a change made on the export in place is read
        # through the parked fid once the page cache is dropped.
        rewrite_in_place(self.loose.export("pk1"), b"two")
        os.utime(self.loose.export("pk1"), (OLD_MTIME, OLD_MTIME + 5))
        with open(self.loose.path("pk1"), "rb") as f:
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            self.assertEqual(os.pread(f.fileno(), 3, 0), b"two")
        # A write open needs its own open on the server.
        self.assertEqual(self.opens_during(lambda: open(self.loose.path("pk1"), "r+b").close()), 1)
        # cache=none: every open goes to the server.
        write(self.none.export("pk2"), b"x")
        self.assertEqual(self.opens_during(lambda: [read(self.none.path("pk2"))
                                                    for _ in range(3)]), 3)

    def test_locked_fid_is_not_reused(self):
        write(self.loose.export("pk3"), b"lock")
        with open(self.loose.path("pk3"), "rb") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH)
        # The lock goes with the release (which the kernel sends after
        # close() returns): the export's own users can then lock the file.
        def lockable():
            with open(self.loose.export("pk3"), "rb") as g:
                try:
                    fcntl.flock(g.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    return False
        self.assertTrue(p9harness.wait_for(lockable, 5))
        # A fid that held a lock is not reused: the next open is a new one.
        self.assertEqual(self.opens_during(lambda: read(self.loose.path("pk3"))), 1)

    def diod_holds(self, path):
        fds = f"/proc/{self.server.proc.pid}/fd"
        held = []
        for n in os.listdir(fds):
            try:
                held.append(os.readlink(os.path.join(fds, n)))
            except OSError:
                pass
        return any(h.startswith(path) for h in held)

    def park(self, mount, name):
        """Opens and closes export file `name` through `mount` and checks that
        diod keeps it open (the parked fid); returns its export path."""
        path = mount.export(name)
        write(path, b"parked")
        read(mount.path(name))
        self.assertTrue(p9harness.wait_for(lambda: self.diod_holds(path), 5),
                        "the parked fid should keep the file open on the server")
        return path

    def test_unlink_drops_parked_fid(self):
        path = self.park(self.loose, "pk4")
        os.unlink(self.loose.path("pk4"))
        self.assertTrue(p9harness.wait_for(lambda: not self.diod_holds(path), 5),
                        "diod still holds the unlinked file open")

    def test_parked_fid_clunked_after_its_lifetime(self):
        path = self.park(self.brief, "pk6")
        parked = time.monotonic()
        # Ten lifetimes (2 s), swept once a second.
        self.assertTrue(p9harness.wait_for(lambda: not self.diod_holds(path), 2 + 1 + MARGIN),
                        "diod still holds the file open after the parked fid's lifetime")
        self.assertGreater(time.monotonic() - parked, 1.0)

    def test_parked_fid_not_reused_after_restart(self):
        write(self.loose.export("pk5"), b"before")
        read(self.loose.path("pk5"))
        self.server.restart()
        rewrite_in_place(self.loose.export("pk5"), b"after!")
        os.utime(self.loose.export("pk5"), (OLD_MTIME, OLD_MTIME + 9))
        with open(self.loose.path("pk5"), "rb") as f:
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            self.assertEqual(os.pread(f.fileno(), 6, 0), b"after!")
        self.assertIn("P9_TLOPEN", self.server.read_log())


def main():
    p9harness.require_root()
    server = p9harness.Diod()
    for name, opts in (("N", "cache=none"), ("L", "cache=loose"),
                       ("R", f"cache=readonly,actimeo={READONLY_TTL:g}"),
                       ("W", "cache=loose,writeback_cache"),
                       ("A1", f"cache=loose,actimeo={PAIR_TTL:g}"),
                       ("B1", f"cache=loose,actimeo={PAIR_TTL:g}")):
        MOUNTS[name] = p9harness.Mount(server, opts)
        print(f"{name}: {server.source} on {MOUNTS[name].mountpoint} -o {MOUNTS[name].opts}",
              flush=True)
    started = time.monotonic()
    runner = unittest.TextTestRunner(verbosity=2, resultclass=p9harness.TimedResult)
    prog = unittest.main(argv=sys.argv, exit=False, testRunner=runner)
    ok = prog.result.wasSuccessful()
    print(f"total {time.monotonic() - started:.1f}s; slowest: {p9harness.slowest()}", flush=True)
    by_mode = {}
    for mode, case, t in SEEN:
        by_mode.setdefault(mode, []).append(t)
    for mode, ts in by_mode.items():
        print(f"seen after (ms) [{mode}]: max {max(ts) * 1000:.0f}, "
              f"min {min(ts) * 1000:.0f} over {len(ts)} checks", flush=True)
    for m in MIXED:
        print(f"within the lifetime (tolerated, see LIFETIME_MIXES): {m}", flush=True)
    for name, mnt in MOUNTS.items():
        if not mnt.unmount():
            print(f"mount {name}: daemon did not exit after umount", file=sys.stderr)
            ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
