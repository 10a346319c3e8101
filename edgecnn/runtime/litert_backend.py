"""TFLite backend: LiteRT (``ai_edge_litert``), else ``tflite_runtime``, else ``tensorflow.lite``.

The interpreter module is imported the first time a TFLite model is loaded,
never at ``import edgecnn.runtime`` time.
"""

from __future__ import annotations

import ctypes
import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from edgecnn.card import EMBEDDED_CARD_KEY, EMBEDDED_LABELS_KEY
from edgecnn.errors import BackendUnavailableError, ModelError, first_line
from edgecnn.labels import label_lines
from edgecnn.machine import dist_version
from edgecnn.native_logs import native_stderr
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
    input_size_problem,
    score_rows,
)
from edgecnn.tflite_metadata import read as tflite_metadata
from edgecnn.tflite_metadata.read import (
    StandardMetadata,
    buffers_in_bounds,
    custom_ops,
    has_tflite_identifier,
    read_metadata,
)

NUMPY2_TFLITE_RUNTIME = "tflite_runtime crashes with numpy 2; pip install ai-edge-litert (or numpy<2)"
INSTALL_HINT = "pip install ai-edge-litert (or: pip install 'edgecnn[device]')"
EDGETPU_OP = "edgetpu-custom-op"
EDGETPU_DELEGATE = "libedgetpu.so.1"
# The symbols of TFLite's external delegate interface (what load_delegate calls).
DELEGATE_SYMBOLS = ("tflite_plugin_create_delegate", "tflite_plugin_destroy_delegate")

# Tried in this order: (module to import, source name).
INTERPRETER_SOURCES = (
    ("ai_edge_litert.interpreter", "ai_edge_litert"),
    ("tflite_runtime.interpreter", "tflite_runtime"),
    ("tensorflow", "tensorflow.lite"),
)


@dataclass
class InterpreterSource:
    """Where a TFLite interpreter comes from, and whether it can be imported here."""

    name: str  # ai_edge_litert | tflite_runtime | tensorflow.lite
    available: bool
    version: Optional[str] = None
    detail: str = ""
    interpreter: Any = None  # the Interpreter class
    load_delegate: Optional[Callable] = None


def _numpy_major() -> int:
    try:
        return int(np.__version__.split(".")[0])
    except ValueError:
        return 0


def probe_interpreter(name: str, module: str, with_version: bool = True) -> InterpreterSource:
    """Try to import one interpreter source; never raises.

    ``with_version`` looks the version up in the package metadata (importing
    ``importlib.metadata`` costs ~0.1 s on a Pi, so loading a model skips it).
    """
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = module.split(".")[0]
        if exc.name in (top, module):
            return InterpreterSource(name, False, detail="not installed")
        return InterpreterSource(name, False, detail=f"broken install: {exc}")
    except (ImportError, SystemError, AttributeError, RuntimeError, OSError) as exc:
        return _broken(name, exc)
    except Exception as exc:  # a compiled extension failing in an unexpected way
        return _broken(name, exc)
    try:
        if name == "tensorflow.lite":
            lite = mod.lite
            interpreter, delegate = lite.Interpreter, lite.experimental.load_delegate
            version = getattr(mod, "__version__", None)
        else:
            interpreter, delegate = mod.Interpreter, mod.load_delegate
            version = dist_version(name.replace("_", "-")) if with_version else None
    except Exception as exc:
        return _broken(name, exc)
    if module.startswith("tflite_runtime") and _numpy_major() >= 2:
        # Every tflite-runtime release (the last is 2.14) was built against numpy 1: it imports,
        # then raises SystemError when an Interpreter is built.
        return _broken(name, SystemError("built against numpy 1"))
    return InterpreterSource(name, True, version=version, interpreter=interpreter, load_delegate=delegate)


def _broken(name: str, exc: BaseException) -> InterpreterSource:
    text = first_line(exc)
    if name == "tflite_runtime" and _numpy_major() >= 2:
        return InterpreterSource(name, False, detail=f"{NUMPY2_TFLITE_RUNTIME} ({type(exc).__name__}: {text})")
    return InterpreterSource(name, False, detail=f"import failed: {type(exc).__name__}: {text}")


