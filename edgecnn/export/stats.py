"""Statistics for judging an export against its Keras model on the same images.

The accuracy difference of two classifiers on the same images is a *paired*
difference: only the discordant images count, those exactly one of the two gets
right. Given ``d`` discordant images, the number the export gets right is
binomial, so an exact (Clopper-Pearson) interval for that proportion, rescaled
by ``d / N``, bounds the accuracy difference: the exact interval behind
McNemar's test. It is deterministic (the same images always give the same
interval, unlike a bootstrap), stays valid with a handful of discordant images,
where bootstrap percentile intervals are too narrow, and costs nothing. With no
discordant image at all the interval is [0, 0]: the sample holds no evidence of
any change.

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

import numpy as np

CONFIDENCE = 0.95
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


def paired_difference(reference_correct: np.ndarray, export_correct: np.ndarray,
                      confidence: float = CONFIDENCE) -> PairedDifference:
    """Accuracy difference (export - reference) on the same images, with its exact McNemar-based interval."""
    reference_correct = np.asarray(reference_correct, bool)
    export_correct = np.asarray(export_correct, bool)
    n = int(len(reference_correct))
    gained = int(np.sum(export_correct & ~reference_correct))
    lost = int(np.sum(reference_correct & ~export_correct))
    return discordant_interval(n, gained, lost, confidence)


def discordant_interval(images: int, gained: int, lost: int, confidence: float = CONFIDENCE) -> PairedDifference:
    discordant = gained + lost
    if discordant == 0:
        return PairedDifference(images, 0, 0, 0.0, 0.0, confidence)
    low, high = clopper_pearson(gained, discordant, confidence)
    scale = discordant / images
    return PairedDifference(images, gained, lost, (2 * low - 1) * scale, (2 * high - 1) * scale, confidence)


def verdict(drop_interval: tuple[float, float], tolerance: float) -> str:
    """``pass`` when the whole interval of the drop is within ``tolerance``, ``fail`` when it is wholly beyond it."""
    low, high = drop_interval
    eps = 1e-9
    if high <= tolerance + eps:
        return PASS
    if low > tolerance + eps:
        return FAIL
    return INCONCLUSIVE
