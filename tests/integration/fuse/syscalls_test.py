#!/usr/bin/python3
"""Syscall-level suite: every FUSE operation of mount.9prdma, each result
checked on the export directory too, error cases included.

usage: syscalls_test.py [--opts MOUNT_OPTIONS] [unittest args...]
The mount always gets allow_other (the EACCES tests run as uid 65534).
"""

import ctypes
import ctypes.util
import errno
import fcntl
import hashlib
import mmap
import os
import stat
import subprocess
import sys
import textwrap
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import p9harness  # noqa: E402
import p9stats  # noqa: E402

OPTS = "allow_other"
MNT = None  # p9harness.Mount
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)

NOBODY = 65534
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
AT_FDCWD = -100


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def cache_mode():
    for o in OPTS.split(","):
        if o.startswith("cache="):
            return o.split("=", 1)[1]
    return "none"


def errno_of(fn, *args):
    try:
        fn(*args)
    except OSError as e:
        return e.errno
    return 0


def renameat2(old, new, flags):
    libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                               ctypes.c_uint]
    r = libc.renameat2(AT_FDCWD, old.encode(), AT_FDCWD, new.encode(), flags)
    return 0 if r == 0 else ctypes.get_errno()


def utimensat(path, atime, mtime):
    ts = (Timespec * 2)(Timespec(*atime), Timespec(*mtime))
    libc.utimensat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(Timespec), ctypes.c_int]
    r = libc.utimensat(AT_FDCWD, path.encode(), ts, 0)
    return 0 if r == 0 else ctypes.get_errno()


def fallocate(fd, mode, off, length):
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
    r = libc.fallocate(fd, mode, off, length)
    return 0 if r == 0 else ctypes.get_errno()


def as_nobody(code):
    """Runs python `code` as uid/gid 65534; returns its stdout (stripped)."""
    r = subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable,
         "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError(f"as_nobody failed: {r.stderr}")
    return r.stdout.strip()


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Base(unittest.TestCase):
    def setUp(self):
        name = self.id().rsplit(".", 1)[-1]
        self.m = MNT.path(name)
        self.e = MNT.export(name)
        os.mkdir(self.m)
        os.chmod(self.m, 0o755)

    def mp(self, *p):
        return os.path.join(self.m, *p)

    def ep(self, *p):
        return os.path.join(self.e, *p)

    def write(self, path, data):
        with open(path, "wb") as f:
            f.write(data)

    def read(self, path):
        with open(path, "rb") as f:
            return f.read()

    def assertEmptySoon(self, d):
        self.assertTrue(p9harness.wait_for(lambda: not os.listdir(d), 5), os.listdir(d))

    def assertErrno(self, err, fn, *args):
        got = errno_of(fn, *args)
        self.assertEqual(got, err, f"expected {errno.errorcode.get(err)}, got "
                         f"{errno.errorcode.get(got, got)}")


