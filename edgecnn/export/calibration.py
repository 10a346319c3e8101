"""Real images for int8 calibration and for validating exports.

Calibration: ``--calib-data`` or the run's training folder (``config.json``
``data``), as they are (no augmentation), the same number from each class when
the folder has one sub-folder per class; synthetic images only when no folder
exists (the card says so).
Validation: every labelled image of the run's ``val`` folder, else of the
held-out part of its training folder (same ``val_split``/``seed`` as training),
else of ``--calib-data``, up to a cap (1,000 by default) beyond which a sample
stratified by class is taken.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from edgecnn.data import decode_files, open_folder, scan_folder
from edgecnn.data.imageset import ImageSet, fit_channels, synthetic_images
from edgecnn.data.split import stratified_sample, stratified_split
from edgecnn.errors import DataError
from edgecnn.export.stats import MIN_VERDICT_IMAGES

MIN_CALIBRATION_IMAGES = 100


def calibration_images(run_config: dict, run_dir: Path | None, calib_data, shape, count: int,
                       seed: int = 0, labels: list[str] | None = None) -> ImageSet:
    """``count`` images for int8 calibration, real whenever any exist, class-balanced when classes are known."""
    folder = Path(calib_data) if calib_data else _config_folder(run_config, "data", run_dir)
    if calib_data and not folder.is_dir():
        raise DataError(f"--calib-data folder not found: {folder}; "
                        f"pass a folder of images (class sub-folders are fine)")
    if folder is None:
        return synthetic_images(shape, count, seed)
    return ImageSet(fit_channels(_balanced(folder, labels, shape[:2], count, seed), shape[2]), None, str(folder))


def validation_images(run_config: dict, run_dir: Path | None, calib_data, labels: list[str], shape,
                      count: int, seed: int = 0) -> ImageSet:
    """All labelled validation images up to ``count`` (a class-stratified sample beyond it).

    Unlabelled when the folder's classes do not match the model's labels.
    """
    val = _config_folder(run_config, "val", run_dir)
    data = _config_folder(run_config, "data", run_dir)
    if val is not None:
        found = _labeled(val, labels, shape, count, seed)
    elif data is not None:
        found = _held_out(data, labels, shape, count, run_config, seed)
    elif calib_data and Path(calib_data).is_dir():
        found = _labeled(Path(calib_data), labels, shape, count, seed)
    else:
        return synthetic_images(shape, min(count, MIN_VERDICT_IMAGES), seed + 1)
    return ImageSet(fit_channels(found.images, shape[2]), found.labels, found.source)


def training_images(run_config: dict, run_dir: Path | None, labels: list[str], shape, count: int,
                    seed: int = 0) -> ImageSet | None:
    """Up to ``count`` of the run's training images (a class-stratified sample; the held-out split left out
    when the run had no ``val`` folder), or None when the run names no training folder."""
    folder = _config_folder(run_config, "data", run_dir)
    if folder is None:
        return None
    try:
        data = open_folder(folder, shape[:2], class_names=labels)
    except DataError:
        return None
    split = float(run_config.get("val_split") or 0)
    if _config_folder(run_config, "val", run_dir) is None and 0 < split < 1:
        data, _ = stratified_split(data, split, int(run_config.get("seed") or 0))
    parts = [data] + _more_training(run_config, run_dir, labels, shape)
    part_of = np.concatenate([np.full(len(part), k) for k, part in enumerate(parts)])
    index_in = np.concatenate([np.arange(len(part)) for part in parts])
    all_labels = np.concatenate([part.labels for part in parts])
    keep = stratified_sample(all_labels, count, seed)
    images = [parts[k].read(index_in[keep][part_of[keep] == k]) for k in range(len(parts))]
    sources = [str(folder)] + [str(part.root) for part in parts[1:]]
    return ImageSet(fit_channels(np.concatenate(images), shape[2]),
                    np.concatenate([all_labels[keep][part_of[keep] == k] for k in range(len(parts))]),
                    " + ".join(sources))


def _more_training(run_config: dict, run_dir: Path | None, labels: list[str], shape) -> list:
    """The training folders a run added with more ``--data`` roots (``config.json`` ``more_data``)."""
    found = []
    for value in run_config.get("more_data") or []:
        folder = _config_folder({"data": value}, "data", run_dir)
        if folder is None:
            continue
        with contextlib.suppress(DataError):
            found.append(open_folder(folder, shape[:2], class_names=labels))
    return found


def _config_folder(run_config: dict, key: str, run_dir: Path | None) -> Path | None:
    value = run_config.get(key)
    if not value or not isinstance(value, str):
        return None
    for candidate in (Path(value), (run_dir / value) if run_dir else None):
        if candidate is not None and candidate.is_dir():
            return candidate
    return None


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def _decode(files, size, count: int) -> tuple[np.ndarray, list[int]]:
    """Decode files in order until ``count`` decoded; (images, positions of the decoded files). In parallel."""
    images, kept, _ = decode_files(list(files), tuple(size), limit=count)
    return images, kept


def _sample_folder(folder: Path, size, count: int, seed: int) -> np.ndarray:
    """Decode ``count`` images picked at random (seeded) from anywhere under ``folder``."""
    files = _files(folder)
    order = np.random.default_rng(seed).permutation(len(files))
    images, _ = _decode([files[i] for i in order], size, count)
    if not len(images):
        raise DataError(f"no readable images under {folder}; pass --calib-data with a folder of images")
    return images


def _balanced(folder: Path, labels: list[str] | None, size, count: int, seed: int) -> np.ndarray:
    """``count`` images, the same number from each class sub-folder (random order within a class, seeded).

    Calibration ranges then reflect every class, not just the largest; a folder
    whose sub-folders are not the model's classes is sampled at random instead.
    """
    try:
        scan = scan_folder(folder, labels) if labels else None
    except DataError:
        scan = None
    if scan is None or len({label for _, label in scan.files}) < 2:
        return _sample_folder(folder, size, count, seed)
    rng = np.random.default_rng(seed)
    classes = sorted({label for _, label in scan.files})
    quota = [count // len(classes) + (i < count % len(classes)) for i in range(len(classes))]
    parts = []
    for label, want in zip(classes, quota):
        members = [p for p, lab in scan.files if lab == label]
        images, _ = _decode([members[i] for i in rng.permutation(len(members))], size, want)
        parts.append(images)
    images = np.concatenate(parts)
    if not len(images):
        raise DataError(f"no readable images under {folder}; pass --calib-data with a folder of images")
    return images


def _labeled(folder: Path, labels: list[str], shape, count: int, seed: int) -> ImageSet:
    """Every labelled image under ``folder`` up to ``count``, beyond that a class-stratified sample."""
    try:
        scan = scan_folder(folder, labels)
    except DataError:
        return ImageSet(_sample_folder(folder, shape[:2], count, seed), None, str(folder))
    classes = np.array([label for _, label in scan.files])
    chosen = [scan.files[i] for i in stratified_sample(classes, count, seed)]
    images, kept = _decode([path for path, _ in chosen], shape[:2], len(chosen))
    if not len(images):
        raise DataError(f"no readable images under {folder}; pass a folder of images with one sub-folder per class")
    return ImageSet(images, np.array([chosen[i][1] for i in kept], dtype=np.int64), str(folder))


def _held_out(folder: Path, labels: list[str], shape, count: int, run_config: dict, seed: int) -> ImageSet:
    """The validation part of a training folder, split as training split it."""
    try:
        data = open_folder(folder, shape[:2], class_names=labels)  # pixels stay on disk until picked
    except DataError:
        return ImageSet(_sample_folder(folder, shape[:2], count, 0), None, str(folder))
    split = float(run_config.get("val_split") or 0)
    source = str(folder)
    if 0 < split < 1:
        _, data = stratified_split(data, split, int(run_config.get("seed") or 0))
        source = f"{folder} (held-out {split:g} split)"
    keep = stratified_sample(data.labels, count, seed)
    return ImageSet(data.read(keep), data.labels[keep], source)
