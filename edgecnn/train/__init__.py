"""Training and evaluation of Keras image classifiers (needs the ``train`` extra: TensorFlow, Keras).

``from edgecnn.train import TrainConfig, train`` fits an architecture from
:mod:`edgecnn.models` on a class-per-folder dataset and writes a run directory
(:mod:`edgecnn.rundir`); :func:`edgecnn.train.evaluate.evaluate` reports on a trained model.
TensorFlow is imported when training starts, not at ``import edgecnn.train``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["RunResult", "TrainConfig", "train"]

if TYPE_CHECKING:
    from edgecnn.train.config import TrainConfig
    from edgecnn.train.fit import train
    from edgecnn.train.report import RunResult


def __getattr__(name):
    # Lazy, so that importing one submodule (e.g. edgecnn.train.metrics) does not load the others.
    modules = {"TrainConfig": "config", "train": "fit", "RunResult": "report"}
    if name in modules:
        import importlib

        return getattr(importlib.import_module(f"edgecnn.train.{modules[name]}"), name)
    raise AttributeError(f"module 'edgecnn.train' has no attribute {name!r}")
