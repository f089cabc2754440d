"""Sanitizer reports of the programs a test starts, when they come from a
sanitizer build (tests/run.sh's build-tsan, build-asan): a mount.9prdma
daemon's stderr is gone once it daemonizes, so a race, leak or overflow it
reports would go unseen. capture() sends every report to a file instead,
and check() fails the test if any was written. Without sanitizer options
in the environment both do nothing. Standard library only."""

import glob
import os
import shutil
import tempfile

_VARIABLES = ("ASAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS", "UBSAN_OPTIONS")
_dir = None


def capture():
    """From now on, children report to files (log_path) in a fresh directory."""
    global _dir
    if not any(v in os.environ for v in _VARIABLES):
        return
    _dir = tempfile.mkdtemp(prefix="p9-sanitizer-")
    for var in _VARIABLES:
        if var in os.environ:
            name = var.split("_")[0].lower()
            # The sanitizers' option parser takes ':' as a separator, as well
            # as the spaces TSAN_OPTIONS uses.
            os.environ[var] = f"{os.environ[var]}:log_path={_dir}/{name}"


def check():
    """Raises with the reports' text if any sanitized child wrote one."""
    if _dir is None:
        return
    files = sorted(glob.glob(os.path.join(_dir, "*")))
    if files:
        text = []
        for path in files:
            with open(path, errors="replace") as f:
                text.append(f"--- {os.path.basename(path)}\n{f.read()}")
        raise AssertionError("sanitizer reports from the programs under test:\n" + "\n".join(text))
    shutil.rmtree(_dir, ignore_errors=True)
