#!/usr/bin/python3
"""`9prdma stats` against a live mount (diod on loopback, queues=2): both
queues with traffic and sane latency percentiles, FUSE request counts, the
JSON form, -w, and one-line failures for a path that is not a 9prdma mount
or whose stats file is stale."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import p9harness  # noqa: E402
from p9harness import Diod, Mount, daemon_pids  # noqa: E402

STATS = None
SERVER = None


def stats_binary():
    b = os.environ.get("NINEPRDMA") or os.path.join(p9harness.REPO, "build", "bin", "9prdma")
    if not os.access(b, os.X_OK):
        sys.exit(f"stats_cmd_test: 9prdma not found at {b} (set NINEPRDMA)")
    return b


def run_stats(*args, timeout=20):
    return subprocess.run([stats_binary(), "stats", *args], capture_output=True, text=True,
                          timeout=timeout)


LATENCY = re.compile(r"^(\d+(?:\.\d+)?)(us|ms|s)$")


def micros(cell):
    m = LATENCY.match(cell)
    assert m, cell
    return float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6}[m.group(2)]


def table_rows(out):
    """{queue number or 'total': {column: cell}} from the table."""
    rows, header = {}, None
    for line in out.splitlines():
        words = line.split()
        if words and words[0] == "queue":
            header = words
        elif header and words and (words[0].isdigit() or words[0] == "total"):
            if words[0] == "total":
                cells = ["total", "total"] + words[1:]
            else:
                # the peer is two words: "tcp 127.0.0.1:PORT"
                cells = [words[0], " ".join(words[1:3])] + words[3:]
            rows[words[0]] = dict(zip(header, cells))
    return rows


class Stats(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mount = Mount(SERVER, "queues=2")
        # Traffic from several threads, so both queues carry requests of
        # their own (threads are spread over the queues).
        def work(i):
            path = cls.mount.path(f"f{i}")
            with open(path, "wb") as f:
                for _ in range(20):
                    f.write(os.urandom(65536))
            with open(path, "rb") as f:
                while f.read(65536):
                    pass
            for _ in range(50):
                os.stat(path)
            os.listdir(cls.mount.mountpoint)
        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(1.5)  # the daemon rewrites the stats file every second

    def test_table_shows_both_queues_with_sane_percentiles(self):
        r = run_stats(self.mount.mountpoint)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        rows = table_rows(r.stdout)
        self.assertIn("0", rows, r.stdout)
        self.assertIn("1", rows, r.stdout)
        self.assertIn("total", rows, r.stdout)
        for q in ("0", "1"):
            row = rows[q]
            self.assertGreater(int(row["requests"]), 0, r.stdout)
            self.assertTrue(row["peer"].startswith("tcp 127.0.0.1:"), row)
            self.assertEqual(row["alive"], "yes")
            lat = [micros(row[c]) for c in ("p50", "p90", "p99", "max")]
            self.assertEqual(lat, sorted(lat), r.stdout)
            self.assertGreaterEqual(lat[0], 1)
            self.assertLess(lat[3], 60e6, r.stdout)  # below the 60 s timeout
        total = rows["total"]
        self.assertEqual(int(total["requests"]),
                         int(rows["0"]["requests"]) + int(rows["1"]["requests"]))
        self.assertEqual(total["alive"], "2/2")
        self.assertRegex(r.stdout, r"lookup \d+ \(")
        self.assertRegex(r.stdout, r"write \d+ \(")
        self.assertIn("cache hit rates: none (cache=none", r.stdout)

    def test_json(self):
        r = run_stats("--json", self.mount.mountpoint)
        self.assertEqual(r.returncode, 0, r.stderr)
        j = json.loads(r.stdout)
        self.assertEqual(j["mountpoint"], os.path.realpath(self.mount.mountpoint))
        self.assertEqual(len(j["queues"]), 2)
        for q in j["queues"]:
            self.assertGreater(q["requests"], 0)
            self.assertLessEqual(q["latency_p50_us"], q["latency_p99_us"])
            self.assertLessEqual(q["latency_p99_us"], q["latency_max_us"])
        self.assertGreater(j["ops"]["lookup"], 0)
        self.assertGreater(j["ops"]["write"], 0)
        self.assertGreater(j["total"]["bytes_sent"], 20 * 65536 * 4 - 1)
        self.assertEqual(j["cache"], [])

    def test_one_file_read_and_written_over_both_queues(self):
        # One descriptor, four threads at disjoint offsets: the requests are
        # served by FUSE threads of both queues, and each opens the file on
        # its own queue (IoFidOf) instead of funnelling through the queue of
        # the handle's first fid.
        path = self.mount.path("spread.bin")
        size, part = 16 << 20, 4 << 20
        before = json.loads(run_stats("--json", self.mount.mountpoint).stdout)["queues"]
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            def writer(i):
                block = bytes([i]) * 65536
                for off in range(i * part, (i + 1) * part, len(block)):
                    os.pwrite(fd, block, off)
            def reader(i):
                got = b""
                while len(got) < part:
                    chunk = os.pread(fd, 1 << 20, i * part + len(got))
                    self.assertTrue(chunk)
                    got += chunk
                self.assertEqual(got, bytes([i]) * part)
            for fn in (writer, reader):
                ts = [threading.Thread(target=fn, args=(i,)) for i in range(4)]
                for t in ts:
                    t.start()
                for t in ts:
                    t.join()
        finally:
            os.close(fd)
        time.sleep(1.5)
        after = json.loads(run_stats("--json", self.mount.mountpoint).stdout)["queues"]
        for q in (0, 1):
            sent = after[q]["bytes_sent"] - before[q]["bytes_sent"]
            got = after[q]["bytes_received"] - before[q]["bytes_received"]
            self.assertGreater(sent, size // 16, f"queue {q} wrote little: {after}")
            self.assertGreater(got, size // 16, f"queue {q} read little: {after}")

    def test_watch_refreshes_with_interval_rates(self):
        p = subprocess.Popen([stats_binary(), "stats", "-w", "1", self.mount.mountpoint],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stop = time.monotonic() + 3.5
        while time.monotonic() < stop:
            os.stat(self.mount.path("f0"))
            time.sleep(0.05)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=10)
        screens = out.split("\033[H\033[2J")
        self.assertGreaterEqual(len(screens), 3, out)
        self.assertIn("Every 1s: 9prdma stats", screens[-1])
        self.assertIn("over the last", screens[-1])

    def test_not_a_mount_fails_with_one_line(self):
        for path, why in (("/tmp", r"is not a 9prdma mount"),
                          ("/proc", r"is not a 9prdma mount \(it is proc\)"),
                          ("/no/such/dir", r"No such file or directory")):
            r = run_stats(path)
            self.assertNotEqual(r.returncode, 0, path)
            lines = r.stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, r.stderr)
            self.assertTrue(lines[0].startswith("9prdma: "), lines[0])
            self.assertRegex(lines[0], why)
            self.assertEqual(r.stdout, "")

    def test_stale_stats_file(self):
        m = Mount(SERVER)
        pids = daemon_pids(m.mountpoint)
        self.assertEqual(len(pids), 1)
        os.kill(pids[0], signal.SIGSTOP)  # the daemon stops rewriting the file
        try:
            time.sleep(6.5)
            r = run_stats(m.mountpoint)
        finally:
            os.kill(pids[0], signal.SIGCONT)
        self.assertEqual(r.returncode, 1, r.stdout)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertRegex(lines[0], rf"9prdma: .*\.stats: the stats file was last written \d+s "
                                   rf"ago: the mount daemon \(pid {pids[0]}\) is not updating it")
        m.unmount()


if __name__ == "__main__":
    p9harness.require_root()
    stats_binary()
    SERVER = Diod()
    unittest.main(verbosity=2)
