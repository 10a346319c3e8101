"""Several dataset roots trained as one: ``edgecnn train --data BASE --data MORE ...``, merged by class name.

The first root is the base: its classes are the model's classes and it alone supplies the validation images
(its ``val/`` folder, ``--val``, or its held-out ``--val-split`` part), so a retrain is validated on the same
images as the run before it. Each later root (a split root: its ``train/`` folder) adds all its images to
training: class folders named like base classes, any of them may be absent (a collection holds the classes the
camera kept); a class the base lacks is one error naming it and what to do, and so is an empty class folder
(remove it). A folder pulled by ``edgecnn collect pull`` is such a root as it is: its index.csv and hidden
``.sidecars/`` are not classes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgecnn.collect.sorted_folder import INDEX_FILE
from edgecnn.data.roots import find_splits, subfolder_names
from edgecnn.errors import DataError, did_you_mean

log = logging.getLogger("edgecnn.data")


@dataclass
class MergedImages:
    """Images of several roots at one size, labelled by the base's classes (FolderImages' reading interface)."""

    parts: list  # FolderImages of each root
    class_names: list[str]
    labels: np.ndarray
    part_of: np.ndarray  # the part each image is in
    index_in: np.ndarray  # its position in that part
    roots: list[dict] = field(default_factory=list)  # what each root gave (data_report.json)

    dtype = np.dtype(np.uint8)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.parts[0].shape

    @property
    def skipped(self) -> list:
        return [s for part in self.parts for s in part.skipped]

    @property
    def cache(self) -> str:
        return ", ".join(str(part.cache) for part in self.parts if part.cache)

    def read(self, positions=None) -> np.ndarray:
        positions = np.arange(len(self)) if positions is None else np.asarray(positions, dtype=np.int64)
        out = np.empty((len(positions), *self.shape), dtype=self.dtype)
        part_of, index_in = self.part_of[positions], self.index_in[positions]
        for k, part in enumerate(self.parts):
            mask = part_of == k
            if mask.any():
                out[mask] = part.read(index_in[mask])
        return out

    def subset(self, positions) -> "MergedImages":
        positions = np.asarray(positions, dtype=np.int64)
        return MergedImages(self.parts, self.class_names, self.labels[positions], self.part_of[positions],
                            self.index_in[positions], self.roots)


def training_folders(roots: list[str], base: str, level: int = logging.INFO) -> list[str]:
    """Each later root's folder of training images, absolute (a split root: its train/; what is left out is said),
    its classes checked against the class folders of ``base`` before any image is decoded."""
    folders = []
    for root in roots:
        if not Path(root).is_dir():
            raise DataError(f"--data {root} is not a folder; pass a folder with one sub-folder of images per class")
        splits = find_splits(root)
        if splits is None:
            folders.append(str(Path(root).resolve()))
            _check_classes(Path(root), subfolder_names(base))
            continue
        if splits.train is None:
            raise DataError(f"--data {root} has split folders but no train/ folder; pass a folder with train/ or "
                            f"one folder per class")
        unused = [p.name + "/" for p in (splits.val, splits.test) if p]
        log.log(level, f"data: {splits.root} is a split root: its train/ adds training images"
                + (f"; its {', '.join(unused)} not used (the first --data root validates)" if unused else ""))
        folders.append(str(splits.train.resolve()))
        _check_classes(splits.train, subfolder_names(base))
    return folders


def _check_classes(root: Path, base: list[str]) -> None:
    """One error for any class folder of a later root that the base does not have."""
    if not root.is_dir():
        raise DataError(f"data folder not found: {root}; pass a folder with one sub-folder of images per class")
    unknown = [name for name in subfolder_names(root) if name not in base]
    if unknown:
        hint = did_you_mean(unknown[0], base)
        raise DataError(f"--data {root} has classes the first --data root lacks: {', '.join(unknown)}{hint}; "
                        f"move their images into folders of the first root's classes ({', '.join(base)}) or "
                        f"delete them; a new class needs a folder of its images in the first root too (it "
                        f"validates every class)")


def _record(root: Path, part, base: list[str], role: str) -> dict:
    counts = np.bincount(part.labels, minlength=len(base))
    record = {"path": str(root), "role": role, "images": int(len(part)), "per_class": counts.tolist()}
    if (root / INDEX_FILE).is_file() or (root.parent / INDEX_FILE).is_file():
        record["collection"] = True  # pulled from boards by edgecnn collect pull
    return record


def add_roots(base, roots: list[str], img_size) -> "MergedImages | object":
    """The base's training images plus every image of ``roots`` (their training folders), as one set."""
    if not roots:
        return base
    from edgecnn.data.cache import open_folder

    names = list(base.class_names)
    parts, labels, part_of, index_in = [base], [base.labels], [np.zeros(len(base), np.int64)], [np.arange(len(base))]
    records = [_record(Path(base.root), base, names, "base (training part)")]
    for k, root in enumerate(roots, start=1):
        _check_classes(Path(root), names)
        part = open_folder(root, img_size, class_names=names)  # labels: the base's class indices
        parts.append(part)
        labels.append(part.labels)
        part_of.append(np.full(len(part), k, np.int64))
        index_in.append(np.arange(len(part)))
        records.append(_record(Path(root), part, names, "added to training"))
        found = [names[i] for i in np.unique(part.labels)]
        log.info(f"data: +{len(part)} training images from {root} ({', '.join(found)})")
    return MergedImages(parts, names, np.concatenate(labels), np.concatenate(part_of), np.concatenate(index_in),
                        records)
