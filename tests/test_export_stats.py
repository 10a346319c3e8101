"""Validation statistics: the paired accuracy difference, its exact interval, stratified samples, stable verdicts."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("scipy")

from edgecnn.data.split import stratified_sample  # noqa: E402
from edgecnn.export.stats import (  # noqa: E402
    FAIL,
    INCONCLUSIVE,
    PASS,
    clopper_pearson,
    paired_difference,
    verdict,
)


def test_clopper_pearson_matches_known_values():
    # Known exact intervals: 0 of 10 -> [0, 0.3085]; 5 of 10 -> [0.1871, 0.8129].
    assert clopper_pearson(0, 10) == pytest.approx((0.0, 0.30850), abs=1e-4)
    assert clopper_pearson(5, 10) == pytest.approx((0.18709, 0.81291), abs=1e-4)
    assert clopper_pearson(10, 10)[1] == 1.0


def test_paired_difference_counts_only_discordant_images():
    keras = np.array([1, 1, 1, 1, 0, 0, 1, 0, 1, 1] * 30, bool)
    export = np.array([1, 1, 1, 0, 0, 1, 0, 0, 1, 1] * 30, bool)
    d = paired_difference(keras, export)
    assert (d.images, d.gained, d.lost) == (300, 30, 60)
    assert d.difference == pytest.approx(export.mean() - keras.mean())
    assert d.low < d.difference < d.high
    # The interval is the Clopper-Pearson interval of gained / discordant, rescaled by discordant / N.
    low, high = clopper_pearson(30, 90)
    assert (d.low, d.high) == pytest.approx(((2 * low - 1) * 90 / 300, (2 * high - 1) * 90 / 300))
    same = paired_difference(keras, keras)
    assert (same.difference, same.low, same.high) == (0.0, 0.0, 0.0)


def test_interval_covers_the_true_difference_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    n, p_gain, p_loss = 866, 0.015, 0.03
    covered = 0
    for _ in range(300):
        draw = rng.random(n)
        keras = np.ones(n, bool)
        export = np.ones(n, bool)
        keras[draw < p_gain] = False
        export[(draw >= p_gain) & (draw < p_gain + p_loss)] = False
        d = paired_difference(keras, export)
        covered += d.low <= p_gain - p_loss <= d.high
    assert 0.92 <= covered / 300 <= 0.995


def test_verdict_uses_the_whole_interval():
    assert verdict((0.001, 0.015), 0.02) == PASS
    assert verdict((0.01, 0.03), 0.02) == INCONCLUSIVE
    assert verdict((0.021, 0.05), 0.02) == FAIL
    assert verdict((-0.01, 0.02), 0.02) == PASS  # the bound itself is within tolerance


def test_stratified_sample_keeps_class_shares_and_takes_everything_when_small():
    labels = np.repeat(np.arange(4), [1000, 500, 300, 200])
    idx = stratified_sample(labels, 1000, seed=3)
    assert len(idx) == 1000 and len(set(idx)) == 1000
    assert np.bincount(labels[idx]).tolist() == [500, 250, 150, 100]
    assert not np.array_equal(idx, stratified_sample(labels, 1000, seed=4))
    assert np.array_equal(stratified_sample(labels[:800], 1000), np.arange(800))
    odd = np.repeat(np.arange(3), [7, 7, 7])
    assert np.bincount(odd[stratified_sample(odd, 10)]).tolist() in ([4, 3, 3], [3, 4, 3], [3, 3, 4])


def _population(rng, n: int, keras_accuracy: float, gained: int, lost: int):
    """Paired right/wrong flags for ``n`` images in 5 classes: the export gains ``gained`` and loses ``lost``."""
    labels = np.repeat(np.arange(5), n // 5)
    keras = rng.random(n) < keras_accuracy
    export = keras.copy()
    wrong, right = np.flatnonzero(~keras), np.flatnonzero(keras)
    export[rng.choice(wrong, gained, replace=False)] = True
    export[rng.choice(right, lost, replace=False)] = False
    return labels, keras, export


@pytest.mark.parametrize("gained, lost, expected", [
    (40, 40, {PASS}),  # no net loss: passes on every sample
    (30, 330, {FAIL}),  # 10 points lost: fails on every sample
    (50, 170, None),  # exactly at the 2-point tolerance: the hardest case
    (50, 140, None),  # 1.5 points lost
    (50, 200, None),  # 2.5 points lost
])
def test_verdict_does_not_flip_between_pass_and_fail_across_sampling_seeds(gained, lost, expected):
    """The same artifact judged on 1,000 of 6,000 validation images drawn with 20 seeds."""
    rng = np.random.default_rng(7)
    labels, keras, export = _population(rng, 6000, 0.8, gained, lost)
    tolerance = 0.02
    verdicts, naive = set(), set()
    for seed in range(20):
        idx = stratified_sample(labels, 1000, seed)
        d = paired_difference(keras[idx], export[idx])
        verdicts.add(verdict(d.drop_interval, tolerance))
        naive.add(d.drop > tolerance)
    assert not {PASS, FAIL} <= verdicts, verdicts
    if expected is not None:
        assert verdicts == expected
    if (gained, lost) == (50, 170):
        # The point estimate alone flips on these very samples: the test can fail.
        assert naive == {True, False}
