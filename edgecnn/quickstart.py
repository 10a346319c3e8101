"""Quickstart: one pass through the whole product on built-in or user data.

data -> train (simple_cnn on the built-in digits; on your photos MobileNetV2
transfer when ImageNet weights are at hand, see :mod:`edgecnn.quickstart_arch`)
-> export TFLite fp32 / int8 and ONNX -> classify the validation images with
each through the runtime -> comparison table. An earlier quickstart's folder is
replaced only when asked (``exist_ok``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from edgecnn._io import portable_path, write_json
from edgecnn.data.roots import find_splits
from edgecnn.errors import DataError, UsageError
from edgecnn.quickstart_arch import SCRATCH_EPOCHS, ArchChoice, choose_arch
from edgecnn.rundir import claim_folder, release_folder
from edgecnn.table import human_size, text_table

QUICKSTART_FORMATS = ("tflite-fp32", "tflite-int8", "onnx")

log = logging.getLogger("edgecnn.quickstart")


@dataclass
class FormatResult:
    format: str
    path: Path
    size_bytes: int
    accuracy: float
    median_ms: float


def resolve_data(data: str | Path | None, out: Path) -> tuple[Path, Path | None, bool]:
    """(train folder, val folder or None, built-in?) for ``--data`` (None: write the digits)."""
    if data is None:
        from edgecnn.data.digits import write_digits_dataset

        root = write_digits_dataset(out / "data")
        return root / "train", root / "val", True
    data = Path(data)
    if not data.is_dir():
        raise DataError(f"--data folder not found: {data}; pass a folder with one sub-folder of images per class")
    splits = find_splits(data)
    if splits is not None and splits.train is not None:
        return splits.train, splits.val, False
    return data, None, False


def measure(paths: list[Path], formats: list[str], images, labels) -> list[FormatResult]:
    """Classify ``images`` with each model through the runtime, as ``edgecnn benchmark`` does.

    Accuracy over all images; latency is the median of ``Classifier.predict`` per image.
    """
    from edgecnn.bench import measure_files
    from edgecnn.errors import EdgeCNNError

    results = []
    for path, fmt, row in zip(paths, formats, measure_files(paths, images, labels)):
        if row.top1 is None or not row.classifier_latency_ms:
            raise EdgeCNNError(f"{fmt}: measuring {path} failed ({row.reason or row.status})")
        results.append(FormatResult(fmt, path, row.size_bytes, row.top1, row.classifier_latency_ms["p50"]))
    return results


def results_table(results: list[FormatResult]) -> str:
    """The comparison table: format, size, validation accuracy, median latency."""
    return text_table(
        ["format", "size", "val accuracy", "median latency"],
        [[r.format, human_size(r.size_bytes), f"{r.accuracy:.1%}", f"{r.median_ms:.2f} ms"] for r in results],
    )


def claim_out(out: Path, exist_ok: bool = False) -> None:
    """Create and claim (:func:`~edgecnn.rundir.claim_folder`) the quickstart folder ``out``; UsageError when it is a
    file, or holds files (an earlier quickstart's) and ``exist_ok`` is false, or another run is writing into it."""
    _check_out(out, exist_ok)
    out.mkdir(parents=True, exist_ok=True)
    claim_folder(out, "--out", "quickstart")
    try:
        _check_out(out, exist_ok)  # again, claimed: a quickstart that finished meanwhile left its files
    except UsageError:
        release_folder(out)
        raise


def _check_out(out: Path, exist_ok: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; pass a folder for the quickstart's results")
    if not exist_ok and out.is_dir() and any(out.iterdir()):
        raise UsageError(f"--out {out} already exists and is not empty (an earlier quickstart?); pass --exist-ok "
                         f"to replace its results, or choose another --out")


def train_defaults() -> dict:
    """`edgecnn train`'s defaults for the options a quickstart passes on (epochs, fine-tuning), for a transfer
    architecture."""
    from edgecnn.train.config import TRANSFER_FINE_TUNE_EPOCHS, default

    return {"epochs": default("epochs"), "fine_tune_epochs": TRANSFER_FINE_TUNE_EPOCHS,
            "fine_tune_layers": default("fine_tune_layers")}


def run_quickstart(out: str | Path = "edgecnn-quickstart", data: str | Path | None = None, *, epochs: int | None = None,
                   arch: str | None = None, weights: str | None = None, img_size: int | None = None,
                   fine_tune_epochs: int | None = None, formats=QUICKSTART_FORMATS, exist_ok: bool = False,
                   verbose: int = 1, keras_home: Path | None = None) -> list[FormatResult]:
    """Train, export, run and compare into ``out`` (a non-empty one needs ``exist_ok``); steps go to the
    ``edgecnn.quickstart`` logger, results are returned. ``arch`` None: chosen by
    :func:`~edgecnn.quickstart_arch.choose_arch` (``keras_home``: where to look for and download ImageNet weights);
    ``epochs``/``fine_tune_epochs`` None: :data:`SCRATCH_EPOCHS`, or `edgecnn train`'s defaults for transfer."""
    out = Path(out)
    given = resolve_data(data, out) if data is not None else None  # bad --data fails first, before TensorFlow
    claim_out(out, exist_ok)
    try:
        data = given or resolve_data(None, out)
        config = _config(out, data, choose_arch(arch, weights, data[2], keras_home), epochs, fine_tune_epochs,
                         img_size, verbose)
        return _run(out, data, config, formats)
    finally:
        release_folder(out)


def _config(out: Path, data: tuple[Path, Path | None, bool], choice: ArchChoice, epochs: int | None,
            fine_tune_epochs: int | None, img_size: int | None, verbose: int):
    from edgecnn.models.registry import get_spec
    from edgecnn.train.config import TrainConfig

    train_dir, val_dir, builtin = data
    log.info(f"architecture: {choice.reason}")
    config = TrainConfig(
        arch=choice.arch, data=str(train_dir), val=str(val_dir) if val_dir else None, out=str(out / "run"),
        img_size=img_size or choice.img_size, epochs=epochs or SCRATCH_EPOCHS, weights=choice.weights,
        verbose=verbose, exist_ok=True,  # a quickstart folder is reused
    )
    if get_spec(choice.arch).transfer:
        defaults = train_defaults()
        config.epochs = epochs or defaults["epochs"]
        config.fine_tune_layers = defaults["fine_tune_layers"]
        config.fine_tune_epochs = defaults["fine_tune_epochs"] if fine_tune_epochs is None else fine_tune_epochs
    if builtin:
        config.augment = []  # flipped or rotated digits change meaning; photos keep the default augmentation
    return config


def _run(out: Path, data: tuple[Path, Path | None, bool], config, formats) -> list[FormatResult]:
    t0 = time.perf_counter()
    train_dir, val_dir, _ = data

    from edgecnn.export import export
    from edgecnn.train.fit import train

    held_out = f" (validation: {val_dir})" if val_dir else " (20% held out for validation)"
    log.info(f"[1/4] data: {train_dir}{held_out}")
    fine_tune = f" + {config.fine_tune_epochs} fine-tuning" if config.fine_tune_epochs else ""
    log.info(f"[2/4] training {config.arch} for up to {config.epochs}{fine_tune} epochs")
    run = train(config)
    log.info(f"      validation accuracy (Keras): {run.metrics['val_accuracy']:.1%}")
    log.info(f"[3/4] exporting {', '.join(formats)}")
    report = export(run.run_dir, list(formats), out / "export", force=True)
    log.info(f"[4/4] classifying {len(run.val)} validation images with each format through the runtime")
    results = measure([Path(a.path) for a in report.artifacts], [a.format for a in report.artifacts],
                      run.val.read(), run.val.labels)
    write_json(out / "quickstart.json", {
        "arch": config.arch,
        "img_size": config.img_size,
        "keras_val_accuracy": run.metrics["val_accuracy"],
        "results": [{"format": r.format, "path": portable_path(r.path, out), "size_bytes": r.size_bytes,
                     "accuracy": r.accuracy, "median_latency_ms": r.median_ms} for r in results],
        "seconds": time.perf_counter() - t0,
    })
    log.info(f"done in {time.perf_counter() - t0:.0f} s; models and reports in {out}/")
    return results
