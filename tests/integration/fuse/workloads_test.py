#!/usr/bin/python3
"""Real workloads nobody here wrote, run on a mount.9prdma mount of diod.

usage: workloads_test.py WORKLOAD [--opts MOUNT_OPTIONS]
       (P9_TAR_TREES="gtest fuse3": the /usr/include trees the tar workload uses)
WORKLOAD: git | tar | make | fio | concurrent
Each one mounts a fresh export, runs, checks results (also on the export
directory), and always unmounts.
"""

import hashlib
import os
import random
import subprocess
import sys
import textwrap
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import p9harness  # noqa: E402


def sh(cmd, cwd=None, env=None, timeout=900):
    t = time.monotonic()
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                       shell=isinstance(cmd, str))
    if r.returncode != 0:
        raise AssertionError(f"{cmd!r} failed ({r.returncode}):\n{r.stdout[-3000:]}\n"
                             f"{r.stderr[-3000:]}")
    print(f"  ok ({time.monotonic() - t:5.1f}s) {cmd if isinstance(cmd, str) else ' '.join(cmd)}",
          flush=True)
    return r.stdout


def file_hashes(root):
    """relative path -> sha256 (files) / 'link:'+target (symlinks) / 'dir'."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for d in dirnames:
            p = os.path.join(dirpath, d)
            out[os.path.normpath(os.path.join(rel, d))] = (
                "link:" + os.readlink(p) if os.path.islink(p) else "dir")
        for f in filenames:
            p = os.path.join(dirpath, f)
            key = os.path.normpath(os.path.join(rel, f))
            if os.path.islink(p):
                out[key] = "link:" + os.readlink(p)
            else:
                h = hashlib.sha256()
                with open(p, "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        h.update(chunk)
                out[key] = h.hexdigest()
    return out


def git_env(home):
    env = dict(os.environ, HOME=home, GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="T",
               GIT_AUTHOR_EMAIL="t@example.com", GIT_COMMITTER_NAME="T",
               GIT_COMMITTER_EMAIL="t@example.com")
    return env


def workload_git(m):
    p9harness.tool("git", "git")
    home = p9harness.make_tmpdir("p9home-")
    env = git_env(home)
    sh(["git", "config", "--global", "init.defaultBranch", "main"], env=env)
    sh(["git", "config", "--global", "safe.directory", "*"], env=env)
    repo = m.path("repo")
    sh(["git", "init", "-q", repo], env=env)
    rnd = random.Random(42)
    for i in range(300):
        d = os.path.join(repo, f"dir{i % 12}", f"sub{i % 5}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"file{i}.txt"), "w") as f:
            f.write("".join(rnd.choice("abcdefgh \n") for _ in range(rnd.randrange(10, 20000))))
    os.symlink("dir0/sub0/file0.txt", os.path.join(repo, "link"))
    with open(os.path.join(repo, "script.sh"), "w") as f:
        f.write("#!/bin/sh\necho hi\n")
    os.chmod(os.path.join(repo, "script.sh"), 0o755)
    sh("git add -A && git commit -q -m initial", cwd=repo, env=env)
    for n in range(5):
        for i in rnd.sample(range(300), 30):
            p = os.path.join(repo, f"dir{i % 12}", f"sub{i % 5}", f"file{i}.txt")
            if os.path.exists(p):
                with open(p, "a") as f:
                    f.write(f"change {n}\n")
        sh(f"git mv dir{n}/sub1 dir{n}/moved{n} && git rm -q -r dir{n}/sub2 && "
           f"git commit -q -a -m 'change {n}'", cwd=repo, env=env)
    sh("git branch topic HEAD~2 && git checkout -q topic && git checkout -q main", cwd=repo,
       env=env)
    sh("git gc -q", cwd=repo, env=env)
    sh("git fsck --full --strict", cwd=repo, env=env)
    status = sh("git status --porcelain", cwd=repo, env=env)
    assert status == "", status
    # Clones onto the mount: local (hard links), and through the pack protocol.
    sh(["git", "clone", "-q", repo, m.path("clone-local")], env=env)
    sh(["git", "clone", "-q", "--no-local", repo, m.path("clone-pack")], env=env)
    for c in ("clone-local", "clone-pack"):
        sh("git fsck --full --strict", cwd=m.path(c), env=env)
        a = sh("git rev-parse HEAD", cwd=repo, env=env)
        b = sh("git rev-parse HEAD", cwd=m.path(c), env=env)
        assert a == b, (a, b)
    assert file_hashes(m.path("clone-pack")).keys() - {".git"} >= set(
        k for k in file_hashes(repo) if not k.startswith(".git")) - {".git"}
    # A clone of an outside repository (this project's) onto the mount.
    if os.path.isdir(os.path.join(p9harness.REPO, ".git")):
        sh(["git", "clone", "-q", "--no-local", p9harness.REPO, m.path("project")], env=env)
        sh("git fsck --full", cwd=m.path("project"), env=env)
        sh("git status --porcelain", cwd=m.path("project"), env=env)
    # The export holds a valid repository too (checked without the mount).
    sh("git fsck --full --strict", cwd=m.export("repo"), env=env)


def workload_tar(m):
    p9harness.tool("tar", "tar")
    src_root = "/usr/include"
    # P9_TAR_TREES picks fewer: the emulated test guest needs minutes for
    # the ~2,000 files of the default.
    names = os.environ.get("P9_TAR_TREES", "absl linux c++ gtest fuse3").split()
    trees = [t for t in names if os.path.isdir(os.path.join(src_root, t))]
    work = p9harness.make_tmpdir("p9tar-")
    # Odd members real trees also have: links of every kind, modes, names.
    extras = os.path.join(work, "stage", "extras")
    os.makedirs(os.path.join(extras, "deep", *(["d"] * 30)))
    os.makedirs(os.path.join(extras, "empty-dir"))
    with open(os.path.join(extras, "plain file with spaces ü"), "w") as f:
        f.write("x" * 100_000)
    os.link(os.path.join(extras, "plain file with spaces ü"), os.path.join(extras, "hardlink"))
    os.symlink("plain file with spaces ü", os.path.join(extras, "rel-link"))
    os.symlink("/nonexistent/target", os.path.join(extras, "dangling-link"))
    os.symlink("deep", os.path.join(extras, "dir-link"))
    with open(os.path.join(extras, "n" * 200), "w") as f:
        f.write("long name")
    open(os.path.join(extras, "empty"), "w").close()
    for name, mode in (("private", 0o600), ("script", 0o755), ("setgid", 0o2755)):
        with open(os.path.join(extras, name), "w") as f:
            f.write(name)
        os.chmod(os.path.join(extras, name), mode)
    os.chmod(os.path.join(extras, "empty-dir"), 0o700)
    trees.append("extras")
    tarball = os.path.join(work, "src.tar.gz")
    # The RDMA diod squashes every user to nobody: members owned by nobody
    # can be extracted there by root with their owners kept (and compared).
    owner = (["--owner=nobody:65534", "--group=nogroup:65534"]
             if p9harness.TRANSPORT == "rdma-diod" else [])
    sh(["tar", "czf", tarball] + owner + ["-C", src_root] + trees[:-1] +
       ["-C", os.path.dirname(extras), "extras"])
    ref = os.path.join(work, "ref")
    os.mkdir(ref)
    sh(["tar", "xzf", tarball, "-C", ref])
    dst = m.path("src")
    os.mkdir(dst)
    sh(["tar", "xzf", tarball, "-C", dst])
    sh(["tar", "dzf", tarball, "-C", dst])  # --compare: contents, modes, mtimes, links
    want = file_hashes(ref)
    for where in (dst, m.export("src")):
        got = file_hashes(where)
        missing = want.keys() - got.keys()
        extra = got.keys() - want.keys()
        bad = [k for k in want.keys() & got.keys() if want[k] != got[k]]
        assert not missing and not extra and not bad, (where, sorted(missing)[:5],
                                                        sorted(extra)[:5], bad[:5])
    nfiles = sum(1 for v in want.values() if v != "dir" and not v.startswith("link:"))
    print(f"  {nfiles} files and {sum(v.startswith('link:') for v in want.values())} symlinks "
          "identical on the mount and the export")
    # Re-create as a tarball from the mount; identical member list.
    sh(["tar", "czf", os.path.join(work, "again.tar.gz"), "-C", dst] + trees)
    st = os.stat(os.path.join(dst, "extras", "setgid"))
    assert oct(st.st_mode & 0o7777) == oct(0o2755), oct(st.st_mode)
    assert os.stat(os.path.join(dst, "extras", "hardlink")).st_nlink == 2
    a = sh(["tar", "tzf", tarball]).split()
    b = sh(["tar", "tzf", os.path.join(work, "again.tar.gz")]).split()
    assert sorted(a) == sorted(b)
    sh(["rm", "-rf", dst])
    assert not os.path.exists(m.export("src"))


MAKEFILE = """\
CC ?= cc
CFLAGS += -O2 -Wall -Werror
OBJS = main.o util.o table.o
calc: $(OBJS) libcalc.a
\t$(CC) -o $@ main.o libcalc.a
libcalc.a: util.o table.o
\tar rcs $@ $^
%.o: %.c calc.h
\t$(CC) $(CFLAGS) -c -o $@ $<
check: calc
\t./calc 7 > out.txt && grep -q '^sum=28 table=5040$$' out.txt
clean:
\trm -f calc *.o *.a out.txt
"""

SOURCES = {
    "calc.h": "int sum_to(int n);\nlong factorial(int n);\n",
    "util.c": "#include \"calc.h\"\nint sum_to(int n) { int s = 0; for (int i = 1; i <= n; ++i)"
              " s += i; return s; }\n",
    "table.c": "#include \"calc.h\"\nlong factorial(int n) { return n <= 1 ? 1 : n * "
               "factorial(n - 1); }\n",
    "main.c": "#include <stdio.h>\n#include <stdlib.h>\n#include \"calc.h\"\nint main(int c, "
              "char** v) { int n = c > 1 ? atoi(v[1]) : 3; printf(\"sum=%d table=%ld\\n\", "
              "sum_to(n), factorial(n)); return 0; }\n",
}


def workload_make(m):
    p9harness.tool("make", "make")
    p9harness.tool("gcc", "gcc")
    d = m.path("proj")
    os.mkdir(d)
    with open(os.path.join(d, "Makefile"), "w") as f:
        f.write(MAKEFILE)
    for name, text in SOURCES.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    sh(["make", "-j2", "check"], cwd=d)
    out = sh([os.path.join(d, "calc"), "10"])
    assert out == "sum=55 table=3628800\n", out
    # Incremental: nothing to do, then only what changed is rebuilt.
    assert "is up to date" in sh(["make", "calc"], cwd=d)
    time.sleep(1.1)  # make compares mtimes (1 s granularity is enough here)
    with open(os.path.join(d, "util.c"), "a") as f:
        f.write("/* touched */\n")
    rebuilt = sh(["make", "calc"], cwd=d)
    assert "-o util.o" in rebuilt and "-o main.o" not in rebuilt, rebuilt
    sh(["make", "check"], cwd=d)
    assert os.path.exists(m.export("proj", "calc"))
    sh(["make", "clean"], cwd=d)
    assert sorted(os.listdir(m.export("proj"))) == sorted(["Makefile"] + list(SOURCES))


def workload_fio(m):
    p9harness.tool("fio", "fio")
    d = m.path("fio")
    os.mkdir(d)
    common = ["fio", "--directory", d, "--ioengine=psync", "--verify=crc32c", "--do_verify=1",
              "--verify_fatal=1", "--group_reporting", "--output-format=terse"]
    jobs = [
        ["--name=seqwrite", "--rw=write", "--bs=256k", "--size=96m"],
        ["--name=randwrite", "--rw=randwrite", "--bs=4k", "--size=24m", "--randrepeat=1"],
        ["--name=randwrite-mixed", "--rw=randwrite", "--bsrange=4k-128k", "--size=32m",
         "--numjobs=2"],
    ]
    for j in jobs:
        out = sh(common + j, timeout=1200)
        fields = out.strip().splitlines()[-1].split(";")
        # terse v3: field 48 is the write bandwidth in KiB/s
        print(f"    {j[0]}: write {int(fields[47]) / 1024:.1f} MiB/s, errors={fields[4]}")
        assert fields[4] == "0", out


def workload_concurrent(m):
    """8 processes, each writing and reading back its own files."""
    code = textwrap.dedent("""
        import hashlib, os, random, sys
        d, k = sys.argv[1], int(sys.argv[2])
        rnd = random.Random(k)
        for round in range(4):
            p = os.path.join(d, f"proc{k}-{round}")
            data = rnd.randbytes(rnd.randrange(1 << 20, 6 << 20))
            with open(p, "wb") as f:
                for off in range(0, len(data), 200_000):
                    f.write(data[off:off + 200_000])
            with open(p, "rb") as f:
                assert f.read() == data, p
            if round % 2:
                os.rename(p, p + ".done")
                p += ".done"
            print(p, hashlib.sha256(data).hexdigest())
    """)
    d = m.path("conc")
    os.mkdir(d)
    procs = [subprocess.Popen([sys.executable, "-c", code, d, str(k)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for k in range(8)]
    expected = {}
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        for line in out.split("\n"):
            if line:
                path, digest = line.split()
                expected[os.path.basename(path)] = digest
    assert len(expected) == 32
    for where in (d, m.export("conc")):
        got = file_hashes(where)
        assert got == expected, (where, set(got) ^ set(expected))
    print(f"  8 processes x 4 files verified on the mount and the export ({m.opts})")


WORKLOADS = {
    "git": workload_git,
    "tar": workload_tar,
    "make": workload_make,
    "fio": workload_fio,
    "concurrent": workload_concurrent,
}


def main():
    args = sys.argv[1:]
    if not args or args[0] not in WORKLOADS:
        sys.exit(f"usage: {sys.argv[0]} {{{'|'.join(WORKLOADS)}}} [--opts OPTIONS]")
    name = args[0]
    opts = args[2] if len(args) >= 3 and args[1] == "--opts" else ""
    server, m = p9harness.setup(opts)
    print(f"{name}: {server.source} on {m.mountpoint} (-o {m.opts})", flush=True)
    t = time.monotonic()
    WORKLOADS[name](m)
    print(f"{name}: passed in {time.monotonic() - t:.1f}s", flush=True)
    if not m.unmount():
        sys.exit("daemon did not exit after umount")


if __name__ == "__main__":
    main()
