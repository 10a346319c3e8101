"""Classify BGR frames with a runtime Classifier, timing preprocessing and inference separately."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np


@dataclass
class FrameResult:
    """Top-k of one frame (runtime ClassScore entries, best first) and its latency split in ms."""

    top: Sequence
    latency_ms: dict  # {"preprocess": ms, "inference": ms, "total": ms}

    def to_dict(self) -> dict:
        return {
            "top": [t.to_dict() for t in self.top],
            "latency_ms": {k: round(float(v), 3) for k, v in self.latency_ms.items()},
        }


# What the loop calls: (BGR frame, top_k) -> FrameResult. Tests pass fakes of this shape.
FrameClassifierFn = Callable[[np.ndarray, int], FrameResult]


class FrameClassifier:
    """Wraps ``edgecnn.runtime.Classifier`` for BGR frames: no colour-conversion copy of the full
    frame (the runtime resizes first, then swaps channels on the small image) and a
    preprocess/inference split of the latency.

    The runtime's ``predict`` reports only the total, so this runs its three
    stages itself; ``total`` covers preprocessing, inference and postprocessing,
    exactly what ``Classifier.predict`` times.
    """

    def __init__(self, classifier):
        self.classifier = classifier
        self._batch = np.zeros((1,) + classifier.preprocessor.sample_shape, classifier.input_spec.dtype)

    def __call__(self, image: np.ndarray, top_k: int = 5) -> FrameResult:
        from edgecnn.runtime import as_uint8_color

        clf = self.classifier
        t0 = time.perf_counter()
        clf.preprocessor(as_uint8_color(image, "frame"), order="BGR", out=self._batch[0])
        t1 = time.perf_counter()
        raw = clf.backend.run(self._batch)
        t2 = time.perf_counter()
        top = clf._top(clf._postprocess(raw)[0], top_k)  # runtime has no public postprocess step yet
        t3 = time.perf_counter()
        return FrameResult(top, {"preprocess": (t1 - t0) * 1e3, "inference": (t2 - t1) * 1e3, "total": (t3 - t0) * 1e3})