_CHOSEN: Optional[InterpreterSource] = None


def import_interpreter() -> InterpreterSource:
    """The first working interpreter source (cached), or BackendUnavailableError saying what to install."""
    global _CHOSEN
    if _CHOSEN is not None:
        return _CHOSEN
    problems = []
    for module, name in INTERPRETER_SOURCES:
        src = probe_interpreter(name, module, with_version=False)
        if src.available:
            _CHOSEN = src
            return src
        problems.append(src)
    numpy2 = [p for p in problems if NUMPY2_TFLITE_RUNTIME in p.detail]
    if numpy2:
        raise BackendUnavailableError(f"no usable TFLite interpreter: {numpy2[0].detail}")
    found = "; ".join(f"{p.name}: {p.detail}" for p in problems)
    raise BackendUnavailableError(f"no TFLite interpreter is installed ({found}); {INSTALL_HINT}")


def _sniff(path: Path) -> str:
    """A short description of what a non-TFLite file looks like."""
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return "unreadable"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive (a Keras .keras file? use --backend keras)"
    if head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"BM", b"GIF8")):
        return "an image, not a model"
    if head.startswith(b"\x89HDF"):
        return "an HDF5 file (Keras .h5 weights or model?)"
    if head and all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "a text file"
    if head[:1] == b"\x08" or b"onnx" in head[:64]:
        return "possibly an ONNX model (rename it to .onnx or pass --backend onnx)"
    return "not a TFLite flatbuffer"


