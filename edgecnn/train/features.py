"""Frozen layers computed once: where a network splits, and the per-image activations stored at the split.

When the first layers of a network do not train (a frozen backbone, or its bottom while the top
fine-tunes), their output for an image never changes: it is computed once per image (per augmented copy)
and stored on disk, and training runs only the part above the split on what was stored. The split
(:func:`find_cut`) is the one tensor above which everything trainable or random (dropout, noise,
augmentation layers) lies; BatchNormalization layers that do not train run in inference mode, so the
layers below it are a pure function of the image.

The pass below the split runs on LiteRT (fp32, XNNPACK) when the bottom network converts with TFLite's
builtin ops and its first batch matches TensorFlow's: faster than the TensorFlow graph, conversion included
(benchmarks/README.md, "Frozen layers on LiteRT"). Otherwise (or ``engine="tf"``) the TensorFlow graph runs;
``eager`` runs it eagerly.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecnn.data.cache import cpu_workers
from edgecnn.data.records import RecordFile
from edgecnn.errors import first_line
from edgecnn.native_logs import native_stderr

log = logging.getLogger("edgecnn.train")

# Stored activations keep full precision: float16 would flush small activations to zero and overflow
# large ones (a network's range is not known in advance), and the page cache absorbs the size.
FEATURE_DTYPE = np.float32
PIXELS_PER_BATCH = 8 * 128 * 128  # extraction batch: 8 images at 128 px (MobileNet runs fastest near this on CPU)
# LiteRT's activations must match TensorFlow's on the first batch to this fraction of their largest magnitude
# (fp32 with another summation order differs by ~1e-6); a larger gap means a conversion problem.
LITERT_TOLERANCE = 1e-4
ENGINES = ("auto", "tf")

# Bottom networks already converted (or found not to convert): the train and val passes share one conversion.
_converted: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


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


@dataclass(frozen=True)
class ConvertedBottom:
    """A network converted to a LiteRT fp32 flatbuffer: its outputs' tensor names and shapes, in Keras' order."""

    flatbuffer: bytes
    tensors: tuple[str, ...]  # the frozen graph's name of each output, in the order of ``net.outputs``
    shapes: tuple[tuple, ...]  # each output's shape without the batch


def convert_bottom(net) -> ConvertedBottom:
    """``net`` (one image input) frozen and converted to LiteRT fp32, builtin ops only (fails rather than add TF
    ops)."""
    import tensorflow as tf

    from edgecnn.compat import freeze_variables

    keys = [f"out{i}" for i in range(len(net.outputs))]
    spec = tf.TensorSpec((None, *net.inputs[0].shape[1:]), tf.float32, name="image")

    def call(image):
        out = net(image, training=False)
        return dict(zip(keys, out if isinstance(out, (list, tuple)) else [out]))

    function = tf.function(call, input_signature=[spec], autograph=False).get_concrete_function()
    # The weights frozen into constants, then the converter's graph path: faster than from_keras_model (a
    # SavedModel round trip; benchmarks/README.md). (from_concrete_functions with a Keras 3 model as
    # trackable_obj is as slow and leaves resource variables that LiteRT reads uninitialised: NaN under XNNPACK.)
    frozen = freeze_variables(function)
    names = {t.name for t in frozen.outputs}
    tensors = tuple(function.structured_outputs[key].name for key in keys)
    if not set(tensors) <= names:
        raise ValueError(f"outputs {list(tensors)} are not among the frozen graph's {sorted(names)}")
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)  # "Please consider providing the trackable_obj argument..."
    try:
        converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no TF ops: fail instead
        with contextlib.redirect_stdout(io.StringIO()), native_stderr():
            flatbuffer = converter.convert()
    finally:
        absl.setLevel(level)
    return ConvertedBottom(flatbuffer, tensors, tuple(tuple(out.shape[1:]) for out in net.outputs))


class LiteBottom:
    """A :class:`ConvertedBottom` in a LiteRT interpreter, called like the Keras network on a batch: a list of
    arrays in the order of ``net.outputs`` (each found by its tensor's name and checked by shape, never by the
    flatbuffer's order). :meth:`convert` makes one from a network."""

    def __init__(self, converted: ConvertedBottom, threads: int):
        from edgecnn.runtime.litert_backend import import_interpreter

        with native_stderr():
            self.interpreter = import_interpreter().interpreter(model_content=converted.flatbuffer,
                                                                num_threads=threads)
        inputs = self.interpreter.get_input_details()
        outputs = {d["name"]: d for d in self.interpreter.get_output_details()}
        if len(inputs) != 1 or len(outputs) != len(converted.tensors):
            raise ValueError(f"the converted model has {len(inputs)} inputs and {len(outputs)} outputs, "
                             f"expected 1 and {len(converted.tensors)}")
        self.shapes = list(converted.shapes)
        self.outputs = []
        for tensor, shape in zip(converted.tensors, converted.shapes):
            found = outputs.get(tensor.split(":")[0])
            if found is None:
                raise ValueError(f"the converted model has no output {tensor} (it has {sorted(outputs)})")
            got = tuple(int(d) for d in found["shape_signature"][1:])
            if got != shape:
                raise ValueError(f"output {tensor} has shape {got} after conversion, {shape} in Keras")
            self.outputs.append(found["index"])
        self.input, self.dtype = inputs[0]["index"], inputs[0]["dtype"]
        self.batch_shape = None
        self.threads = threads
        self.seconds = 0.0  # the conversion's and the load's, set by convert(), for the log

    @classmethod
    def convert(cls, net, threads: int) -> "LiteBottom":
        """``net`` converted (:func:`convert_bottom`) and loaded, with the seconds both took."""
        started = time.perf_counter()
        converted = convert_bottom(net)
        bottom = cls(converted, threads)
        bottom.seconds = time.perf_counter() - started
        return bottom

    def __call__(self, x) -> list[np.ndarray]:
        x = np.asarray(x, dtype=self.dtype)
        if x.shape != self.batch_shape:  # the first batch, and a shorter last one
            with native_stderr():  # XNNPACK's "INFO: Created TensorFlow Lite XNNPACK delegate" on the first
                self.interpreter.resize_tensor_input(self.input, x.shape)
                self.interpreter.allocate_tensors()
            self.batch_shape = x.shape
        self.interpreter.set_tensor(self.input, x)
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(index) for index in self.outputs]  # copies


