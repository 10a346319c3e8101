"""Classify BGR frames with a runtime Classifier, timing preprocessing and inference separately."""

from __future__ import annotations

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
    """Adapts ``edgecnn.runtime.Classifier`` to the loop: BGR frame in, FrameResult out.

    ``Classifier.predict`` takes the BGR frame as it is (it resizes first, then
    swaps channels on the small image: no full-frame copy) and reports per-stage
    timings; ``total`` is its ``latency_ms`` (preprocess + inference + postprocess).
    """

    def __init__(self, classifier):
        self.classifier = classifier

    def __call__(self, image: np.ndarray, top_k: int = 5) -> FrameResult:
        prediction = self.classifier.predict(image, top_k=top_k, order="BGR")
        timings = prediction.timings
        return FrameResult(prediction.top, {"preprocess": timings["preprocess"], "inference": timings["inference"],
                                            "total": prediction.latency_ms})
