"""ImageSet: images in memory at one size, with class indices when known.

The one in-memory image container: a small folder loaded whole (:func:`edgecnn.data.load_folder`), export's
calibration and held-out samples, the benchmark's images, synthetic images when no real ones exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

SYNTHETIC = "synthetic"


@dataclass
class ImageSet:
    images: np.ndarray  # uint8 NHWC RGB (1 channel for grayscale models)
    labels: Optional[np.ndarray]  # int64 class indices in the model's label order; None when unknown
    source: str  # the folder (perhaps with a note), or "synthetic"
    class_names: list[str] = field(default_factory=list)  # the classes ``labels`` index, when loaded from a folder
    paths: list[Path] = field(default_factory=list)  # each image's file, when loaded from a folder
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (path, reason): files that did not decode

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, positions) -> "ImageSet":
        positions = np.asarray(positions, dtype=np.int64)
        return ImageSet(self.images[positions], None if self.labels is None else self.labels[positions], self.source,
                        self.class_names, [self.paths[i] for i in positions] if self.paths else [], self.skipped)

    def read(self, positions=None) -> np.ndarray:
        return self.images if positions is None else self.images[np.asarray(positions, dtype=np.int64)]

    @property
    def synthetic(self) -> bool:
        return self.source == SYNTHETIC

    def describe(self) -> dict:
        return {"source": self.source, "count": int(len(self.images)), "labeled": self.labels is not None}

    def summary(self) -> str:
        """``"32 synthetic images"`` or ``"866 images from DIR"``."""
        return f"{len(self)} synthetic images" if self.synthetic else f"{len(self)} images from {self.source}"

    def save(self, path: Path) -> Path:
        """The images as a .npy file (what benchmark workers read)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, np.ascontiguousarray(self.images))
        return path


def synthetic_images(shape, count: int, seed: int = 0) -> ImageSet:
    """Smooth random colour fields with noise, (h, w, c) each: a last resort when no real images exist."""
    import cv2

    h, w, c = shape
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(count, 4, 4, 3), dtype=np.uint8)
    images = np.stack([cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR) for img in coarse])
    noise = rng.normal(0, 12, size=images.shape)
    images = np.clip(images + noise, 0, 255).astype(np.uint8)
    return ImageSet(fit_channels(images, c), None, SYNTHETIC)


def fit_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """RGB images -> gray (N, H, W, 1) for a 1-channel model; otherwise unchanged."""
    if channels == 1 and images.shape[-1] == 3:
        gray = images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        return np.clip(gray + 0.5, 0, 255).astype(np.uint8)[..., None]
    return images
