"""pytest-benchmark: ``Classifier.predict`` end to end (640x480 BGR frame -> top-5), fp32 vs int8.

    python benchmarks/make_mobilenet_224.py             # once
    pytest benchmarks/test_bench_classifier.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _models import FRAME_IMAGE, frame_640x480, mobilenet_224, shared  # noqa: E402

THREADS = 2


@pytest.fixture(scope="module")
def frame():
    return frame_640x480()


@pytest.mark.benchmark(group="classifier-frame")
@pytest.mark.parametrize("name", ["model_fp32.tflite", "model_int8.tflite"])
def test_predict_frame(benchmark, frame, name):
    from edgecnn.runtime import Classifier

    with Classifier(mobilenet_224(name), threads=THREADS) as clf:
        clf.predict(frame)
        top = benchmark(clf.predict, frame, top_k=5)
    assert "cat" in top.label.lower()


@pytest.mark.benchmark(group="classifier-file")
def test_predict_file_with_decoding(benchmark):
    """From a 1280x720 JPEG on disk: decoding included."""
    from edgecnn.runtime import Classifier

    with Classifier(mobilenet_224("model_int8.tflite"), threads=THREADS) as clf:
        benchmark(clf.predict, str(shared(FRAME_IMAGE)))


@pytest.mark.benchmark(group="classifier-batch")
def test_predict_batch_of_8(benchmark, frame):
    from edgecnn.runtime import Classifier

    with Classifier(mobilenet_224("model_fp32.tflite"), threads=THREADS) as clf:
        assert len(benchmark(clf.predict_batch, [frame] * 8)) == 8
