"""Architecture registry, as in timm: a decorator fills a dict; create_model builds by name.

The registry imports no architecture: :mod:`edgecnn.models` imports each architecture module, whose
``@register_model`` decorators fill it (none imports Keras until a model is built).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Callable

from edgecnn.errors import UsageError, did_you_mean


@dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: Callable  # builder(num_classes, input_shape, **kwargs) -> keras.Model
    default_size: int
    description: str
    binary: bool = False  # a single sigmoid output (two labels)
    in_model_normalization: str = "x / 255"  # recorded in the card
    min_size: int = 16
    transfer: bool = False  # a pretrained backbone + head: accepts weights=..., trains in two phases


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str, default_size: int, description: str, **spec_kwargs):
    """Decorator registering ``builder(num_classes, input_shape, **kwargs)`` under ``name``."""

    def wrap(builder):
        _REGISTRY[name] = ModelSpec(name, builder, default_size, description, **spec_kwargs)
        return builder

    return wrap


def list_models(pattern: str = "*") -> list[str]:
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def get_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UsageError(
            f"unknown architecture {name!r}{did_you_mean(name, _REGISTRY)}; known: {', '.join(sorted(_REGISTRY))}"
        ) from None


def create_model(name: str, num_classes: int, input_shape=(32, 32, 3), **kwargs):
    """Build architecture ``name``: raw RGB 0..255 in, class probabilities out.

    Transfer architectures also take ``weights`` ("imagenet", "none" or a
    Keras weights file for the backbone) and, for MobileNetV2, ``alpha``.
    """
    spec = get_spec(name)
    h, w = input_shape[:2]
    if min(h, w) < spec.min_size:
        raise UsageError(f"{name} needs inputs of at least {spec.min_size}px; received {h}x{w}")
    if spec.binary and num_classes != 2:
        raise UsageError(f"{name} is a binary (single sigmoid) model and needs exactly 2 classes; received "
                         f"{num_classes}")
    if num_classes < 2:
        raise UsageError(f"a classifier needs at least 2 classes; received {num_classes}")
    if not spec.transfer and kwargs.get("weights") not in (None, "none"):
        raise UsageError(f"{name} has no pretrained backbone; drop --weights or pick one of "
                         f"{', '.join(n for n in list_models() if get_spec(n).transfer)}")
    if not spec.transfer:
        kwargs.pop("weights", None)
    return spec.builder(num_classes, tuple(input_shape), **kwargs)
