"""The Backend interface: one small protocol, one class per model format.

A backend owns an interpreter/session for one model file. It describes the
model's single image input as a :class:`TensorSpec` and runs a batch already
laid out in that tensor's shape and dtype, returning the raw output as float32
(dequantized when the output tensor is quantized). Quantized input/output
handling lives in the backends and in :mod:`edgecnn.runtime.preprocess`, never
in callers.

This module imports only numpy: no TensorFlow, no interpreter.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Protocol, runtime_checkable

import numpy as np

from edgecnn._io import special_file
from edgecnn.errors import ModelError, UsageError, first_line

if TYPE_CHECKING:
    from edgecnn.tflite_metadata.read import StandardMetadata

LAYOUTS = ("NHWC", "NCHW")


@dataclass(frozen=True)
class TensorSpec:
    """Shape, dtype, layout and quantization of one model tensor.

    ``shape`` holds ``None`` for dynamic dimensions (e.g. a dynamic batch).
    ``scale``/``zero_point`` describe an affine-quantized tensor
    (``real = scale * (q - zero_point)``); ``scale`` is None when the tensor is
    not quantized.
    """

    name: str
    shape: tuple[Optional[int], ...]
    dtype: np.dtype
    layout: str = "NHWC"
    scale: Optional[float] = None
    zero_point: int = 0

    @property
    def is_quantized(self) -> bool:
        return self.scale is not None and self.scale > 0 and np.issubdtype(self.dtype, np.integer)

    @property
    def is_image(self) -> bool:
        return len(self.shape) == 4

    def _dims(self) -> tuple[Optional[int], Optional[int], Optional[int]]:
        if not self.is_image:
            return None, None, None
        if self.layout == "NCHW":
            _, c, h, w = self.shape
        else:
            _, h, w, c = self.shape
        return h, w, c

    @property
    def height(self) -> Optional[int]:
        return self._dims()[0]

    @property
    def width(self) -> Optional[int]:
        return self._dims()[1]

    @property
    def channels(self) -> Optional[int]:
        return self._dims()[2]

    @property
    def batch(self) -> Optional[int]:
        """The fixed batch size, or None when the batch dimension is dynamic."""
        return self.shape[0] if self.shape else None

    def with_layout(self, layout: str) -> "TensorSpec":
        from dataclasses import replace

        return replace(self, layout=layout)

    def describe(self) -> str:
        dims = "x".join("?" if d is None else str(d) for d in self.shape)
        q = f", scale {self.scale:.6g}, zero point {self.zero_point}" if self.is_quantized else ""
        return f"{self.name}: {dims} {np.dtype(self.dtype).name} {self.layout}{q}"


def guess_layout(shape: tuple[Optional[int], ...], default: str = "NHWC") -> str:
    """NHWC or NCHW from a 4-D shape when the channel axis is unambiguous, else ``default``."""
    if len(shape) != 4:
        return default
    chan = (1, 3)
    c_last, c_first = shape[3] in chan, shape[1] in chan
    if c_last and not c_first:
        return "NHWC"
    if c_first and not c_last:
        return "NCHW"
    return default


def dequantize(values: np.ndarray, scale: Optional[float], zero_point: int) -> np.ndarray:
    """Raw output -> float32; affine dequantization when ``scale`` is set."""
    if scale is not None and scale > 0 and np.issubdtype(values.dtype, np.integer):
        out = values.astype(np.float32)
        out -= np.float32(zero_point)
        out *= np.float32(scale)
        return out
    return values.astype(np.float32, copy=False)


FEATURES_OUTPUT = "features"  # an export's second output: the pooled features that feed the classifier's head


def features_position(names: list[str]) -> Optional[int]:
    """Which of a model's outputs (by name) is its :data:`FEATURES_OUTPUT`: only a two-output model has one."""
    if len(names) != 2:
        return None
    found = [i for i, name in enumerate(names) if name == FEATURES_OUTPUT]
    return found[0] if len(found) == 1 else None


def feature_rows(out: np.ndarray, n: int, scale: Optional[float] = None, zero_point: int = 0) -> np.ndarray:
    """A features output for a batch of ``n`` -> (n, D) float32, dequantized."""
    return dequantize(out, scale, zero_point).reshape(n, -1)


