"""TrainConfig: everything a training run needs; saved as config.json to rerun it."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from edgecnn.errors import UsageError


@dataclass
class TrainConfig:
    arch: str
    data: str
    out: str = "runs/train"
    val: str | None = None
    val_split: float = 0.2
    img_size: int | None = None  # None: the architecture's default
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-3
    seed: int = 0
    augment: list[str] = field(default_factory=lambda: ["flip", "rotation", "zoom", "contrast"])
    patience: int = 5
    verbose: int = 1

    def validate(self) -> None:
        if self.epochs < 1:
            raise UsageError(f"--epochs must be at least 1; received {self.epochs}")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1; received {self.batch_size}")
        if self.val is None and not 0.0 < self.val_split < 1.0:
            raise UsageError(f"--val-split must be between 0 and 1; received {self.val_split}")
        if self.img_size is not None and self.img_size < 8:
            raise UsageError(f"--img-size must be at least 8; received {self.img_size}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        data = json.loads(Path(path).read_text())
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
