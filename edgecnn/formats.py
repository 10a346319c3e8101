"""FORMATS: the one table of model formats. Export, runtime and benchmark all read it.

Nothing else in edgecnn lists formats: add a row here and the exporter it names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from edgecnn.errors import UsageError, did_you_mean


@dataclass(frozen=True)
class Tolerance:
    """How close an export must stay to the Keras model on validation images.

    ``max_abs_diff`` is an exactness check for float formats: one image beyond it
    proves the conversion wrong, whatever the sample. ``max_accuracy_drop`` is
    judged by the 95 % interval of the paired accuracy difference
    (:mod:`edgecnn.export.stats`), so a new validation sample cannot flip it.
    """

    max_abs_diff: float | None = None  # max |p_export - p_keras| over all probabilities
    max_accuracy_drop: float | None = None  # accuracy points (0..1) below Keras


@dataclass(frozen=True)
class Format:
    name: str
    filename: str  # artifact name inside an export folder
    backend: str  # runtime backend that runs it: litert | onnx | keras
    quantization: str  # none | fp16 | dynamic | int8
    exporter: str  # "module:function" in edgecnn.export, imported lazily
    tolerance: Tolerance
    description: str

    @property
    def suffix(self) -> str:
        return Path(self.filename).suffix


_FP32 = Tolerance(max_abs_diff=1e-3)
# Lossy formats are held to the accuracy drop alone: agreement and the largest probability change are
# reported, but a maximum over more images only grows, so neither can be a verdict that a new sample leaves
# alone (the measurements behind each tolerance: benchmarks/README.md, "Export tolerances").
_FP16 = Tolerance(max_accuracy_drop=0.01)
_INT8 = Tolerance(max_accuracy_drop=0.02)
# Dynamic range agrees less with Keras than full int8, so the interval of its accuracy drop is wider: 3 points
# confirms a good conversion that 2 would leave "inconclusive" and still fails a broken one.
_DYNAMIC = Tolerance(max_accuracy_drop=0.03)

FORMATS: dict[str, Format] = {
    f.name: f
    for f in [
        Format("keras", "model.keras", "keras", "none", "edgecnn.export.keras_formats:export_keras", _FP32,
               "Keras 3 model (reference; needs TensorFlow)"),
        Format("saved_model", "saved_model", "keras", "none", "edgecnn.export.keras_formats:export_saved_model",
               _FP32, "TensorFlow SavedModel folder (for TF Serving / other converters)"),
        Format("tflite-fp32", "model_fp32.tflite", "litert", "none", "edgecnn.export.tflite:export_fp32", _FP32,
               "TFLite, float32 weights and activations"),
        Format("tflite-fp16", "model_fp16.tflite", "litert", "fp16", "edgecnn.export.tflite:export_fp16", _FP16,
               "TFLite, float16 weights (half the size, float compute)"),
        Format("tflite-dynamic", "model_dynamic.tflite", "litert", "dynamic", "edgecnn.export.tflite:export_dynamic",
               _DYNAMIC,
               "TFLite, int8 weights with float activations (dynamic range)"),
        Format("tflite-int8", "model_int8.tflite", "litert", "int8", "edgecnn.export.tflite:export_int8", _INT8,
               "TFLite, full integer: int8 weights and activations, uint8 input"),
        Format("onnx", "model.onnx", "onnx", "none", "edgecnn.export.onnx:export_fp32", _FP32,
               "ONNX float32 (tf2onnx), dynamic batch"),
        Format("onnx-int8", "model_int8.onnx", "onnx", "int8", "edgecnn.export.onnx:export_int8", _INT8,
               "ONNX static QDQ uint8 (onnxruntime), per-channel weights"),
    ]
}

BACKEND_BY_SUFFIX = {".tflite": "litert", ".onnx": "onnx", ".keras": "keras", ".h5": "keras"}
KERAS_SUFFIXES = tuple(suffix for suffix, backend in BACKEND_BY_SUFFIX.items() if backend == "keras")


def get_format(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise UsageError(
            f"unknown format {name!r}{did_you_mean(name, FORMATS)}; expected one of: {', '.join(FORMATS)}"
        ) from None


def parse_formats(spec: str | list[str]) -> list[Format]:
    """``"all"`` or a comma-separated list of format names -> Format rows, in table order."""
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [n.strip() for n in names if n.strip()]
    if not names:
        raise UsageError("no formats given; pass a comma-separated list or 'all'")
    if "all" in names:
        return list(FORMATS.values())
    wanted = {get_format(n).name for n in names}
    return [f for f in FORMATS.values() if f.name in wanted]


def backend_for_path(path: str | os.PathLike) -> str:
    """Name of the runtime backend that runs the model file at ``path``."""
    path = Path(path)
    if path.is_dir() and (path / "saved_model.pb").exists():
        return "keras"
    try:
        return BACKEND_BY_SUFFIX[path.suffix.lower()]
    except KeyError:
        raise UsageError(
            f"cannot tell the format of {path} from its suffix {path.suffix!r}; "
            f"expected one of {', '.join(BACKEND_BY_SUFFIX)} (or pass --backend)"
        ) from None


def format_for_path(path: str | os.PathLike) -> Format | None:
    """The format row whose default filename matches ``path``, if any."""
    name = Path(path).name
    return next((f for f in FORMATS.values() if f.filename == name), None)
