"""The per-mount counters mount.9prdma publishes (fuse/stats_file.cc):
/run/9prdma/<mountpoint, '/' → '-'>.stats as root, rewritten every second.
Standard library only."""

import os


def stats_path(mountpoint):
    """Where the daemon serving `mountpoint` writes its counters (root)."""
    name = os.path.realpath(mountpoint).replace("/", "-")
    return f"/run/9prdma/{name}.stats"


def read_stats(mountpoint):
    """Counters summed over every queue ({"requests": n, "alive": queues
    alive, ...}), or None while the file does not exist."""
    try:
        with open(stats_path(mountpoint)) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return None
    total = {}
    for line in lines:
        if not line.startswith("queue "):
            continue
        for field in line.split():
            key, sep, value = field.partition("=")
            if sep and value.lstrip("-").isdigit():
                total[key] = total.get(key, 0) + int(value)
    return total


def read_ops(mountpoint):
    """FUSE requests of each kind the daemon got ({"open": n, "flush": n,
    ...}), or None while the stats file does not exist."""
    try:
        with open(stats_path(mountpoint)) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return None
    for line in lines:
        if line.startswith("ops "):
            return {k: int(v) for k, _, v in (f.partition("=") for f in line.split()[1:])}
    return None
