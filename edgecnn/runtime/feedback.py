"""The Keras CNN image-classification tutorial's confidence feedback, defined once (CLI, camera overlay and
evaluation import it)."""

from __future__ import annotations

# (threshold, phrase): the first threshold the score is strictly above wins.
FEEDBACK_LEVELS: tuple[tuple[float, str], ...] = (
    (0.9, "Super confident!"),
    (0.7, "Pretty sure!"),
    (0.5, "Hmm, I think..."),
    (float("-inf"), "Not very sure..."),
)


def confidence_feedback(score: float) -> str:
    """``> 0.9 -> "Super confident!"``, ``> 0.7 -> "Pretty sure!"``, ``> 0.5 -> "Hmm, I think..."``,
    else ``"Not very sure..."``."""
    for threshold, phrase in FEEDBACK_LEVELS:
        if score > threshold:
            return phrase
    return FEEDBACK_LEVELS[-1][1]  # NaN
