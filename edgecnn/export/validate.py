"""Validate an export: run it beside the Keras model on real images and check the format's tolerance.

As in Hugging Face Optimum's ``validate_model_outputs``: the same images go
through the reference and the exported model; a failed tolerance is a typed
:class:`ValidationError` naming the format and the figures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgecnn.formats import Format, Tolerance
from edgecnn.runtime.postprocess import as_class_probs

CHUNK = 32  # images per runtime call: bounds memory for batch-capable backends


@dataclass
class Figures:
    images: int
    agreement: float  # top-1 agreement with Keras, 0..1
    max_abs_diff: float  # max |p_export - p_keras|
    accuracy: float | None  # None without labels
    reference_accuracy: float | None
    labels_from: str  # "folder" or "none"

    @property
    def accuracy_drop(self) -> float | None:
        if self.accuracy is None or self.reference_accuracy is None:
            return None
        return self.reference_accuracy - self.accuracy

    def to_dict(self) -> dict:
        return {**asdict(self), "accuracy_drop": self.accuracy_drop}


def top1(probabilities: np.ndarray) -> np.ndarray:
    return probabilities.argmax(axis=-1)


def compare(reference: np.ndarray, exported: np.ndarray, labels: np.ndarray | None) -> Figures:
    reference, exported = as_class_probs(reference), as_class_probs(exported)
    ref, out = top1(reference), top1(exported)
    return Figures(
        images=int(len(reference)),
        agreement=float(np.mean(ref == out)),
        max_abs_diff=float(np.max(np.abs(reference.astype(np.float64) - exported))),
        accuracy=None if labels is None else float(np.mean(out == labels)),
        reference_accuracy=None if labels is None else float(np.mean(ref == labels)),
        labels_from="none" if labels is None else "folder",
    )


def failures(fmt: Format, figures: Figures) -> list[str]:
    """Each way ``figures`` misses ``fmt``'s tolerance, as a phrase with the numbers."""
    tol: Tolerance = fmt.tolerance
    out = []
    if not np.isfinite(figures.max_abs_diff):
        out.append("non-finite outputs (NaN or inf)")
    if tol.min_agreement is not None and figures.agreement < tol.min_agreement:
        out.append(f"top-1 agreement {figures.agreement:.2%} < {tol.min_agreement:.2%}")
    if tol.max_abs_diff is not None and figures.max_abs_diff > tol.max_abs_diff:
        out.append(f"max probability difference {figures.max_abs_diff:.2e} > {tol.max_abs_diff:.0e}")
    if tol.max_accuracy_drop is not None:
        drop = figures.accuracy_drop
        if drop is None:  # no labels: Keras's own predictions are the reference labels
            drop = 1.0 - figures.agreement
        if drop > tol.max_accuracy_drop + 1e-9:
            acc = (f"accuracy {figures.accuracy:.2%} vs Keras {figures.reference_accuracy:.2%}"
                   if figures.accuracy is not None else f"agreement {figures.agreement:.2%} (no labels)")
            out.append(f"{acc}: {drop * 100:.1f} points lost > {tol.max_accuracy_drop * 100:.1f} allowed")
    return out


def run_artifact(path: Path, images: np.ndarray) -> np.ndarray:
    """Class probabilities of the exported model at ``path`` for uint8 RGB ``images``.

    Runs through edgecnn's runtime (``Classifier``: its backend, preprocessing
    from the card, quantized I/O) exactly as a device would.
    """
    from edgecnn.card import find_card
    from edgecnn.runtime import Classifier

    # The sidecar card just written, explicitly (a SavedModel folder's card sits beside it).
    with Classifier(path, card=find_card(path)) as classifier:
        predictions = [p for start in range(0, len(images), CHUNK)
                       for p in classifier.predict_batch(list(images[start:start + CHUNK]), order="RGB")]
    return np.stack([p.probabilities for p in predictions])


def exact_onnx_int8(path: Path, images: np.ndarray) -> np.ndarray:
    """An int8 QDQ ONNX model's outputs with QDQ left unfused (DequantizeLinear -> float op -> QuantizeLinear).

    The same int8 arithmetic without the fused x86 kernels, whose u8*s8 pairs
    saturate on CPUs without VNNI; i.e. what ARM and VNNI CPUs compute.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: images[i:i + CHUNK].astype(np.float32)})[0]
                           for i in range(0, len(images), CHUNK)])

