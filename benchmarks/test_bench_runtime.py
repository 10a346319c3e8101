"""pytest-benchmark: Classifier.predict on a 640x480 frame vs the raw interpreter (Coral MobileNetV2 quant).

Run: pytest benchmarks/test_bench_runtime.py --benchmark-group-by=func
(`python benchmarks/bench_runtime.py` gives the ratio, RSS and load time in one report.)
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_runtime import DEFAULT_IMAGE, DEFAULT_MODEL, decoded_frame  # noqa: E402

THREADS = 2

pytestmark = pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason=f"{DEFAULT_MODEL} not found (set EDGECNN_SHARED)")


@pytest.fixture(scope="module")
def frame():
    return decoded_frame(DEFAULT_IMAGE)


def test_raw_interpreter(benchmark, frame):
    import cv2

    ai_edge_litert = pytest.importorskip("ai_edge_litert.interpreter")
    interp = ai_edge_litert.Interpreter(model_path=str(DEFAULT_MODEL), num_threads=THREADS)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    tensor = cv2.cvtColor(cv2.resize(frame, (224, 224)), cv2.COLOR_BGR2RGB)[None]

    def once():
        interp.set_tensor(inp["index"], tensor)
        interp.invoke()
        return interp.get_tensor(out["index"])

    assert benchmark(once).shape == (1, 1001)


def test_classifier_predict(benchmark, frame):
    from edgecnn.runtime import Classifier

    clf = Classifier(DEFAULT_MODEL, threads=THREADS)
    assert benchmark(clf.predict, frame).label == "Egyptian cat"


def test_preprocess_only(benchmark, frame):
    from edgecnn.runtime import Classifier

    clf = Classifier(DEFAULT_MODEL, threads=THREADS)
    out = benchmark(clf.preprocessor, frame)
    assert out.shape == (224, 224, 3)
