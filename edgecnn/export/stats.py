"""Statistics for judging an export against its Keras model on the same images.

The accuracy difference of two classifiers on the same images is a *paired*
difference, ``(gained - lost) / N``: ``gained`` images only the export gets
right, ``lost`` only the reference. Its interval is Tango's score interval for
a paired difference of proportions (Tango 1998, Statistics in Medicine
17:891-908; as ``Tango_asymptotic_score_CI_paired_2x2`` in Fagerland, Lydersen
and Laake's ``contingencytables`` and ``pairbinci`` in ``ratesci``) with the
continuity correction of Chang et al. 2024 (J. Appl. Stat. 51:139-152; the
numerator of the score moves one image towards zero, ratesci's ``cc = 0.5``).
Unlike an interval conditioned on the number of discordant images, it accounts
for that number being random too, so it keeps its coverage when only a handful
of images disagree, and with none it is not [0, 0] (the README gives how many
agreeing images a tolerance needs). It is deterministic
(the same images always give the same interval, unlike a bootstrap) and
depends only on N, gained and lost. Its coverage, summed exactly over the
multinomial in ``tests/test_export_stats.py``, is at least 95 % wherever a
verdict counts; without the correction it falls to 93.6 % (300 images, 2.2 %
of them discordant, a 1-point drop).

The verdict uses the whole interval, not the point estimate, so that a new
validation sample cannot flip it between pass and fail: ``pass`` needs the
interval inside the tolerance, ``fail`` needs it entirely outside, and an
interval that straddles the tolerance is ``inconclusive`` (a warning that more
images would decide it). Flipping from pass to fail would take two samples whose
95 % intervals do not overlap. A verdict on fewer than :data:`MIN_VERDICT_IMAGES`
images is never a failure, only a warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

CONFIDENCE = 0.95
CONTINUITY = 0.5  # Chang et al. 2024: the score's numerator moves 2 * 0.5 = one image towards zero
BISECTIONS = 60  # halvings of [-1, 1]: each end of the interval to float precision
MIN_VERDICT_IMAGES = 300  # fewer images: a verdict is a warning, never a failure
MAX_VALIDATION_IMAGES = 1000  # default cap on validation images (stratified sample beyond it)

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"


@dataclass(frozen=True)
class PairedDifference:
    """Accuracy of an export minus that of its reference on the same ``images``, with a confidence interval."""

    images: int
    gained: int  # images only the export gets right
    lost: int  # images only the reference gets right
    low: float
    high: float
    confidence: float = CONFIDENCE

    @property
    def difference(self) -> float:
        return (self.gained - self.lost) / self.images if self.images else 0.0

    @property
    def drop(self) -> float:
        """Accuracy points (0..1) the export loses; negative when it gains."""
        return -self.difference

    @property
    def drop_interval(self) -> tuple[float, float]:
        return -self.high, -self.low


def clopper_pearson(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Exact two-sided interval for a binomial proportion ``k / n``."""
    from scipy.stats import beta

    alpha = 1.0 - confidence
    low = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


def wilson(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``k / n`` (one accuracy on ``n`` images)."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_difference(reference_correct: np.ndarray, export_correct: np.ndarray,
                      confidence: float = CONFIDENCE) -> PairedDifference:
    """Accuracy difference (export - reference) on the same images, with its score interval."""
    reference_correct = np.asarray(reference_correct, bool)
    export_correct = np.asarray(export_correct, bool)
    n = int(len(reference_correct))
    gained = int(np.sum(export_correct & ~reference_correct))
    lost = int(np.sum(reference_correct & ~export_correct))
    return discordant_interval(n, gained, lost, confidence)


def discordant_interval(images: int, gained: int, lost: int, confidence: float = CONFIDENCE) -> PairedDifference:
    """The paired difference from counts: ``gained`` images only the export gets right, ``lost`` only the reference."""
    if images == 0:
        return PairedDifference(0, 0, 0, -1.0, 1.0, confidence)
    low, high = score_interval(images, gained, lost, confidence)
    return PairedDifference(images, gained, lost, float(low), float(high), confidence)


def score_interval(images, gained, lost, confidence: float = CONFIDENCE,
                   continuity: float = CONTINUITY) -> tuple[np.ndarray, np.ndarray]:
    """Tango's score interval for ``(gained - lost) / images``, continuity-corrected; elementwise over arrays.

    The interval is every difference ``delta`` whose score ``|T(delta)|`` is at most
    the normal quantile; ``T`` falls as ``delta`` grows, so each end is found by bisection.
    """
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    n = float(images)
    b, c = np.broadcast_arrays(np.asarray(gained, np.float64), np.asarray(lost, np.float64))
    estimate = (b - c) / n
    lo, hi = estimate.copy(), np.ones_like(estimate)  # upper end: the largest delta with T(delta) >= -z
    for _ in range(BISECTIONS):
        mid = (lo + hi) / 2
        inside = _tango_score(n, b, c, mid, continuity) >= -z
        lo, hi = np.where(inside, mid, lo), np.where(inside, hi, mid)
    upper = lo
    lo, hi = -np.ones_like(estimate), estimate.copy()  # lower end: the smallest delta with T(delta) <= z
    for _ in range(BISECTIONS):
        mid = (lo + hi) / 2
        inside = _tango_score(n, b, c, mid, continuity) <= z
        lo, hi = np.where(inside, lo, mid), np.where(inside, mid, hi)
    return hi, upper


def _tango_score(n: float, b: np.ndarray, c: np.ndarray, delta: np.ndarray, continuity: float) -> np.ndarray:
    """Tango's score statistic for the difference ``delta`` given ``b`` gained and ``c`` lost of ``n``.

    ``q`` is the maximum-likelihood share of lost images under ``delta``; the
    numerator moves ``2 * continuity`` images towards zero (Chang et al. 2024).
    """
    quad_b = -b - c + (2 * n - b + c) * delta
    quad_c = -c * delta * (1 - delta)
    q = (np.sqrt(np.maximum(quad_b * quad_b - 8 * n * quad_c, 0.0)) - quad_b) / (4 * n)
    excess = b - c - n * delta
    excess = np.sign(excess) * np.maximum(np.abs(excess) - 2 * continuity, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = excess / np.sqrt(n * (2 * q + delta * (1 - delta)))
    return np.where(excess == 0, 0.0, score)


def verdict(drop_interval: tuple[float, float], tolerance: float) -> str:
    """``pass`` when the whole interval of the drop is within ``tolerance``, ``fail`` when it is wholly beyond it."""
    low, high = drop_interval
    eps = 1e-9
    if high <= tolerance + eps:
        return PASS
    if low > tolerance + eps:
        return FAIL
    return INCONCLUSIVE
