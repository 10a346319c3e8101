"""Train an architecture from the registry on an image folder and write a run directory."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgecnn._io import atomic_path, write_json
from edgecnn.card import ModelCard, Normalization
from edgecnn.data.folder import LoadedImages, load_folder
from edgecnn.errors import DataError
from edgecnn.labels import write_labels
from edgecnn.models import create_model, get_spec
from edgecnn.train.augment import build_augmentation
from edgecnn.train.config import TrainConfig
from edgecnn.train.split import stratified_split

MODEL_FILE = "model.keras"


@dataclass
class RunResult:
    run_dir: Path
    model_path: Path
    card: ModelCard
    metrics: dict
    val: LoadedImages


def load_datasets(config: TrainConfig, img_size: int) -> tuple[LoadedImages, LoadedImages]:
    train = load_folder(config.data, img_size)
    if config.val:
        val = load_folder(config.val, img_size, class_names=train.class_names)
    else:
        train, val = stratified_split(train, config.val_split, config.seed)
    if len(val) == 0:
        raise DataError(f"no validation images; pass --val DIR or add images to {config.data}")
    return train, val


def _dataset(data: LoadedImages, batch_size: int, shuffle: bool, augmentation, seed: int):
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((data.images, data.labels)).cache()
    if shuffle:
        ds = ds.shuffle(len(data), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if augmentation is not None:
        ds = ds.map(lambda x, y: (augmentation(tf.cast(x, tf.float32), training=True), y),
                    num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def train(config: TrainConfig) -> RunResult:
    """Fit ``config.arch`` on ``config.data`` and save model, card, labels and reports in ``config.out``."""
    import keras

    config.validate()
    spec = get_spec(config.arch)
    img_size = config.img_size or spec.default_size
    config.img_size = img_size
    train_data, val_data = load_datasets(config, img_size)
    class_names = train_data.class_names

    keras.utils.set_random_seed(config.seed)
    model = create_model(config.arch, len(class_names), (img_size, img_size, 3))
    binary = spec.binary
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    augmentation = build_augmentation(config.augment, config.seed)
    train_ds = _dataset(train_data, config.batch_size, True, augmentation, config.seed)
    val_ds = _dataset(val_data, config.batch_size, False, None, config.seed)

    run_dir = Path(config.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=config.patience, restore_best_weights=True),
    ]
    history = model.fit(train_ds, validation_data=val_ds, epochs=config.epochs, callbacks=callbacks,
                        verbose=2 if config.verbose else 0)

    model_path = run_dir / MODEL_FILE
    with atomic_path(model_path) as tmp:
        model.save(tmp)
    card = ModelCard(
        labels=class_names,
        input_height=img_size,
        input_width=img_size,
        normalization=Normalization.raw(spec.in_model_normalization),
        output_kind="sigmoid" if binary else "softmax",
        format="keras",
        architecture=config.arch,
    )
    card.save(model_path)
    write_labels(run_dir / "labels.txt", class_names)
    write_json(run_dir / "config.json", config.to_dict())
    write_json(run_dir / "history.json", {k: [float(v) for v in vals] for k, vals in history.history.items()})
    val_loss, val_acc = model.evaluate(val_ds, verbose=0)
    metrics = {"val_accuracy": float(val_acc), "val_loss": float(val_loss),
               "train_images": len(train_data), "val_images": len(val_data)}
    write_json(run_dir / "metrics.json", metrics)
    write_json(run_dir / "data_report.json", {
        "classes": class_names,
        "train_per_class": np.bincount(train_data.labels, minlength=len(class_names)).tolist(),
        "val_per_class": np.bincount(val_data.labels, minlength=len(class_names)).tolist(),
        "skipped": [{"path": str(p), "reason": r} for p, r in train_data.skipped + val_data.skipped],
    })
    return RunResult(run_dir, model_path, card, metrics, val_data)
