"""What a classifier's output is (softmax, sigmoid or logits), decided from what it outputs on images.

The runtime turns logits into probabilities and leaves probabilities alone, so
a wrong ``output_kind`` in the card is a wrong answer on the device: a softmax
applied twice squashes every score toward 1/N. The last layer's activation is
not enough to tell (a keras.applications network nested inside a Functional
model ends in a softmax the outer model's last layer does not show), so export
runs the model and looks: rows in [0, 1] that sum to 1 are a softmax; values in
[0, 1] that do not are sigmoids; anything else is logits. The structure, nested
models included, only settles values in [0, 1] that are not a softmax (sigmoid
units, or logits that happen to stay in that range).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgecnn.errors import CardError, ExportError
from edgecnn.runtime.keras_graph import final_activation

ROW_SUM_TOLERANCE = 1e-3
RANGE_TOLERANCE = 1e-4


@dataclass(frozen=True)
class OutputKind:
    kind: str  # softmax | sigmoid | logits
    evidence: str  # what the outputs showed, for the card and the report

    def to_dict(self) -> dict:
        return {"kind": self.kind, "evidence": self.evidence}


def observed(outputs: np.ndarray) -> str:
    """``softmax`` (rows in [0, 1] summing to 1), ``probabilities`` (in [0, 1], not summing to 1) or ``logits``."""
    outputs = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    if not np.all(np.isfinite(outputs)):
        return "logits"
    in_range = outputs.min() >= -RANGE_TOLERANCE and outputs.max() <= 1 + RANGE_TOLERANCE
    if not in_range:
        return "logits"
    if outputs.shape[1] > 1 and np.all(np.abs(outputs.sum(axis=1) - 1) <= ROW_SUM_TOLERANCE):
        return "softmax"
    return "probabilities"


def infer(model, outputs: np.ndarray, source: str) -> OutputKind:
    """Decide the output kind of ``model`` from its ``outputs`` on images from ``source``."""
    seen = observed(outputs)
    n = len(outputs)
    if np.asarray(outputs).reshape(n, -1).shape[1] == 1:
        check_single_unit(model, outputs)
    if seen == "softmax":
        return OutputKind("softmax", f"rows in [0, 1] summing to 1 on {n} images from {source}")
    if seen == "logits":
        return OutputKind("logits", f"values outside [0, 1] on {n} images from {source}")
    structure = final_activation(model)
    if np.asarray(outputs).reshape(n, -1).shape[1] == 1 or structure != "linear":
        return OutputKind("sigmoid", f"values in [0, 1] not summing to 1 on {n} images from {source}")
    return OutputKind("logits", f"values in [0, 1] on {n} images from {source}, but the final layer is linear")


def check_single_unit(model, outputs: np.ndarray) -> None:
    """ExportError for a one-unit output that cannot be a sigmoid or a logit: a softmax over one unit (always 1.0),
    or whole numbers past 1 from a final layer that is neither a sigmoid nor linear (a class index as float)."""
    structure = final_activation(model)
    values = np.asarray(outputs, dtype=np.float64)
    if structure == "softmax":
        raise ExportError("the model ends in a softmax over one unit, which is always 1.0: every image would score "
                          "100%; give it one sigmoid unit (binary) or a softmax over 2 or more classes")
    whole = values.size and np.all(values == np.round(values)) and values.max() > 1
    if whole and structure not in ("sigmoid", "linear"):
        raise ExportError(f"the model's one output takes only whole numbers (up to {values.max():g}): it looks like "
                          f"a class index, not a score; export the model that outputs the scores")


def conflict(card_kind: str, found: OutputKind) -> str | None:
    """Why ``card_kind`` cannot be right given ``found``, or None when they fit."""
    if card_kind == found.kind:
        return None
    if card_kind == "logits" and found.kind == "sigmoid":
        return None  # logits may stay inside [0, 1]
    if card_kind == "sigmoid" and found.kind == "softmax":
        return None  # two sigmoid units can sum to 1 by chance only rarely, but a softmax is sigmoids' special case
    return (f"the card says output_kind {card_kind} but the model's outputs are {found.kind} "
            f"({found.evidence})")


def check_forced(kind: str) -> str:
    from edgecnn.card import OUTPUT_KINDS

    if kind not in OUTPUT_KINDS:
        raise CardError(f"received --output-kind={kind!r}; expected one of {', '.join(OUTPUT_KINDS)}")
    return kind
