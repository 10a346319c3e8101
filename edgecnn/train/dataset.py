"""tf.data pipelines for loaded images: cached, shuffled with a seed, augmented in training only, prefetched."""

from __future__ import annotations

import numpy as np

from edgecnn.data.folder import LoadedImages


def make_dataset(data: LoadedImages, batch_size: int, *, shuffle: bool = False, augmentation=None,
                 seed: int = 0, binary: bool = False):
    """(images uint8 NHWC, labels) batches; binary models get float labels shaped (N, 1)."""
    import tensorflow as tf

    labels = data.labels.astype(np.float32).reshape(-1, 1) if binary else data.labels
    ds = tf.data.Dataset.from_tensor_slices((data.images, labels)).cache()
    if shuffle:
        ds = ds.shuffle(len(data), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if augmentation is not None:
        # Sequential map: the augmentation layers' random state advances in batch order (reproducible runs);
        # each call is already vectorised over the batch, and prefetch overlaps it with training.
        ds = ds.map(lambda x, y: (augmentation(tf.cast(x, tf.float32), training=True), y))
    return ds.prefetch(tf.data.AUTOTUNE)


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """``n / (k * count_c)`` per class, as scikit-learn's "balanced": rare classes weigh more."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = len(labels) / (num_classes * np.maximum(counts, 1))
    return {i: float(w) for i, w in enumerate(weights)}
