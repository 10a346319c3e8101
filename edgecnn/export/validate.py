"""Validate an export: run it beside the Keras model on real images and check the format's tolerance.

As in Hugging Face Optimum's ``validate_model_outputs``: the same images go
through the reference and the exported model; a failed tolerance is a typed
:class:`ValidationError` naming the format and the figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecnn.export.stats import (
    FAIL,
    INCONCLUSIVE,
    MIN_VERDICT_IMAGES,
    PASS,
    PairedDifference,
    paired_difference,
    verdict,
)
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
    labels_from: str  # "folder", or "keras" (no labels: Keras's own top-1 stands in for them)
    difference: PairedDifference  # export accuracy - Keras accuracy (vs Keras's top-1 without labels)

    @property
    def accuracy_drop(self) -> float:
        return self.difference.drop

    def to_dict(self) -> dict:
        d = self.difference
        return {
            "images": self.images, "accuracy": self.accuracy, "reference_accuracy": self.reference_accuracy,
            "accuracy_difference": d.difference, "accuracy_difference_ci95": [d.low, d.high],
            "accuracy_drop": d.drop, "images_only_export_right": d.gained, "images_only_keras_right": d.lost,
            "agreement": self.agreement, "max_abs_diff": self.max_abs_diff, "labels_from": self.labels_from,
        }


def top1(probabilities: np.ndarray) -> np.ndarray:
    return probabilities.argmax(axis=-1)


def compare(reference: np.ndarray, exported: np.ndarray, labels: np.ndarray | None) -> Figures:
    reference, exported = as_class_probs(reference), as_class_probs(exported)
    ref, out = top1(reference), top1(exported)
    truth = ref if labels is None else labels
    return Figures(
        images=int(len(reference)),
        agreement=float(np.mean(ref == out)),
        max_abs_diff=float(np.max(np.abs(reference.astype(np.float64) - exported))),
        accuracy=None if labels is None else float(np.mean(out == labels)),
        reference_accuracy=None if labels is None else float(np.mean(ref == labels)),
        labels_from="keras" if labels is None else "folder",
        difference=paired_difference(ref == truth, out == truth),
    )


@dataclass
class Judgement:
    """The verdict on one artifact: ``pass``, ``fail`` or ``inconclusive``, and whether it fails the export."""

    verdict: str
    problems: list[str]  # why it fails (or would fail), with the figures
    passed: bool  # False only for a failure backed by enough images (or an exactness failure)
    backed: bool  # judged on at least MIN_VERDICT_IMAGES images

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "passed": self.passed, "backed_by_enough_images": self.backed}


def judge(fmt: Format, figures: Figures) -> Judgement:
    """Judge ``figures`` against ``fmt``'s tolerance (see :mod:`edgecnn.export.stats` for the rule)."""
    tol: Tolerance = fmt.tolerance
    exact, statistical, verdicts = [], [], []
    if not np.isfinite(figures.max_abs_diff):
        exact.append("non-finite outputs (NaN or inf)")
    if tol.max_abs_diff is not None and figures.max_abs_diff > tol.max_abs_diff:
        exact.append(f"max probability difference {figures.max_abs_diff:.2e} > {tol.max_abs_diff:.0e}")
    if tol.max_accuracy_drop is not None:
        low, high = figures.difference.drop_interval
        verdicts.append(verdict((low, high), tol.max_accuracy_drop))
        if verdicts[-1] != PASS:
            what = (f"accuracy {figures.accuracy:.2%} vs Keras {figures.reference_accuracy:.2%}"
                    if figures.accuracy is not None else f"agreement {figures.agreement:.2%} (no labels)")
            statistical.append(f"{what}: {figures.accuracy_drop * 100:.1f} points lost "
                               f"(95% CI {low * 100:.1f} to {high * 100:.1f}) vs {tol.max_accuracy_drop * 100:.1f} "
                               f"allowed")
    backed = figures.images >= MIN_VERDICT_IMAGES
    if exact or FAIL in verdicts:
        return Judgement(FAIL, exact + statistical, passed=not exact and not backed, backed=backed)
    if INCONCLUSIVE in verdicts:
        return Judgement(INCONCLUSIVE, statistical, passed=True, backed=backed)
    return Judgement(PASS, [], passed=True, backed=backed)


def run_artifact(path: Path, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Class probabilities of the exported model at ``path`` for uint8 RGB ``images``, and its features output
    (None when it has none).

    Runs through edgecnn's runtime (``Classifier``: its backend, preprocessing
    from the card, quantized I/O) exactly as a device would.
    """
    from edgecnn.card import find_card
    from edgecnn.runtime import Classifier
    from edgecnn.runtime.cpu import already_warned

    already_warned(path)  # export reports this CPU's int8 figures itself

    # The sidecar card just written, explicitly (a SavedModel folder's card sits beside it).
    with Classifier(path, card=find_card(path)) as classifier:
        predictions = [p for start in range(0, len(images), CHUNK)
                       for p in classifier.predict_batch(list(images[start:start + CHUNK]), order="RGB")]
    features = None if predictions[0].features is None else np.stack([p.features for p in predictions])
    return np.stack([p.probabilities for p in predictions]), features


def compare_features(reference: np.ndarray, exported: np.ndarray | None) -> dict:
    """How close an artifact's features output is to the Keras model's (reported, not judged)."""
    if exported is None or exported.shape != reference.shape:
        return {"present": exported is not None, "matches_keras_shape": False}
    diff = np.abs(exported.astype(np.float64) - reference)
    varied = exported.std() > 0 and reference.std() > 0  # constant features have no correlation
    return {"present": True, "max_abs_diff": float(diff.max()),
            "max_abs_diff_over_range": float(diff.max() / max(float(np.abs(reference).max()), 1e-12)),
            "correlation": float(np.corrcoef(exported.ravel(), reference.ravel())[0, 1]) if varied else None}


def exact_onnx_int8(path: Path, images: np.ndarray) -> np.ndarray:
    """An int8 QDQ ONNX model's outputs with QDQ left unfused (DequantizeLinear -> float op -> QuantizeLinear).

    The same int8 arithmetic without the fused x86 kernels, whose s8 pairs
    saturate on CPUs without VNNI: what ARM's kernels compute up to rounding
    (emulated Cortex-A72/A76; devices/raspberry-pi-*/results/emulated-2026-11-28).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: images[i:i + CHUNK].astype(np.float32)})[0]
                           for i in range(0, len(images), CHUNK)])
