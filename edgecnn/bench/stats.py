"""Latency statistics: min/mean/std/percentiles in ms, and throughput."""

from __future__ import annotations

from typing import Sequence

import numpy as np

PERCENTILES = (50, 90, 99)
PERCENTILE_METHOD = "linear"  # numpy's default: interpolates between the two nearest timings
LATENCY_KEYS = ("min", "mean", "std", "p50", "p90", "p99", "max")


def latency_stats(times_ms: Sequence[float]) -> dict[str, float]:
    """min, mean, std (population), p50, p90, p99, max of ``times_ms``."""
    values = np.asarray(times_ms, dtype=np.float64)
    if not values.size:
        raise ValueError("no timings to summarize")
    out = {"min": values.min(), "mean": values.mean(), "std": values.std()}
    out.update(zip((f"p{q}" for q in PERCENTILES), np.percentile(values, PERCENTILES, method=PERCENTILE_METHOD)))
    out["max"] = values.max()
    return {k: round(float(v), 4) for k, v in out.items()}


def throughput(batch: int, mean_ms: float) -> float:
    """Images per second for ``batch`` images taking ``mean_ms`` per call."""
    return round(batch * 1000.0 / mean_ms, 2) if mean_ms > 0 else float("inf")
