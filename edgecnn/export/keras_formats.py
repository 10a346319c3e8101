"""Keras-side exporters: the .keras file itself and a TensorFlow SavedModel folder."""

from __future__ import annotations

import shutil
from pathlib import Path

from edgecnn.card import SAVED_MODEL_CARD_FILE, ModelCard
from edgecnn.export.job import ExportJob
from edgecnn.formats import Format


def export_keras(job: ExportJob, fmt: Format, dest: Path) -> ModelCard:
    job.model.save(dest)
    return job.card_for(fmt)


def export_saved_model(job: ExportJob, fmt: Format, dest: Path) -> ModelCard:
    """A SavedModel whose ``serve`` endpoint takes float32 raw pixels (dynamic batch), inference mode."""
    shutil.copytree(scratch_saved_model(job), dest)
    card = job.card_for(fmt)
    (dest / SAVED_MODEL_CARD_FILE).write_text(card.to_json(), encoding="utf-8")
    return card


def scratch_saved_model(job: ExportJob) -> Path:
    """The job's inference-mode SavedModel in its scratch folder, traced once for all formats that need one."""
    path = job.workdir / "saved_model"
    if not path.exists():
        write_saved_model(job.model, path)
    return path


def write_saved_model(model, dest: Path) -> Path:
    """Write ``model`` as a SavedModel with one ``serve`` endpoint: float32 raw pixels, any batch, inference mode;
    outputs ``class_scores`` and, where the model has them, its pooled ``features``."""
    import keras
    import tensorflow as tf

    from edgecnn.export.features import serving_outputs

    archive = keras.export.ExportArchive()
    archive.track(model)
    # Not model.export(): its endpoint leaves augmentation layers (RandomFlip...) active.
    archive.add_endpoint("serve", serving_outputs(model),  # class scores first, then the features if any
                         input_signature=[tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="image")])
    archive.write_out(str(dest), verbose=False)
    return dest
