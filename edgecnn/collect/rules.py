"""Which frames are worth keeping: the collection rules, and the bounds on what is kept (rate, near-duplicates).

Rules are tried in the order of ``store.RULES``; the first that fires is recorded in the sidecar:

- ``novelty``: the frame's pooled features score above the export's calibrated threshold (``FeatureStats``);
  off, with one info line, when the model has no features output or its export has no statistics.
- ``low-score``: top-1 score below ``min_score``.
- ``margin``: top-1 minus top-2 below ``margin``.
- ``rare``: after ``warmup`` classified frames, a top-1 class that got less than ``rare_share`` of them.
- ``random``: each frame with probability ``random`` (seeded), so the collection is not only hard cases.
"""

from __future__ import annotations

import argparse
import logging
import random
import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import Optional, Sequence

import cv2
import numpy as np

from edgecnn.collect.store import RULE_LOW_SCORE, RULE_MARGIN, RULE_NOVELTY, RULE_RANDOM, RULE_RARE, RULES

log = logging.getLogger(__name__)

DEFAULT_MIN_SCORE = 0.5
DEFAULT_MARGIN = 0.1
DEFAULT_RANDOM = 0.002      # 1 frame in 500: at 30 FPS about 3.6 a minute
DEFAULT_RARE_SHARE = 0.02   # a class under 2 % of the frames so far
DEFAULT_WARMUP = 300        # frames before the rare rule may fire (a share needs a few hundred frames)
DEFAULT_RATE_PER_MIN = 30.0
BURST_S = 10.0              # the rate limiter allows a burst of this many seconds' worth of frames
DUPLICATE_SIZE = 16         # frames are compared as 16x16 grey thumbnails
DUPLICATE_DIFF = 6.0        # mean absolute grey difference (0-255) under which a frame repeats the last kept one
RATE_UNITS = {"s": 60.0, "sec": 60.0, "min": 1.0, "m": 1.0, "h": 1 / 60, "hour": 1 / 60}


@dataclass(frozen=True)
class RuleSettings:
    """What the rules compare against (``--collect-rules``, ``--collect-min-score`` ...)."""

    rules: tuple = RULES
    min_score: float = DEFAULT_MIN_SCORE
    margin: float = DEFAULT_MARGIN
    random: float = DEFAULT_RANDOM
    rare_share: float = DEFAULT_RARE_SHARE
    warmup: int = DEFAULT_WARMUP
    seed: int = 0


@dataclass(frozen=True)
class Decision:
    """The rule that fired (None: keep nothing) and the frame's novelty score (None when not measured)."""

    rule: Optional[str]
    novelty: Optional[float]


class Rules:
    """Decides per classified frame which rule, if any, keeps it; keeps the running class counts of ``rare``."""

    def __init__(self, settings: RuleSettings, feature_stats=None):
        self.settings = settings
        self.stats = feature_stats
        self.counts: Counter = Counter()
        self.total = 0
        self._rng = random.Random(settings.seed)
        self._lucky = False
        self.novelty_off: Optional[str] = None
        if feature_stats is None:
            self._novelty_is_off("no feature statistics beside the model (feature_stats.npz of its export)")
        elif not np.isfinite(feature_stats.threshold):
            self.stats = None
            self._novelty_is_off("the feature statistics have no calibrated threshold (export it again)")

    def _novelty_is_off(self, why: str) -> None:
        self.novelty_off = why
        if RULE_NOVELTY in self.settings.rules:
            log.info("collect: the novelty rule is off: %s", why)

    def decide(self, top: Sequence, features: Optional[np.ndarray]) -> Decision:
        """``top``: ClassScore-like entries (label, score), best first; ``features``: the frame's pooled features."""
        novelty = None
        if self.stats is not None and features is not None:
            novelty = float(self.stats.score(features))
        elif self.stats is not None and self.novelty_off is None:
            self._novelty_is_off("the model has no features output (export it again with this edgecnn)")
        self._lucky = self._rng.random() < self.settings.random  # drawn for every frame: a steady sample
        rule = next((name for name in self.settings.rules if self._fires(name, top, novelty)), None)
        if top:
            self.counts[top[0].label] += 1
            self.total += 1
        return Decision(rule, novelty)

    def _fires(self, name: str, top: Sequence, novelty: Optional[float]) -> bool:
        s = self.settings
        if name == RULE_NOVELTY:
            return novelty is not None and novelty > self.stats.threshold
        if name == RULE_LOW_SCORE:
            return bool(top) and top[0].score < s.min_score
        if name == RULE_MARGIN:
            return len(top) >= 2 and top[0].score - top[1].score < s.margin
        if name == RULE_RARE:
            return bool(top) and self.total >= s.warmup and self.counts[top[0].label] < s.rare_share * self.total
        return name == RULE_RANDOM and self._lucky


