"""Evaluate a trained Keras model on an image folder: metrics.json and report figures."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgecnn._io import write_json
from edgecnn.card import find_card
from edgecnn.data.folder import load_folder
from edgecnn.data.split import spread
from edgecnn.errors import LabelsError, first_line
from edgecnn.labels import read_labels
from edgecnn.rundir import LABELS_FILE, load_keras, model_file


def load_trained(model: str | os.PathLike):
    """(keras model, labels, (height, width), model file) from a run directory or a .keras file with its card/labels."""
    path, _ = model_file(model)
    net = load_keras(path)
    card = find_card(path)
    if card is not None:
        return net, card.labels, card.input_size, path
    labels_file = path.parent / LABELS_FILE
    if not labels_file.is_file():
        raise LabelsError(f"no card or {LABELS_FILE} next to {path}; evaluate a run directory written by edgecnn train")
    return net, read_labels(labels_file), tuple(net.input_shape[1:3]), path


def evaluate(model: str | os.PathLike, data: str | os.PathLike, out: str | os.PathLike | None = None, *,
             batch_size: int = 32, samples: int = 12) -> dict:
    """Accuracy, top-5, per-class P/R/F1 and figures (confusion matrix, predictions, Grad-CAM, feature maps)."""
    from edgecnn.runtime.postprocess import as_class_probs
    from edgecnn.train import plots
    from edgecnn.train.explain import feature_maps, grad_cam
    from edgecnn.train.metrics import classification_metrics

    net, labels, size, path = load_trained(model)
    out = Path(out) if out else path.parent / "eval"
    out.mkdir(parents=True, exist_ok=True)
    images = load_folder(data, size, class_names=labels)
    probs = as_class_probs(net.predict(images.images.astype(np.float32), batch_size=batch_size, verbose=0))
    metrics = classification_metrics(images.labels, probs, labels)
    metrics["data"] = str(data)
    metrics["skipped"] = [{"path": str(p), "reason": r} for p, r in images.skipped]
    write_json(out / "metrics.json", metrics)

    figures = {"confusion_matrix": plots.plot_confusion(np.asarray(metrics["confusion_matrix"]), labels,
                                                        out / "confusion_matrix.png")}
    pick = spread(len(images), samples)
    shown = images.images[pick]
    figures["predictions"] = plots.plot_predictions(shown, images.labels[pick], probs[pick], labels,
                                                    out / "predictions.png")
    skipped_figures = {}
    try:
        heatmaps, layer = grad_cam(net, shown)
        titles = [f"{labels[int(np.argmax(p))]} {np.max(p):.0%}" for p in probs[pick]]
        figures["gradcam"] = plots.plot_gradcam(shown, heatmaps, titles, out / "gradcam.png", layer)
    except Exception as exc:  # noqa: BLE001  a foreign graph (e.g. a nested backbone) Grad-CAM cannot walk
        skipped_figures["gradcam"] = f"{type(exc).__name__}: {first_line(exc)}"
    try:
        maps = feature_maps(net, shown[0])
        if maps:
            figures["feature_maps"] = plots.plot_feature_maps(maps, out / "feature_maps.png")
    except Exception as exc:  # noqa: BLE001
        skipped_figures["feature_maps"] = f"{type(exc).__name__}: {first_line(exc)}"
    return {"metrics": metrics, "out": out, "figures": figures, "skipped_figures": skipped_figures}
