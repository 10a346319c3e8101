"""Which architecture ``edgecnn quickstart --data DIR`` trains, and why.

Automatic: MobileNetV2 transfer (at :data:`TRANSFER_IMG_SIZE` px) when ImageNet weights are at hand: a
``--weights PATH``, the file in Keras' download cache, or a download that succeeds; otherwise simple_cnn,
trained from scratch. The built-in digits demo always trains simple_cnn.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from edgecnn.errors import UsageError, first_line

TRANSFER_ARCH = "mobilenet_v2"
TRANSFER_IMG_SIZE = 128  # flower photos: MobileNetV2 at 128 px is fast on a Pi and near its 224 px accuracy
FALLBACK_ARCH = "simple_cnn"
SCRATCH_EPOCHS = 8  # simple_cnn and other from-scratch architectures; transfer ones take `edgecnn train`'s defaults
# Keras' own file name and address of the MobileNetV2 alpha 1.0 no-top ImageNet weights
# (keras.applications.MobileNetV2(include_top=False, weights="imagenet") downloads this one).
KERAS_WEIGHTS_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"
KERAS_WEIGHTS_URL = f"https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/{KERAS_WEIGHTS_FILE}"
DOWNLOAD_TIMEOUT_S = 30  # per socket operation: a network that swallows packets fails instead of hanging


@dataclass(frozen=True)
class ArchChoice:
    arch: str
    weights: str | None  # what TrainConfig.weights gets (None: the architecture's default)
    img_size: int | None  # None: --img-size or the architecture's default
    reason: str  # one line for the log: which architecture and why


def keras_home() -> Path:
    """Where Keras keeps downloads: ``$KERAS_HOME``, else ``~/.keras`` (read now, not at Keras' import)."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser()


def imagenet_weights(home: Path | None = None) -> tuple[str | None, str]:
    """(MobileNetV2 ImageNet weights file or None, how it was found or why not): Keras' cache in ``home``
    (default :func:`keras_home`), else a download into it."""
    home = Path(home) if home is not None else keras_home()
    cached = home / "models" / KERAS_WEIGHTS_FILE
    if cached.is_file():
        return str(cached), f"ImageNet weights in Keras' cache, {cached}"
    try:
        path = download_weights(home)
    except Exception as exc:  # noqa: BLE001  (urllib, socket and Keras errors come in many types)
        why = first_line(exc).replace(KERAS_WEIGHTS_URL, "Keras' address")[:160]  # the cause, not the long URL
        return None, f"ImageNet weights unavailable (download failed: {why})"
    return path, f"ImageNet weights downloaded to {path}"


def download_weights(home: Path) -> str:
    """Download the MobileNetV2 no-top ImageNet weights into Keras' cache under ``home``; the file's path.
    Keras' "Downloading data from" line goes to stderr (stdout holds the quickstart's table)."""
    import keras

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            return keras.utils.get_file(KERAS_WEIGHTS_FILE, KERAS_WEIGHTS_URL, cache_subdir="models",
                                        cache_dir=str(home))
    finally:
        socket.setdefaulttimeout(previous)


def choose_arch(arch: str | None, weights: str | None, builtin: bool, home: Path | None = None) -> ArchChoice:
    """The architecture for a quickstart: ``arch`` as given, simple_cnn for the built-in digits, else
    MobileNetV2 transfer when ImageNet weights are available (``weights``: None, imagenet, none or a file)."""
    if arch is not None:
        size = TRANSFER_IMG_SIZE if arch == TRANSFER_ARCH else None
        return ArchChoice(arch, weights, size, f"{arch} (chosen with --arch)")
    if builtin:
        return ArchChoice(FALLBACK_ARCH, weights, None, f"{FALLBACK_ARCH} (the built-in digits demo)")
    if weights == "none":
        return ArchChoice(FALLBACK_ARCH, None, None,
                          f"{FALLBACK_ARCH}: --weights none (MobileNetV2 transfer needs ImageNet weights)")
    if weights not in (None, "imagenet"):
        path = Path(weights).expanduser()
        if not path.is_file():
            raise UsageError(f"weights file not found: {path}; pass --weights imagenet, none or an existing "
                             f".weights.h5 file")
        return _transfer(str(path), f"ImageNet weights from {path}")
    found, how = imagenet_weights(home)
    if found is not None:
        return _transfer("imagenet", how)  # Keras loads its cached file itself, as for `edgecnn train`
    if weights == "imagenet":
        raise UsageError(f"--weights imagenet: {how}; pass --weights PATH to a MobileNetV2 backbone "
                         f".weights.h5 file, or --weights none")
    return ArchChoice(FALLBACK_ARCH, None, None, f"{FALLBACK_ARCH}: {how}; pass --weights PATH for MobileNetV2 "
                                                 f"transfer")


def _transfer(weights: str, how: str) -> ArchChoice:
    return ArchChoice(TRANSFER_ARCH, weights, TRANSFER_IMG_SIZE, f"{TRANSFER_ARCH} transfer ({how})")
