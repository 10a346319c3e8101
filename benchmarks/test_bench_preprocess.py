"""pytest-benchmark: preprocessing variants, a 640x480 BGR frame to a 224x224 model input.

    pytest benchmarks/test_bench_preprocess.py --benchmark-group-by=group
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _models import frame_640x480  # noqa: E402

from edgecnn.runtime import Preprocessor, TensorSpec  # noqa: E402

SIZE = 224
SPECS = {
    "uint8-raw": (TensorSpec("x", (1, SIZE, SIZE, 3), np.dtype(np.uint8)), (0.0,), (1.0,)),
    "uint8-quantized": (TensorSpec("x", (1, SIZE, SIZE, 3), np.dtype(np.int8), scale=0.0078125, zero_point=0),
                        (127.5,), (127.5,)),
    "float32-raw": (TensorSpec("x", (1, SIZE, SIZE, 3), np.dtype(np.float32)), (0.0,), (1.0,)),
    "float32-normalized": (TensorSpec("x", (1, SIZE, SIZE, 3), np.dtype(np.float32)), (127.5,), (127.5,)),
    "float32-nchw": (TensorSpec("x", (1, 3, SIZE, SIZE), np.dtype(np.float32), layout="NCHW"), (127.5,), (127.5,)),
}


@pytest.fixture(scope="module")
def frame():
    return frame_640x480()


@pytest.mark.benchmark(group="preprocess")
@pytest.mark.parametrize("variant", list(SPECS))
@pytest.mark.parametrize("crop", ["stretch", "center"])
def test_preprocess(benchmark, frame, variant, crop):
    spec, mean, std = SPECS[variant]
    pre = Preprocessor(spec, SIZE, SIZE, mean, std, crop=crop)
    out = np.empty(pre.sample_shape, spec.dtype)
    benchmark(pre, frame, order="BGR", out=out)
    assert out.shape == pre.sample_shape


@pytest.mark.benchmark(group="preprocess")
def test_preprocess_already_model_sized(benchmark):
    """A frame already at the input size: no resize, only the channel swap."""
    spec, mean, std = SPECS["uint8-raw"]
    pre = Preprocessor(spec, SIZE, SIZE, mean, std)
    image = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    out = np.empty(pre.sample_shape, spec.dtype)
    benchmark(pre, image, order="BGR", out=out)


@pytest.mark.benchmark(group="preprocess-baselines")
@pytest.mark.parametrize("interpolation", ["INTER_LINEAR", "INTER_AREA"])
def test_plain_opencv_resize(benchmark, frame, interpolation):
    """What the Preprocessor saves against a naive resize (+ cvtColor + float normalize)."""
    import cv2

    def naive():
        rgb = cv2.cvtColor(cv2.resize(frame, (SIZE, SIZE), interpolation=getattr(cv2, interpolation)),
                           cv2.COLOR_BGR2RGB)
        return (rgb.astype(np.float32) - 127.5) / 127.5

    assert benchmark(naive).shape == (SIZE, SIZE, 3)
