"""Architectures: every model takes raw RGB pixels (0..255) and normalizes inside itself."""

from edgecnn.models.registry import ModelSpec, create_model, get_spec, list_models, register_model

__all__ = ["ModelSpec", "backbone_layers", "create_model", "get_spec", "list_models", "register_model"]


def backbone_layers(model) -> list:
    """The backbone layers of a transfer model (see edgecnn.models.mobilenet)."""
    from edgecnn.models.mobilenet import backbone_layers as _backbone_layers

    return _backbone_layers(model)
