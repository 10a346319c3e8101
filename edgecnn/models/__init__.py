"""Architectures: every model takes raw RGB pixels (0..255) and normalizes inside itself."""

from edgecnn.models.registry import ModelSpec, create_model, get_spec, list_models, register_model

__all__ = ["ModelSpec", "create_model", "get_spec", "list_models", "register_model"]
