"""Novelty: how unlike the training images a frame is, in the model's own feature space.

An export keeps statistics of the pooled features of its training images
(:data:`~edgecnn.rundir.FEATURE_STATS_FILE`): their mean, the top principal axes
(at most 64), each class's mean and the inverse of the within-class covariance,
shrunk toward a multiple of the identity (Ledoit-Wolf). A frame's score is

    sqrt(min over classes of (z - m_c)' P (z - m_c)  +  (D - k) r² / mean training r²)

with ``z`` its features projected on the axes and ``r`` their distance from
the axes' subspace: a Mahalanobis distance to the nearest class plus what the
axes do not span. Higher is more unlike the training data; the threshold is a
percentile (99th) of the scores of held-out validation images.

Numpy only: this runs on the board.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

import numpy as np

from edgecnn._io import atomic_path
from edgecnn.rundir import FEATURE_STATS_FILE

log = logging.getLogger("edgecnn.runtime")

MAX_DIMS = 64  # principal axes kept at most; fewer when fewer explain EXPLAINED of the variance
EXPLAINED = 0.99
MAX_BYTES = 1_000_000  # the file stays under this: fewer axes for very wide features
PERCENTILE = 99.0  # the threshold: this percentile of the validation images' scores
SCORE = ("sqrt(Mahalanobis distance² to the nearest class mean on the top principal axes (Ledoit-Wolf shrunk "
         "within-class covariance) + (D - k) x squared distance from those axes / its mean on the training images)")
_ARRAYS = ("mean", "components", "class_means", "precision")


@dataclass(frozen=True)
class FeatureStats:
    """Statistics of the training images' pooled features; :meth:`score` says how novel a frame's features are."""

    mean: np.ndarray  # (D,) float32
    components: np.ndarray  # (k, D) orthonormal principal axes
    class_means: np.ndarray  # (C, k) per class, on the axes
    precision: np.ndarray  # (k, k) inverse shrunk within-class covariance
    residual: float  # mean squared distance of the training features from the axes' subspace
    threshold: float = float("nan")  # scores above it are novel
    meta: dict = field(default_factory=dict)  # how it was made (summary)

    @property
    def feature_dim(self) -> int:
        return int(self.mean.shape[0])

    # ------------------------------------------------------------------ fit
    @classmethod
    def fit(cls, features: np.ndarray, labels: Optional[np.ndarray] = None, source: str = "") -> "FeatureStats":
        """Statistics of ``features`` (N, D) of training images with class ``labels`` (None: one class)."""
        x = np.asarray(features, np.float64).reshape(len(features), -1)
        n, dim = x.shape
        labels = np.zeros(n, np.int64) if labels is None else np.asarray(labels)
        mean = x.mean(axis=0)
        _, sing, axes = np.linalg.svd(x - mean, full_matrices=False)
        share = np.cumsum(sing ** 2) / max(float(np.sum(sing ** 2)), 1e-30)
        k = max(1, min(MAX_DIMS, n - 1, dim, MAX_BYTES // (4 * dim) - 1, int(np.searchsorted(share, EXPLAINED)) + 1))
        components = axes[:k]
        z = (x - mean) @ components.T
        classes = np.unique(labels)
        class_means = np.stack([z[labels == c].mean(axis=0) for c in classes])
        within = z - class_means[np.searchsorted(classes, labels)]
        cov, shrinkage = _ledoit_wolf(within, dof=max(n - len(classes), 1))
        # What the axes leave out; none when they span the features (the term then drops out of the score).
        residual = float(np.mean(np.sum((x - mean) ** 2, axis=1) - np.sum(z ** 2, axis=1))) if k < dim else np.inf
        meta = {"images": int(n), "classes": int(len(classes)), "feature_dim": int(dim), "pca_dims": int(k),
                "explained_variance": round(float(share[k - 1]), 4),
                "shrinkage": round(float(shrinkage), 4), "source": source, "score": SCORE}
        return cls(mean.astype(np.float32), components.astype(np.float32), class_means.astype(np.float32),
                   np.linalg.inv(cov).astype(np.float32), max(residual, 1e-12), meta=meta)

    def calibrated(self, features: np.ndarray, source: str = "", percentile: float = PERCENTILE) -> "FeatureStats":
        """These statistics with the threshold at ``percentile`` of the scores of held-out ``features``."""
        scores = self.scores(features)
        meta = {**self.meta, "threshold_from": source, "threshold_images": int(len(scores)),
                "threshold_percentile": percentile}
        return replace(self, threshold=float(np.percentile(scores, percentile)), meta=meta)

    # ---------------------------------------------------------------- score
    def scores(self, features: np.ndarray) -> np.ndarray:
        """Novelty of each row of ``features`` (N, D)."""
        x = np.asarray(features, np.float32).reshape(len(features), -1) - self.mean
        z = x @ self.components.T
        residual = np.maximum(np.sum(x * x, axis=1) - np.sum(z * z, axis=1), 0.0)
        diff = z[:, None, :] - self.class_means[None]  # (N, C, k)
        mahalanobis = np.sum((diff @ self.precision) * diff, axis=-1).min(axis=1)  # 4x faster than einsum here
        # The residual spans feature_dim - k directions: weighted by their number (as the Mahalanobis term sums k).
        left_out = self.feature_dim - len(self.components)
        return np.sqrt(np.maximum(mahalanobis, 0.0) + residual / self.residual * left_out)

    def score(self, features: np.ndarray) -> float:
        """Novelty of one frame's features (1-D): higher is more unlike the training images."""
        return float(self.scores(np.asarray(features).reshape(1, -1))[0])

    def is_novel(self, features: np.ndarray) -> bool:
        return self.score(features) > self.threshold

    def summary(self) -> dict:
        """What the statistics are and how they were made (for the card and reports)."""
        return {**self.meta, "threshold": round(self.threshold, 4), "file": FEATURE_STATS_FILE}

    # ------------------------------------------------------------- on disk
    def save(self, path: str | os.PathLike) -> Path:
        """Write the statistics (float32, compressed) atomically to ``path`` (an export folder: its file)."""
        path = Path(path)
        if path.is_dir():
            path = path / FEATURE_STATS_FILE
        arrays = {name: getattr(self, name) for name in _ARRAYS}
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays, residual=np.float32(self.residual),
                                threshold=np.float32(self.threshold), meta=np.array(json.dumps(self.meta)))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Optional["FeatureStats"]:
        """The statistics beside a model file (or in a folder), or None when there are none; an unreadable file
        is a one-line warning and None."""
        path = Path(path)
        file = path / FEATURE_STATS_FILE if path.is_dir() else path.parent / FEATURE_STATS_FILE
        if not file.is_file():
            return None
        try:
            with np.load(file, allow_pickle=False) as data:
                stats = cls(*(np.asarray(data[name], np.float32) for name in _ARRAYS), float(data["residual"]),
                            float(data["threshold"]), json.loads(str(data["meta"])))
            _check(stats)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("warning: %s is not readable feature statistics (%s); novelty is off - re-export the model",
                        file, str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__)
            return None
        return stats


