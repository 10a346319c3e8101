"""What is being exported: the Keras model, its card, and where its images live.

``MODEL`` is a training run directory (``model.keras`` + card, ``labels.txt``,
``config.json``) or any Keras image classifier file (labels then from
``--labels``). Everything is checked before anything is written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecnn.card import ModelCard, Normalization, find_card
from edgecnn.errors import CardError, LabelsError, ModelError
from edgecnn.labels import align_labels, read_labels
from edgecnn.rundir import LABELS_FILE, load_keras, model_file, run_config


@dataclass
class ModelToExport:
    model: Any  # keras.Model
    card: ModelCard
    path: Path | None = None  # the .keras file, when loaded from disk
    run_config: dict[str, Any] = field(default_factory=dict)  # the run's config.json, if any
    card_assumed: bool = False  # no card came with the model: normalization was assumed

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.model.input_shape[1:])


def load_model_to_export(model, labels: str | os.PathLike | list[str] | None = None) -> ModelToExport:
    """Resolve ``model`` (run dir, .keras file or keras.Model) and its labels into a ModelToExport."""
    if isinstance(model, (str, os.PathLike)):
        path, run_dir = model_file(model)
        keras_model = load_keras(path)
        card = find_card(path)
        config = run_config(run_dir) if run_dir else {}
        run_labels = run_dir / LABELS_FILE if run_dir else None
    else:
        path, keras_model, card, config, run_labels = None, model, None, {}, None
    _check_classifier(keras_model, path)
    assumed = card is None
    card = _card(keras_model, card, labels, run_labels, source=str(path or "the model"))
    return ModelToExport(keras_model, card, path, config, card_assumed=assumed)


def _check_classifier(model, path: Path | None) -> None:
    where = path or "the model"
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelError(f"{where} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                         f"export takes an image classifier with one image input and one output")
    shape = tuple(model.input_shape)
    if len(shape) != 4 or None in shape[1:] or shape[3] not in (1, 3):
        raise ModelError(f"{where} has input shape {shape}; export needs a fixed (batch, height, width, 1 or 3) "
                         f"image input - rebuild the model with keras.Input((H, W, 3))")
    if len(model.output_shape) != 2:
        raise ModelError(f"{where} has output shape {model.output_shape}; export needs (batch, classes)")


def _card(model, card: ModelCard | None, labels, run_labels: Path | None, source: str) -> ModelCard:
    """The model's card, with ``labels`` overriding; built from the model when there is no card."""
    num_outputs = model.output_shape[-1]
    if labels is not None:
        names = read_labels(labels) if isinstance(labels, (str, os.PathLike)) else list(labels)
        names = align_labels(names, num_outputs, source=str(labels if not isinstance(labels, list) else "labels"))
    elif card is not None:
        names = card.labels
    elif run_labels is not None and run_labels.is_file():
        names = align_labels(read_labels(run_labels), num_outputs, source=str(run_labels))
    else:
        raise LabelsError(f"no labels for {source} (no card and no labels.txt beside it); "
                          f"pass --labels FILE with one class name per line")
    h, w, c = model.input_shape[1:]
    if card is None:
        card = ModelCard(
            labels=names, input_height=h, input_width=w, input_channels=c,
            normalization=Normalization.raw("assumed inside the model (exported without a card)"),
            output_kind=_output_kind(model), architecture=model.name,
        )
    elif (card.input_height, card.input_width) != (h, w):
        raise CardError(f"the card says {card.input_height}x{card.input_width} input but the model takes {h}x{w}; "
                        f"fix or delete {source}.card.json")
    return card.replace(labels=names)


def _output_kind(model) -> str:
    """A first guess from the structure (nested models included); export settles it from the model's outputs."""
    from edgecnn.runtime.keras_graph import final_activation

    kind = final_activation(model)
    if kind in ("softmax", "sigmoid"):
        return kind
    return "sigmoid" if model.output_shape[-1] == 1 else "logits"
