"""pytest-benchmark: each backend's raw ``run`` on MobileNetV2 224, fp32 and int8, batch 1.

    python benchmarks/make_mobilenet_224.py --onnx      # once: builds benchmarks/.cache/mobilenet_v2_224
    pytest benchmarks/test_bench_backends.py --benchmark-group-by=param:threads
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _models import CORAL_QUANT, mobilenet_224, shared  # noqa: E402

MODELS = {
    "litert-fp32": lambda: mobilenet_224("model_fp32.tflite"),
    "litert-int8": lambda: mobilenet_224("model_int8.tflite"),
    "litert-coral-uint8": lambda: shared(CORAL_QUANT),
    "onnx-fp32": lambda: mobilenet_224("model.onnx"),
    "onnx-int8": lambda: mobilenet_224("model_int8.onnx"),
    "keras-fp32": lambda: mobilenet_224("model.keras"),
}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("model", list(MODELS))
def test_backend_run(benchmark, model, threads):
    from edgecnn.runtime import load_backend

    if model.startswith("keras"):
        pytest.importorskip("keras")
    backend = load_backend(MODELS[model](), threads=threads)
    spec = backend.input_spec
    shape = tuple(1 if d is None else d for d in spec.shape)
    batch = np.random.default_rng(0).integers(0, 256, shape).astype(spec.dtype)
    backend.run(batch)  # first call allocates
    out = benchmark(backend.run, batch)
    assert out.shape[0] == 1
    backend.close()
