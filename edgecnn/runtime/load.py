"""Backend registry: pick a backend by file suffix (``edgecnn.formats``), load it, probe what is installed."""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from edgecnn.errors import UsageError, did_you_mean
from edgecnn.formats import backend_for_path
from edgecnn.machine import dist_version
from edgecnn.runtime.base import Backend, check_model_file, check_threads

# name -> "module:class", imported only when a model of that kind is loaded.
BACKENDS: dict[str, str] = {
    "litert": "edgecnn.runtime.litert_backend:LiteRTBackend",
    "onnx": "edgecnn.runtime.onnx_backend:OnnxBackend",
    "keras": "edgecnn.runtime.keras_backend:KerasBackend",
}


def backend_class(name: str):
    try:
        target = BACKENDS[name]
    except KeyError:
        raise UsageError(
            f"unknown backend {name!r}{did_you_mean(name, BACKENDS)}; expected one of: {', '.join(BACKENDS)}"
        ) from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def load_backend(
    path: str | os.PathLike,
    backend: Optional[str] = None,
    threads: Optional[int] = None,
    delegate: Optional[str] = None,
    providers: Optional[Sequence[str]] = None,
) -> Backend:
    """Load ``path`` in ``backend`` (default: chosen by its suffix through the formats table).

    ``delegate``: a TFLite delegate library (litert); ``providers``: ONNX Runtime execution providers (onnx).
    """
    check_threads(threads)
    path = check_model_file(path, "TFLite, ONNX or Keras")
    name = backend or backend_for_path(path)
    if delegate and name != "litert":
        raise UsageError(f"--delegate {delegate!r} works with TFLite models only (the litert backend)")
    if providers and name != "onnx":
        raise UsageError(f"--providers {','.join(providers)} works with ONNX models only (the onnx backend)")
    if providers:
        return backend_class(name)(Path(path), threads=threads, providers=list(providers))
    return backend_class(name)(Path(path), threads=threads, delegate=delegate)


@dataclass
class BackendStatus:
    """One runtime's availability, as ``edgecnn doctor`` reports it."""

    backend: str  # litert | onnx | keras
    module: str  # the Python module that provides it
    available: bool
    version: Optional[str] = None
    detail: str = ""

    def line(self) -> str:
        state = f"ok ({self.version})" if self.available and self.version else ("ok" if self.available else "missing")
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.backend:7s} {self.module:16s} {state}{detail}"


def probe_backends(import_tensorflow: bool = False) -> list[BackendStatus]:
    """Which runtimes are installed and importable here. Never raises.

    Imports each TFLite interpreter candidate (that is how a broken one, such
    as tflite_runtime under numpy 2, is found) and onnxruntime. TensorFlow is
    only looked up, not imported, unless ``import_tensorflow`` (it takes seconds).
    """
    from edgecnn.runtime.litert_backend import INTERPRETER_SOURCES, probe_interpreter

    out: list[BackendStatus] = []
    for module, name in INTERPRETER_SOURCES:
        if name == "tensorflow.lite" and not import_tensorflow:
            found = importlib.util.find_spec("tensorflow") is not None
            version = dist_version("tensorflow", "tensorflow-cpu") if found else None
            out.append(BackendStatus("litert", name, found, version, "" if found else "not installed"))
            continue
        src = probe_interpreter(name, module)
        out.append(BackendStatus("litert", name, src.available, src.version, src.detail))
    try:
        import onnxruntime

        from edgecnn.runtime.onnx_backend import short_provider

        providers = ", ".join(short_provider(p) for p in onnxruntime.get_available_providers())
        out.append(BackendStatus("onnx", "onnxruntime", True, onnxruntime.__version__, f"providers: {providers}"))
    except Exception as exc:
        out.append(BackendStatus("onnx", "onnxruntime", False, None,
                                 "not installed" if isinstance(exc, ModuleNotFoundError) else f"import failed: {exc}"))
    if import_tensorflow:
        try:
            import keras
            import tensorflow  # noqa: F401

            out.append(BackendStatus("keras", "keras", True, keras.__version__))
        except Exception as exc:
            out.append(BackendStatus("keras", "keras", False, None, f"not usable: {exc}"))
    else:
        found = importlib.util.find_spec("tensorflow") is not None and importlib.util.find_spec("keras") is not None
        out.append(BackendStatus("keras", "keras", found, dist_version("keras") if found else None,
                                 "" if found else "needs TensorFlow: pip install 'edgecnn[train]'"))
    return out

