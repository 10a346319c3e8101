"""The run directory: model.keras + card, labels.txt, config.json, history, metrics and data reports."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecnn._io import atomic_path, write_json
from edgecnn.card import ModelCard, Normalization
from edgecnn.data.folder import skipped_summary
from edgecnn.labels import write_labels
from edgecnn.rundir import CONFIG_FILE, LABELS_FILE, MODEL_FILE

log = logging.getLogger("edgecnn.train")


def skipped_files(*datasets) -> list[tuple[Path, str]]:
    """The unreadable files of ``datasets``, each once: (path, reason)."""
    seen, out = set(), []
    for data in datasets:
        for path, reason in data.skipped:
            if str(path) not in seen:
                seen.add(str(path))
                out.append((path, reason))
    return out


def merge_history(history: dict, keras_history, logger) -> int:
    """Append the epochs a fit() call completed to ``history``; return how many."""
    done = len(logger.seconds)
    logs = getattr(keras_history, "history", {}) if keras_history is not None else {}
    for key, values in logs.items():
        history.setdefault(key, []).extend(float(v) for v in values[-done:] if done)
    history.setdefault("seconds", []).extend(round(s, 2) for s in logger.seconds)
    return done


def _phase_best(history: dict, phase: str) -> float | None:
    values = [a for a, p in zip(history.get("val_accuracy", []), history.get("phase", [])) if p == phase]
    return max(values) if values else None


@dataclass
class RunResult:
    """A finished (or interrupted) training run: where it is, its card and validation figures."""

    run_dir: Path | None  # None on a worker other than the chief (multi-worker training)
    model_path: Path | None
    card: ModelCard | None
    metrics: dict
    val: object  # the validation images (FolderImages: val.read() gives the pixels, val.labels the classes)
    interrupted: bool = False


@dataclass
class TrainOutcome:
    """What one training run produced, for :func:`write_run` to save: the model, its data and its record."""

    model: object  # the trained keras.Model
    config: object  # the TrainConfig it ran with
    spec: object  # the resolved architecture (edgecnn.models.registry)
    train_data: object
    val_data: object
    history: dict  # per-epoch figures, "phase" and "seconds" included
    best: object  # the BestWeights callback: best_epoch
    timing: dict  # seconds per stage, merged into metrics.json
    interrupted: bool
    val_probs: np.ndarray  # the model's probabilities on val_data, in its order


def write_run(run_dir: Path, outcome: TrainOutcome, level: int = logging.INFO) -> RunResult:
    """Save the model and every report into ``run_dir``."""
    from edgecnn.train.plots import plot_history

    model_path = run_dir / MODEL_FILE
    card = _save_model(model_path, outcome)
    class_names = outcome.train_data.class_names
    write_labels(run_dir / LABELS_FILE, class_names)
    write_json(run_dir / CONFIG_FILE, outcome.config.to_dict())
    write_json(run_dir / "history.json", outcome.history)
    phases = outcome.history.get("phase", [])
    fine_tune_start = phases.index("fine-tune") + 1 if "fine-tune" in phases else None
    plot_history(outcome.history, run_dir / "history.png", fine_tune_start)
    metrics = _metrics(outcome)
    write_json(run_dir / "metrics.json", metrics)
    write_json(run_dir / "data_report.json", _data_report(outcome))
    log.log(level, f"val_accuracy {metrics['val_accuracy']:.4f} (best epoch {outcome.best.best_epoch}); "
            f"saved {model_path}")
    return RunResult(run_dir, model_path, card, metrics, outcome.val_data, outcome.interrupted)


def _save_model(model_path: Path, outcome: TrainOutcome) -> ModelCard:
    """``model.keras`` and its card beside it; returns the card."""
    config, spec = outcome.config, outcome.spec
    with atomic_path(model_path) as tmp:
        outcome.model.save(tmp)
    card = ModelCard(
        labels=outcome.train_data.class_names,
        input_height=config.img_size,
        input_width=config.img_size,
        normalization=Normalization.raw(spec.in_model_normalization),
        output_kind="sigmoid" if spec.binary else "softmax",
        format="keras",
        architecture=config.arch,
    )
    card.save(model_path)
    return card


def _metrics(outcome: TrainOutcome) -> dict:
    """metrics.json: validation figures, the best epoch, image counts and timings."""
    from edgecnn.train.metrics import classification_metrics

    history = outcome.history
    val_metrics = classification_metrics(outcome.val_data.labels, outcome.val_probs, outcome.train_data.class_names)
    metrics = {
        "val_accuracy": val_metrics["accuracy"],
        "best_epoch": outcome.best.best_epoch,
        "epochs_run": len(history.get("phase", [])),
        "interrupted": outcome.interrupted,
        "train_images": len(outcome.train_data),
        "val_images": len(outcome.val_data),
        **outcome.timing,
    }
    for phase in ("frozen", "fine-tune"):
        value = _phase_best(history, phase)
        if value is not None:
            metrics[f"{phase.replace('-', '_')}_best_val_accuracy"] = value
    metrics["val"] = val_metrics
    return metrics


def _data_report(outcome: TrainOutcome) -> dict:
    """data_report.json: where the images came from, per-class counts, skipped files, caches."""
    config, train_data, val_data = outcome.config, outcome.train_data, outcome.val_data
    class_names = train_data.class_names
    return {
        "train": str(config.data),
        "val": str(config.val) if config.val else f"{config.val_split:g} split of {config.data} (seed {config.seed})",
        "test": config.test,  # a split root's test/: used by `edgecnn evaluate RUN`, never in training
        "classes": class_names,
        "train_per_class": np.bincount(train_data.labels, minlength=len(class_names)).tolist(),
        "val_per_class": np.bincount(val_data.labels, minlength=len(class_names)).tolist(),
        **skipped_summary(skipped_files(train_data, val_data)),  # skipped_count, skipped_reasons, a few skipped
        "cache": sorted({str(getattr(d, "cache", "")) for d in (train_data, val_data)} - {""}),
        **({"roots": train_data.roots} if getattr(train_data, "roots", None) else {}),  # --data repeated
    }
