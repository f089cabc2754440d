#!/usr/bin/python3
"""report.py OUT_DIR: build/bench/{report.md,report.png} from tests/bench/run's results.

Every figure is the median of its runs with min-max; every ratio is a
ratio of two clients measured side by side (run i of one against run i of
the other, interleaved in time), reported as the median of the per-run
ratios with their min-max. A ratio is "performance of A / performance of B":
throughput / throughput, or time(B) / time(A), so > 1 always means A is faster.
"""
import json
import os
import statistics
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import WORKLOADS  # noqa: E402

LABEL = {
    "seq_read": "sequential read, 1 MiB read()s",
    "seq_write": "sequential write, 1 MiB write()s + fsync",
    "rand_read_qd1": "4 KiB random read, depth 1: median latency",
    "rand_read_qd16": "4 KiB random read, 16 threads",
    "stat_cold": "stat every file of the tree, cold (fresh mount)",
    "stat_warm": "stat every file of the tree, warm (again at once)",
    "small_files": "create+write 1 KiB+close, small files",
    "untar": "untar a source tarball",
    "git_status": "git status, warm",
    "py_import": "python3 -c 'import ...' (stdlib packages), warm",
}
UNIT = {w: u for w, u, _ in WORKLOADS}
BETTER = {w: b for w, _, b in WORKLOADS}
ORDER = [w for w, _, _ in WORKLOADS]

HOST_TARGETS = ["direct", "memfs", "memfs-nocache", "9prdma-none", "9prdma-loose", "9prdma-readonly"]
GUEST_TARGETS = ["direct", "9prdma-rdma-none", "9prdma-rdma-loose", "9prdma-rdma-wb", "9prdma-tcp-none",
                 "9prdma-tcp-loose",
                 "kernel-rdma-none", "kernel-rdma-loose", "kernel-tcp-none", "kernel-tcp-loose"]
# (A, B) pairs of the ratio tables.
HOST_RATIOS = [("9prdma-none", "direct"), ("9prdma-none", "memfs-nocache"),
               ("9prdma-loose", "direct"), ("9prdma-loose", "memfs"),
               ("9prdma-readonly", "memfs")]
GUEST_RATIOS = [("9prdma-rdma-none", "kernel-rdma-none"), ("9prdma-rdma-loose", "kernel-rdma-loose"),
                ("9prdma-rdma-wb", "kernel-rdma-loose"),
                ("9prdma-rdma-loose", "kernel-rdma-none"), ("9prdma-tcp-none", "kernel-tcp-none"),
                ("9prdma-tcp-loose", "kernel-tcp-loose"), ("9prdma-tcp-loose", "kernel-tcp-none"),
                ("9prdma-rdma-loose", "direct"), ("kernel-rdma-loose", "direct")]


def load_json(path, default=None):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def load_samples(path):
    """{(target, workload): {"runs": {run: value}, "errors": [msg], "extra": [..]}}"""
    s = {}
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return s
    for line in lines:
        try:
            r = json.loads(line)
        except ValueError:
            continue
        e = s.setdefault((r["target"], r["workload"]), {"runs": {}, "errors": [], "extra": []})
        if "value" in r:
            e["runs"][r["run"]] = r["value"]
            e["extra"].append(r.get("extra") or {})
        else:
            e["errors"].append(r["error"])
    return s


def fmt(v, unit):
    if v is None:
        return "n/a"
    if unit == "IOPS":
        return "%.0f" % v if v < 10000 else "%.1fk" % (v / 1000)
    if v >= 100:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    return "%.2f" % v


class Stats:
    def __init__(self, samples, target, w):
        e = samples.get((target, w), {"runs": {}, "errors": [], "extra": []})
        self.runs = e["runs"]
        vals = sorted(self.runs.values())
        self.n = len(vals)
        self.med = statistics.median(vals) if vals else None
        self.lo = vals[0] if vals else None
        self.hi = vals[-1] if vals else None
        self.errors = e["errors"]
        self.extra = e["extra"]

    def cell(self, unit, notes):
        if self.med is None:
            if not self.errors:
                return "–"
            return "n/a" + note_ref(notes, self.errors[0])
        c = fmt(self.med, unit)
        if self.n > 1:
            c += " (%s–%s)" % (fmt(self.lo, unit), fmt(self.hi, unit))
        if self.errors:
            c += note_ref(notes, "%d of %d runs failed: %s" % (len(self.errors),
                                                              len(self.errors) + self.n,
                                                              self.errors[0]))
        return c