class RateLimit:
    """A token bucket: ``per_min`` frames a minute on average, bursts of up to ``BURST_S`` seconds' worth."""

    def __init__(self, per_min: float, clock=time.monotonic):
        self.rate = per_min / 60.0
        self.capacity = max(1.0, self.rate * BURST_S)
        self.clock = clock
        self._tokens = self.capacity
        self._last = clock()

    def allow(self) -> bool:
        now = self.clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class Duplicates:
    """Whether a frame looks like the last kept one (a 16x16 grey thumbnail's mean absolute difference)."""

    def __init__(self, max_diff: float = DUPLICATE_DIFF):
        self.max_diff = max_diff
        self._last: Optional[np.ndarray] = None

    @staticmethod
    def thumbnail(image: np.ndarray) -> np.ndarray:
        step = max(1, min(image.shape[:2]) // (4 * DUPLICATE_SIZE))  # every step-th pixel first: 0.1 ms at 12 MP
        small = cv2.resize(image[::step, ::step], (DUPLICATE_SIZE, DUPLICATE_SIZE), interpolation=cv2.INTER_AREA)
        if small.ndim == 3:
            small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        return small.astype(np.float32)

    def seen(self, image: np.ndarray) -> bool:
        """True when ``image`` repeats the last kept frame; otherwise it becomes the last kept frame."""
        thumb = self.thumbnail(image)
        if self._last is not None and float(np.abs(thumb - self._last).mean()) < self.max_diff:
            return True
        self._last = thumb
        return False


# -- argparse types of the --collect-* options ---------------------------------------------------------------


def rule_list(text: str) -> tuple:
    """``--collect-rules``: comma-separated rule names from RULES."""
    from edgecnn.errors import did_you_mean

    names = [t.strip() for t in text.split(",") if t.strip()]
    for name in names:
        if name not in RULES:
            raise argparse.ArgumentTypeError(
                f"Received {text!r}; unknown rule {name!r}{did_you_mean(name, RULES)}; expected some of "
                f"{','.join(RULES)}")
    if not names:
        raise argparse.ArgumentTypeError(f"Received {text!r}; expected rule names, e.g. {','.join(RULES)}")
    return tuple(r for r in RULES if r in names)


def rate_per_min(text: str) -> float:
    """``--collect-rate``: frames per minute, as ``N``, ``N/min``, ``N/s`` or ``N/h``."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(?:/\s*([a-z]+))?\s*", text.lower())
    unit = (match.group(2) or "min") if match else ""
    if not match or unit not in RATE_UNITS or not float(match.group(1)) > 0:
        raise argparse.ArgumentTypeError(f"Received {text!r}; expected frames per minute > 0, e.g. 30/min, 1/s "
                                         f"or 100/h")
    return float(match.group(1)) * RATE_UNITS[unit]


def score_threshold(text: str) -> float:
    """``--collect-min-score``/``--collect-margin``: a score from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"Received {text!r}; expected a score from 0 to 1, e.g. 0.5")
    return value


def probability(text: str) -> float:
    """``--collect-random``: a probability per frame (0 to 1), or ``1/N`` for one frame in N."""
    try:
        num, _, den = text.partition("/")
        value = float(num) / float(den) if den else float(num)
    except (ValueError, ZeroDivisionError):
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"Received {text!r}; expected a probability from 0 to 1 or 1/N, e.g. "
                                         f"0.002 or 1/500")
    return value