class LiteRTBackend:
    """A ``.tflite`` model in the LiteRT / TFLite interpreter."""

    name = "litert"

    def __init__(self, path: str | os.PathLike, threads: Optional[int] = None, delegate: Optional[str] = None):
        check_threads(threads)
        self.path = check_model_file(path, "TFLite")
        if not has_tflite_identifier(self.path):
            raise ModelError(
                f"{self.path} is not a TFLite model (no 'TFL3' identifier; it looks like {_sniff(self.path)}); "
                f"pass a .tflite file exported by edgecnn or TFLite"
            )
        if not buffers_in_bounds(self.path):
            raise ModelError(
                f"{self.path} is truncated or corrupt (its weights run past the end of the file); "
                f"re-export or re-download it"
            )
        src = import_interpreter()
        self.source = src.name
        delegates = [_load_delegate(src, delegate)] if delegate else None
        kwargs: dict[str, Any] = {"model_path": str(self.path)}
        if threads is not None:
            kwargs["num_threads"] = int(threads)
        if delegates:
            kwargs["experimental_delegates"] = delegates
        try:
            with native_stderr():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
                self._interp = src.interpreter(**kwargs)
                for details in self._interp.get_input_details():  # before allocate_tensors allocates them
                    too_large = input_size_problem(tuple(int(d) for d in details["shape"]))
                    if too_large:
                        raise ModelError(f"{self.path}: {too_large}")
                self._ops = _ops(self._interp)  # before allocate_tensors hands ops to the XNNPACK delegate
                self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise _load_error(self.path, first_line(exc), src.name, delegate) from None
        inputs = self._interp.get_input_details()
        outputs = self._interp.get_output_details()
        if len(inputs) != 1:
            raise ModelError(
                f"{self.path} has {len(inputs)} inputs; edgecnn runs single-input image classifiers"
            )
        if not outputs:
            raise ModelError(f"{self.path} has no outputs; it is not a classifier")
        position = features_position(signature_output_names(self._interp, outputs))
        features = outputs.pop(position) if position is not None else None
        self.features_spec = _spec(features) if features is not None else None
        self._features_index = features["index"] if features is not None else None
        self._in = inputs[0]
        self._out = outputs[0]
        self._in_index = self._in["index"]
        self._out_index = self._out["index"]
        self._shape = tuple(int(d) for d in self._in["shape"])
        self.input_spec = _spec(self._in)
        self.output_spec = _spec(self._out)
        self.num_outputs = len(outputs)
        self._out_scale = self.output_spec.scale if self.output_spec.is_quantized else None
        self._out_zp = self.output_spec.zero_point

    def run(self, batch: np.ndarray) -> np.ndarray:
        interp = self._interp
        if interp is None:
            raise closed_error(self.path)
        try:
            if batch.shape != self._shape:
                self._resize(batch.shape)
            interp.set_tensor(self._in_index, batch)
            interp.invoke()
            out = interp.get_tensor(self._out_index)
        except (ValueError, RuntimeError) as exc:
            raise inference_error(self.path, exc) from None
        return score_rows(out, len(batch), self.path, self._out_scale, self._out_zp)

    def run_features(self, batch: np.ndarray) -> tuple[np.ndarray, Optional[np.ndarray]]:
        scores = self.run(batch)
        spec = self.features_spec
        if spec is None:
            return scores, None
        out = self._interp.get_tensor(self._features_index)
        return scores, feature_rows(out, len(batch), spec.scale if spec.is_quantized else None, spec.zero_point)

    def final_op(self) -> Optional[str]:
        return final_op(self._ops, int(self._out_index))

    def _resize(self, shape: tuple) -> None:
        """Resize the input; on failure put the interpreter back as it was, so later calls still run."""
        try:
            self._interp.resize_tensor_input(self._in_index, list(shape))
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError):
            self._interp.resize_tensor_input(self._in_index, list(self._shape))
            self._interp.allocate_tensors()
            raise
        self._shape = tuple(shape)

    def embedded_card(self) -> Optional[str]:
        data = read_metadata(self.path, EMBEDDED_CARD_KEY)
        if not data:
            return None
        try:
            return data.rstrip(b"\x00").decode("utf-8")
        except UnicodeDecodeError:
            return None

    def embedded_labels(self) -> Optional[list[str]]:
        """Labels embedded in the model, if any.

        edgecnn's ``edgecnn.labels`` metadata entry, else a TFLite Support associated
        file (a label .txt zipped onto the model, as in Coral/TF Hub models).
        """
        data = read_metadata(self.path, EMBEDDED_LABELS_KEY)
        if data:
            try:
                return label_lines(data.rstrip(b"\x00").decode("utf-8")) or None
            except UnicodeDecodeError:
                pass
        names = [n for n in tflite_metadata.associated_file_names(self.path) if n.lower().endswith(".txt")]
        preferred = [n for n in names if "label" in n.lower()] or names
        if len(preferred) != 1:
            return None
        data = tflite_metadata.read_associated_file(self.path, preferred[0]) or b""
        try:
            return label_lines(data.decode("utf-8")) or None
        except UnicodeDecodeError:
            return None

    def standard_metadata(self) -> Optional[StandardMetadata]:
        return tflite_metadata.read_standard_metadata(self.path)

    def close(self) -> None:
        self._interp = None


def _load_delegate(src: InterpreterSource, delegate: str):
    """``src.load_delegate(delegate)``, or one ModelError line saying why the library is not a usable delegate."""
    try:
        library = ctypes.CDLL(delegate)
    except OSError as exc:
        raise ModelError(
            f"cannot load delegate {delegate!r} ({first_line(exc)}); check that the library is "
            f"installed (for a Coral Edge TPU: apt install libedgetpu1-std, then --delegate {EDGETPU_DELEGATE}), "
            f"or run without --delegate"
        ) from None
    missing = [name for name in DELEGATE_SYMBOLS if not hasattr(library, name)]
    if missing:
        # Checked here: load_delegate() on such a library raises, then its Delegate.__del__ prints a traceback.
        raise ModelError(
            f"{delegate!r} is not a TFLite delegate library (it has no {missing[0]}); pass a delegate such as "
            f"{EDGETPU_DELEGATE} (Coral Edge TPU), or run without --delegate"
        )
    try:
        return src.load_delegate(delegate)
    except Exception as exc:  # ValueError from the plugin, with its own message (e.g. no Edge TPU found)
        first = first_line(exc)
        hint = "is the Edge TPU plugged in?" if "edgetpu" in delegate.lower() else "check the device it drives"
        raise ModelError(
            f"delegate {delegate!r} failed to start ({first or 'no reason given'}); {hint} "
            f"Or run without --delegate"
        ) from None


