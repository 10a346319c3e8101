"""Class-per-folder image datasets (``root/<class>/<image>``).

Images are recognised by content, not by extension; files that cannot be
decoded are skipped and reported, never a crash mid-epoch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgecnn.data.decode import decode_rgb, resize
from edgecnn.errors import DataError


@dataclass
class FolderScan:
    root: Path
    class_names: list[str]
    files: list[tuple[Path, int]]  # (path, class index), sorted for reproducibility


@dataclass
class LoadedImages:
    images: np.ndarray  # uint8, (N, H, W, 3), RGB
    labels: np.ndarray  # int64, (N,)
    class_names: list[str]
    paths: list[Path]
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (path, reason)

    def __len__(self) -> int:
        return len(self.labels)


def scan_folder(root: str | os.PathLike, class_names: list[str] | None = None) -> FolderScan:
    """List ``root/<class>/**`` files. ``class_names`` fixes the class order (e.g. a validation folder)."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"data folder not found: {root}; pass a folder with one sub-folder of images per class")
    if not root.is_dir():
        raise DataError(f"data path is not a folder: {root}; pass a folder with one sub-folder of images per class")
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not found:
        raise DataError(f"no class folders in {root}; put the images of each class in their own sub-folder")
    if class_names is None:
        if len(found) < 2:
            raise DataError(f"only one class folder ({found[0]}) in {root}; a classifier needs at least two classes")
        class_names = found
    else:
        unknown = sorted(set(found) - set(class_names))
        if unknown:
            raise DataError(f"{root} has class folders not in the training classes: {', '.join(unknown)}")
    files: list[tuple[Path, int]] = []
    for index, name in enumerate(class_names):
        folder = root / name
        members = (sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
                   if folder.is_dir() else [])
        if not members and name in found:
            raise DataError(f"class folder {folder} is empty; add images to it or remove it")
        files.extend((p, index) for p in members)
    return FolderScan(root=root, class_names=list(class_names), files=files)


def _check_every_class_readable(scan: FolderScan, per_class: dict[int, int], skipped: list) -> None:
    """A class folder whose files all failed to decode is as unusable as an empty one."""
    with_files = {label for _, label in scan.files}
    for label in sorted(with_files - set(per_class)):
        folder = scan.root / scan.class_names[label]
        count = sum(1 for path, _ in skipped if folder in path.parents)
        raise DataError(f"class folder {folder} has no readable images ({count} files skipped); "
                        f"add JPEG/PNG/BMP/GIF/WebP images to it or remove it")


def load_folder(
    root: str | os.PathLike,
    img_size: int | tuple[int, int],
    class_names: list[str] | None = None,
    limit_per_class: int | None = None,
) -> LoadedImages:
    """Decode and resize every image under ``root`` into one uint8 RGB array.

    Unreadable or non-image files are skipped and listed in ``skipped``.
    """
    scan = scan_folder(root, class_names)
    size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    images, labels, paths, skipped = [], [], [], []
    per_class: dict[int, int] = {}
    for path, label in scan.files:
        if limit_per_class is not None and per_class.get(label, 0) >= limit_per_class:
            continue
        try:
            rgb = decode_rgb(path)
        except DataError as exc:
            skipped.append((path, str(exc)))
            continue
        images.append(resize(rgb, size))
        labels.append(label)
        paths.append(path)
        per_class[label] = per_class.get(label, 0) + 1
    if not images:
        raise DataError(f"no readable images under {scan.root} ({len(skipped)} files skipped); "
                        f"supported: JPEG, PNG, BMP, GIF, WebP, TIFF")
    _check_every_class_readable(scan, per_class, skipped)
    return LoadedImages(
        images=np.stack(images),
        labels=np.asarray(labels, dtype=np.int64),
        class_names=scan.class_names,
        paths=paths,
        skipped=skipped,
    )
