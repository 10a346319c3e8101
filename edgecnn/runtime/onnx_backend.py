"""ONNX Runtime backend: the CPU execution provider by default, or those asked for (CUDA, TensorRT, ...).

``onnxruntime`` is imported the first time an ONNX model is loaded. GPU providers come with the
``onnxruntime-gpu`` wheel (install it instead of ``onnxruntime``).
"""

from __future__ import annotations

import logging
import mmap
import os
from typing import Optional, Sequence

import numpy as np

from edgecnn.card import EMBEDDED_CARD_KEY, EMBEDDED_LABELS_KEY
from edgecnn.errors import BackendUnavailableError, ModelError, UsageError, did_you_mean, first_line
from edgecnn.runtime.base import (
    TensorSpec,
    check_model_file,
    check_threads,
    closed_error,
    feature_rows,
    features_position,
    final_op,
    guess_layout,
    inference_error,
    score_rows,
)

_ONNX_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
}
# Output types beyond the input's: what a model that is not a classifier may output (checked by the Classifier).
_ONNX_OUTPUT_TYPES = {
    **_ONNX_TYPES,
    "tensor(int16)": np.int16,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(uint16)": np.uint16,
    "tensor(bool)": np.bool_,
}


log = logging.getLogger("edgecnn.runtime")

PROVIDER_SUFFIX = "ExecutionProvider"
DEFAULT_PROVIDERS = ("CPUExecutionProvider",)
GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")  # in the onnxruntime-gpu wheel


def short_provider(name: str) -> str:
    """``CUDAExecutionProvider`` -> ``CUDA``."""
    return name[: -len(PROVIDER_SUFFIX)] if name.endswith(PROVIDER_SUFFIX) else name


def resolve_providers(requested: Optional[Sequence[str]], ort) -> list[str]:
    """Execution provider names for ``requested`` (``cuda``, ``TensorRT``, ``CUDAExecutionProvider``, ...),
    in order, with CPU last as the fallback for operators the others cannot run. Default: CPU only.

    UsageError for a name ONNX Runtime does not know, or one this installation cannot use.
    """
    if not requested:
        return list(DEFAULT_PROVIDERS)
    known = {p.lower(): p for p in ort.get_all_providers()}
    known.update({short_provider(p).lower(): p for p in ort.get_all_providers()})
    available = ort.get_available_providers()
    chosen: list[str] = []
    for name in requested:
        full = known.get(name.strip().lower())
        if full is None:
            raise UsageError(f"unknown ONNX Runtime provider {name!r}{did_you_mean(name.lower(), known)}; "
                             f"available here: {', '.join(short_provider(p) for p in available)}")
        if full not in available:
            hint = " (pip install onnxruntime-gpu in place of onnxruntime)" if full in GPU_PROVIDERS else ""
            raise UsageError(f"ONNX Runtime provider {short_provider(full)} is not available in this installation"
                             f"{hint}; available: {', '.join(short_provider(p) for p in available)}")
        if full not in chosen:
            chosen.append(full)
    return chosen + [p for p in DEFAULT_PROVIDERS if p not in chosen]


def available_providers() -> Optional[list[str]]:
    """The execution providers this onnxruntime offers (short names), or None without onnxruntime."""
    try:
        import onnxruntime
    except Exception:  # noqa: BLE001  probing only
        return None
    return [short_provider(p) for p in onnxruntime.get_available_providers()]


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendUnavailableError(
            f"onnxruntime is not installed ({exc}); pip install onnxruntime (or: pip install 'edgecnn[device]')"
        ) from None
    return onnxruntime


