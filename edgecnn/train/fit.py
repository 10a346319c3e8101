"""Train an architecture from the registry on an image folder and write a run directory.

Transfer architectures train in two phases: the head on a frozen backbone,
then (``fine_tune_epochs`` > 0) the top backbone layers at a lower learning
rate with BatchNorm frozen. The best epoch across both phases is kept, also
when training is interrupted with Ctrl-C. Images come from the on-disk cache
(:mod:`edgecnn.data.cache`); layers that do not train in a phase run once per
image (:mod:`edgecnn.train.phases`). Under ``TF_CONFIG`` every worker of a
cluster runs this (:mod:`edgecnn.train.distribute`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

from edgecnn.data.cache import FolderImages, open_folder
from edgecnn.data.merge import add_roots, training_folders
from edgecnn.data.roots import find_splits
from edgecnn.data.split import stratified_split
from edgecnn.errors import DataError, UsageError
from edgecnn.models import create_model, get_spec
from edgecnn.rundir import MODEL_FILE, check_run_dir, new_run_dir, release_folder
from edgecnn.train import report
from edgecnn.train.config import TRANSFER_FINE_TUNE_EPOCHS, TrainConfig
from edgecnn.train.report import RunResult

__all__ = ["MODEL_FILE", "RunResult", "TrainConfig", "train"]
CHECKPOINT_FILE = "checkpoint.weights.h5"

log = logging.getLogger("edgecnn.train")


def load_datasets(config: TrainConfig, img_size: int) -> tuple[FolderImages, FolderImages]:
    """The training and validation images, decoded once into the on-disk cache (paths and labels in memory)."""
    train = open_folder(config.data, img_size)
    if config.val:
        val = open_folder(config.val, img_size, class_names=train.class_names)
    else:
        train, val = stratified_split(train, config.val_split, config.seed)
    if len(val) == 0:
        raise DataError(f"no validation images; pass --val DIR or add images to {config.data}")
    return add_roots(train, config.more_data, img_size), val  # more --data roots: training images only


def resolve_data(config: TrainConfig) -> str | None:
    """A split root in ``config.data`` becomes its train/ (data), val/ and test/ folders; say what was used."""
    splits = find_splits(config.data)
    if splits is None:
        return None
    if splits.train is None:
        found = ", ".join(p.name for p in (splits.val, splits.test) if p)
        raise DataError(f"{config.data} has split folders ({found}) but no train/ folder; pass a folder with "
                        f"train/ (and val/, test/) or one folder per class")
    if config.val and splits.val:
        raise UsageError(f"--data {config.data} has its own validation folder ({splits.val.name}/); drop --val")
    config.data = str(splits.train)
    config.val = config.val or (str(splits.val) if splits.val else None)
    config.test = str(splits.test) if splits.test else None
    held_out = "" if config.val else f"; no val/ folder: {config.val_split:.0%} of train/ held out for validation"
    return splits.describe() + held_out


def resolve(config: TrainConfig, writes: bool = True):
    """Fill the defaults that depend on the architecture (image size, weights) and the data; return the spec.

    ``writes`` False: this process will not write ``config.out`` (a worker that is not the chief).
    """
    config.validate()
    spec = get_spec(config.arch)
    if writes and config.out is not None:
        check_run_dir(config.out, config.exist_ok)  # before any data is loaded
    note = resolve_data(config)
    if note:
        log.log(logging.INFO if config.verbose else logging.DEBUG, f"data: {note}")
    # Absolute paths in config.json, so export (calibration, validation) finds the data from anywhere.
    config.data = str(Path(config.data).resolve())
    config.more_data = training_folders(config.more_data, config.data,
                                        logging.INFO if config.verbose else logging.DEBUG)
    config.val = str(Path(config.val).resolve()) if config.val else None
    config.test = str(Path(config.test).resolve()) if config.test else None
    config.img_size = config.img_size or spec.default_size
    if spec.transfer:
        config.weights = config.weights or "imagenet"
        config.alpha = config.alpha or 1.0
        if config.fine_tune_epochs is None:
            config.fine_tune_epochs = TRANSFER_FINE_TUNE_EPOCHS
    else:
        if config.weights not in (None, "none"):
            raise UsageError(f"{config.arch} has no pretrained backbone; drop --weights (transfer architectures: "
                             f"mobilenet_v2, mobilenet_v3_small, mobilenet_v3_large)")
        if config.fine_tune_epochs:
            raise UsageError(f"--fine-tune-epochs needs a transfer architecture (mobilenet_*); {config.arch} "
                             f"trains all its layers from the start: use --epochs")
        config.weights, config.alpha, config.fine_tune_epochs = "none", None, 0
    return spec


def _compile(model, learning_rate: float, binary: bool, eager: bool, steps_per_execution: int = 1) -> None:
    import keras

    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
                  metrics=["accuracy"], run_eagerly=eager, steps_per_execution=steps_per_execution)


def _steps_per_execution(per_epoch: int, most: int = 16) -> int:
    """Steps per call into the graph for small steps (a head on stored features): the largest divisor of the
    epoch's steps up to ``most``, so that no call runs into the next epoch's batches."""
    return max(n for n in range(1, most + 1) if per_epoch % n == 0)


def _build(config: TrainConfig, spec, num_classes: int):
    kwargs = {"weights": config.weights}
    if config.alpha is not None:
        kwargs["alpha"] = config.alpha
    return create_model(config.arch, num_classes, (config.img_size, config.img_size, 3), **kwargs)


def _phases(config: TrainConfig, spec) -> list[tuple[str, int]]:
    """[(phase name, epochs)]: "train", or "frozen" then "fine-tune" for transfer architectures."""
    if not spec.transfer:
        return [("train", config.epochs)]
    first = "frozen" if config.weights != "none" else "train"
    return [(first, config.epochs)] + ([("fine-tune", config.fine_tune_epochs)] if config.fine_tune_epochs else [])


def train(config: TrainConfig, callbacks: list | None = None) -> RunResult:
    """Fit ``config.arch`` on ``config.data`` and save model, card, labels and reports in ``config.out``.

    ``callbacks`` are extra Keras callbacks for every phase. Ctrl-C stops
    training, keeps the best epoch so far and returns ``interrupted=True``.
    Progress goes to the ``edgecnn.train`` logger: at INFO, or at DEBUG with ``config.verbose = 0``.
    In a cluster (``TF_CONFIG``) every worker calls this; only the chief writes ``config.out``.
    """
    from edgecnn.train.distribute import barrier, make_strategy, resolve_cluster, worker_failures

    cluster = resolve_cluster(config.cluster, config.worker_index)
    spec = resolve(config, writes=cluster.is_chief)
    level = logging.INFO if config.verbose else logging.DEBUG
    started = time.perf_counter()
    train_data, val_data = load_datasets(config, config.img_size)  # before TensorFlow loads: decoders fork
    data_seconds = time.perf_counter() - started
    skipped = report.skipped_files(train_data, val_data)
    log.log(level, f"data: {len(train_data)} train / {len(val_data)} val images, {len(train_data.class_names)} "
            f"classes in {data_seconds:.1f} s"
            + (f", {len(skipped)} unreadable files skipped (listed in data_report.json)" if skipped else ""))

    import keras

    strategy = make_strategy(cluster)  # before any other TensorFlow op, as MultiWorkerMirroredStrategy needs
    run_dir = new_run_dir(config.out, config.exist_ok) if cluster.is_chief else None
    if run_dir is not None:
        config.out = str(run_dir)
        log.log(level, f"run directory: {run_dir}")
    keras.utils.set_random_seed(config.seed)
    scope = strategy.scope() if strategy else contextlib.nullcontext()
    with scope:
        model = _build(config, spec, len(train_data.class_names))
    run = _Run(config, spec, model, strategy, cluster, train_data, val_data, run_dir, level, callbacks or [])
    try:
        with worker_failures(cluster):
            run.fit_phases()
        probs = run.val_probabilities() if run_dir is not None else None
    finally:
        run.session.close()
    if run_dir is None:
        log.log(level, f"worker {cluster.rank}: done; the chief writes the run directory")
        result = RunResult(None, None, None, run.metrics(data_seconds), val_data, run.interrupted)
    else:
        outcome = report.TrainOutcome(model, config, spec, train_data, val_data, run.history, run.best,
                                      timing=run.metrics(data_seconds), interrupted=run.interrupted, val_probs=probs)
        result = report.write_run(run_dir, outcome, level)
        release_folder(run_dir)  # claimed by new_run_dir for the run
    if cluster.multi_worker:
        with worker_failures(cluster):
            barrier(strategy)  # workers leave together, after the chief has written the run directory
    return result


class _Run:
    """The phases of one training run: the network (or its top) fitted on images (or stored activations)."""

    def __init__(self, config, spec, model, strategy, cluster, train_data, val_data, run_dir, level, callbacks):
        from edgecnn.train.callbacks import BestWeights
        from edgecnn.train.dataset import Shard, balanced_class_weights
        from edgecnn.train.distribute import per_worker_batch
        from edgecnn.train.phases import Session

        self.config, self.spec, self.model, self.strategy, self.cluster = config, spec, model, strategy, cluster
        self.level, self.callbacks = level, callbacks
        self.scope = strategy.scope if strategy else contextlib.nullcontext
        self.batch = per_worker_batch(config.batch_size, cluster)
        shard = Shard(cluster.count, cluster.rank).positions(len(train_data), config.seed)
        self.session = Session(model, train_data, val_data, shard, config.augment, config.augment_copies,
                               config.seed, config.eager)
        self.class_weight = (balanced_class_weights(train_data.labels, len(train_data.class_names))
                             if config.class_weights == "auto" else None)
        self.best = BestWeights(run_dir / CHECKPOINT_FILE if run_dir is not None else None, model=model)
        self.history: dict[str, list] = {"phase": []}
        self.phases: list[dict] = []
        self.epoch, self.interrupted, self.seconds, self.last = 0, False, 0.0, None

    def fit_phases(self) -> None:
        phases = _phases(self.config, self.spec)
        total = sum(n for _, n in phases)
        started = time.perf_counter()
        try:
            for index, (phase, epochs) in enumerate(phases):
                self._fit_phase(index, phase, epochs, total, later=[p for p, _ in phases[index + 1:]])
        except KeyboardInterrupt:
            self.interrupted = True
            if not self.best.has_weights:
                raise
            log.warning(f"interrupted: keeping the best epoch so far ({self.best.best_epoch}, "
                        f"val_accuracy {self.best.best:.4f})")
        finally:
            self.seconds = time.perf_counter() - started
            self.best.restore(self.model)

    def _set_trainable(self, phase: str) -> None:
        from edgecnn.train.transfer import freeze_backbone, unfreeze_top

        with self.scope():
            if phase == "frozen":
                freeze_backbone(self.model)
            if phase == "fine-tune":
                self.best.restore(self.model)  # fine-tune from the best frozen-phase weights
                unfreeze_top(self.model, self.config.fine_tune_layers)

    def _later_cuts(self, phase: str, later: list[str]) -> list:
        """Where fine-tuning will split, so the frozen phase's pass over the images stores that too."""
        from edgecnn.train.features import find_cut
        from edgecnn.train.transfer import freeze_backbone, unfreeze_top

        if phase != "frozen" or "fine-tune" not in later:
            return []
        unfreeze_top(self.model, self.config.fine_tune_layers)
        cut = find_cut(self.model)
        freeze_backbone(self.model)
        return [cut] if cut is not None else []

    def _fit_phase(self, index: int, phase: str, epochs: int, total: int, later: list[str]) -> None:
        from edgecnn.train.callbacks import EpochLogger, LocalValidation, StepBar
        from edgecnn.train.dataset import steps

        started = time.perf_counter()
        self._set_trainable(phase)
        data = self.session.prepare(phase, self._later_cuts(phase, later))
        learning_rate = self.config.resolved_fine_tune_lr if phase == "fine-tune" else self.config.learning_rate
        per_epoch = steps(len(data.positions), self.batch)
        with self.scope():
            _compile(data.net, learning_rate, self.spec.binary, self.config.eager,
                     _steps_per_execution(per_epoch) if data.split else 1)
        train_ds, val_ds = self._datasets(data, epochs, index)
        logger = EpochLogger(total, phase, self.level)
        # The bar closes before the epoch line is logged, so the line is never drawn over.
        callbacks = [StepBar(total, phase, per_epoch, self.batch), logger, self.best, *_schedule(self.config),
                     *self.callbacks]
        if self.cluster.multi_worker:  # each worker validates on everything itself (see LocalValidation)
            callbacks.insert(0, LocalValidation(data.net, data.val, data.val_labels, self.spec.binary))
        fit_started = time.perf_counter()
        try:
            data.net.fit(train_ds, steps_per_epoch=per_epoch, validation_data=val_ds, initial_epoch=self.epoch,
                         epochs=self.epoch + epochs, callbacks=callbacks, shuffle=False, verbose=0)
        finally:
            done = report.merge_history(self.history, getattr(data.net, "history", None), logger)
            self.history["phase"] += [phase] * done
            self.epoch += done
            self.last = data
            self._record(phase, done, data, time.perf_counter() - started, time.perf_counter() - fit_started)

    def _datasets(self, data, epochs: int, index: int):
        from edgecnn.train.dataset import eval_dataset, train_dataset

        def make_train(_context=None):
            return train_dataset(data.train, data.labels, self.batch, epochs=epochs,
                                 seed=self.config.seed + 1000 * index, augmentation=data.augmentation,
                                 binary=self.spec.binary, class_weight=self.class_weight, positions=data.positions)

        if self.cluster.multi_worker:  # validation: LocalValidation
            return self.strategy.distribute_datasets_from_function(make_train), None
        val_batch = self.config.batch_size if data.split is None else max(self.config.batch_size, 256)
        return make_train(), eval_dataset(data.val, data.val_labels, val_batch, binary=self.spec.binary)

    def _record(self, phase: str, epochs: int, data, seconds: float, fit_seconds: float) -> None:
        images = len(data.positions) * epochs
        self.phases.append({
            "phase": phase, "epochs": epochs, "seconds": round(seconds, 2),
            "feature_seconds": round(data.feature_seconds, 2), "fit_seconds": round(fit_seconds, 2),
            "images_per_second": round(images / seconds, 2) if seconds and images else None,
            "trains_from": data.split or "image",
        })

    def val_probabilities(self):
        """The best weights' predictions on the validation set (from the stored activations when there are)."""
        from edgecnn.train.features import predict

        data = self.last
        if data is not None and data.split is not None:
            return predict(data.net, data.val, eager=self.config.eager)
        return predict(self.model, self.session.val_data, eager=self.config.eager)

    def metrics(self, data_seconds: float) -> dict:
        images = len(self.session.shard) * self.epoch
        return {"data_seconds": round(data_seconds, 2), "train_seconds": round(self.seconds, 2),
                "train_images_per_second": round(images / self.seconds, 2) if self.seconds else None,
                "phases": self.phases, "workers": self.cluster.count}


def _schedule(config: TrainConfig) -> list:
    import keras

    return [keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=config.patience),
            keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.3, patience=config.reduce_lr_patience,
                                              min_lr=1e-6)]
