"""Architectures: every model takes raw RGB pixels (0..255) and normalizes inside itself.

Importing the package imports each architecture module, which registers its models (timm's pattern);
the registry itself imports none of them.
"""

from edgecnn.models import mobilenet, tutorial, tutorial_blocks  # noqa: F401  (registers their architectures)
from edgecnn.models.mobilenet import backbone_layers
from edgecnn.models.registry import ModelSpec, create_model, get_spec, list_models, register_model

__all__ = ["ModelSpec", "backbone_layers", "create_model", "get_spec", "list_models", "register_model"]
