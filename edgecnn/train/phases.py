"""What each training phase fits, and on what: the whole network on images, or its top on stored activations.

A phase whose bottom layers do not train (the frozen phase of transfer learning, and fine-tuning below the
unfrozen layers) splits the network (:func:`edgecnn.train.features.find_cut`): the bottom runs once per image
and its activations are stored on disk; the phase fits the top alone on them. The mathematics is the same as
fitting the whole network on images (frozen BatchNorm runs in inference mode either way); the bottom simply
is not recomputed every epoch.

With augmentation the activations of augmented images differ each time, so a cheap scheme stands in for
fresh augmentation every epoch:

- frozen phase: the head trains on the features of the images as they are (augmenting a linear head's
  inputs for a few epochs changes little; the measurements are in benchmarks/README.md);
- fine-tuning: ``augment_copies`` augmented versions of each training image are computed once (default 1),
  and the epochs go through them in turn, then the images as they are (copy ``e % (copies + 1)``).

Without augmentation nothing is approximated. Phases that train the whole network (architectures without a
pretrained backbone, or ``--weights none``) read images from the cache and augment them every epoch.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgecnn.train import features

log = logging.getLogger("edgecnn.train")


STALE_SECONDS = 7 * 24 * 3600  # scratch folders of runs killed outright are removed after a week


def _scratch_folder() -> Path:
    """A private folder for this run's activations, beside the image cache (a disk sized for datasets)."""
    import time

    from edgecnn.data.cache import cache_root

    parent = cache_root() / "features"
    parent.mkdir(parents=True, exist_ok=True)
    for old in parent.glob("run-*"):
        try:
            if time.time() - old.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    return Path(tempfile.mkdtemp(prefix="run-", dir=parent))


@dataclass
class PhaseData:
    """The network a phase fits and its data: training sources (one per copy), labels, positions."""

    net: object  # keras.Model: the model, or its top above a split
    train: list  # sources with read(positions): one per copy, epoch e reads copy e % len(train)
    labels: np.ndarray  # labels of the training sources' positions
    positions: np.ndarray  # the positions this worker trains on
    val: object  # validation source
    val_labels: np.ndarray
    augmentation: object = None  # applied in the pipeline (whole-network phases only)
    feature_seconds: float = 0.0
    split: str | None = None  # the layer whose output the phase starts from


@dataclass
class Session:
    """The stored activations of one training run (deleted by ``close``)."""

    model: object
    train_data: object  # FolderImages
    val_data: object
    shard: np.ndarray  # positions of train_data this worker trains on
    augment: list[str]
    augment_copies: int
    seed: int
    eager: bool
    folder: Path = field(default_factory=lambda: _scratch_folder())
    _clean: dict = field(default_factory=dict)  # split name -> (train store, val store)

    def close(self) -> None:
        for train, val in self._clean.values():
            train.close()
            val.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def prepare(self, phase: str, later_cuts: list | None = None) -> PhaseData:
        """The data of ``phase``, given the model's trainable flags now. ``later_cuts``: split points of later
        phases, whose clean activations come out of the same pass over the images."""
        from edgecnn.train.augment import build_augmentation

        cut = features.find_cut(self.model)
        if cut is None:
            return PhaseData(self.model, [self.train_data], self.train_data.labels, self.shard, self.val_data,
                             self.val_data.labels, build_augmentation(self.augment, self.seed))
        seconds = self._clean_pass([cut, *(later_cuts or [])])
        train_clean, val = self._clean[features.cut_name(cut)]
        copies = [train_clean]
        if phase == "fine-tune" and self.augment and self.augment_copies:
            augmented, more = self._augmented(cut)
            copies, seconds = augmented + [train_clean], seconds + more
        log.debug(f"{phase}: training above {features.cut_name(cut)} {tuple(cut.shape[1:])} on "
                  f"{len(copies)} stored cop{'y' if len(copies) == 1 else 'ies'} per image")
        return PhaseData(features.top_model(self.model, cut), copies, self.train_data.labels[self.shard],
                         np.arange(len(self.shard)), val, self.val_data.labels, None, seconds, features.cut_name(cut))

    def _clean_pass(self, cuts: list) -> float:
        cuts = [c for c in {features.cut_name(c): c for c in cuts}.values() if features.cut_name(c) not in self._clean]
        if not cuts:
            return 0.0
        names = [features.cut_name(c) for c in cuts]
        bottom = features.bottom_model(self.model, cuts)
        train, seconds = features.extract(bottom, self.train_data, self.shard, self.folder / "train", names,
                                          eager=self.eager, description="features (train)")
        val, more = features.extract(bottom, self.val_data, np.arange(len(self.val_data)), self.folder / "val",
                                     names, eager=self.eager, description="features (val)")
        images = len(self.shard) + len(self.val_data)
        log.info(f"features: {images} images through the frozen layers in {seconds + more:.1f} s "
                 f"({images / max(seconds + more, 1e-9):.1f} images/s), stored at {', '.join(names)}")
        for name, t, v in zip(names, train, val):
            self._clean[name] = (t, v)
        return seconds + more

    def _augmented(self, cut) -> tuple[list, float]:
        from edgecnn.train.augment import build_augmentation

        name, copies, seconds = features.cut_name(cut), [], 0.0
        bottom = features.bottom_model(self.model, [cut])
        for copy in range(1, self.augment_copies + 1):
            augmentation = build_augmentation(self.augment, self.seed + 1000 * copy)
            (store,), took = features.extract(bottom, self.train_data, self.shard, self.folder / f"aug{copy}",
                                              [name], augmentation=augmentation, eager=self.eager,
                                              description=f"features (augmented copy {copy})")
            copies.append(store)
            seconds += took
        log.info(f"features: {self.augment_copies} augmented cop{'y' if self.augment_copies == 1 else 'ies'} of "
                 f"{len(self.shard)} images in {seconds:.1f} s")
        return copies, seconds
