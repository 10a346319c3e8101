"""Evaluate a trained Keras model on an image folder: metrics.json and report figures."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgecnn._io import write_json
from edgecnn.card import find_card
from edgecnn.data.folder import load_folder
from edgecnn.errors import LabelsError, ModelError
from edgecnn.labels import read_labels


def _model_path(model: str | os.PathLike) -> Path:
    path = Path(model)
    if path.is_dir():
        path = path / "model.keras"
    if not path.is_file():
        raise ModelError(f"model not found: {path}; pass a run directory or its model.keras")
    return path


def load_trained(model: str | os.PathLike):
    """(keras model, labels, (height, width)) from a run directory or a .keras file with its card/labels.txt."""
    import keras

    from edgecnn.models import list_models

    path = _model_path(model)
    list_models()  # register the architecture modules
    try:
        net = keras.saving.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001  (Keras raises many types for bad files)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise ModelError(f"cannot load {path} as a Keras model ({first}); "
                         f"pass a model.keras saved by edgecnn train") from None
    card = find_card(path)
    if card is not None:
        return net, card.labels, card.input_size
    labels_file = path.parent / "labels.txt"
    if not labels_file.is_file():
        raise LabelsError(f"no card or labels.txt next to {path}; evaluate a run directory written by edgecnn train")
    return net, read_labels(labels_file), tuple(net.input_shape[1:3])


def _spread(n: int, count: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, min(n, count)).astype(int))


def evaluate(model: str | os.PathLike, data: str | os.PathLike, out: str | os.PathLike | None = None, *,
             batch_size: int = 32, samples: int = 12) -> dict:
    """Accuracy, top-5, per-class P/R/F1 and figures (confusion matrix, predictions, Grad-CAM, feature maps)."""
    from edgecnn.train import plots
    from edgecnn.train.explain import feature_maps, grad_cam
    from edgecnn.train.metrics import as_class_probs, classification_metrics

    net, labels, size = load_trained(model)
    out = Path(out) if out else _model_path(model).parent / "eval"
    out.mkdir(parents=True, exist_ok=True)
    images = load_folder(data, size, class_names=labels)
    probs = as_class_probs(net.predict(images.images.astype(np.float32), batch_size=batch_size, verbose=0))
    metrics = classification_metrics(images.labels, probs, labels)
    metrics["data"] = str(data)
    metrics["skipped"] = [{"path": str(p), "reason": r} for p, r in images.skipped]
    write_json(out / "metrics.json", metrics)

    figures = {"confusion_matrix": plots.plot_confusion(np.asarray(metrics["confusion_matrix"]), labels,
                                                        out / "confusion_matrix.png")}
    pick = _spread(len(images), samples)
    shown = images.images[pick]
    figures["predictions"] = plots.plot_predictions(shown, images.labels[pick], probs[pick], labels,
                                                    out / "predictions.png")
    skipped_figures = {}
    try:
        heatmaps, layer = grad_cam(net, shown)
        titles = [f"{labels[int(np.argmax(p))]} {np.max(p):.0%}" for p in probs[pick]]
        figures["gradcam"] = plots.plot_gradcam(shown, heatmaps, titles, out / "gradcam.png", layer)
    except Exception as exc:  # noqa: BLE001  a foreign graph (e.g. a nested backbone) Grad-CAM cannot walk
        skipped_figures["gradcam"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
    try:
        maps = feature_maps(net, shown[0])
        if maps:
            figures["feature_maps"] = plots.plot_feature_maps(maps, out / "feature_maps.png")
    except Exception as exc:  # noqa: BLE001
        skipped_figures["feature_maps"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return {"metrics": metrics, "out": out, "figures": figures, "skipped_figures": skipped_figures}
