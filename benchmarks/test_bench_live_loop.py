"""pytest-benchmark: the live loop (capture thread + classify + JSON sink) over a short video file.

    python benchmarks/make_mobilenet_224.py             # once
    pytest benchmarks/test_bench_live_loop.py

One round = every frame of a 60-frame 640x480 video, lossless (no frame dropped),
so the time per round / 60 is the loop's cost per frame.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _models import frame_640x480, mobilenet_224  # noqa: E402

FRAMES = 60


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    import cv2

    frame = frame_640x480()
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (640, 480))
    for i in range(FRAMES):
        writer.write(cv2.flip(frame, 1) if i % 2 else frame)
    writer.release()
    return path


@pytest.mark.parametrize("name", ["model_fp32.tflite", "model_int8.tflite"])
def test_live_loop_on_video(benchmark, video, name):
    from edgecnn.runtime import Classifier
    from edgecnn.video.capture import LatestFrameCapture
    from edgecnn.video.classify import FrameClassifier
    from edgecnn.video.frame_sources import open_source
    from edgecnn.video.loop import LoopOptions, run_loop
    from edgecnn.video.sinks import JsonLines

    clf = Classifier(mobilenet_224(name), threads=2)
    classify = FrameClassifier(clf)

    def one_pass():
        capture = LatestFrameCapture(open_source(str(video)), lossless=True).start()
        try:
            return run_loop(capture, classify, LoopOptions(top_k=5), sinks=[JsonLines(io.StringIO())])
        finally:
            capture.stop()

    outcome = benchmark.pedantic(one_pass, rounds=3, warmup_rounds=1)
    assert outcome.error is None and outcome.stats.processed == FRAMES
    clf.close()
