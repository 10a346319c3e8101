"""Run statistics: per-frame latencies collected during the loop, summarized at the end."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np


@dataclass
class RunStats:
    """Counts and latencies of one camera run; ``summary()`` turns them into a report."""

    processed: int = 0
    classified: int = 0
    dropped: int = 0
    stop_reason: str = "running"
    totals_ms: list[float] = field(default_factory=list)
    preprocess_ms: list[float] = field(default_factory=list)
    inference_ms: list[float] = field(default_factory=list)
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
        self.totals_ms.append(latency_ms["total"])
        self.preprocess_ms.append(latency_ms["preprocess"])
        self.inference_ms.append(latency_ms["inference"])

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
            "latency_ms": {
                "total": _percentiles(self.totals_ms),
                "preprocess": _percentiles(self.preprocess_ms),
                "inference": _percentiles(self.inference_ms),
            },
            "stop": self.stop_reason,
        }


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {"mean": None, "p50": None, "p95": None}
    arr = np.asarray(values, dtype=np.float64)
    return {
        "mean": round(float(arr.mean()), 3),
        "p50": round(float(np.percentile(arr, 50)), 3),
        "p95": round(float(np.percentile(arr, 95)), 3),
    }


def format_summary(summary: dict) -> str:
    """The human-readable summary block."""
    lat = summary["latency_ms"]

    def row(name: str) -> str:
        s = lat[name]
        if s["mean"] is None:
            return f"  {name:<11} -"
        return f"  {name:<11} mean {s['mean']:.1f} ms, p50 {s['p50']:.1f} ms, p95 {s['p95']:.1f} ms"

    return "\n".join([
        f"summary: {summary['frames']} frames ({summary['classified']} classified, {summary['dropped']} dropped) "
        f"in {summary['elapsed_s']:.1f} s, {summary['fps']:.1f} FPS; stopped: {summary['stop']}",
        row("total"),
        row("preprocess"),
        row("inference"),
    ])
