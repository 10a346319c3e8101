"""tf.data pipelines over on-disk records: indices shuffled in memory, pixels or features read a batch at a time.

A *source* is anything with ``read(positions) -> array``, ``shape``, ``dtype`` and ``len()``: the image cache
(:class:`edgecnn.data.FolderImages`) or a feature store (:mod:`edgecnn.train.features`). Training sets may
hold several *copies* of each example (features of augmented images): epoch ``e`` reads copy ``e % copies``.
Only indices live in memory; a batch is read (``RecordFile.read``, through the page cache) when tf.data asks
for it, so memory does not grow with the dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

READ_AHEAD = 2  # batches read and prepared ahead of the one training uses


@dataclass(frozen=True)
class Shard:
    """This worker's part of a training set: ``count`` workers, this one ``index`` (multi-worker training)."""

    count: int = 1
    index: int = 0

    def positions(self, n: int, seed: int) -> np.ndarray:
        """This worker's example positions. Every worker gets the same number (a few repeat), so every
        worker runs the same number of steps per epoch, as collective all-reduce needs."""
        if self.count == 1:
            return np.arange(n)
        order = np.random.default_rng(seed).permutation(n)
        per_worker = -(-n // self.count)
        mine = order[self.index::self.count]
        return np.concatenate([mine, order[:per_worker - len(mine)]]) if len(mine) < per_worker else mine


def _labels_tensor(labels: np.ndarray, binary: bool):
    return labels.astype(np.float32).reshape(-1, 1) if binary else labels.astype(np.int64)


def _out_dtype(source) -> np.dtype:
    """What the pipeline hands the model: stored float16 features become float32; pixels stay uint8."""
    dtype = np.dtype(source.dtype)
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def _reader(sources, dtype):
    """A numpy function reading ``positions`` of copy ``copy`` (sources: one per copy)."""
    def read(positions, copy):
        return sources[int(copy)].read(positions).astype(dtype, copy=False)
    return read


def train_dataset(sources, labels: np.ndarray, batch_size: int, *, epochs: int, seed: int = 0,
                  augmentation=None, binary: bool = False, class_weight: dict | None = None,
                  positions: np.ndarray | None = None):
    """Shuffled batches for ``epochs`` epochs: (x, y) or (x, y, sample_weight) with ``class_weight``.

    ``sources`` is one source or a list of copies of the same examples; ``positions`` restricts training to
    those examples (a worker's shard). Each epoch is a fresh seeded permutation; the last batch of an epoch
    may be short. Pass ``steps_per_epoch=steps(len(positions), batch_size)`` to ``fit``.
    """
    import tensorflow as tf

    sources = list(sources) if isinstance(sources, (list, tuple)) else [sources]
    positions = np.arange(len(sources[0])) if positions is None else np.asarray(positions, dtype=np.int64)
    shape, dtype = tuple(sources[0].shape), _out_dtype(sources[0])
    y_all = tf.constant(_labels_tensor(labels, binary))
    weights = (tf.constant([class_weight[i] for i in range(len(class_weight))], tf.float32)
               if class_weight else None)
    read = _reader(sources, dtype)
    copies = len(sources)
    pos = tf.constant(positions, tf.int64)

    def epoch_batches(epoch):
        order = tf.random.experimental.stateless_shuffle(pos, seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
        copy = tf.math.floormod(epoch, copies)
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size).map(lambda p: (p, copy))

    def load(p, copy):
        x = tf.numpy_function(read, [p, copy], tf.as_dtype(dtype), stateful=False)
        x.set_shape((None, *shape))
        y = tf.gather(y_all, p)
        if weights is None:
            return x, y
        return x, y, tf.gather(weights, tf.cast(tf.reshape(y, [-1]), tf.int64))

    ds = tf.data.Dataset.range(epochs).flat_map(epoch_batches)
    ds = ds.map(load, num_parallel_calls=READ_AHEAD, deterministic=True)
    if augmentation is not None:
        # Sequential map: the augmentation layers' random state advances in batch order (reproducible runs);
        # each call is already vectorised over the batch, and prefetch overlaps it with training.
        ds = ds.map(lambda x, *rest: (augmentation(tf.cast(x, tf.float32), training=True), *rest))
    return ds.prefetch(READ_AHEAD)


def eval_dataset(source, labels: np.ndarray | None, batch_size: int, *, binary: bool = False):
    """Batches in order, once: (x, y) with labels, else x alone (prediction)."""
    import tensorflow as tf

    shape, dtype = tuple(source.shape), _out_dtype(source)
    read = _reader([source], dtype)

    def load(p):
        x = tf.numpy_function(read, [p, tf.constant(0, tf.int64)], tf.as_dtype(dtype), stateful=False)
        x.set_shape((None, *shape))
        return x

    ds = tf.data.Dataset.range(len(source)).batch(batch_size)
    if labels is None:
        ds = ds.map(load, num_parallel_calls=READ_AHEAD, deterministic=True)
    else:
        y_all = tf.constant(_labels_tensor(labels, binary))
        ds = ds.map(lambda p: (load(p), tf.gather(y_all, p)), num_parallel_calls=READ_AHEAD, deterministic=True)
    return ds.prefetch(READ_AHEAD)


def steps(count: int, batch_size: int) -> int:
    return -(-count // batch_size)


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """``n / (k * count_c)`` per class, as scikit-learn's "balanced": rare classes weigh more."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = len(labels) / (num_classes * np.maximum(counts, 1))
    return {i: float(w) for i, w in enumerate(weights)}
