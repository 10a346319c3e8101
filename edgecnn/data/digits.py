"""The built-in dataset: scikit-learn's bundled handwritten digits as a class-per-folder image dataset.

1,797 real 8x8 scans (no download), upscaled to 32x32 RGB PNGs and split
stratified into ``train/`` and ``val/``, so the quickstart goes through
exactly the code path of a user's own folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

DIGIT_SIZE = 32


def write_digits_dataset(out: str | os.PathLike, val_fraction: float = 0.2, seed: int = 0,
                         size: int = DIGIT_SIZE) -> Path:
    """Write ``out/train/<digit>/*.png`` and ``out/val/<digit>/*.png``; return ``out``.

    Idempotent: an existing complete dataset (marker file) is reused.
    """
    import cv2
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    out = Path(out)
    marker = out / ".complete"
    if marker.exists():
        return out
    digits = load_digits()
    images = (digits.images / 16.0 * 255.0).round().astype(np.uint8)  # 0..16 ink -> 0..255
    idx_train, idx_val = train_test_split(
        np.arange(len(images)), test_size=val_fraction, stratify=digits.target, random_state=seed
    )
    for split, indices in (("train", idx_train), ("val", idx_val)):
        for i in indices:
            folder = out / split / str(digits.target[i])
            folder.mkdir(parents=True, exist_ok=True)
            big = cv2.resize(images[i], (size, size), interpolation=cv2.INTER_LINEAR)
            rgb = cv2.cvtColor(big, cv2.COLOR_GRAY2BGR)
            cv2.imwrite(str(folder / f"digit_{i:04d}.png"), rgb)
    marker.write_text("scikit-learn load_digits\n")
    return out
