"""Evaluate a trained Keras model on an image folder: metrics.json and report figures."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from edgecnn._io import write_json
from edgecnn.card import find_card
from edgecnn.data.cache import open_folder
from edgecnn.data.folder import skipped_summary
from edgecnn.data.roots import find_splits
from edgecnn.data.split import spread
from edgecnn.errors import DataError, LabelsError, UsageError, first_line
from edgecnn.labels import read_labels
from edgecnn.rundir import LABELS_FILE, load_keras, model_file, run_config

log = logging.getLogger("edgecnn.train")


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


def evaluation_data(data: str | os.PathLike | None, run_dir: Path | None) -> tuple[Path, str]:
    """(folder, which split) to evaluate on: ``data`` (a split root: its test/, else val/), else the run's
    test split, else its validation folder."""
    if data is not None:
        splits = find_splits(data)
        if splits is None:
            return Path(data), "data"
        chosen = splits.test or splits.val
        if chosen is None:
            raise DataError(f"{data} is a split root without test/ or val/; pass the folder to evaluate on")
        log.info(f"data: {data} is a split root: evaluating on its {chosen.name}/")
        return chosen, "test" if chosen == splits.test else "val"
    config = run_config(run_dir) if run_dir is not None else {}
    for split in ("test", "val"):
        if config.get(split):
            log.info(f"data: the run's {split} split, {config[split]}"
                     + ("" if split == "test" else " (it has no test split; validation images were seen in training "
                                                   "for early stopping)"))
            return Path(config[split]), split
    raise UsageError("pass --data DIR: the run has no test split or validation folder to evaluate on"
                     if run_dir else "pass --data DIR (a bare model file has no run to take its test split from)")


def evaluate(model: str | os.PathLike, data: str | os.PathLike | None = None, out: str | os.PathLike | None = None,
             *, batch_size: int = 32, samples: int = 12) -> dict:
    """Accuracy, top-5, per-class P/R/F1 and figures (confusion matrix, predictions, Grad-CAM, feature maps).

    ``data`` None: the run's test split (a split root's test/), else its validation folder.
    """
    from edgecnn.runtime.postprocess import as_class_probs
    from edgecnn.train import plots
    from edgecnn.train.explain import feature_maps, grad_cam
    from edgecnn.train.features import predict
    from edgecnn.train.metrics import classification_metrics

    _, run_dir = model_file(model)
    data, split = evaluation_data(data, run_dir)  # a bad or missing --data fails before the model loads
    net, labels, size, path = load_trained(model)
    out = Path(out) if out else path.parent / "eval"
    out.mkdir(parents=True, exist_ok=True)
    images = open_folder(data, size, class_names=labels)  # pixels stay in the on-disk cache, read per batch
    probs = as_class_probs(predict(net, images, batch_size=batch_size))
    metrics = classification_metrics(images.labels, probs, labels)
    metrics["data"] = str(data)
    metrics["split"] = split
    metrics.update(skipped_summary(images.skipped))  # skipped_count, skipped_reasons, a few skipped files
    write_json(out / "metrics.json", metrics)

    figures = {"confusion_matrix": plots.plot_confusion(np.asarray(metrics["confusion_matrix"]), labels,
                                                        out / "confusion_matrix.png")}
    pick = spread(len(images), samples)
    shown = images.read(pick)
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
