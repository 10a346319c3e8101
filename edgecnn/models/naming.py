"""Deterministic layer names: auto-generated Keras names depend on what the process built before."""

from __future__ import annotations

import re

_AUTO = re.compile(r"^(?P<base>[a-z][a-z0-9_]*?)(_\d+)?$")


def _snake(class_name: str) -> str:
    """Keras' own auto-name for a class (``ReLU`` -> ``re_lu``)."""
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def stabilize_names(model):
    """Rename auto-named layers (``activation_17``) to per-model counters (``activation_3``)."""
    counts: dict[str, int] = {}
    for layer in model.layers:
        base = _snake(type(layer).__name__)
        match = _AUTO.match(layer.name)
        if not match or match.group("base") != base:
            continue
        counts[base] = counts.get(base, 0) + 1
        layer.name = base if counts[base] == 1 else f"{base}_{counts[base] - 1}"
    return model
