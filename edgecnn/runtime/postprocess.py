"""Raw model outputs -> class probabilities: the one place that knows softmax, sigmoid and logits.

Used by :class:`edgecnn.runtime.Classifier`, by export validation and by the
training metrics, so a binary sigmoid model reads as two classes everywhere.
"""

from __future__ import annotations

from typing import Optional

import numpy as np


def softmax(x: np.ndarray) -> np.ndarray:
    """Row-wise softmax, in place on ``x`` (pass a copy to keep it)."""
    z = x - x.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def binary_columns(p: np.ndarray) -> np.ndarray:
    """One sigmoid unit's probabilities ``p`` (N,) -> two classes (N, 2): ``[1 - p, p]``."""
    return np.stack([1.0 - p, p], axis=1)


def as_class_probs(outputs: np.ndarray) -> np.ndarray:
    """Probabilities as (N, classes) float64; a single sigmoid unit becomes ``[1 - p, p]``."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.ndim == 2 and outputs.shape[1] == 1:
        return binary_columns(outputs[:, 0])
    return outputs


def to_probabilities(raw: np.ndarray, output_kind: Optional[str] = None) -> np.ndarray:
    """Raw (N, K) float32 output -> class probabilities (N, classes), as float32.

    ``output_kind`` is ``softmax``, ``sigmoid`` or ``logits`` (a softmax is
    applied); None guesses per row: values outside 0..1 are taken as logits.
    """
    if raw.shape[1] == 1:  # one sigmoid unit: binary, [1 - p, p]
        p = raw[:, 0]
        if output_kind == "logits" or (output_kind is None and (p.min() < 0.0 or p.max() > 1.0)):
            p = sigmoid(p)
        return binary_columns(p).astype(np.float32, copy=False)
    if output_kind == "logits":
        return softmax(raw.copy())
    if output_kind is None:
        rows = (raw.min(axis=1) < -1e-3) | (raw.max(axis=1) > 1.0 + 1e-3)
        if rows.any():
            raw = raw.copy()
            raw[rows] = softmax(raw[rows])
    return raw
