"""Real images for int8 calibration and for validating exports.

Calibration: ``--calib-data`` or the run's training folder (``config.json``
``data``); synthetic images only when neither exists (the card says so).
Validation: the run's ``val`` folder, else the held-out part of its training
folder (same ``val_split``/``seed`` as training), else ``--calib-data``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from edgecnn.data import load_folder
from edgecnn.data.decode import decode_rgb, resize
from edgecnn.data.imageset import ImageSet, fit_channels, synthetic_images
from edgecnn.data.split import spread, stratified_split
from edgecnn.errors import DataError

MIN_CALIBRATION_IMAGES = 100


def calibration_images(run_config: dict, run_dir: Path | None, calib_data, shape, count: int,
                       seed: int = 0) -> ImageSet:
    """``count`` images for int8 calibration, real whenever any exist."""
    folder = Path(calib_data) if calib_data else _config_folder(run_config, "data", run_dir)
    if calib_data and not folder.is_dir():
        raise DataError(f"--calib-data folder not found: {folder}; "
                        f"pass a folder of images (class sub-folders are fine)")
    if folder is None:
        return synthetic_images(shape, count, seed)
    return ImageSet(fit_channels(_sample_folder(folder, shape[:2], count, seed), shape[2]), None, str(folder))


def validation_images(run_config: dict, run_dir: Path | None, calib_data, labels: list[str], shape,
                      count: int, seed: int = 0) -> ImageSet:
    """Up to ``count`` labeled validation images (unlabeled when the folder's classes do not match)."""
    val = _config_folder(run_config, "val", run_dir)
    data = _config_folder(run_config, "data", run_dir)
    if val is not None:
        found = _labeled(val, labels, shape, count, seed)
    elif data is not None:
        found = _held_out(data, labels, shape, count, run_config)
    elif calib_data and Path(calib_data).is_dir():
        found = _labeled(Path(calib_data), labels, shape, count, seed)
    else:
        return synthetic_images(shape, count, seed + 1)
    return ImageSet(fit_channels(found.images, shape[2]), found.labels, found.source)


def _config_folder(run_config: dict, key: str, run_dir: Path | None) -> Path | None:
    value = run_config.get(key)
    if not value:
        return None
    for candidate in (Path(value), (run_dir / value) if run_dir else None):
        if candidate is not None and candidate.is_dir():
            return candidate
    return None


def _sample_folder(folder: Path, size, count: int, seed: int) -> np.ndarray:
    """Decode ``count`` images picked at random (seeded) from anywhere under ``folder``."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    order = np.random.default_rng(seed).permutation(len(files))
    images = []
    for i in order:
        try:
            images.append(resize(decode_rgb(files[i]), tuple(size)))
        except DataError:
            continue
        if len(images) == count:
            break
    if not images:
        raise DataError(f"no readable images under {folder}; pass --calib-data with a folder of images")
    return np.stack(images)


def _labeled(folder: Path, labels: list[str], shape, count: int, seed: int) -> ImageSet:
    per_class = 2 * max(1, math.ceil(count / max(len(labels), 1)))  # room for unbalanced classes
    try:
        data = load_folder(folder, shape[:2], class_names=labels, limit_per_class=per_class)
    except DataError:
        return ImageSet(_sample_folder(folder, shape[:2], count, seed), None, str(folder))
    keep = spread(len(data), count)
    return ImageSet(data.images[keep], data.labels[keep], str(folder))


def _held_out(folder: Path, labels: list[str], shape, count: int, run_config: dict) -> ImageSet:
    """The validation part of a training folder, split as training split it."""
    try:
        data = load_folder(folder, shape[:2], class_names=labels)
    except DataError:
        return ImageSet(_sample_folder(folder, shape[:2], count, 0), None, str(folder))
    split = float(run_config.get("val_split") or 0)
    source = str(folder)
    if 0 < split < 1:
        _, data = stratified_split(data, split, int(run_config.get("seed") or 0))
        source = f"{folder} (held-out {split:g} split)"
    keep = spread(len(data), count)
    return ImageSet(data.images[keep], data.labels[keep], source)
