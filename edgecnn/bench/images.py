"""The images a benchmark feeds: --data (labeled, for accuracy) or synthetic, saved as .npy for the workers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from edgecnn.errors import DataError

SYNTHETIC_IMAGES = 32


@dataclass
class ImageSet:
    images: np.ndarray  # uint8 RGB NHWC at the model's input size
    labels: Optional[np.ndarray]  # class indices in the model's label order; None for synthetic images
    source: str

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, np.ascontiguousarray(self.images))
        return path


def load(data: Optional[str], size: tuple[int, int], labels: Optional[list[str]], seed: int = 0) -> ImageSet:
    """Images of ``size`` (h, w): every image under ``data`` when given, else synthetic noise."""
    if data is None:
        rng = np.random.default_rng(seed)
        return ImageSet(rng.integers(0, 256, (SYNTHETIC_IMAGES, *size, 3), dtype=np.uint8), None,
                        f"{SYNTHETIC_IMAGES} synthetic images")
    loaded = _load_folder(Path(data), size, labels)
    return ImageSet(loaded.images, loaded.labels, f"{len(loaded.labels)} images from {data}")


def _load_folder(root: Path, size: tuple[int, int], labels: Optional[list[str]]):
    """edgecnn.data.load_folder, as `edgecnn evaluate` reads images (OpenCV decodes where Pillow is absent)."""
    from edgecnn.data.folder import load_folder

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
