"""Drift you can see: running class shares and top-1 score histograms, recent window against the first hour.

Per classified frame the monitor counts the top-1 class, the top-1 score's bin (ten bins over 0-1) and whether the
score is under the collection's ``min_score``, three ways: the whole run, the ``window`` most recent frames, and
the *baseline*: the first hour of the run (while the run is younger than an hour plus a window, the baseline is
the part of the first hour before the recent window).

Departure test: the total variation distance between the class shares of the recent window and of the baseline
(half the sum of absolute share differences: the share of recent predictions that would have to change class to
match the baseline), or the change in the share of frames under the score threshold, above ``tv_threshold``.
Why not a chi-square test on the counts: consecutive video frames show the same scene, so they are far from
independent; a chi-square p-value would call a person walking past for ten seconds a departure at p < 1e-10. The
distance is an effect size that does not grow with the frame rate. 0.3 by default: a class shift that big is
seen, not noise: simulated, 300 independent frames of five balanced classes against a baseline of 300 give a
median distance of 0.06 and 0.16 at the 99.9th percentile (many classes with thin shares give larger distances).
The warning is logged once per episode: when the distance crosses the threshold, and again only after it has
fallen back under 0.8 of it. Only checked once the window is full and the baseline holds a window's worth.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Optional, Sequence

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_WINDOW = 300          # frames in the recent window (10 s at 30 FPS)
BASELINE_S = 3600.0           # the first hour
DEFAULT_TV_THRESHOLD = 0.3
REARM = 0.8                   # a new episode starts once the distance has fallen under REARM * threshold
SCORE_BINS = 10


def tv_distance(a: np.ndarray, b: np.ndarray) -> Optional[float]:
    """Total variation distance between two count vectors' shares (None when either is empty)."""
    sa, sb = a.sum(), b.sum()
    if not sa or not sb:
        return None
    return float(0.5 * np.abs(a / sa - b / sb).sum())


class _Counts:
    """Class counts, score-bin counts and frames under the threshold of one span of frames."""

    def __init__(self, classes: int):
        self.classes = np.zeros(classes, np.int64)
        self.bins = np.zeros(SCORE_BINS, np.int64)
        self.under = 0
        self.n = 0

    def add(self, cls: int, score_bin: int, under: bool, sign: int = 1) -> None:
        self.classes[cls] += sign
        self.bins[score_bin] += sign
        self.under += sign * under
        self.n += sign

    def minus(self, other: "_Counts") -> "_Counts":
        out = _Counts(len(self.classes))
        out.classes, out.bins = self.classes - other.classes, self.bins - other.bins
        out.under, out.n = self.under - other.under, self.n - other.n
        return out

    def under_share(self) -> Optional[float]:
        return self.under / self.n if self.n else None

    def to_dict(self) -> dict:
        return {"frames": self.n, "classes": self.classes.tolist(), "score_bins": self.bins.tolist(),
                "under_threshold": None if not self.n else round(self.under / self.n, 4)}


class DriftMonitor:
    """A sink: counts every classified frame's top-1; ``summary()`` is the drift report (thread-safe)."""

    needs_image = False
    REPORT_KEY = "drift"  # its summary() in the run summary and the preview

    def __init__(self, labels: Sequence[str], min_score: float, window: int = DEFAULT_WINDOW,
                 tv_threshold: float = DEFAULT_TV_THRESHOLD, baseline_s: float = BASELINE_S):
        self.labels = list(labels)
        self.index = {label: i for i, label in enumerate(self.labels)}
        self.min_score, self.window, self.tv_threshold, self.baseline_s = min_score, window, tv_threshold, baseline_s
        k = len(self.labels)
        self.run, self.recent, self.baseline, self.recent_in_baseline = _Counts(k), _Counts(k), _Counts(k), _Counts(k)
        self._frames: deque = deque()
        self._t0: Optional[float] = None
        self._lock = threading.Lock()
        self.departed = False
        self.episodes = 0

    def handle(self, event) -> bool:
        if event.classified and event.result is not None and event.result.top:
            best = event.result.top[0]
            self.add(best.label, float(best.score), event.t)
        return False

    def close(self) -> None:
        pass

    def add(self, label: str, score: float, t: float) -> None:
        """Count one classified frame (its top-1 label and score, captured at unix time ``t``)."""
        cls = self.index.get(label)
        if cls is None:
            return
        score_bin = min(SCORE_BINS - 1, max(0, int(score * SCORE_BINS)))
        under = score < self.min_score
        with self._lock:
            self._t0 = t if self._t0 is None else self._t0
            in_baseline = t - self._t0 < self.baseline_s
            item = (cls, score_bin, under, in_baseline)
            self.run.add(*item[:3])
            self.recent.add(*item[:3])
            if in_baseline:
                self.baseline.add(*item[:3])
                self.recent_in_baseline.add(*item[:3])
            self._frames.append(item)
            if len(self._frames) > self.window:
                self._forget(self._frames.popleft())
        self._check()

    def _forget(self, item) -> None:
        self.recent.add(*item[:3], sign=-1)
        if item[3]:
            self.recent_in_baseline.add(*item[:3], sign=-1)

    def _reference(self) -> _Counts:
        """The baseline without the frames that are also in the recent window."""
        return self.baseline.minus(self.recent_in_baseline)

    def _distances(self) -> dict:
        ref = self._reference()
        recent_under, ref_under = self.recent.under_share(), ref.under_share()
        return {
            "class_tv_vs_baseline": tv_distance(self.recent.classes, ref.classes),
            "class_tv_vs_run": tv_distance(self.recent.classes, self.run.classes),
            "under_threshold_change": (None if recent_under is None or ref_under is None
                                       else recent_under - ref_under),
            "ready": self.recent.n >= self.window and ref.n >= self.window,
        }

    def _check(self) -> None:
        with self._lock:
            d = self._distances()
        if not d["ready"]:
            return
        size = max(d["class_tv_vs_baseline"] or 0.0, abs(d["under_threshold_change"] or 0.0))
        if not self.departed and size > self.tv_threshold:
            self.departed, self.episodes = True, self.episodes + 1
            log.warning("warning: drift: the last %d frames depart from the first hour of the run (class share "
                        "distance %.2f, frames under score %.2f %+.0f%%; threshold %.2f)", self.window,
                        d["class_tv_vs_baseline"], self.min_score, 100 * d["under_threshold_change"],
                        self.tv_threshold)
        elif self.departed and size < REARM * self.tv_threshold:
            self.departed = False
            log.info("drift: the recent window is back near the first hour (distance %.2f)", size)

    def summary(self) -> dict:
        """The drift report: counts per span, distances, the test and its state."""
        with self._lock:
            d = self._distances()
            return {
                "labels": self.labels,
                "score_bin_edges": [round(i / SCORE_BINS, 2) for i in range(SCORE_BINS + 1)],
                "min_score": self.min_score,
                "window": self.window,
                "run": self.run.to_dict(),
                "recent": self.recent.to_dict(),
                "baseline": {**self._reference().to_dict(), "span": "first hour, without the recent window"},
                "distances": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()},
                "test": {"statistic": "total variation distance of class shares, and change of the share under "
                                      "min_score, recent window vs baseline",
                         "threshold": self.tv_threshold, "departed": self.departed, "episodes": self.episodes},
            }
