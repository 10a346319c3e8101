"""TrainConfig: everything a training run needs; saved as config.json to rerun it."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from edgecnn.errors import UsageError

CLASS_WEIGHTS = ("none", "auto")
# Transfer architectures' fine-tuning defaults, chosen by benchmarks/sweep_train_defaults.py (3 seeds, every
# validation image; benchmarks/README.md, "Training defaults").
TRANSFER_FINE_TUNE_EPOCHS = 10
FINE_TUNE_LAYERS = 80


@dataclass
class TrainConfig:
    arch: str
    data: str  # class folders, or a split root (train/ + val/ + test/) that resolve() splits into data/val/test
    out: str | None = None  # None: numbered runs/train, runs/train2, ... (edgecnn.rundir.new_run_dir)
    val: str | None = None
    test: str | None = None  # a split root's test/ folder: what `edgecnn evaluate RUN` uses
    val_split: float = 0.2
    img_size: int | None = None  # None: the architecture's default
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-3
    seed: int = 0
    augment: list[str] = field(default_factory=lambda: ["flip", "rotation", "zoom", "contrast"])
    patience: int = 5  # early stopping on val_accuracy
    reduce_lr_patience: int = 2  # multiply the learning rate by 0.3 after this many epochs without val_loss gain
    verbose: int = 1
    # Transfer architectures (mobilenet_*): backbone weights and the fine-tuning phase.
    weights: str | None = None  # "imagenet", "none" or a .weights.h5 file; None: imagenet for transfer archs
    alpha: float | None = None  # MobileNet width multiplier; None: 1.0
    fine_tune_epochs: int | None = None  # None: TRANSFER_FINE_TUNE_EPOCHS for transfer archs, 0 for the others
    fine_tune_layers: int = FINE_TUNE_LAYERS  # top backbone layers unfrozen in phase 2 (BatchNorm stays frozen)
    fine_tune_lr: float | None = None  # None: learning_rate / 10
    class_weights: str = "none"  # "auto": weight classes inversely to their frequency
    eager: bool = False  # run eagerly: no graph tracing (faster for tiny datasets, tests and debugging)
    exist_ok: bool = False  # write into an existing, non-empty ``out``
    augment_copies: int = 1  # augmented copies of each image stored for fine-tuning (edgecnn.train.phases)
    # Multi-worker training (edgecnn.train.distribute): HOST:PORT of every worker and this one's index;
    # None: TF_CONFIG, if set, names the cluster.
    cluster: list[str] | None = None
    worker_index: int | None = None
    # More roots (--data repeated; e.g. pulled collections): their training images merged by class name
    # (edgecnn.data.merge); the validation images stay data's.
    more_data: list[str] = field(default_factory=list)

    def validate(self) -> None:
        if self.epochs < 1:
            raise UsageError(f"--epochs must be at least 1; received {self.epochs}")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1; received {self.batch_size}")
        if self.val is None and not 0.0 < self.val_split < 1.0:
            raise UsageError(f"--val-split must be between 0 and 1; received {self.val_split}")
        if self.img_size is not None and self.img_size < 8:
            raise UsageError(f"--img-size must be at least 8; received {self.img_size}")
        if self.learning_rate <= 0:
            raise UsageError(f"--learning-rate must be positive; received {self.learning_rate}")
        if self.fine_tune_epochs is not None and self.fine_tune_epochs < 0:
            raise UsageError(f"--fine-tune-epochs must be 0 or more; received {self.fine_tune_epochs}")
        if self.fine_tune_layers < 1:
            raise UsageError(f"--fine-tune-layers must be at least 1; received {self.fine_tune_layers}")
        if self.augment_copies < 0:
            raise UsageError(f"--augment-copies must be 0 or more; received {self.augment_copies}")
        if self.class_weights not in CLASS_WEIGHTS:
            raise UsageError(f"--class-weights must be one of {', '.join(CLASS_WEIGHTS)}; received "
                             f"{self.class_weights!r}")

    @property
    def resolved_fine_tune_lr(self) -> float:
        return self.fine_tune_lr if self.fine_tune_lr is not None else self.learning_rate / 10

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        data = json.loads(Path(path).read_text())
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def default(name: str):
    """TrainConfig's default for field ``name``: the one place `edgecnn train` and the quickstart read it from."""
    found = {f.name: f for f in dataclasses.fields(TrainConfig)}[name]
    if found.default_factory is not dataclasses.MISSING:
        return found.default_factory()
    return found.default
