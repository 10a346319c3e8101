"""Run statistics: per-frame latencies collected during the loop, summarized at the end.

Memory stays flat however long the camera runs: each latency series keeps an
exact count and mean plus a fixed-size uniform reservoir sample for the
percentiles (exact while the run has fewer frames than the reservoir holds).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

RESERVOIR_SIZE = 8192


class LatencySeries:
    """Count, mean and a bounded uniform sample of one latency (reservoir sampling, Algorithm R)."""

    def __init__(self, size: int = RESERVOIR_SIZE, seed: int = 0):
        self.size = size
        self.count = 0
        self.sum = 0.0
        self._sample = np.empty(size, np.float64)
        self._rng = random.Random(seed)

    def add(self, value: float) -> None:
        if self.count < self.size:
            self._sample[self.count] = value
        else:
            slot = self._rng.randrange(self.count + 1)
            if slot < self.size:
                self._sample[slot] = value
        self.count += 1
        self.sum += value

    def stats(self) -> dict:
        if not self.count:
            return {"mean": None, "p50": None, "p95": None}
        sample = self._sample[: min(self.count, self.size)]
        return {
            "mean": round(self.sum / self.count, 3),
            "p50": round(float(np.percentile(sample, 50)), 3),
            "p95": round(float(np.percentile(sample, 95)), 3),
        }


@dataclass
class RunStats:
    """Counts and latencies of one camera run; ``summary()`` turns them into a report."""

    processed: int = 0
    classified: int = 0
    dropped: int = 0
    stop_reason: str = "running"
    latency: dict = field(default_factory=lambda: {k: LatencySeries() for k in ("total", "preprocess", "inference")})
    started: Optional[float] = None
    finished: Optional[float] = None

    def frame_started(self) -> None:
        if self.started is None:
            self.started = time.perf_counter()

    def frame_done(self, dropped: int) -> None:
        self.processed += 1
        self.dropped = dropped
        self.finished = time.perf_counter()

    def add_latency(self, latency_ms: dict) -> None:
        self.classified += 1
        for name, series in self.latency.items():
            series.add(latency_ms[name])

    @property
    def elapsed_s(self) -> float:
        if self.started is None or self.finished is None:
            return 0.0
        return self.finished - self.started

    @property
    def fps(self) -> float:
        """Processed frames per second of wall time, first frame to last."""
        if self.processed < 2 or self.elapsed_s <= 0:
            return 0.0
        return (self.processed - 1) / self.elapsed_s

    def summary(self) -> dict:
        return {
            "frames": self.processed,
            "classified": self.classified,
            "dropped": self.dropped,
            "elapsed_s": round(self.elapsed_s, 3),
            "fps": round(self.fps, 2),
            "latency_ms": {name: series.stats() for name, series in self.latency.items()},
            "stop": self.stop_reason,
        }


def format_summary(summary: dict) -> str:
    """The human-readable summary block."""
    lat = summary["latency_ms"]

    def row(name: str) -> str:
        s = lat[name]
        if s["mean"] is None:
            return f"  {name:<11} -"
        return f"  {name:<11} mean {s['mean']:.1f} ms, p50 {s['p50']:.1f} ms, p95 {s['p95']:.1f} ms"

    extra = [line for line in (_drift_line(summary.get("drift")), _collect_line(summary.get("collect"))) if line]
    return "\n".join([
        f"summary: {summary['frames']} frames ({summary['classified']} classified, {summary['dropped']} dropped) "
        f"in {summary['elapsed_s']:.1f} s, {summary['fps']:.1f} FPS; stopped: {summary['stop']}",
        row("total"),
        row("preprocess"),
        row("inference"),
        *extra,
    ])


def _drift_line(drift: Optional[dict]) -> Optional[str]:
    if not drift or not drift["run"]["frames"]:
        return None
    run, d = drift["run"], drift["distances"]
    top = max(range(len(run["classes"])), key=run["classes"].__getitem__)
    tv = d["class_tv_vs_baseline"]
    vs = f"recent {drift['window']} frames vs first hour: class share distance {tv:.2f}" if d["ready"] else \
        "too few frames to compare the recent window with the first hour"
    return (f"  drift       most frequent {drift['labels'][top]} {run['classes'][top] / run['frames']:.0%}, "
            f"{run['under_threshold']:.0%} under score {drift['min_score']:g}; {vs}; "
            f"{drift['test']['episodes']} departure(s)")


def _collect_line(collect: Optional[dict]) -> Optional[str]:
    if not collect:
        return None
    kept = ", ".join(f"{rule} {n}" for rule, n in collect["kept"].items()) or "none"
    skipped = ", ".join(f"{why} {n}" for why, n in collect["skipped"].items() if n) or "none"
    return (f"  collect     kept {sum(collect['kept'].values())} ({kept}); skipped: {skipped}; "
            f"{collect['frames_on_disk']} frames, {collect['bytes_on_disk'] / 1e6:.1f} of "
            f"{collect['budget_bytes'] / 1e6:.0f} MB in {collect['folder']}")
