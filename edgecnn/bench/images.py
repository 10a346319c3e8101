"""The images a benchmark feeds: --data (labeled, for accuracy) or synthetic, saved as .npy for the workers."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from edgecnn.data.imageset import ImageSet, synthetic_images
from edgecnn.errors import DataError

SYNTHETIC_IMAGES = 32


def load(data: Optional[str], size: tuple[int, int], labels: Optional[list[str]], seed: int = 0) -> ImageSet:
    """Images of ``size`` (h, w): every image under ``data`` when given, else synthetic ones."""
    if data is None:
        return synthetic_images((*size, 3), SYNTHETIC_IMAGES, seed)
    loaded = _load_folder(Path(data), size, labels)
    return ImageSet(loaded.images, loaded.labels, str(data))


def _load_folder(root: Path, size: tuple[int, int], labels: Optional[list[str]]):
    """edgecnn.data.load_folder, as `edgecnn evaluate` reads images (OpenCV decodes where Pillow is absent)."""
    from edgecnn.data import load_folder

    return load_folder(root, size, class_names=_class_order(root, labels))


def _class_order(root: Path, labels: Optional[list[str]]) -> Optional[list[str]]:
    """The model's labels when the folder's classes are among them (so indices match the model's outputs)."""
    if not root.is_dir():
        raise DataError(f"--data folder not found: {root}; pass a folder with one sub-folder of images per class")
    if labels is None:
        return None
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    unknown = [f for f in folders if f not in labels]
    if unknown:
        raise DataError(f"--data {root} has class folders the model does not know: {', '.join(unknown[:5])}; "
                        f"the model's labels are {', '.join(labels[:10])}{' ...' if len(labels) > 10 else ''}")
    return list(labels)
