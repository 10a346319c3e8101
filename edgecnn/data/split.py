"""Seeded, stratified train/validation split of a dataset, and evenly spread samples."""

from __future__ import annotations

import numpy as np


def stratified_split(data, val_fraction: float, seed: int = 0):
    """Split per class so both parts keep the class balance; every class keeps ≥1 training image.

    ``data`` is anything with ``labels`` and ``subset(positions)`` (FolderImages, ImageSet); returns
    (train, val) of the same type.
    """
    rng = np.random.default_rng(seed)
    val_idx = []
    for label in np.unique(data.labels):
        members = np.flatnonzero(data.labels == label)
        rng.shuffle(members)
        n_val = int(round(len(members) * val_fraction))
        n_val = min(max(n_val, 1 if len(members) > 1 else 0), len(members) - 1)
        val_idx.extend(members[:n_val].tolist())
    val_mask = np.zeros(len(data.labels), dtype=bool)
    val_mask[val_idx] = True
    return data.subset(np.flatnonzero(~val_mask)), data.subset(np.flatnonzero(val_mask))


def spread(n: int, count: int) -> np.ndarray:
    """Indices of ``count`` items spread evenly over ``n`` (all of them when n <= count)."""
    if n <= count:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, count).round().astype(int))


def stratified_sample(labels: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of ``count`` items drawn per class in proportion to the class sizes (all when fewer).

    Quotas are proportional with the largest remainders rounded up, so every
    class keeps its share of the sample and accuracy stays an unbiased estimate
    of the whole set's.
    """
    labels = np.asarray(labels)
    n = len(labels)
    if n <= count:
        return np.arange(n)
    classes, sizes = np.unique(labels, return_counts=True)
    exact = sizes * (count / n)
    quota = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - quota), kind="stable")[: count - int(quota.sum())]:
        quota[i] += 1
    rng = np.random.default_rng(seed)
    picked = [rng.choice(np.flatnonzero(labels == c), size=q, replace=False) for c, q in zip(classes, quota)]
    return np.sort(np.concatenate(picked))
