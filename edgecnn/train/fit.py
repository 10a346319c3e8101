"""Train an architecture from the registry on an image folder and write a run directory.

Transfer architectures train in two phases: the head on a frozen backbone,
then (``fine_tune_epochs`` > 0) the top backbone layers at a lower learning
rate with BatchNorm frozen. The best epoch across both phases is kept, also
when training is interrupted with Ctrl-C.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path

from edgecnn.data.folder import LoadedImages, load_folder
from edgecnn.data.roots import find_splits
from edgecnn.data.split import stratified_split
from edgecnn.errors import DataError, UsageError
from edgecnn.models import create_model, get_spec
from edgecnn.rundir import MODEL_FILE, check_run_dir, new_run_dir
from edgecnn.train.config import TrainConfig
from edgecnn.train.report import RunResult

__all__ = ["MODEL_FILE", "RunResult", "TrainConfig", "train"]
CHECKPOINT_FILE = "checkpoint.weights.h5"

log = logging.getLogger("edgecnn.train")


def load_datasets(config: TrainConfig, img_size: int) -> tuple[LoadedImages, LoadedImages]:
    train = load_folder(config.data, img_size)
    if config.val:
        val = load_folder(config.val, img_size, class_names=train.class_names)
    else:
        train, val = stratified_split(train, config.val_split, config.seed)
    if len(val) == 0:
        raise DataError(f"no validation images; pass --val DIR or add images to {config.data}")
    return train, val


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


def resolve(config: TrainConfig):
    """Fill the defaults that depend on the architecture (image size, weights) and the data; return the spec."""
    config.validate()
    spec = get_spec(config.arch)
    if config.out is not None:
        check_run_dir(config.out, config.exist_ok)  # before any data is loaded
    note = resolve_data(config)
    if note:
        log.log(logging.INFO if config.verbose else logging.DEBUG, f"data: {note}")
    # Absolute paths in config.json, so export (calibration, validation) finds the data from anywhere.
    config.data = str(Path(config.data).resolve())
    config.val = str(Path(config.val).resolve()) if config.val else None
    config.test = str(Path(config.test).resolve()) if config.test else None
    config.img_size = config.img_size or spec.default_size
    if spec.transfer:
        config.weights = config.weights or "imagenet"
        config.alpha = config.alpha or 1.0
    else:
        if config.weights not in (None, "none"):
            raise UsageError(f"{config.arch} has no pretrained backbone; drop --weights (transfer architectures: "
                             f"mobilenet_v2, mobilenet_v3_small, mobilenet_v3_large)")
        if config.fine_tune_epochs:
            raise UsageError(f"--fine-tune-epochs needs a transfer architecture (mobilenet_*); {config.arch} "
                             f"trains all its layers from the start: use --epochs")
        config.weights, config.alpha = "none", None
    return spec


def _strategy():
    """MirroredStrategy with several GPUs; None (the default strategy) otherwise."""
    import tensorflow as tf

    return tf.distribute.MirroredStrategy() if len(tf.config.list_physical_devices("GPU")) > 1 else None


def _compile(model, learning_rate: float, binary: bool, eager: bool) -> None:
    import keras

    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
                  metrics=["accuracy"], run_eagerly=eager)


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
    """
    import keras

    from edgecnn.train import report
    from edgecnn.train.augment import build_augmentation
    from edgecnn.train.callbacks import BestWeights, EpochLogger
    from edgecnn.train.dataset import balanced_class_weights, make_dataset
    from edgecnn.train.transfer import freeze_backbone, unfreeze_top

    spec = resolve(config)
    level = logging.INFO if config.verbose else logging.DEBUG
    train_data, val_data = load_datasets(config, config.img_size)
    class_names = train_data.class_names
    skipped = report.skipped_files(train_data, val_data)
    log.log(level, f"data: {len(train_data)} train / {len(val_data)} val images, {len(class_names)} classes"
            + (f", {len(skipped)} unreadable files skipped (listed in data_report.json)" if skipped else ""))

    run_dir = new_run_dir(config.out, config.exist_ok)
    config.out = str(run_dir)
    log.log(level, f"run directory: {run_dir}")
    keras.utils.set_random_seed(config.seed)
    strategy = _strategy()
    scope = strategy.scope() if strategy else contextlib.nullcontext()
    with scope:
        model = _build(config, spec, len(class_names))
    augmentation = build_augmentation(config.augment, config.seed)
    train_ds = make_dataset(train_data, config.batch_size, shuffle=True, augmentation=augmentation,
                            seed=config.seed, binary=spec.binary)
    val_ds = make_dataset(val_data, config.batch_size, binary=spec.binary)
    class_weight = (balanced_class_weights(train_data.labels, len(class_names))
                    if config.class_weights == "auto" else None)

    best = BestWeights(run_dir / CHECKPOINT_FILE)
    history: dict[str, list] = {}
    phase_epochs: list[str] = []
    interrupted, epoch, started = False, 0, time.perf_counter()
    total = sum(n for _, n in _phases(config, spec))
    try:
        for phase, epochs in _phases(config, spec):
            with scope:
                if phase == "frozen":
                    freeze_backbone(model)
                if phase == "fine-tune":
                    best.restore(model)  # fine-tune from the best frozen-phase weights
                    unfreeze_top(model, config.fine_tune_layers)
                _compile(model, config.resolved_fine_tune_lr if phase == "fine-tune" else config.learning_rate,
                         spec.binary, config.eager)
            logger = EpochLogger(total, phase, level)
            phase_callbacks = [
                logger, best,
                keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=config.patience),
                keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.3, patience=config.reduce_lr_patience,
                                                  min_lr=1e-6),
                *(callbacks or []),
            ]
            try:
                model.fit(train_ds, validation_data=val_ds, initial_epoch=epoch, epochs=epoch + epochs,
                                class_weight=class_weight, callbacks=phase_callbacks, shuffle=False, verbose=0)
            finally:
                done = report.merge_history(history, getattr(model, "history", None), logger)
                phase_epochs += [phase] * done
                epoch += done
    except KeyboardInterrupt:
        interrupted = True
        if not best.has_weights:
            raise
        log.warning(f"interrupted: keeping the best epoch so far ({best.best_epoch}, val_accuracy {best.best:.4f})")
    seconds = time.perf_counter() - started
    best.restore(model)
    history["phase"] = phase_epochs
    return report.write_run(
        run_dir, model, config, spec, train_data, val_data, history, best,
        timing={"train_seconds": round(seconds, 2),
                "train_images_per_second": round(len(train_data) * epoch / seconds, 2) if seconds else None},
        interrupted=interrupted, val_ds=val_ds, level=level,
    )
