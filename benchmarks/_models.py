"""Where the benchmark suites find their models and images (skipping with the command that makes them)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("EDGECNN_SHARED", HERE.parent / ".." / "shared")).resolve()
MOBILENET_224 = HERE / ".cache" / "mobilenet_v2_224"
MAKE = "python benchmarks/make_mobilenet_224.py --onnx"
CORAL_QUANT = SHARED / "data" / "coral" / "mobilenet_v2_1.0_224_quant.tflite"
FRAME_IMAGE = SHARED / "data" / "coral" / "cat_720p.jpg"


def mobilenet_224(name: str) -> Path:
    path = MOBILENET_224 / name
    if not path.exists():
        pytest.skip(f"{path} not built; run: {MAKE}")
    return path


def shared(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} not found (set EDGECNN_SHARED)")
    return path


def frame_640x480():
    """A real photo as a 640x480 BGR camera frame."""
    import cv2

    from edgecnn.runtime import read_image

    return cv2.resize(read_image(shared(FRAME_IMAGE)), (640, 480), interpolation=cv2.INTER_AREA)
