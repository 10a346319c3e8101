"""Training callbacks: one line per epoch, a live bar within each epoch, the best weights kept across phases."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from edgecnn._io import atomic_path

log = logging.getLogger("edgecnn.train")


def _keras_callback():
    import keras

    return keras.callbacks.Callback


class EpochLogger(_keras_callback()):
    """Logs ``epoch 3/7 [fine-tune] loss 0.41 acc 0.86 val_loss 0.52 val_acc 0.82 lr 1e-04 12.3s`` at ``level``."""

    def __init__(self, total_epochs: int, phase: str, level: int = logging.INFO):
        super().__init__()
        self.total_epochs = total_epochs
        self.phase = phase
        self.level = level
        self.lrs: list[float] = []
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        seconds = time.perf_counter() - self._start
        lr = float(self.model.optimizer.learning_rate.numpy())
        self.lrs.append(lr)
        self.seconds.append(seconds)
        fields = " ".join(f"{short} {logs[key]:.4f}" for key, short in
                          (("loss", "loss"), ("accuracy", "acc"), ("val_loss", "val_loss"), ("val_accuracy", "val_acc"))
                          if key in logs)
        log.log(self.level, f"epoch {epoch + 1}/{self.total_epochs} [{self.phase}] {fields} lr {lr:.1e} {seconds:.1f}s")


class StepBar(_keras_callback()):
    """A live bar within each epoch on a terminal (step, images/s, ETA), then validation; transient, so the
    epoch line stays the only trace. Does nothing in logs and pipes (:func:`edgecnn.progress.enabled`)."""

    def __init__(self, total_epochs: int, phase: str, steps: int, batch_size: int):
        super().__init__()
        self.total_epochs, self.phase, self.steps, self.batch_size = total_epochs, phase, steps, batch_size
        self._live = self._bar = None

    def on_epoch_begin(self, epoch, logs=None):
        from edgecnn.progress import live

        self._live = live(self.steps, f"epoch {epoch + 1}/{self.total_epochs} [{self.phase}]", "images",
                          scale=self.batch_size)
        self._bar = self._live.__enter__()

    def on_train_batch_end(self, batch, logs=None):
        if self._bar is not None:
            self._bar.update(batch + 1)  # the step just done (Keras may run several steps per call)

    def on_test_begin(self, logs=None):
        if self._bar is not None:
            self._bar.describe("validating")

    def on_epoch_end(self, epoch, logs=None):
        self._close()

    def on_train_end(self, logs=None):
        self._close()

    def _close(self):
        if self._live is not None:
            self._live.__exit__(None, None, None)
        self._live = self._bar = None


class LocalValidation(_keras_callback()):
    """Validation computed by this process on the whole validation set, put in the epoch's logs.

    For multi-worker training, where Keras' own distributed validation sees each worker's share of every
    batch: here every worker scores every image with the same (synchronised) weights and gets the same
    ``val_loss`` and ``val_accuracy``. Put it first, so the callbacks after it read these figures.
    """

    def __init__(self, net, source, labels, binary: bool, eager: bool = False):
        super().__init__()
        self.net, self.source, self.labels, self.binary, self.eager = net, source, labels, binary, eager

    def on_epoch_end(self, epoch, logs=None):
        import numpy as np

        from edgecnn.train.features import predict

        probs = np.clip(predict(self.net, self.source, eager=self.eager).astype(np.float64), 1e-7, 1 - 1e-7)
        if self.binary:
            p, y = probs.reshape(-1), self.labels.astype(np.float64)
            loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
            accuracy = np.mean((p > 0.5) == (y > 0.5))
        else:
            loss = -np.mean(np.log(probs[np.arange(len(self.labels)), self.labels]))
            accuracy = np.mean(probs.argmax(axis=1) == self.labels)
        if logs is not None:
            logs.update(val_loss=float(loss), val_accuracy=float(accuracy))


class BestWeights(_keras_callback()):
    """Keeps the weights of the best epoch so far (in memory and as a checkpoint file), across fit() calls.

    ``model`` is the whole network: a phase may fit only the part above a split (weights shared), and the
    snapshot and checkpoint are still of the whole network. No ``checkpoint`` on workers other than the chief.
    """

    def __init__(self, checkpoint: Path | None, monitor: str = "val_accuracy", model=None):
        super().__init__()
        self.checkpoint = checkpoint
        self.monitor = monitor
        self.network = model
        self.best: float | None = None
        self.best_epoch: int | None = None
        self._weights = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or (self.best is not None and value <= self.best):
            return
        self.best, self.best_epoch = float(value), epoch + 1
        network = self.network if self.network is not None else self.model
        self._weights = [w.numpy().copy() for w in network.weights]
        if self.checkpoint is not None:
            with atomic_path(self.checkpoint, suffix=".weights.h5") as tmp:
                network.save_weights(tmp)

    @property
    def has_weights(self) -> bool:
        return self._weights is not None

    def restore(self, model) -> None:
        """Put the best weights back into ``model`` (no-op before the first completed epoch)."""
        if self._weights is not None:
            for variable, value in zip(model.weights, self._weights):
                variable.assign(value)