@runtime_checkable
class Backend(Protocol):
    """One model file loaded in one runtime: everything :class:`~edgecnn.runtime.Classifier` uses.

    A backend is built as ``cls(path, threads=None, delegate=None)`` by
    :func:`edgecnn.runtime.load_backend` and raises :class:`ModelError` (or
    :class:`BackendUnavailableError`) for a model it cannot load. Not thread-safe.
    """

    name: str
    """The backend's table name in :data:`edgecnn.runtime.load.BACKENDS`: ``litert``, ``onnx`` or ``keras``."""
    source: str
    """The library that runs the model, e.g. ``ai_edge_litert``, ``tflite_runtime``, ``onnxruntime``."""
    path: Path
    """The model file (or SavedModel folder)."""
    input_spec: TensorSpec
    """The single image input: shape (``None`` for dynamic dimensions), dtype, layout, quantization."""
    output_spec: TensorSpec
    """The class output; its last dimension is the number of outputs when known."""
    num_outputs: int
    """How many outputs the model has besides a :data:`FEATURES_OUTPUT` (a classifier has one; the Classifier
    refuses others)."""
    features_spec: Optional[TensorSpec]
    """The model's :data:`FEATURES_OUTPUT` (pooled features feeding the head, shape (N, D)), or None without one."""

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run one batch laid out exactly as ``input_spec`` (dtype, layout; batch size 1 unless
        ``input_spec.batch`` is None or equal to it); return the output as float32, shape (N, K),
        dequantized (see :func:`score_rows`). Failures raise :class:`ModelError` (see :func:`inference_error`)."""
        ...

    def run_features(self, batch: np.ndarray) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """As :meth:`run`, with the features output of the same call: (scores (N, K), features (N, D) float32,
        dequantized, or None when ``features_spec`` is None)."""
        ...

    def final_op(self) -> Optional[str]:
        """The op that makes the output, as :func:`op_kind` names it (``sigmoid``, ``softmax``, ``argmax``, ...;
        ops that only reshape, cast or (de)quantize looked through), or None when the backend cannot see it."""
        ...

    def embedded_card(self) -> Optional[str]:
        """The ``edgecnn.card`` JSON embedded in the model (SavedModel: its card file), or None."""
        ...

    def embedded_labels(self) -> Optional[list[str]]:
        """Labels embedded in the model (``edgecnn.labels`` metadata or a TFLite label file), or None."""
        ...

    def standard_metadata(self) -> Optional[StandardMetadata]:
        """The model's standard TFLite metadata (normalization, colour space, label file), or None."""
        ...

    def close(self) -> None:
        """Free the interpreter/session; ``run`` raises :func:`closed_error` afterwards."""
        ...


# The largest image input a classifier may declare (per image): 4096x4096 RGB. Real classifiers take 224-1024 px;
# a model declaring 100000x100000 would make the runtime allocate tens of GB before the first image.
MAX_INPUT_PIXELS = 4096 * 4096


# The most interpreter threads a model may be given: well past the cores of any machine edgecnn runs on, well short
# of the counts where runtimes fail (at 100000 LiteRT crashes after its answer and ONNX Runtime hangs).
MAX_THREADS = 256


def threads_problem(threads) -> Optional[str]:
    """Why ``threads`` is not an interpreter thread count (None, the runtime's choice, is one), or None."""
    if threads is None or (isinstance(threads, int) and not isinstance(threads, bool) and 1 <= threads <= MAX_THREADS):
        return None
    return (f"expected a whole number from 1 to {MAX_THREADS} (this machine has {os.cpu_count()} cores; more "
            f"threads than cores gains nothing)")


def check_threads(threads) -> None:
    """UsageError when ``threads`` is not an interpreter thread count (see :func:`threads_problem`)."""
    problem = threads_problem(threads)
    if problem:
        raise UsageError(f"Received threads={threads!r}; {problem}")


def input_size_problem(shape: tuple[Optional[int], ...], layout: str = "") -> Optional[str]:
    """Why an image input of ``shape`` is too large to allocate (one line), or None."""
    if len(shape) != 4:
        return None
    layout = layout or guess_layout(shape)
    _, h, w, _ = shape if layout == "NHWC" else (shape[0], shape[2], shape[3], shape[1])
    if h is None or w is None or h * w <= MAX_INPUT_PIXELS:
        return None
    return (f"its input is {w}x{h} pixels ({h * w / 1e6:.0f} MP per image), over edgecnn's limit of "
            f"{MAX_INPUT_PIXELS / 1e6:.1f} MP (4096x4096) for a classifier input; check that this is the model "
            f"you meant")