def note_ref(notes, msg):
    msg = msg.replace("|", "/").replace("\n", " ")
    if len(msg) > 300:
        msg = msg[:300] + "…"
    if msg not in notes:
        notes.append(msg)
    return " [%d]" % (notes.index(msg) + 1)


def ratio(samples, a, b, w):
    """Median (min, max) of the per-run ratios perf(a)/perf(b), or None."""
    ra = Stats(samples, a, w).runs
    rb = Stats(samples, b, w).runs
    rs = []
    for run in sorted(set(ra) & set(rb)):
        x, y = ra[run], rb[run]
        if x <= 0 or y <= 0:
            continue
        rs.append(x / y if BETTER[w] == "higher" else y / x)
    if not rs:
        return None
    return statistics.median(rs), min(rs), max(rs)


def fmt_ratio(r):
    if r is None:
        return "n/a"
    m, lo, hi = r

    def f(x):
        return "%.2f" % x if x < 10 else "%.1f" % x
    return "%s× (%s–%s)" % (f(m), f(lo), f(hi)) if lo != hi else "%s×" % f(m)


def table(samples, targets, workloads, notes):
    present = [t for t in targets if any((t, w) in samples for w in workloads)]
    out = ["| workload | unit | " + " | ".join(present) + " |",
           "| --- | --- | " + " | ".join("---" for _ in present) + " |"]
    for w in workloads:
        if not any((t, w) in samples for t in present):
            continue
        arrow = "↑" if BETTER[w] == "higher" else "↓"
        row = ["%s" % LABEL[w], "%s %s" % (UNIT[w], arrow)]
        row += [Stats(samples, t, w).cell(UNIT[w], notes) for t in present]
        out.append("| " + " | ".join(row) + " |")
    return out, present


def ratio_table(samples, pairs, workloads):
    pairs = [(a, b) for a, b in pairs if any((a, w) in samples for w in workloads)]
    out = ["| workload | " + " | ".join("%s / %s" % p for p in pairs) + " |",
           "| --- | " + " | ".join("---" for _ in pairs) + " |"]
    for w in workloads:
        out.append("| %s | " % LABEL[w] + " | ".join(fmt_ratio(ratio(samples, a, b, w))
                                                     for a, b in pairs) + " |")
    return out


def runs_of(samples):
    return max([len(e["runs"]) + len(e["errors"]) for e in samples.values()] or [0])


def p9bench(path):
    """{name: (median, min, max, unit)} from Google Benchmark's JSON."""
    j = load_json(path)
    if not j:
        return {}
    res = {}
    per = {}
    for b in j.get("benchmarks", []):
        if b.get("run_type") != "iteration":
            continue
        name = b["run_name"] if "run_name" in b else b["name"]
        if "Handoff" in name:
            v = b.get("per_handoff")  # seconds per hand-off (an inverted rate)
            if v is None:
                continue
            per.setdefault("handoff", []).append(float(v) * 1e6)
        elif "RpcRoundTrip" in name:
            t = b["real_time"]
            unit = b.get("time_unit", "ns")
            key = "rpc_inline" if "/inline" in name else "rpc"
            per.setdefault(key, []).append(t / {"ns": 1e3, "us": 1, "ms": 1e-3}[unit])
    for k, vals in per.items():
        res[k] = (statistics.median(vals), min(vals), max(vals), len(vals))
    return res


def verdict(ok):
    return "**met**" if ok else "**missed**"


