"""Resident memory of this process: current and peak, in MB (psutil when present, else ``resource``)."""

from __future__ import annotations

import sys


def peak_rss_mb() -> float | None:
    """Peak resident set size of this process so far, in MB.

    Linux: VmHWM from /proc/self/status, which starts afresh at exec. Not
    ru_maxrss: Linux carries it over from the parent across fork+exec, so a
    worker started by a process holding TensorFlow would report the parent's size.
    """
    hwm = _proc_status_mb("VmHWM")
    if hwm is not None:
        return hwm
    try:
        import resource
    except ImportError:  # Windows
        return _psutil_peak()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return round(peak * scale / 2**20, 1)


def current_rss_mb() -> float | None:
    rss = _proc_status_mb("VmRSS")
    if rss is not None:
        return rss
    try:
        import psutil

        return round(psutil.Process().memory_info().rss / 2**20, 1)
    except ImportError:
        pass
    return None


def _proc_status_mb(field: str) -> float | None:
    """A ``kB`` field of /proc/self/status in MB (None off Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _psutil_peak() -> float | None:
    try:
        import psutil

        info = psutil.Process().memory_info()
        return round(getattr(info, "peak_wset", info.rss) / 2**20, 1)
    except ImportError:
        return None