def check_model_file(path: str | os.PathLike, kind: str) -> Path:
    """Fail early, with one clear line, on a missing, empty or unreadable model file."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"model file not found: {path}; check the path (and the working directory)")
    special = special_file(path)
    if special:
        raise ModelError(f"{path} is {special}, not a model file; pass the model file")
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return path
        raise ModelError(f"{path} is a folder, not a {kind} model file; pass the model file inside it")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ModelError(f"cannot read model file {path} ({exc.strerror}); check its permissions") from None
    if size == 0:
        raise ModelError(f"model file {path} is empty (0 bytes); re-export or re-download it")
    if not os.access(path, os.R_OK):
        raise ModelError(f"cannot read model file {path} (permission denied); check its permissions")
    return path


def inference_error(path: Path, exc: BaseException) -> ModelError:
    return ModelError(
        f"inference failed for {path}: {first_line(exc, 300)}; the model file may be corrupt or use "
        f"operators this runtime does not support (re-export it, or try another --backend)"
    )


CLASSIFIER_OUTPUT = "edgecnn runs classifiers with one output, a score vector ([1, N], or [1, 1] for a sigmoid)"


def not_a_classifier(path: Path, problem: str) -> ModelError:
    """The one error for a model whose output is not a classifier's (``problem``: what it is instead)."""
    return ModelError(f"{path} is not an image classifier: {problem}; {CLASSIFIER_OUTPUT}")


def score_shape_problem(shape: tuple[Optional[int], ...], batch: Optional[int], ran: bool = False) -> Optional[str]:
    """Why an output of ``shape`` for an input batch of ``batch`` is not one score vector per image, or None.

    A declared shape (``ran`` False) may hold None (dynamic) and comes with the input's declared batch; a shape the
    model ``ran`` to is real, for the batch it ran. Allowed: ``[K]`` (one image, or one unit per image),
    ``[batch, K]``, also with extra 1-sized axes (``[1, K, 1, 1]``); a declared ``[1, K]`` for any batch.
    """
    dims = "x".join("?" if d is None else str(d) for d in shape)
    got = f"it gave an output of {dims}" if ran else f"output {dims}"
    if not shape:
        return f"{got}, a single number, not a score vector" if ran else None  # unknown rank: the first run tells
    first = shape[0]
    if len(shape) == 1 and not (batch in (None, 1) or first in (None, batch)):
        return f"{got} for an input batch of {batch}: not one score vector per image"
    if len(shape) >= 2 and first not in (None, batch) and (ran or first != 1):
        many = "more than" if batch and first and first > batch else "not"
        return f"{got} for an input batch of {batch or '?'}: {many} one score vector per image"
    if len([d for d in shape[1:] if d != 1]) > 1:
        return f"{got}: this looks like a pose/segmentation model or another image-to-image one"
    return None


def score_rows(out: np.ndarray, n: int, path: Path, scale: Optional[float] = None, zero_point: int = 0) -> np.ndarray:
    """A model's raw output for a batch of ``n`` -> (n, K) float32 scores, dequantized; ModelError (one line) when
    the output is not one score vector per image, whatever shape the model declares."""
    problem = score_shape_problem(out.shape, n, ran=True)
    if problem:
        raise not_a_classifier(path, problem)
    return dequantize(out, scale, zero_point).reshape(n, -1)


def closed_error(path: Path) -> UsageError:
    return UsageError(f"this Classifier is closed ({path.name}: close() or the end of its with-block freed the "
                      f"model); create a new Classifier to classify more images")


# Ops that pass values on unchanged (shape, dtype or quantization only): looked through to find the op that makes
# a model's output. A Cast after an ArgMax leads back to the ArgMax: a class index, not scores.
PASS_THROUGH_OPS = frozenset({"identity", "reshape", "flatten", "squeeze", "unsqueeze", "expanddims", "cast",
                              "quantize", "dequantize", "quantizelinear", "dequantizelinear"})
INDEX_OPS = frozenset({"argmax", "argmin"})
_OP_ALIASES = {"logistic": "sigmoid"}  # TFLite's name


def op_kind(op_type: str) -> str:
    """An op type as the backends share it: ``LOGISTIC``/``Sigmoid`` -> ``sigmoid``, ``ARG_MAX`` -> ``argmax``."""
    name = op_type.replace("_", "").lower()
    return _OP_ALIASES.get(name, name)


def final_op(ops, output) -> Optional[str]:
    """The :func:`op_kind` of the op in ``ops`` (``(op type, inputs, outputs)`` triples) that makes tensor
    ``output``, looking through :data:`PASS_THROUGH_OPS`; None when no op makes it."""
    producers = {out: (op_type, list(inputs)) for op_type, inputs, outputs in ops for out in outputs}
    seen = set()
    while output in producers and output not in seen:
        seen.add(output)
        op_type, inputs = producers[output]
        kind = op_kind(op_type)
        if kind not in PASS_THROUGH_OPS or not inputs:
            return kind
        output = inputs[0]
    return None