def _check(stats: FeatureStats) -> None:
    k, dim = stats.components.shape
    if stats.mean.shape != (dim,) or stats.class_means.shape[1:] != (k,) or stats.precision.shape != (k, k):
        raise ValueError(f"inconsistent shapes: mean {stats.mean.shape}, axes {stats.components.shape}, "
                         f"class means {stats.class_means.shape}, precision {stats.precision.shape}")
    if stats.meta.get("score", SCORE) != SCORE:  # its threshold was calibrated on another formula's scores
        raise ValueError("made for an earlier novelty score")


def _ledoit_wolf(x: np.ndarray, dof: int) -> tuple[np.ndarray, float]:
    """(covariance of centred rows ``x`` shrunk toward mu*I by the Ledoit-Wolf amount, that amount)."""
    n, k = x.shape
    x2 = x ** 2
    emp = x.T @ x / n
    mu = np.trace(emp) / k
    beta = (np.sum(x2.T @ x2) / n - np.sum(emp ** 2)) / (k * n)
    delta = np.sum((emp - mu * np.eye(k)) ** 2) / k
    shrinkage = 0.0 if delta <= 0 else float(min(beta, delta) / delta)
    cov = x.T @ x / dof
    target = max(np.trace(cov) / k, 1e-12) * np.eye(k)
    return (1 - shrinkage) * cov + max(shrinkage, 1e-6) * target, shrinkage  # never singular