class OnnxBackend:
    """An ``.onnx`` model in an ONNX Runtime session (CPU unless ``providers`` asks for others)."""

    name = "onnx"
    source = "onnxruntime"

    def __init__(self, path: str | os.PathLike, threads: Optional[int] = None, delegate: Optional[str] = None,
                 providers: Optional[Sequence[str]] = None):
        check_threads(threads)
        self.path = check_model_file(path, "ONNX")
        ort = import_onnxruntime()
        wanted = resolve_providers(providers, ort)
        opts = ort.SessionOptions()
        if threads is not None:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # errors only: no warnings on stderr
        try:
            self._session = ort.InferenceSession(str(self.path), sess_options=opts, providers=wanted)
        except Exception as exc:  # onnxruntime raises its own pybind exception types
            first = first_line(exc)
            kind = "truncated, corrupt or not an ONNX model" if "protobuf" in first.lower() else "not loadable"
            raise ModelError(
                f"{self.path} is not a valid ONNX model ({kind}: {first[:200]}); re-export or re-download it"
            ) from None
        self.providers = [short_provider(p) for p in self._session.get_providers()]
        if providers:
            self.source = f"onnxruntime ({', '.join(self.providers)})"
            missing = [short_provider(p) for p in wanted if short_provider(p) not in self.providers]
            if missing:  # e.g. CUDA listed but its libraries or the GPU missing: ONNX Runtime fell back
                log.warning("warning: ONNX Runtime could not use %s for %s; running on %s",
                            ", ".join(missing), self.path.name, ", ".join(self.providers))
        inputs = self._session.get_inputs()
        outputs = self._session.get_outputs()
        if len(inputs) != 1:
            names = ", ".join(i.name for i in inputs)
            raise ModelError(
                f"{self.path} has {len(inputs)} inputs ({names}); edgecnn runs single-input image classifiers"
            )
        if not outputs:
            raise ModelError(f"{self.path} has no outputs; it is not a classifier")
        position = features_position([o.name for o in outputs])
        features = outputs.pop(position) if position is not None else None
        inp, out = inputs[0], outputs[0]
        if inp.type not in _ONNX_TYPES:
            raise ModelError(f"{self.path} input {inp.name!r} has type {inp.type}; expected a float or 8-bit image "
                             f"tensor")
        self._in_name = inp.name
        self._out_names = [out.name]
        shape = tuple(d if isinstance(d, int) and d > 0 else None for d in inp.shape)
        self.input_spec = TensorSpec(inp.name, shape, np.dtype(_ONNX_TYPES[inp.type]), guess_layout(shape))
        out_shape = tuple(d if isinstance(d, int) and d > 0 else None for d in (out.shape or ()))
        out_dtype = np.dtype(_ONNX_OUTPUT_TYPES.get(out.type, np.object_))
        self.output_spec = TensorSpec(out.name, out_shape, out_dtype, "NC")
        self.num_outputs = len(outputs)
        self.features_spec = None if features is None else TensorSpec(
            features.name, tuple(d if isinstance(d, int) and d > 0 else None for d in (features.shape or ())),
            np.dtype(_ONNX_OUTPUT_TYPES.get(features.type, np.object_)), "NC")
        self._both_names = self._out_names + ([features.name] if features is not None else [])

    def run(self, batch: np.ndarray) -> np.ndarray:
        session = self._session
        if session is None:
            raise closed_error(self.path)
        try:
            out = session.run(self._out_names, {self._in_name: batch})[0]
        except Exception as exc:
            raise inference_error(self.path, exc) from None
        return score_rows(np.asarray(out), len(batch), self.path)

    def run_features(self, batch: np.ndarray) -> tuple[np.ndarray, Optional[np.ndarray]]:
        if self.features_spec is None:
            return self.run(batch), None
        session = self._session
        if session is None:
            raise closed_error(self.path)
        try:
            out, features = session.run(self._both_names, {self._in_name: batch})
        except Exception as exc:
            raise inference_error(self.path, exc) from None
        n = len(batch)
        return score_rows(np.asarray(out), n, self.path), feature_rows(np.asarray(features), n)

    def final_op(self) -> Optional[str]:
        """The op making the output, read from the model file's graph (no ``onnx`` package needed)."""
        return final_op(graph_nodes(self.path), self._out_names[0])

    def _metadata(self, key: str) -> Optional[str]:
        try:
            return self._session.get_modelmeta().custom_metadata_map.get(key)
        except Exception:
            return None

    def embedded_card(self) -> Optional[str]:
        return self._metadata(EMBEDDED_CARD_KEY)

    def embedded_labels(self) -> Optional[list[str]]:
        text = self._metadata(EMBEDDED_LABELS_KEY)
        labels = [line.strip() for line in text.splitlines() if line.strip()] if text else []
        return labels or None

    def standard_metadata(self) -> None:
        return None  # standard TFLite metadata exists only in .tflite files

    def close(self) -> None:
        self._session = None


# ---------------------------------------------------------------- the graph's nodes, from the protobuf wire format
_MODEL_GRAPH, _GRAPH_NODE = 7, 1  # ModelProto.graph, GraphProto.node
_NODE_INPUT, _NODE_OUTPUT, _NODE_OP_TYPE = 1, 2, 4  # NodeProto fields


def _varint(buf, pos: int) -> tuple[int, int]:
    value = shift = 0
    while shift < 64:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise ValueError("varint too long")


def _fields(buf, start: int, end: int):
    """(field number, value) of the protobuf message in ``buf[start:end]``; a length-delimited value is its
    (start, end), any other None."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        wire, value = key & 7, None
        if wire == 0:
            _, pos = _varint(buf, pos)
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = (pos, pos + length), pos + length
        else:
            raise ValueError(f"wire type {wire}")
        if pos > end:
            raise ValueError("field runs past its message")
        yield key >> 3, value


def _node(buf, start: int, end: int) -> tuple[str, list[str], list[str]]:
    """(op type, inputs, outputs) of one NodeProto."""
    parts: dict[int, list[str]] = {_NODE_INPUT: [], _NODE_OUTPUT: [], _NODE_OP_TYPE: []}
    for field, span in _fields(buf, start, end):
        if field in parts and span:
            parts[field].append(bytes(buf[span[0]:span[1]]).decode("utf-8", "replace"))
    return "".join(parts[_NODE_OP_TYPE]), parts[_NODE_INPUT], parts[_NODE_OUTPUT]


def graph_nodes(path) -> list[tuple[str, list[str], list[str]]]:
    """(op type, inputs, outputs) of each node of the main graph of the ONNX file at ``path``; [] when unreadable.

    Walks the protobuf wire format over a memory map, skipping the weights, so the ``onnx`` package (not in the
    device extra) is not needed and nothing large is copied.
    """
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            graphs = [span for field, span in _fields(buf, 0, len(buf)) if field == _MODEL_GRAPH and span]
            return [_node(buf, *span) for graph in graphs[-1:]
                    for field, span in _fields(buf, *graph) if field == _GRAPH_NODE and span]
    except (OSError, ValueError, IndexError):
        return []
