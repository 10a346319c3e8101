"""Feature statistics of an export (:class:`~edgecnn.runtime.novelty.FeatureStats`), from the Keras model.

Fitted on the pooled features of up to :data:`MAX_TRAINING_IMAGES` training images
of the run (a class-stratified sample, the same for the same seed), the threshold
set on the held-out validation images the export is checked on. A model without
a run folder (a plain ``.keras`` file) has no training images: no statistics.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from edgecnn.data.imageset import ImageSet
from edgecnn.export.calibration import training_images, validation_images
from edgecnn.export.features import predict_with_features
from edgecnn.export.model_to_export import ModelToExport
from edgecnn.runtime.novelty import FeatureStats

log = logging.getLogger("edgecnn.export")

MAX_TRAINING_IMAGES = 2000


def feature_stats(source: ModelToExport, run_dir: Path | None, held_out: ImageSet | None,
                  held_features: np.ndarray | None, count: int, seed: int) -> FeatureStats | None:
    """Statistics of the training images' features, threshold from ``held_out`` (their ``held_features``, None:
    computed here); None, with one info line, when there are no training images."""
    train = training_images(source.run_config, run_dir, source.card.labels, source.input_shape,
                            MAX_TRAINING_IMAGES, seed)
    if train is None or not len(train.images):
        log.info("feature statistics skipped: no training images (export a training run folder for novelty scores)")
        return None
    log.info(f"feature statistics: {len(train.images)} training images from {train.source}")
    _, features = predict_with_features(source.model, train.images)
    stats = FeatureStats.fit(features, train.labels, source=train.source)
    if held_out is None:
        held_out = validation_images(source.run_config, run_dir, None, source.card.labels, source.input_shape,
                                     count, seed)
    if held_out.synthetic:
        return stats.calibrated(features, f"{train.source} (training images: no held-out images)")
    if held_features is None:
        _, held_features = predict_with_features(source.model, held_out.images)
    return stats.calibrated(held_features, held_out.source)