def targets_section(gs, link, pb, notes):
    """The issue's targets, honestly: met / missed / n/a, with the figures."""
    out = ["| target | comparison | measured | verdict |", "| --- | --- | --- | --- |"]

    def row(target, comp, r, ok):
        if r is None:
            out.append("| %s | %s | n/a | n/a |" % (target, comp))
        else:
            out.append("| %s | %s | %s | %s |" % (target, comp, fmt_ratio(r), verdict(ok(r[0]))))

    for tr in ("rdma", "tcp"):
        for w in ("stat_warm", "git_status"):
            row("warm metadata, loose ≥ 5× kernel none", "%s: 9prdma-%s-loose / kernel-%s-none" %
                (w, tr, tr), ratio(gs, "9prdma-%s-loose" % tr, "kernel-%s-none" % tr, w),
                lambda m: m >= 5)
            row("warm metadata, loose ≥ 1× kernel loose", "%s: 9prdma-%s-loose / kernel-%s-loose" %
                (w, tr, tr), ratio(gs, "9prdma-%s-loose" % tr, "kernel-%s-loose" % tr, w),
                lambda m: m >= 1)
    for tr in ("rdma", "tcp"):
        for c in ("none", "loose"):
            for w in ("seq_read", "seq_write"):
                row("sequential ≥ 1.5× kernel", "%s: 9prdma-%s-%s / kernel-%s-%s" % (w, tr, c, tr, c),
                    ratio(gs, "9prdma-%s-%s" % (tr, c), "kernel-%s-%s" % (tr, c), w),
                    lambda m: m >= 1.5)
    row("sequential ≥ 1.5× kernel", "seq_write: 9prdma-rdma-wb / kernel-rdma-loose",
        ratio(gs, "9prdma-rdma-wb", "kernel-rdma-loose", "seq_write"), lambda m: m >= 1.5)
    bw = (link or {}).get("send_bw_MBps_64k")
    for c in ("none", "loose"):
        for w in ("seq_read", "seq_write"):
            s = Stats(gs, "9prdma-rdma-%s" % c, w)
            comp = "%s: 9prdma-rdma-%s / ib_send_bw 64 KiB (%s MiB/s)" % (w, c, fmt(bw, "MiB/s"))
            if s.med is None or not bw:
                out.append("| ≥ 70%% of the raw link over RDMA | %s | n/a | n/a |" % comp)
            else:
                f = s.med / bw
                out.append("| ≥ 70%% of the raw link over RDMA | %s | %.1f%% (%.1f–%.1f%%) | %s |" % (
                    comp, 100 * f, 100 * s.lo / bw, 100 * s.hi / bw, verdict(f >= 0.7)))
    for tr in ("rdma", "tcp"):
        for c in ("none", "loose"):
            r = ratio(gs, "kernel-%s-%s" % (tr, c), "9prdma-%s-%s" % (tr, c), "rand_read_qd1")
            # perf(kernel)/perf(9prdma) = latency(9prdma)/latency(kernel)
            comp = "latency 9prdma-%s-%s / kernel-%s-%s" % (tr, c, tr, c)
            if r is None:
                out.append("| 4 KiB random read depth 1 ≤ 1.3× kernel latency | %s | n/a | n/a |" % comp)
            else:
                out.append("| 4 KiB random read depth 1 ≤ 1.3× kernel latency | %s | %s | %s |" % (
                    comp, fmt_ratio(r), verdict(r[0] <= 1.3)))
    for key, name, comp, limit in (
            ("handoff", "hand-off median < 5 µs", "p9_bench", 5),
            ("rpc", "in-process RPC < 10 µs",
             "p9_bench, loopback channel (two delivery-thread wake-ups)", 10),
            ("rpc_inline", "in-process RPC < 10 µs",
             "p9_bench, server answering inside Send (the client's own work, no wake-up)", 10)):
        v = pb.get(key)
        if v is None:
            out.append("| %s | %s | n/a | n/a |" % (name, comp))
        else:
            out.append("| %s | %s, median of %d repetitions | %.3f µs (%.3f–%.3f) | %s |" % (
                name, comp, v[3], v[0], v[1], v[2], verdict(v[0] < limit)))
    return out


