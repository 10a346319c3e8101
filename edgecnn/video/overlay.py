"""Draw the prediction on a frame: top-k labels with confidence bars, inference time and loop FPS."""

from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np

from edgecnn.runtime.feedback import FEEDBACK_LEVELS, confidence_feedback

# BGR bar colors per feedback level, most confident first (same order as FEEDBACK_LEVELS).
LEVEL_COLORS = ((80, 200, 60), (60, 200, 200), (40, 160, 240), (60, 60, 220))
_COLOR_BY_PHRASE = {phrase: LEVEL_COLORS[min(i, len(LEVEL_COLORS) - 1)]
                    for i, (_, phrase) in enumerate(FEEDBACK_LEVELS)}

FONT = cv2.FONT_HERSHEY_SIMPLEX
WHITE = (255, 255, 255)
GRAY = (90, 90, 90)


def confidence_color(score: float) -> tuple[int, int, int]:
    """The bar color for a score, from the runtime's confidence feedback levels."""
    return _COLOR_BY_PHRASE.get(confidence_feedback(score), LEVEL_COLORS[-1])


def draw_overlay(
    image: np.ndarray,
    top: Sequence[tuple],
    inference_ms: Optional[float],
    fps: Optional[float],
) -> np.ndarray:
    """Draw in place on the BGR ``image`` and return it.

    ``top`` holds entries with ``label`` and ``score`` (the runtime's
    ClassScore), best first; the best one also gets the runtime's confidence phrase.
    """
    h, w = image.shape[:2]
    scale = min(1.0, max(0.3, w / 1280))
    line = max(10, int(round(44 * scale)))
    pad = max(2, line // 5)
    bar_w = max(20, w // 3)
    thickness = 1 if scale < 0.6 else 2

    rows = [(str(entry.label), float(entry.score)) for entry in top]
    status = " | ".join(
        part for part in (
            f"inference {inference_ms:.1f} ms" if inference_ms is not None else None,
            f"{fps:.1f} FPS" if fps else None,
        ) if part
    )
    panel_h = pad + line * (len(rows) + (1 if status else 0))
    _shade(image, 0, 0, min(w, bar_w + line * 12), min(h, panel_h + pad))

    y = pad
    for i, (label, score) in enumerate(rows):
        x1 = pad + int(bar_w * min(max(score, 0.0), 1.0))
        cv2.rectangle(image, (pad, y + pad), (pad + bar_w, y + line - pad), GRAY, -1)
        cv2.rectangle(image, (pad, y + pad), (x1, y + line - pad), confidence_color(score), -1)
        text = f"{label} {score:.0%}"
        if i == 0:
            text += f"  {confidence_feedback(score)}"
        cv2.putText(image, text, (2 * pad + bar_w, y + line - 2 * pad), FONT, scale, WHITE, thickness, cv2.LINE_AA)
        y += line
    if status:
        cv2.putText(image, status, (pad, y + line - 2 * pad), FONT, scale, WHITE, thickness, cv2.LINE_AA)
    return image


def _shade(image: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> None:
    """Darken a rectangle so white text stays readable on any background."""
    region = image[y0:y1, x0:x1]
    region //= 2