class Files(Base):
    def test_create_write_read(self):
        fd = os.open(self.mp("f"), os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o640)
        self.assertEqual(os.write(fd, b"hello world"), 11)
        os.lseek(fd, 0, os.SEEK_SET)
        self.assertEqual(os.read(fd, 100), b"hello world")
        self.assertEqual(os.fstat(fd).st_size, 11)
        os.close(fd)
        self.assertEqual(self.read(self.ep("f")), b"hello world")
        self.assertEqual(stat.S_IMODE(os.stat(self.ep("f")).st_mode), 0o640)
        self.assertErrno(errno.EEXIST, os.open, self.mp("f"), os.O_CREAT | os.O_EXCL | os.O_RDWR)

    def test_open_missing(self):
        self.assertErrno(errno.ENOENT, os.open, self.mp("nope"), os.O_RDONLY)
        self.assertErrno(errno.ENOENT, os.stat, self.mp("nope"))
        self.assertErrno(errno.ENOENT, os.open, self.mp("nodir", "f"), os.O_CREAT | os.O_WRONLY)

    def test_getattr_matches_export(self):
        self.write(self.mp("f"), b"x" * 12345)
        a, b = os.stat(self.mp("f")), os.stat(self.ep("f"))
        for field in ("st_size", "st_mode", "st_uid", "st_gid", "st_nlink", "st_mtime_ns",
                      "st_ino", "st_blocks"):
            self.assertEqual(getattr(a, field), getattr(b, field), field)

    def test_inode_numbers_stable(self):
        self.write(self.mp("f"), b"1")
        ino = os.stat(self.mp("f")).st_ino
        self.assertEqual(ino, os.stat(self.ep("f")).st_ino)  # qid.path is st_ino on diod
        os.rename(self.mp("f"), self.mp("g"))
        self.assertEqual(os.stat(self.mp("g")).st_ino, ino)
        self.assertEqual(os.lstat(self.mp("g")).st_ino, ino)
        names = {e.name: e.inode() for e in os.scandir(self.m)}
        self.assertEqual(names["g"], ino)

    def test_chmod_chown(self):
        self.write(self.mp("f"), b"")
        os.chmod(self.mp("f"), 0o4711)
        self.assertEqual(stat.S_IMODE(os.stat(self.ep("f")).st_mode), 0o4711)
        os.chown(self.mp("f"), 1234, 5678)
        st = os.stat(self.ep("f"))
        self.assertEqual((st.st_uid, st.st_gid), (1234, 5678))
        os.chown(self.mp("f"), -1, 42)
        st = os.stat(self.mp("f"))
        self.assertEqual((st.st_uid, st.st_gid), (1234, 42))
        fd = os.open(self.mp("f"), os.O_RDONLY)
        os.fchmod(fd, 0o600)
        os.close(fd)
        self.assertEqual(stat.S_IMODE(os.stat(self.ep("f")).st_mode), 0o600)

    def test_truncate(self):
        self.write(self.mp("f"), b"0123456789")
        os.truncate(self.mp("f"), 4)
        self.assertEqual(self.read(self.ep("f")), b"0123")
        os.truncate(self.mp("f"), 8)
        self.assertEqual(self.read(self.ep("f")), b"0123\0\0\0\0")
        fd = os.open(self.mp("f"), os.O_RDWR)
        os.ftruncate(fd, 2)
        self.assertEqual(os.fstat(fd).st_size, 2)
        os.close(fd)
        self.assertEqual(os.stat(self.ep("f")).st_size, 2)
        with open(self.mp("f"), "wb"):  # O_TRUNC
            pass
        self.assertEqual(os.stat(self.ep("f")).st_size, 0)

    def test_utimes(self):
        self.write(self.mp("f"), b"")
        os.utime(self.mp("f"), ns=(1_000_000_123, 2_000_000_456))
        st = os.stat(self.ep("f"))
        self.assertEqual((st.st_atime_ns, st.st_mtime_ns), (1_000_000_123, 2_000_000_456))
        # UTIME_OMIT keeps atime, explicit mtime.
        self.assertEqual(utimensat(self.mp("f"), (0, UTIME_OMIT), (3, 5)), 0)
        st = os.stat(self.ep("f"))
        self.assertEqual((st.st_atime_ns, st.st_mtime_ns), (1_000_000_123, 3_000_000_005))
        # UTIME_NOW for mtime, OMIT for atime.
        before = time.time()
        self.assertEqual(utimensat(self.mp("f"), (0, UTIME_OMIT), (0, UTIME_NOW)), 0)
        st = os.stat(self.ep("f"))
        self.assertEqual(st.st_atime_ns, 1_000_000_123)
        self.assertGreaterEqual(st.st_mtime, before - 2)
        os.utime(self.mp("f"))  # both now
        self.assertGreaterEqual(os.stat(self.ep("f")).st_atime, before - 2)

    def test_large_io_uses_msize(self):
        data = os.urandom(8 << 20)
        fd = os.open(self.mp("big"), os.O_CREAT | os.O_RDWR, 0o644)
        self.assertEqual(os.write(fd, data), len(data))
        os.lseek(fd, 0, os.SEEK_SET)
        got = b""
        while len(got) < len(data):
            chunk = os.read(fd, len(data) - len(got))
            if not chunk:
                break
            got += chunk
        os.close(fd)
        self.assertEqual(got, data)
        self.assertEqual(sha(self.ep("big")), hashlib.sha256(data).hexdigest())

    def test_pwrite_sparse_and_pread(self):
        fd = os.open(self.mp("s"), os.O_CREAT | os.O_RDWR, 0o644)
        os.pwrite(fd, b"end", 1 << 30)
        self.assertEqual(os.fstat(fd).st_size, (1 << 30) + 3)
        self.assertEqual(os.pread(fd, 3, 1 << 30), b"end")
        self.assertEqual(os.pread(fd, 4, 4096), b"\0\0\0\0")
        self.assertEqual(os.pread(fd, 10, (1 << 30) + 3), b"")
        os.close(fd)
        self.assertEqual(os.stat(self.ep("s")).st_size, (1 << 30) + 3)

    def test_append(self):
        self.write(self.mp("a"), b"one\n")
        for line in (b"two\n", b"three\n"):
            fd = os.open(self.mp("a"), os.O_WRONLY | os.O_APPEND)
            os.write(fd, line)
            os.close(fd)
        self.assertEqual(self.read(self.ep("a")), b"one\ntwo\nthree\n")

    def test_fsync_fdatasync(self):
        fd = os.open(self.mp("f"), os.O_CREAT | os.O_RDWR, 0o644)
        os.write(fd, b"data")
        os.fsync(fd)
        os.fdatasync(fd)
        os.close(fd)
        dfd = os.open(self.m, os.O_RDONLY | os.O_DIRECTORY)
        os.fsync(dfd)
        os.close(dfd)
        self.assertEqual(self.read(self.ep("f")), b"data")

    def test_eisdir_enotdir_enametoolong(self):
        os.mkdir(self.mp("d"))
        self.write(self.mp("f"), b"")
        self.assertErrno(errno.EISDIR, os.open, self.mp("d"), os.O_WRONLY)
        self.assertErrno(errno.ENOTDIR, os.stat, self.mp("f", "x"))
        self.assertErrno(errno.ENOTDIR, os.open, self.mp("f", "x"), os.O_CREAT | os.O_WRONLY)
        self.assertErrno(errno.ENOTDIR, os.listdir, self.mp("f"))
        long_name = "n" * 256
        self.assertErrno(errno.ENAMETOOLONG, os.open, self.mp(long_name),
                         os.O_CREAT | os.O_WRONLY)
        self.assertErrno(errno.ENAMETOOLONG, os.stat, self.mp(long_name))
        self.assertErrno(errno.ENAMETOOLONG, os.mkdir, self.mp(long_name))
        ok = "n" * 255
        self.write(self.mp(ok), b"")
        self.assertTrue(os.path.exists(self.ep(ok)))

    def test_unlinked_open_file_keeps_working(self):
        fd = os.open(self.mp("u"), os.O_CREAT | os.O_RDWR, 0o644)
        os.write(fd, b"still here")
        os.unlink(self.mp("u"))
        self.assertFalse(os.path.exists(self.mp("u")))
        self.assertFalse(os.path.exists(self.ep("u")))
        self.assertNotIn("u", os.listdir(self.m))
        os.lseek(fd, 0, os.SEEK_SET)
        self.assertEqual(os.read(fd, 100), b"still here")
        st = os.fstat(fd)
        self.assertEqual(st.st_size, 10)
        os.write(fd, b"!")
        os.ftruncate(fd, 5)
        self.assertEqual(os.pread(fd, 100, 0), b"still")
        self.assertEqual(os.lseek(fd, 0, os.SEEK_END), 5)
        os.close(fd)
        # The hidden name goes with the last handle (FUSE releases
        # asynchronously after close() returns).
        self.assertEmptySoon(self.e)

    def test_unlinked_with_two_handles(self):
        self.write(self.mp("u"), b"abc")
        fd1 = os.open(self.mp("u"), os.O_RDONLY)
        fd2 = os.open(self.mp("u"), os.O_RDONLY)
        os.unlink(self.mp("u"))
        os.close(fd1)
        self.assertEqual(os.pread(fd2, 3, 0), b"abc")
        self.assertEqual(os.fstat(fd2).st_size, 3)
        os.close(fd2)
        self.assertEmptySoon(self.e)

    def test_unlink_open_hard_links(self):
        self.write(self.mp("a"), b"linked")
        os.link(self.mp("a"), self.mp("b"))
        os.link(self.mp("a"), self.mp("c"))
        fd = os.open(self.mp("a"), os.O_RDONLY)
        os.unlink(self.mp("a"))
        os.stat(self.mp("b"))  # the kernel looks the inode up under another name
        os.unlink(self.mp("b"))
        self.assertEqual(os.pread(fd, 6, 0), b"linked")
        self.assertEqual(os.fstat(fd).st_size, 6)
        os.close(fd)
        self.assertEqual(self.read(self.mp("c")), b"linked")
        self.assertEqual(os.listdir(self.e), ["c"])
        fd = os.open(self.mp("c"), os.O_RDONLY)
        os.unlink(self.mp("c"))
        os.close(fd)
        hidden = os.path.join(MNT.server.export, ".9prdma-unlinked")
        self.assertTrue(p9harness.wait_for(
            lambda: not os.path.exists(hidden) or not os.listdir(hidden), 5))

    def test_rmdir_after_unlinking_open_file(self):
        os.mkdir(self.mp("d"))
        fd = os.open(self.mp("d", "f"), os.O_CREAT | os.O_RDWR, 0o644)
        os.write(fd, b"abc")
        os.unlink(self.mp("d", "f"))
        os.rmdir(self.mp("d"))  # the open file does not keep it busy
        self.assertFalse(os.path.exists(self.ep("d")))
        self.assertEqual(os.fstat(fd).st_size, 3)
        self.assertEqual(os.pread(fd, 3, 0), b"abc")
        os.close(fd)
        self.assertNotIn(".9prdma-unlinked", os.listdir(MNT.mountpoint))

    def test_rename_over_open_file(self):
        self.write(self.mp("old"), b"old contents")
        self.write(self.mp("new"), b"new")
        fd = os.open(self.mp("old"), os.O_RDONLY)
        os.rename(self.mp("new"), self.mp("old"))
        self.assertEqual(self.read(self.mp("old")), b"new")
        self.assertEqual(os.pread(fd, 100, 0), b"old contents")
        self.assertEqual(os.fstat(fd).st_size, 12)
        os.close(fd)
        self.assertTrue(p9harness.wait_for(lambda: os.listdir(self.e) == ["old"], 5),
                        os.listdir(self.e))

    def test_mmap(self):
        self.write(self.mp("m"), b"mapped data" + b"\0" * 4085)
        with open(self.mp("m"), "rb") as f:
            try:
                with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:  # MAP_SHARED, ro
                    self.assertEqual(mm[:11], b"mapped data")
            except OSError as e:
                # cache=none is direct_io: FUSE refuses shared mappings of such
                # files (libfuse 3.14 cannot ask for FUSE_DIRECT_IO_ALLOW_MMAP).
                self.assertEqual((cache_mode(), e.errno), ("none", errno.ENODEV))
        with open(self.mp("m"), "r+b") as f:
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY) as mm:  # MAP_PRIVATE
                mm[0:6] = b"MAPPED"
                self.assertEqual(mm[:6], b"MAPPED")
        self.assertEqual(self.read(self.ep("m"))[:6], b"mapped")

    def test_shared_writable_mmap(self):
        self.write(self.mp("m"), b"\0" * 4096)
        with open(self.mp("m"), "r+b") as f:
            try:
                mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_WRITE)
            except OSError as e:
                if cache_mode() == "none":  # as in test_mmap
                    self.assertEqual(e.errno, errno.ENODEV)
                    return
                raise
            mm[0:5] = b"hello"
            mm.flush()
            mm.close()
        self.assertEqual(self.read(self.ep("m"))[:5], b"hello")

    def test_exec_from_mount(self):
        self.write(self.mp("run.sh"), b"#!/bin/sh\necho ran $1\n")
        os.chmod(self.mp("run.sh"), 0o755)
        out = subprocess.run([self.mp("run.sh"), "ok"], capture_output=True, text=True)
        self.assertEqual(out.stdout, "ran ok\n")

    def test_fallocate_copy_file_range_ioctl(self):
        fd = os.open(self.mp("f"), os.O_CREAT | os.O_RDWR, 0o644)
        os.write(fd, b"0123456789")
        self.assertEqual(fallocate(fd, 0, 0, 4096), errno.EOPNOTSUPP)
        # posix_fallocate: glibc emulates it when the kernel says EOPNOTSUPP.
        os.posix_fallocate(fd, 0, 8192)
        self.assertEqual(os.fstat(fd).st_size, 8192)
        fd2 = os.open(self.mp("g"), os.O_CREAT | os.O_RDWR, 0o644)
        try:
            n = os.copy_file_range(fd, fd2, 10, 0, 0)
            self.assertEqual(n, 10)  # the kernel fell back to a copy
            self.assertEqual(os.pread(fd2, 10, 0), b"0123456789")
        except OSError as e:
            self.assertIn(e.errno, (errno.EOPNOTSUPP, errno.EXDEV, errno.ENOSYS))
        FS_IOC_GETVERSION = 0x80087601
        self.assertErrno(errno.ENOTTY, fcntl.ioctl, fd, FS_IOC_GETVERSION, b"\0" * 8)
        os.close(fd)
        os.close(fd2)

    def test_statfs(self):
        a, b = os.statvfs(self.m), os.statvfs(self.e)
        self.assertEqual(a.f_bsize, b.f_bsize)
        self.assertEqual(a.f_blocks, b.f_blocks)
        self.assertEqual(a.f_namemax, 255)
        self.assertLess(abs(a.f_bfree - b.f_bfree), b.f_blocks // 100 + 1000)


class Names(Base):
    def test_mkdir_rmdir(self):
        os.mkdir(self.mp("d"), 0o750)
        self.assertTrue(stat.S_ISDIR(os.stat(self.ep("d")).st_mode))
        self.assertEqual(stat.S_IMODE(os.stat(self.ep("d")).st_mode), 0o750)
        self.assertErrno(errno.EEXIST, os.mkdir, self.mp("d"))
        self.write(self.mp("d", "f"), b"")
        self.assertErrno(errno.ENOTEMPTY, os.rmdir, self.mp("d"))
        self.assertErrno(errno.ENOTDIR, os.rmdir, self.mp("d", "f"))
        self.assertErrno(errno.EISDIR, os.unlink, self.mp("d"))
        os.unlink(self.mp("d", "f"))
        os.rmdir(self.mp("d"))
        self.assertFalse(os.path.exists(self.ep("d")))
        self.assertErrno(errno.ENOENT, os.rmdir, self.mp("d"))

    def test_recreate_after_remove(self):
        # ext4 hands a freed inode number to the next new file at once, while
        # the kernel may still hold the removed inode (here: as a cwd, which
        # the server knows nothing of). A removed directory is dead for good,
        # so the new one must get a new FUSE node id (st_ino stays qid.path).
        cwd = os.getcwd()
        try:
            for i in range(10):
                os.mkdir(self.mp("d"))
                old_ino = os.stat(self.mp("d")).st_ino
                os.chdir(self.mp("d"))
                os.rmdir(self.mp("d"))
                os.mkdir(self.mp("d"))
                with open(self.mp("d", "g"), "w") as f:
                    f.write(str(i))
                self.assertEqual(os.listdir(self.ep("d")), ["g"])
                self.assertEqual(os.listdir("."), [])  # the removed one, still our cwd
                self.assertEqual(os.stat(".").st_nlink, 0)
                self.assertEqual(os.stat(".").st_ino, old_ino)
                os.chdir(cwd)
                self.assertEqual(os.stat(self.mp("d")).st_ino, os.stat(self.ep("d")).st_ino)
                os.unlink(self.mp("d", "g"))
                os.rmdir(self.mp("d"))
                # Files too: replaced by rename, then a new file by that name.
                self.write(self.mp("x"), b"1")
                os.rename(self.mp("x"), self.mp("y"))
                self.write(self.mp("x"), b"2")
                self.assertEqual(self.read(self.mp("x")), b"2")
                os.unlink(self.mp("x"))
                os.unlink(self.mp("y"))
        finally:
            os.chdir(cwd)

    def test_unlink(self):
        self.write(self.mp("f"), b"x")
        os.unlink(self.mp("f"))
        self.assertFalse(os.path.exists(self.ep("f")))
        self.assertErrno(errno.ENOENT, os.unlink, self.mp("f"))

    def test_symlink_readlink(self):
        os.symlink("target/with/../parts", self.mp("l"))
        self.assertEqual(os.readlink(self.mp("l")), "target/with/../parts")
        self.assertEqual(os.readlink(self.ep("l")), "target/with/../parts")
        self.assertTrue(stat.S_ISLNK(os.lstat(self.mp("l")).st_mode))
        self.assertErrno(errno.ENOENT, os.stat, self.mp("l"))
        self.write(self.mp("t"), b"via link")
        os.symlink("t", self.mp("l2"))
        self.assertEqual(self.read(self.mp("l2")), b"via link")
        self.assertErrno(errno.EEXIST, os.symlink, "x", self.mp("l2"))
        self.assertErrno(errno.EINVAL, os.readlink, self.mp("t"))

    def test_mknod(self):
        os.mkfifo(self.mp("fifo"), 0o600)
        self.assertTrue(stat.S_ISFIFO(os.stat(self.ep("fifo")).st_mode))
        os.mknod(self.mp("null"), 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        st = os.stat(self.ep("null"))
        self.assertTrue(stat.S_ISCHR(st.st_mode))
        self.assertEqual(st.st_rdev, os.makedev(1, 3))
        self.assertEqual(os.stat(self.mp("null")).st_rdev, os.makedev(1, 3))
        os.mknod(self.mp("reg"), 0o640 | stat.S_IFREG)
        self.assertTrue(stat.S_ISREG(os.stat(self.ep("reg")).st_mode))
        self.assertErrno(errno.EEXIST, os.mkfifo, self.mp("fifo"))

    def test_link(self):
        self.write(self.mp("a"), b"shared")
        os.link(self.mp("a"), self.mp("b"))
        sa, sb = os.stat(self.mp("a")), os.stat(self.mp("b"))
        self.assertEqual(sa.st_ino, sb.st_ino)
        self.assertEqual(sa.st_nlink, 2)
        self.assertEqual(os.stat(self.ep("a")).st_ino, os.stat(self.ep("b")).st_ino)
        os.unlink(self.mp("a"))
        self.assertEqual(os.stat(self.mp("b")).st_nlink, 1)
        self.assertEqual(self.read(self.mp("b")), b"shared")
        self.assertErrno(errno.EEXIST, os.link, self.mp("b"), self.mp("b"))
        os.mkdir(self.mp("d"))
        self.assertErrno(errno.EPERM, os.link, self.mp("d"), self.mp("d2"))

    def test_rename_files(self):
        self.write(self.mp("a"), b"A")
        self.write(self.mp("b"), b"B")
        os.rename(self.mp("a"), self.mp("c"))
        self.assertEqual(self.read(self.ep("c")), b"A")
        self.assertFalse(os.path.exists(self.ep("a")))
        os.rename(self.mp("c"), self.mp("b"))  # replaces
        self.assertEqual(self.read(self.ep("b")), b"A")
        self.assertEqual(sorted(os.listdir(self.e)), ["b"])
        self.assertErrno(errno.ENOENT, os.rename, self.mp("zz"), self.mp("yy"))

    def test_rename_directories(self):
        os.makedirs(self.mp("d1", "sub"))
        self.write(self.mp("d1", "sub", "f"), b"deep")
        dfd = os.open(self.mp("d1", "sub"), os.O_RDONLY | os.O_DIRECTORY)
        os.rename(self.mp("d1"), self.mp("d2"))
        self.assertEqual(self.read(self.mp("d2", "sub", "f")), b"deep")
        self.assertEqual(self.read(self.ep("d2", "sub", "f")), b"deep")
        # Relative to a directory fd taken before the rename.
        self.assertEqual(os.listdir(dfd), ["f"])
        self.assertEqual(os.stat("f", dir_fd=dfd).st_size, 4)
        fd = os.open("g", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=dfd)
        os.close(fd)
        os.close(dfd)
        self.assertTrue(os.path.exists(self.ep("d2", "sub", "g")))
        self.assertErrno(errno.EINVAL, os.rename, self.mp("d2"), self.mp("d2", "sub", "x"))
        os.mkdir(self.mp("full"))
        self.write(self.mp("full", "x"), b"")
        self.assertErrno(errno.ENOTEMPTY, os.rename, self.mp("d2"), self.mp("full"))
        self.write(self.mp("file"), b"")
        self.assertErrno(errno.ENOTDIR, os.rename, self.mp("d2"), self.mp("file"))
        self.assertErrno(errno.EISDIR, os.rename, self.mp("file"), self.mp("d2"))
        os.mkdir(self.mp("empty"))
        os.rename(self.mp("d2"), self.mp("empty"))  # over an empty dir
        self.assertEqual(self.read(self.ep("empty", "sub", "f")), b"deep")

    def test_rename_flags_einval(self):
        self.write(self.mp("a"), b"A")
        self.write(self.mp("b"), b"B")
        self.assertEqual(renameat2(self.mp("a"), self.mp("c"), RENAME_NOREPLACE), errno.EINVAL)
        self.assertEqual(renameat2(self.mp("a"), self.mp("b"), RENAME_EXCHANGE), errno.EINVAL)
        self.assertEqual(self.read(self.ep("a")), b"A")
        self.assertEqual(self.read(self.ep("b")), b"B")

    def test_readdir_large(self):
        names = {f"file-{i:04d}-{'x' * (i % 40)}" for i in range(600)}
        for n in names:
            with open(self.mp(n), "wb"):
                pass
        os.mkdir(self.mp("subdir"))
        names.add("subdir")
        self.assertEqual(set(os.listdir(self.m)), names)
        self.assertEqual(set(os.listdir(self.e)), names)
        for entry in os.scandir(self.m):
            self.assertEqual(entry.is_dir(follow_symlinks=False), entry.name == "subdir")
            self.assertEqual(entry.inode(), os.stat(self.ep(entry.name)).st_ino)
        # Entries removed or added between listings show up correctly.
        os.unlink(self.mp("file-0001-x"))
        self.assertNotIn("file-0001-x", os.listdir(self.m))

    def test_readdir_sees_dot_entries(self):
        out = subprocess.run(["ls", "-a", self.m], capture_output=True, text=True).stdout.split()
        self.assertEqual(out[:2], [".", ".."])


class Xattrs(Base):
    def setUp(self):
        super().setUp()
        # The server can only store what its file system can (tmpfs on the
        # test guest's Linux 6.1 has no user xattrs).
        probe = os.path.join(self.e, ".xattr-probe")
        open(probe, "w").close()
        try:
            os.setxattr(probe, "user.probe", b"1")
        except OSError as e:
            self.skipTest(f"the export's file system has no user xattrs: {e}")
        finally:
            os.unlink(probe)

    def test_set_get_list_remove(self):
        self.write(self.mp("f"), b"")
        # Known absent first (cache=loose|readonly remember that), then set
        # through the mount: seen at once.
        self.assertErrno(errno.ENODATA, os.getxattr, self.mp("f"), "user.color")
        os.setxattr(self.mp("f"), "user.color", b"blue")
        self.assertEqual(os.getxattr(self.mp("f"), "user.color"), b"blue")
        self.assertEqual(os.getxattr(self.ep("f"), "user.color"), b"blue")
        os.setxattr(self.mp("f"), "user.big", b"v" * 4000)
        self.assertEqual(os.getxattr(self.ep("f"), "user.big"), b"v" * 4000)
        self.assertEqual(sorted(os.listxattr(self.mp("f"))), ["user.big", "user.color"])
        self.assertErrno(errno.EEXIST, os.setxattr, self.mp("f"), "user.color", b"red",
                         os.XATTR_CREATE)
        self.assertErrno(errno.ENODATA, os.setxattr, self.mp("f"), "user.none", b"x",
                         os.XATTR_REPLACE)
        os.setxattr(self.mp("f"), "user.color", b"red", os.XATTR_REPLACE)
        self.assertEqual(os.getxattr(self.ep("f"), "user.color"), b"red")
        os.removexattr(self.mp("f"), "user.color")
        self.assertEqual(os.listxattr(self.ep("f")), ["user.big"])
        self.assertErrno(errno.ENODATA, os.getxattr, self.mp("f"), "user.color")
        self.assertErrno(errno.ENODATA, os.removexattr, self.mp("f"), "user.color")

    def test_xattr_size_probe_and_erange(self):
        self.write(self.mp("f"), b"")
        os.setxattr(self.mp("f"), "user.k", b"12345678")
        libc.getxattr.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p,
                                  ctypes.c_size_t]
        libc.getxattr.restype = ctypes.c_ssize_t
        path = self.mp("f").encode()
        self.assertEqual(libc.getxattr(path, b"user.k", None, 0), 8)
        buf = ctypes.create_string_buffer(4)
        self.assertEqual(libc.getxattr(path, b"user.k", buf, 4), -1)
        self.assertEqual(ctypes.get_errno(), errno.ERANGE)

    def test_xattr_on_directory_and_symlink(self):
        os.mkdir(self.mp("d"))
        os.setxattr(self.mp("d"), "user.d", b"1")
        self.assertEqual(os.getxattr(self.ep("d"), "user.d"), b"1")


class Locks(Base):
    CHILD = """
        import errno, fcntl, os, struct, sys, time
        fd = os.open(sys.argv[1], os.O_RDWR)
        what = sys.argv[2]
        if what == "trylock":
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                print("locked")
            except OSError as e:
                print(errno.errorcode[e.errno])
        elif what == "getlk":
            arg = struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0)
            res = fcntl.fcntl(fd, fcntl.F_GETLK, arg)
            print("unlocked" if struct.unpack("hhqqi", res)[0] == fcntl.F_UNLCK else "conflict")
        elif what == "waitlock":
            t = time.monotonic()
            fcntl.lockf(fd, fcntl.LOCK_EX)
            print("waited %.1f" % (time.monotonic() - t))
        elif what == "interrupted":
            import signal
            class Alarm(Exception):
                pass
            def on_alarm(*args):
                raise Alarm()  # else Python retries the syscall (PEP 475)
            signal.signal(signal.SIGALRM, on_alarm)
            signal.alarm(1)
            t = time.monotonic()
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX)
                print("locked")
            except Alarm:
                print("EINTR", "%.1f" % (time.monotonic() - t))
        elif what == "flock":
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                print("locked")
            except OSError as e:
                print(errno.errorcode[e.errno])
    """

    def child(self, path, what):
        r = subprocess.run([sys.executable, "-c", textwrap.dedent(self.CHILD), path, what],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.strip()

    def test_posix_locks(self):
        p = self.mp("lk")
        self.write(p, b"x" * 100)
        fd = os.open(p, os.O_RDWR)
        self.assertEqual(self.child(p, "trylock"), "locked")  # free
        fcntl.lockf(fd, fcntl.LOCK_EX)
        self.assertEqual(self.child(p, "trylock"), "EAGAIN")
        self.assertEqual(self.child(p, "getlk"), "conflict")
        # Our own lock does not conflict with us.
        res = fcntl.fcntl(fd, fcntl.F_GETLK, __import__("struct").pack("hhqqi", fcntl.F_WRLCK,
                                                                        0, 0, 0, 0))
        self.assertEqual(__import__("struct").unpack("hhqqi", res)[0], fcntl.F_UNLCK)
        fcntl.lockf(fd, fcntl.LOCK_UN)
        self.assertEqual(self.child(p, "getlk"), "unlocked")
        # A blocking lock waits until the holder lets go.
        fcntl.lockf(fd, fcntl.LOCK_EX)
        # Long enough for the child to be waiting before the release even on
        # a slow (TCG-emulated) guest, where starting Python takes a second.
        threading.Timer(3.0, lambda: fcntl.lockf(fd, fcntl.LOCK_UN)).start()
        out = self.child(p, "waitlock")
        self.assertTrue(out.startswith("waited"), out)
        self.assertGreaterEqual(float(out.split()[1]), 0.3)
        os.close(fd)

    def test_blocked_lock_wait_is_interruptible(self):
        p = self.mp("lk")
        self.write(p, b"")
        fd = os.open(p, os.O_RDWR)
        fcntl.lockf(fd, fcntl.LOCK_EX)
        out = self.child(p, "interrupted").split()  # SIGALRM after 1 s
        self.assertEqual(out[0], "EINTR")
        self.assertLess(float(out[1]), 5)
        os.close(fd)

    def test_lock_released_on_close(self):
        p = self.mp("lk")
        self.write(p, b"")
        fd = os.open(p, os.O_RDWR)
        fcntl.lockf(fd, fcntl.LOCK_EX)
        os.close(fd)
        self.assertEqual(self.child(p, "trylock"), "locked")

    def test_lock_through_read_only_descriptor_released_on_close(self):
        """Read-only opens of a file never locked through the mount skip the
        kernel's FLUSH under cache=loose|readonly (FOPEN_NOFLUSH); a lock
        taken through one is then released with the file's release, right
        after the close. Once the file has been locked, closes release at
        once again."""
        p = self.mp("ro")
        self.write(p, b"x")
        for attempt in ("first lock", "file locked before"):
            fd = os.open(p, os.O_RDONLY)
            fcntl.lockf(fd, fcntl.LOCK_SH)
            self.assertEqual(self.child(p, "trylock"), "EAGAIN", attempt)
            os.close(fd)
            if attempt == "first lock" and cache_mode() != "none":
                self.assertTrue(p9harness.wait_for(lambda: self.child(p, "trylock") == "locked", 10))
            else:
                self.assertEqual(self.child(p, "trylock"), "locked", attempt)

    def test_read_only_close_sends_no_flush_under_cache(self):
        def ops_now():
            """The op counts, from a stats file written after this call."""
            t = time.time()
            path = p9stats.stats_path(MNT.mountpoint)
            self.assertTrue(p9harness.wait_for(
                lambda: os.path.exists(path) and os.stat(path).st_mtime > t + 0.01, 10))
            return p9stats.read_ops(MNT.mountpoint)

        p = self.mp("nf")
        self.write(p, b"data")
        before = ops_now()
        for _ in range(5):
            self.assertEqual(self.read(p), b"data")
        with open(p, "r+b") as f:
            f.write(b"D")
        after = ops_now()
        self.assertEqual(after["open"] - before["open"], 6)
        flushes = after["flush"] - before["flush"]
        skips = cache_mode() != "none" and "writeback_cache" not in OPTS
        self.assertEqual(flushes, 1 if skips else 6)

    def test_flock(self):
        p = self.mp("fl")
        self.write(p, b"")
        fd = os.open(p, os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self.assertEqual(self.child(p, "flock"), "EAGAIN")
        fcntl.flock(fd, fcntl.LOCK_UN)
        self.assertEqual(self.child(p, "flock"), "locked")
        os.close(fd)


class Permissions(Base):
    def test_eacces_as_nobody(self):
        os.mkdir(self.mp("private"), 0o700)
        self.write(self.mp("secret"), b"s")
        os.chmod(self.mp("secret"), 0o600)
        self.write(self.mp("public"), b"p")
        os.chmod(self.mp("public"), 0o644)
        code = f"""
            import errno, os
            def e(fn, *a):
                try:
                    fn(*a)
                    return "ok"
                except OSError as x:
                    return errno.errorcode[x.errno]
            print(e(os.listdir, {self.mp('private')!r}),
                  e(open, {self.mp('secret')!r}),
                  e(open, {self.mp('public')!r}),
                  e(open, {self.mp('public')!r}, "a"),
                  e(os.mkdir, {self.mp('newdir')!r}),
                  e(open, {self.mp('newfile')!r}, "w"),
                  e(os.unlink, {self.mp('public')!r}),
                  e(os.chmod, {self.mp('public')!r}, 0o777),
                  os.access({self.mp('public')!r}, os.R_OK),
                  os.access({self.mp('public')!r}, os.W_OK))
        """
        out = as_nobody(code).split()
        self.assertEqual(out, ["EACCES", "EACCES", "ok", "EACCES", "EACCES", "EACCES", "EACCES",
                               "EPERM", "True", "False"])
        self.assertEqual(sorted(os.listdir(self.e)), ["private", "public", "secret"])

    def test_nonroot_creates_own_files(self):
        os.chmod(self.m, 0o1777)
        code = f"""
            import os
            with open({self.mp('mine')!r}, "w") as f:
                f.write("x")
            os.mkdir({self.mp('mydir')!r})
            os.symlink("mine", {self.mp('mylink')!r})
            os.chmod({self.mp('mine')!r}, 0o600)
            print("ok")
        """
        self.assertEqual(as_nobody(code), "ok")
        for n in ("mine", "mydir", "mylink"):
            st = os.lstat(self.ep(n))
            self.assertEqual((st.st_uid, st.st_gid), (NOBODY, NOBODY), n)
        self.assertEqual(stat.S_IMODE(os.stat(self.ep("mine")).st_mode), 0o600)

    def test_setgid_directory_group(self):
        os.mkdir(self.mp("sg"))
        os.chown(self.mp("sg"), 0, 4242)
        os.chmod(self.mp("sg"), 0o2777)
        as_nobody(f"open({self.mp('sg', 'f')!r}, 'w').close()")
        st = os.stat(self.ep("sg", "f"))
        self.assertEqual((st.st_uid, st.st_gid), (NOBODY, 4242))


class Coherence(Base):
    """cache=none promises strict coherence with the server."""

    def setUp(self):
        if cache_mode() != "none":
            self.skipTest("only cache=none is strictly coherent")
        super().setUp()

    def test_server_side_changes_visible_at_once(self):
        self.write(self.ep("f"), b"first")
        self.assertEqual(self.read(self.mp("f")), b"first")
        self.write(self.ep("f"), b"second, longer")
        self.assertEqual(self.read(self.mp("f")), b"second, longer")
        self.assertEqual(os.stat(self.mp("f")).st_size, 14)
        os.unlink(self.ep("f"))
        self.assertFalse(os.path.exists(self.mp("f")))
        os.mkdir(self.ep("d"))
        self.assertIn("d", os.listdir(self.m))
        os.rename(self.ep("d"), self.ep("e"))
        self.assertTrue(os.path.isdir(self.mp("e")))
        self.assertFalse(os.path.exists(self.mp("d")))

    def test_open_file_sees_server_writes(self):
        self.write(self.ep("f"), b"aaaa")
        fd = os.open(self.mp("f"), os.O_RDONLY)
        self.assertEqual(os.pread(fd, 4, 0), b"aaaa")
        self.write(self.ep("f"), b"bbbbbb")
        self.assertEqual(os.pread(fd, 10, 0), b"bbbbbb")
        os.close(fd)


def main():
    global OPTS, MNT
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "--opts":
        OPTS = args[1] + ",allow_other" if args[1] else "allow_other"
        args = args[2:]
    p9harness.require_root()
    p9harness.tool("setpriv", "util-linux")
    server = p9harness.Diod()
    MNT = p9harness.Mount(server, OPTS)
    print(f"mounted {server.source} on {MNT.mountpoint} with -o {MNT.opts}", flush=True)
    runner = unittest.TextTestRunner(verbosity=2, resultclass=p9harness.TimedResult)
    prog = unittest.main(argv=[sys.argv[0]] + args, exit=False, testRunner=runner)
    ok = prog.result.wasSuccessful()
    print("slowest: " + p9harness.slowest(), flush=True)
    if not MNT.unmount():
        print("daemon did not exit after umount", file=sys.stderr)
        ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
