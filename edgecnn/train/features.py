"""Frozen layers computed once: where a network splits, and the per-image activations stored at the split.

When the first layers of a network do not train (a frozen backbone, or its bottom while the top
fine-tunes), their output for an image never changes: it is computed once per image (per augmented copy)
and stored on disk, and training runs only the part above the split on what was stored. The split
(:func:`find_cut`) is the one tensor above which everything trainable or random (dropout, noise,
augmentation layers) lies; BatchNormalization layers that do not train run in inference mode, so the
layers below it are a pure function of the image.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from edgecnn.data.records import RecordFile

log = logging.getLogger("edgecnn.train")

# Stored activations keep full precision: float16 would flush small activations to zero and overflow
# large ones (a network's range is not known in advance), and the page cache absorbs the size.
FEATURE_DTYPE = np.float32
PIXELS_PER_BATCH = 8 * 128 * 128  # extraction batch: 8 images at 128 px (MobileNet runs fastest near this on CPU)


def _is_random(layer) -> bool:
    name = type(layer).__name__
    return "Dropout" in name or "Noise" in name or name.startswith("Random")


def _first_trained(layers) -> int | None:
    for i, layer in enumerate(layers):
        if layer.trainable_weights or _is_random(layer):
            return i
    return None


def _boundary(layers, start: int, index: dict[int, int]) -> list:
    """Tensors made below ``start`` and used at or above it (nodes of this model only)."""
    found = {}
    for layer in layers[start:]:
        for node in layer._inbound_nodes:
            producers = [index.get(id(t._keras_history.operation)) for t in node.input_tensors]
            if any(p is None for p in producers):
                continue  # a node of another model sharing this layer
            for tensor, producer in zip(node.input_tensors, producers):
                if producer < start:
                    found[id(tensor)] = tensor
    return list(found.values())


def find_cut(model):
    """The tensor to split ``model`` at, given its layers' current ``trainable`` flags; None when splitting
    saves nothing (the layers below would have no weights) or the model has no single split point."""
    layers = model.layers
    start = _first_trained(layers)
    if not start:
        return None
    index = {id(layer): i for i, layer in enumerate(layers)}
    while start > 0:
        boundary = _boundary(layers, start, index)
        if len(boundary) == 1:
            return boundary[0] if any(layer.weights for layer in layers[:start]) else None
        start -= 1  # two or more tensors cross (a residual branch): split lower
    return None


def cut_name(cut) -> str:
    return cut._keras_history.operation.name


def top_model(model, cut):
    """The layers above ``cut`` as a model of their own (weights shared with ``model``)."""
    import keras

    return keras.Model(cut, model.outputs[0], name=f"{model.name}_above_{cut_name(cut)}")


def bottom_model(model, cuts: list):
    """Image -> activations at each of ``cuts`` (weights shared with ``model``)."""
    import keras

    return keras.Model(model.inputs[0], list(cuts), name=f"{model.name}_below")


def _inference(net, eager: bool):
    """``net`` in inference mode, traced once into a graph unless ``eager``."""
    import tensorflow as tf

    def call(x):
        return net(x, training=False)

    return call if eager else tf.function(call, autograph=False, reduce_retracing=True)


def batch_for(size: tuple[int, int]) -> int:
    return int(np.clip(round(PIXELS_PER_BATCH / (size[0] * size[1])), 1, 64))


def extract(net, source, positions: np.ndarray, folder: Path, names: list[str], *, augmentation=None,
            eager: bool = False, description: str = "features") -> tuple[list[RecordFile], float]:
    """Run ``net`` (inference mode) on the images at ``positions`` of ``source`` (after ``augmentation`` when
    given); store each output ``names[i]`` as ``folder/<name>.f32``. Returns the stores and the seconds taken."""
    import tensorflow as tf

    from edgecnn.progress import live

    started = time.perf_counter()
    batch = batch_for(tuple(source.shape[:2]))
    outputs = net.outputs
    folder.mkdir(parents=True, exist_ok=True)
    stores = [RecordFile.create(folder / f"{name}.f32", len(positions), tuple(out.shape[1:]), FEATURE_DTYPE)
              for name, out in zip(names, outputs)]
    call = _inference(net, eager)
    ds = tf.data.Dataset.from_tensor_slices(np.asarray(positions, dtype=np.int64)).batch(batch)
    ds = ds.map(lambda p: tf.ensure_shape(tf.numpy_function(source.read, [p], tf.uint8, stateful=False),
                                          (None, *source.shape)))
    if augmentation is not None:
        ds = ds.map(lambda x: augmentation(tf.cast(x, tf.float32), training=True))
    done = 0
    with live(len(positions), description) as bar:
        for x in ds.prefetch(2):
            results = call(x)
            results = results if isinstance(results, (list, tuple)) else [results]
            for store, values in zip(stores, results):
                store.write(done, np.asarray(values).astype(FEATURE_DTYPE))
            done += int(x.shape[0])
            bar.advance(int(x.shape[0]))
    for store in stores:
        store.close()
    return stores, time.perf_counter() - started


def predict(net, source, *, batch_size: int = 64, eager: bool = False) -> np.ndarray:
    """``net``'s outputs for every record of ``source``, in order: inference on this process alone (no
    ``model.predict``, which under a multi-worker strategy would gather across workers)."""

    from edgecnn.train.dataset import eval_dataset

    call = _inference(net, eager)
    outputs = [np.asarray(call(x)) for x in eval_dataset(source, None, batch_size)]
    return np.concatenate(outputs) if outputs else np.zeros((0, *net.outputs[0].shape[1:]), np.float32)