def _load_error(path: Path, first: str, interpreter: str, delegate: Optional[str]) -> ModelError:
    """Why the interpreter refused ``path``: a missing delegate or custom op when the model has one, else corrupt."""
    ops = custom_ops(path)
    if EDGETPU_OP in ops and not delegate:
        return ModelError(
            f"{path} is compiled for a Coral Edge TPU (custom op {EDGETPU_OP}) and needs the Edge TPU delegate: "
            f"pass --delegate {EDGETPU_DELEGATE} (apt install libedgetpu1-std), or run the model from before "
            f"edgetpu_compiler on the CPU"
        )
    flex = [op for op in ops if op.startswith("Flex")]
    if flex and not delegate:
        return ModelError(
            f"{path} uses TensorFlow ops ({', '.join(flex[:3])}) that need the Flex delegate, which {interpreter} "
            f"does not include: pass --delegate libtensorflowlite_flex.so (built from TensorFlow), or re-export "
            f"the model without --allow-tf-ops"
        )
    other = [op for op in ops if op != EDGETPU_OP or delegate]
    if other and ("custom op" in first or "unresolved" in first.lower()):
        via = f"the delegate {delegate!r} does not provide it" if delegate else "no delegate was given"
        return ModelError(
            f"{path} uses custom op(s) {', '.join(other[:3])} that {interpreter} does not have built in and "
            f"{via}: pass the delegate library that implements them with --delegate LIB, or re-export the model "
            f"with builtin ops only"
        )
    return ModelError(
        f"{path} is not a valid TFLite model ({first}); it may be truncated or corrupt: re-export or re-download it"
    )


def _ops(interp) -> list[tuple[str, list[int], list[int]]]:
    """(op name, input tensors, output tensors) of each op, or [] where the interpreter does not list them."""
    try:
        return [(str(op["op_name"]), [int(i) for i in op["inputs"]], [int(o) for o in op["outputs"]])
                for op in interp._get_ops_details()]  # noqa: SLF001  (the interpreter's one way to list its ops)
    except Exception:  # noqa: BLE001  an interpreter without it, or an op it cannot describe: not seen
        return []


def signature_output_names(interp, outputs: list[dict]) -> list[str]:
    """Each of ``outputs``' name in the model's one signature (edgecnn's exports name theirs: ``class_scores``,
    ``features``), else its tensor's name. ``interp``: a LiteRT, tflite_runtime or tf.lite interpreter."""
    try:
        signatures = interp._get_full_signature_list()  # noqa: SLF001  (the names a signature runner reads)
    except Exception:  # noqa: BLE001  an interpreter without it: tensor names only
        signatures = {}
    names = {}
    if len(signatures) == 1:
        names = {int(index): name for name, index in next(iter(signatures.values())).get("outputs", {}).items()}
    return [names.get(int(o["index"]), str(o["name"])) for o in outputs]


def _spec(details: dict) -> TensorSpec:
    sig = details.get("shape_signature")
    if sig is None or len(sig) != len(details["shape"]):
        sig = details["shape"]
    shape = tuple(None if int(d) < 0 else int(d) for d in sig)
    scale, zp = details.get("quantization", (0.0, 0))
    qp = details.get("quantization_parameters") or {}
    scales = qp.get("scales")
    if scales is not None and len(scales) > 1:
        raise ModelError(
            f"tensor {details['name']!r} is quantized per channel; edgecnn expects a per-tensor quantized input/output"
        )
    return TensorSpec(
        name=str(details["name"]),
        shape=shape,
        dtype=np.dtype(details["dtype"]),
        layout=guess_layout(shape),
        scale=float(scale) if scale else None,
        zero_point=int(zp),
    )
