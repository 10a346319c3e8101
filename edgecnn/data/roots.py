"""Dataset roots users bring: one folder per class, or split folders (``train/``, ``val/``, ``test/``).

A split root (the Ultralytics / Roboflow classification layout) holds ``train/`` and usually
``val/`` (or ``valid/``, ``validation/``) and ``test/``, each with one sub-folder per class. A
folder named like a split counts as one only when it has sub-folders: a class named ``train``
whose images lie in it directly stays a class. A root that mixes split folders with class
folders is an error: which images are which would be a guess.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from edgecnn.errors import DataError

TRAIN_NAMES = ("train",)
VAL_NAMES = ("val", "valid", "validation")
TEST_NAMES = ("test",)


@dataclass(frozen=True)
class SplitRoot:
    root: Path
    train: Optional[Path]
    val: Optional[Path]
    test: Optional[Path]

    def describe(self) -> str:
        parts = [f"{name} on {path.name}/" for name, path in
                 (("training", self.train), ("validation", self.val), ("test", self.test)) if path]
        return f"{self.root} is a split root: " + ", ".join(parts)


def _subfolders(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def subfolder_names(path: str | os.PathLike) -> list[str]:
    """The names of ``path``'s sub-folders that are not hidden (a class-per-folder root's classes), sorted."""
    return [p.name for p in _subfolders(Path(path))]


def find_splits(root: str | os.PathLike) -> Optional[SplitRoot]:
    """The split folders of ``root``, or None when it is a class-per-folder root (or not a folder).

    Raises DataError when ``root`` mixes split folders with class folders, or names one split twice.
    """
    root = Path(root)
    if not root.is_dir():
        return None
    folders = _subfolders(root)
    splits = {p.name: p for p in folders if p.name in TRAIN_NAMES + VAL_NAMES + TEST_NAMES and _subfolders(p)}
    if not splits:
        return None
    classes = [p.name for p in folders if p.name not in splits]
    if classes:
        raise DataError(
            f"{root} mixes split folders ({', '.join(sorted(splits))}) with class folders ({', '.join(classes[:5])}"
            f"{', ...' if len(classes) > 5 else ''}); put every class folder inside {', '.join(sorted(splits))}, "
            f"or pass a folder with one sub-folder per class"
        )
    vals = [splits[n] for n in VAL_NAMES if n in splits]
    if len(vals) > 1:
        raise DataError(f"{root} has {len(vals)} validation folders ({', '.join(p.name for p in vals)}); keep one")
    return SplitRoot(root, splits.get("train"), vals[0] if vals else None, splits.get("test"))
