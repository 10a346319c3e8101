"""Classify BGR frames with a runtime Classifier, timing preprocessing and inference separately."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

RANKED = 5  # classes ranked for collectors (a sidecar's top-5, the margin rule) whatever --top-k shows


@dataclass
class FrameResult:
    """Top-k of one frame (runtime ClassScore entries, best first) and its latency split in ms.

    ``ranked``: the best RANKED (or top-k, if more) classes; ``features``: the model's pooled features (1-D), None
    when the model has no features output. Both empty in results that do not carry them.
    """

    top: Sequence
    latency_ms: dict  # {"preprocess": ms, "inference": ms, "total": ms}
    ranked: Sequence = ()
    features: Optional[np.ndarray] = None

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
        prediction = self.classifier.predict(image, top_k=max(top_k, RANKED), order="BGR")
        timings = prediction.timings
        return FrameResult(prediction.top[:top_k], {"preprocess": timings["preprocess"],
                                                    "inference": timings["inference"], "total": prediction.latency_ms},
                           ranked=prediction.top, features=getattr(prediction, "features", None))
