"""Two-phase transfer learning: a frozen backbone, then its top layers fine-tuned.

BatchNormalization stays in inference mode while fine-tuning: every BN layer
gets ``trainable = False`` (in Keras 3 that also makes it use its moving
statistics). Passing ``training=False`` to a backbone call is not enough.
"""

from __future__ import annotations

from edgecnn.models import backbone_layers


def _is_batchnorm(layer) -> bool:
    return type(layer).__name__ == "BatchNormalization"


def freeze_backbone(model) -> None:
    """Phase 1: only the head trains."""
    for layer in backbone_layers(model):
        layer.trainable = False


def unfreeze_top(model, num_layers: int) -> int:
    """Phase 2: the top ``num_layers`` backbone layers train, BatchNorm excepted. Returns how many train."""
    layers = backbone_layers(model)
    top = set(id(layer) for layer in layers[-num_layers:])
    trainable = 0
    for layer in layers:
        layer.trainable = id(layer) in top and not _is_batchnorm(layer)
        trainable += bool(layer.trainable and layer.weights)
    return trainable

