"""The pooled features of a Keras classifier: the input of its final Dense layer, a second output of its exports.

MobileNet transfer models: ``head_pool`` (``head_dropout`` passes it on unchanged at inference); the tutorial
CNNs: the output of ``fc`` (or ``flatten``). Exported models carry them as a second output named
:data:`~edgecnn.runtime.base.FEATURES_OUTPUT` after the class scores, which stay first.
"""

from __future__ import annotations

import numpy as np

from edgecnn.runtime.base import FEATURES_OUTPUT
from edgecnn.runtime.keras_graph import with_features

CLASS_OUTPUT = "class_scores"  # the class output's name in an export's signature (sorts before "features": first)
BATCH = 32


def serving_outputs(model):
    """``image -> {CLASS_OUTPUT: scores[, FEATURES_OUTPUT: features]}`` in inference mode, for the converters."""
    both = with_features(model)
    if both is None:
        return lambda image: {CLASS_OUTPUT: model(image, training=False)}

    def outputs(image):
        scores, features = both(image, training=False)
        return {CLASS_OUTPUT: scores, FEATURES_OUTPUT: features}

    return outputs


def predict_with_features(model, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(class outputs, pooled features or None) of ``model`` for float32-able ``images``, in one pass."""
    both = with_features(model)
    images = images.astype("float32")
    if both is None:
        return model.predict(images, batch_size=BATCH, verbose=0), None
    scores, features = both.predict(images, batch_size=BATCH, verbose=0)
    return scores, features.astype(np.float32)