def _matches(lite: list[np.ndarray], reference: list) -> float | None:
    """The largest gap between LiteRT's and TensorFlow's outputs relative to the activations' scale, or None
    when shapes differ or LiteRT gave a non-finite value TensorFlow did not."""
    worst = 0.0
    for a, b in zip(lite, reference):
        b = np.asarray(b)
        if a.shape != b.shape or not np.array_equal(np.isfinite(a), np.isfinite(b)):
            return None
        a, b = np.where(np.isfinite(b), a, 0), np.where(np.isfinite(b), b, 0)
        scale = max(float(np.abs(b).max()), 1e-6)
        worst = max(worst, float(np.abs(a - b).max()) / scale)
    return worst


def _engine(net, engine: str, eager: bool, first_batch):
    """What runs ``net`` on batches, and its name for the log; LiteRT when ``engine`` allows and it converts
    and matches TensorFlow on ``first_batch``, else the TensorFlow graph (or eager TensorFlow)."""
    if eager or engine == "tf":
        return _inference(net, eager), "TensorFlow (eager)" if eager else "TensorFlow graph"
    lite = _converted.get(net, False)
    fresh = lite is False
    if fresh:
        try:
            lite = LiteBottom.convert(net, cpu_workers())
        except Exception as exc:  # noqa: BLE001  (converter and interpreter errors come as several types)
            log.info(f"features: frozen layers run on the TensorFlow graph (no LiteRT conversion: "
                     f"{first_line(exc, 120)})")
            lite = None
        if lite is not None:
            reference = net(first_batch, training=False)
            gap = _matches(lite(first_batch), reference if isinstance(reference, (list, tuple)) else [reference])
            if gap is None or not gap <= LITERT_TOLERANCE:
                why = "shapes or non-finite values differ" if gap is None else f"relative gap {gap:.1e}"
                log.warning(f"features: LiteRT's activations differ from TensorFlow's ({why}); "
                            "the frozen layers run on the TensorFlow graph")
                lite = None
        _converted[net] = lite
    if lite is None:
        return _inference(net, False), "TensorFlow graph"
    if fresh:
        log.info(f"features: frozen layers run on LiteRT (fp32, XNNPACK, {lite.threads} threads; "
                 f"converted in {lite.seconds:.1f} s)")
    return lite, "LiteRT"


def batch_for(size: tuple[int, int]) -> int:
    return int(np.clip(round(PIXELS_PER_BATCH / (size[0] * size[1])), 1, 64))


def extract(net, source, positions: np.ndarray, folder: Path, names: list[str], *, augmentation=None,
            eager: bool = False, engine: str = "auto", description: str = "features") -> tuple[list[RecordFile], float]:
    """Run ``net`` (inference mode) on the images at ``positions`` of ``source`` (after ``augmentation`` when
    given); store each output ``names[i]`` as ``folder/<name>.f32``. Returns the stores and the seconds taken
    (a LiteRT conversion included). ``engine``: "auto" (LiteRT when it converts and matches, else the TensorFlow
    graph) or "tf" (the TensorFlow graph); ``eager`` runs eager TensorFlow whatever ``engine`` says."""
    import tensorflow as tf

    from edgecnn.progress import live

    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
    started = time.perf_counter()
    batch = batch_for(tuple(source.shape[:2]))
    outputs = net.outputs
    folder.mkdir(parents=True, exist_ok=True)
    stores = [RecordFile.create(folder / f"{name}.f32", len(positions), tuple(out.shape[1:]), FEATURE_DTYPE)
              for name, out in zip(names, outputs)]
    call = None
    ds = tf.data.Dataset.from_tensor_slices(np.asarray(positions, dtype=np.int64)).batch(batch)
    ds = ds.map(lambda p: tf.ensure_shape(tf.numpy_function(source.read, [p], tf.uint8, stateful=False),
                                          (None, *source.shape)))
    if augmentation is not None:
        ds = ds.map(lambda x: augmentation(tf.cast(x, tf.float32), training=True))
    done = 0
    with live(len(positions), description) as bar:
        for x in ds.prefetch(2):
            if call is None:
                call, used = _engine(net, engine, eager, x)
                log.debug(f"{description}: {used}")
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