def chart(path, groups):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    colors = {"direct": "#777777", "memfs": "#8e44ad", "memfs-nocache": "#c39bd3",
              "9prdma-none": "#1f77b4", "9prdma-loose": "#2ca02c", "9prdma-readonly": "#17becf",
              "9prdma-rdma-none": "#1f77b4", "9prdma-rdma-loose": "#2ca02c", "9prdma-rdma-wb": "#17becf",
              "9prdma-tcp-none": "#aec7e8", "9prdma-tcp-loose": "#98df8a",
              "kernel-rdma-none": "#d62728", "kernel-rdma-loose": "#ff7f0e",
              "kernel-tcp-none": "#ff9896", "kernel-tcp-loose": "#ffbb78"}
    groups = [g for g in groups if g[1]]
    if not groups:
        return False
    fig = plt.figure(figsize=(22, 9.5 * len(groups)), dpi=80, layout="constrained")
    subfigs = fig.subfigures(len(groups), 1) if len(groups) > 1 else [fig]
    for sf, (title, samples, targets) in zip(subfigs, groups):
        sf.suptitle(title, fontsize=15, fontweight="bold")
        ws = [w for w in ORDER if any((t, w) in samples for t in targets)]
        axes = sf.subplots(2, 5, sharey=True)
        for ax in axes.flat[len(ws):]:
            ax.axis("off")
        axes[0, 0].invert_yaxis()  # (shared: once)
        for ax, w in zip(axes.flat, ws):
            meds, errs, labels, cols = [], [[], []], [], []
            for t in targets:
                s = Stats(samples, t, w)
                labels.append(t)
                cols.append(colors.get(t, "#333333"))
                if s.med is None:
                    meds.append(0)
                    errs[0].append(0)
                    errs[1].append(0)
                else:
                    meds.append(s.med)
                    errs[0].append(s.med - s.lo)
                    errs[1].append(s.hi - s.med)
            y = range(len(targets))
            ax.barh(y, meds, xerr=errs, color=cols, capsize=3)
            for i, t in enumerate(targets):
                s = Stats(samples, t, w)
                if s.med is None:
                    ax.text(0, i, " n/a", va="center", fontsize=9, color="#aa0000")
                else:
                    ax.text(s.med, i, " " + fmt(s.med, UNIT[w]), va="bottom", ha="left", fontsize=8)
            ax.set_yticks(list(y))
            ax.set_yticklabels(labels, fontsize=10)
            ax.tick_params(axis="y", labelleft=ax in axes[:, 0])
            ax.set_title("%s\n%s (%s is better)" % (LABEL[w], UNIT[w], BETTER[w]), fontsize=10)
            ax.tick_params(axis="x", labelsize=8)
            ax.grid(axis="x", alpha=0.3)
    fig.savefig(path)
    return True


