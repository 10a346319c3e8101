"""Latency statistics: min/mean/std/percentiles in ms, and throughput."""

from __future__ import annotations

import math
from typing import Sequence

PERCENTILES = (50, 90, 99)
LATENCY_KEYS = ("min", "mean", "std", "p50", "p90", "p99", "max")


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method) of already sorted values."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def latency_stats(times_ms: Sequence[float]) -> dict[str, float]:
    """min, mean, std (population), p50, p90, p99, max of ``times_ms``."""
    values = sorted(float(t) for t in times_ms)
    if not values:
        raise ValueError("no timings to summarize")
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / n)
    out = {"min": values[0], "mean": mean, "std": std}
    out.update({f"p{q}": percentile(values, q) for q in PERCENTILES})
    out["max"] = values[-1]
    return {k: round(v, 4) for k, v in out.items()}


def throughput(batch: int, mean_ms: float) -> float:
    """Images per second for ``batch`` images taking ``mean_ms`` per call."""
    return round(batch * 1000.0 / mean_ms, 2) if mean_ms > 0 else float("inf")
