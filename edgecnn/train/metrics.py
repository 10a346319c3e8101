"""Classification metrics from predicted probabilities: accuracy, top-5, per-class P/R/F1, confusion matrix."""

from __future__ import annotations

import numpy as np

from edgecnn.runtime.postprocess import as_class_probs

TOP_K = 5  # top-5 accuracy, reported only with more than TOP_K classes


def top_k_accuracy(labels: np.ndarray, probs: np.ndarray, k: int) -> float:
    top = np.argsort(-probs, axis=1)[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=1)))


def classification_metrics(labels: np.ndarray, probs: np.ndarray, class_names: list[str]) -> dict:
    """Accuracy, top-5 (only with more than 5 classes: with 5 it is 100% by construction), per-class
    precision/recall/F1/support and the confusion matrix."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = np.asarray(labels)
    probs = as_class_probs(probs)
    predicted = probs.argmax(axis=1)
    indices = list(range(len(class_names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=indices, zero_division=0)
    metrics = {"accuracy": float(np.mean(predicted == labels)), "images": int(len(labels))}
    if len(class_names) > TOP_K:
        metrics["top5_accuracy"] = top_k_accuracy(labels, probs, TOP_K)
    metrics["per_class"] = {
        name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for name, p, r, f, s in zip(class_names, precision, recall, f1, support)
    }
    metrics["macro_f1"] = float(np.mean(f1))
    metrics["confusion_matrix"] = confusion_matrix(labels, predicted, labels=indices).tolist()
    return metrics