def main():
    out = sys.argv[1]
    meta = load_json(os.path.join(out, "meta.json"), {})
    timing = load_json(os.path.join(out, "timing.json"), {})
    hs = load_samples(os.path.join(out, "host.jsonl"))
    gs = load_samples(os.path.join(out, "guest", "guest.jsonl"))
    hm = load_json(os.path.join(out, "host-manifest.json"), {})
    gm = load_json(os.path.join(out, "guest-manifest.json"), {})
    henv = load_json(os.path.join(out, "host-env.json"), {})
    genv = load_json(os.path.join(out, "guest", "env.json"), {})
    link = load_json(os.path.join(out, "guest", "link.json"), {})
    gexit = load_json(os.path.join(out, "guest", "exit.json"), {})
    gskip = load_json(os.path.join(out, "guest-skipped.json"))
    pb = p9bench(os.path.join(out, "p9_bench.json"))
    notes = []
    L = []
    L.append("# 9prdma benchmarks")
    L.append("")
    L.append("`%s` on %s (commit %s), %d s in all. Host: Linux %s, %s CPUs (%s), load average "
             "%s at the start, %s at the end (the machine is shared: the figures are noisy, the "
             "side-by-side ratios less so)." % (
                 meta.get("command", "tests/bench/run"), meta.get("date", "?"), meta.get("commit", "?"),
                 timing.get("harness_seconds", 0), meta.get("kernel", "?"), meta.get("cpus", "?"),
                 meta.get("cpu", "?"), meta.get("loadavg_start", "?"), timing.get("loadavg_end", "?")))
    L.append("")
    L.append("Each cell: median (min–max) of the runs; ↑ higher is better, ↓ lower is better. "
             "Clients are mounted together and measured round-robin, run by run, so the "
             "machine's load falls on all alike. A ratio A / B is perf(A)/perf(B) (> 1: A is "
             "faster), the median (min–max) of the per-run ratios. Chart: `report.png`.")
    if hs:
        L.append("")
        L.append("## Host: TCP over loopback to diod, with the ceilings")
        L.append("")
        L.append("Measured %s (commit %s)." % (henv.get("date", "?"), henv.get("commit", "?")))
        L.append("")
        L.append("Debian's diod %s exports a %s; `direct` is the export directory itself (the "
                 "upper bound), `memfs` the in-memory FUSE file system of tests/bench/memfs.cc "
                 "(the FUSE ceiling: `memfs` with 1-day timeouts and keep_cache, `memfs-nocache` "
                 "with timeouts 0 and direct_io), `9prdma-MODE` is `mount.9prdma -o "
                 "trans=tcp,cache=MODE`. The host kernel has no 9p client: the kernel client is "
                 "measured in the guest only. %d runs. Sizes: %s files in the stat tree (%s), "
                 "%s MiB sequential file, %s small files, %s files in the tarball (%.1f MB), "
                 "%s files in the git repository, imports from %s .py files of %s." % (
                     henv.get("diod", "?"), henv.get("host_fs", "?"), runs_of(hs),
                     hm.get("tree_files"), "100 per directory" if hm.get("tree_files", 0) >= 100 else "",
                     hm.get("seq_mib"), hm.get("small_files"), hm.get("src_files"),
                     hm.get("tarball_bytes", 0) / 1e6, hm.get("git_files"),
                     hm.get("py_files"), ", ".join(hm.get("py_pkgs", []))))
        L.append("")
        t, _ = table(hs, HOST_TARGETS, ORDER, notes)
        L += t
        L.append("")
        L.append("Ratios (performance of 9prdma relative to the ceilings; 1.00× = as fast):")
        L.append("")
        L += ratio_table(hs, HOST_RATIOS, ORDER)
    L.append("")
    L.append("## Soft-RoCE guest: 9prdma against the kernel's 9p client")
    L.append("")
    if gexit.get("date"):
        L.append("Measured %s (commit %s)." % (gexit["date"], gexit.get("commit", "?")))
        L.append("")
    if gskip:
        L.append("Not run: %s." % gskip.get("error"))
    elif not gs:
        L.append("No results (guest exit status %s; see build/bench/guest/output.log)." %
                 gexit.get("exit", "?"))
    else:
        L.append("qemu TCG guest (no KVM), Linux %s, %s vCPU(s)%s, Soft-RoCE rxe0 on a veth pair "
                 "(active MTU %s), everything inside the guest. Servers: %s, both exporting one tmpfs; "
                 "every client uses msize 64 KiB (the RDMA diod's limit). `kernel-T-C` is "
                 "`mount -t 9p -o trans=T,cache=C`, `9prdma-T-C` is `mount.9prdma -o "
                 "trans=T,cache=C`, `9prdma-rdma-wb` is `cache=loose,writeback_cache` over RDMA. Under TCG everything is 10–100× slower than on hardware, "
                 "so the sizes are small (%s files in the stat tree, %s MiB sequential file, "
                 "%s small files, %s files in the tarball, %s in the git repository, %s) to keep "
                 "the guest part under 15 minutes; compare within a row only. %d runs. "
                 "Guest exit status %s." % (
                     genv.get("kernel", "?"), genv.get("vcpus", "?"),
                     " (the default, `--vm-smp`: on this shared 2-core host a second TCG vCPU "
                     "made every cross-CPU wake-up cost milliseconds, everything ~3× slower)"
                     if genv.get("vcpus") == 1 else "", genv.get("rxe_mtu", "?"),
                     genv.get("diod", "?"), gm.get("tree_files"), gm.get("seq_mib"),
                     gm.get("small_files"), gm.get("src_files"), gm.get("git_files"),
                     ", ".join(gm.get("py_pkgs", [])),
                     runs_of(gs), gexit.get("exit", "?")))
        L.append("")
        if link:
            L.append("Raw link (perftest over rdma_cm on rxe0, client and server in the guest): "
                     "ib_send_bw 64 KiB messages **%s MiB/s**, ib_send_lat 64 B **%s µs** "
                     "typical%s%s." % (fmt(link.get("send_bw_MBps_64k"), "MiB/s"),
                                     fmt(link.get("send_lat_us_64B"), "us"),
                                     " (both with -e, completion events: with one vCPU two "
                                     "polling processes take turns once per scheduler tick, "
                                     "which halves the bandwidth and makes latency ms)"
                                     if link.get("events") else "",
                                     note_ref(notes, link["error"]) if link.get("error") else ""))
            L.append("")
        t, _ = table(gs, GUEST_TARGETS, ORDER, notes)
        L += t
        L.append("")
        L.append("Ratios (9prdma relative to the kernel client on the same transport and server; "
                 "the last two columns: each client relative to `direct`, the export directory "
                 "read in the guest with no mount, i.e. the workload's own cost under TCG):")
        L.append("")
        L += ratio_table(gs, GUEST_RATIOS, ORDER)
    L.append("")
    L.append("## Micro-benchmarks (p9_bench)")
    L.append("")
    if pb:
        for key, name in (("handoff", "completion → waiter hand-off (BM_Handoff/PingPong, per_handoff)"),
                          ("rpc", "one in-process RPC on the loopback channel, two thread "
                                  "wake-ups (BM_RpcRoundTrip/Getattr/threads, real time)"),
                          ("rpc_inline", "one in-process RPC answered inside Send, no wake-up "
                                         "(BM_RpcRoundTrip/Getattr/inline, real time)")):
            v = pb.get(key)
            if v:
                L.append("- %s: median **%.2f µs** (%.2f–%.2f) over %d repetitions" % (
                    name, v[0], v[1], v[2], v[3]))
    else:
        L.append("Not run.")
    L.append("")
    L.append("## Targets of the issue")
    L.append("")
    L.append("Figures, not tests. Ratios are side by side in the guest (same server, export and "
             "link); n/a where a client could not run.")
    L.append("")
    L += targets_section(gs, link, pb, notes)
    if notes:
        L.append("")
        L.append("## Notes")
        L.append("")
        for i, n in enumerate(notes):
            L.append("%d. %s" % (i + 1, n))
    L.append("")
    L.append("## Method")
    L.append("")
    L.append("- Sequential: one file, 1 MiB `read()`s after `POSIX_FADV_DONTNEED` on it (cold "
             "client page cache); writes: create, 1 MiB `write()`s, `fsync`, close, all timed. "
             "MiB/s = 2^20 B/s (perftest's MB/sec are 2^20 B too).")
    L.append("- Random: `fio --rw=randread --bs=4k --ioengine=psync --fadvise_hint=1` over the "
             "sequential file (buffered with POSIX_FADV_RANDOM, the page cache dropped first, "
             "fio's random map on: no block is read twice, so every read reaches the server; the "
             "guest kernel's 9p client refuses O_DIRECT). Depth 1: one job, median completion "
             "latency; depth 16: 16 threads on 16 disjoint parts (`--numjobs=16 --thread`), total IOPS.")
    L.append("- stat: `scandir` + `lstat` of every directory and file of the tree. Cold: right "
             "after a fresh mount (the server's own cache is warm; `direct` has no mount, its "
             "cold = warm); warm: the same walk again at once.")
    L.append("- Small files: `open(O_CREAT|O_EXCL)`, one 1 KiB write, close, in a fresh directory. "
             "Untar: `tar --no-same-owner -xf` of an uncompressed tarball of /usr/include files "
             "into a fresh directory. Both are removed on the export afterwards, untimed.")
    L.append("- git status: `git status --porcelain` (fsmonitor and untracked cache off) in a "
             "clean committed tree of /usr/include files, a copy of its own for each client (the "
             "warm-up run may refresh the index; clients never see each other's index writes); "
             "each timed run right after an untimed one in the same mount (warm, like the stat walk: "
             "within every client's cache lifetime).")
    L.append("- Python: a fresh `python3 -S -B` with PYTHONPATH on the mount imports stdlib packages "
             "copied there with their .pyc (checked to come from the mount); the import statement "
             "is timed inside the interpreter, right after an untimed run.")
    L.append("")
    md = "\n".join(L) + "\n"
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(md)
    ok = chart(os.path.join(out, "report.png"),
               [("Host: TCP loopback to diod, with the ceilings", hs,
                 [t for t in HOST_TARGETS if any(k[0] == t for k in hs)]),
                ("Soft-RoCE guest (qemu TCG): 9prdma vs the kernel 9p client", gs,
                 [t for t in GUEST_TARGETS if any(k[0] == t for k in gs)])])
    print(md)
    if not ok:
        print("report: no chart (python3-matplotlib missing or nothing measured)", file=sys.stderr)


if __name__ == "__main__":
    main()
