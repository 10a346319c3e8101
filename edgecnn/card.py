"""ModelCard: the one contract between training, export, runtime and benchmark.

A card travels with every artifact as ``<artifact>.card.json`` (e.g.
``model_int8.tflite.card.json``) and, where the format allows, embedded in it.
It states how pixels must be prepared; nothing downstream guesses.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecnn._io import write_json
from edgecnn._version import __version__
from edgecnn.errors import CardError

CARD_SUFFIX = ".card.json"
# Names of the card where it is embedded: TFLite metadata / ONNX metadata_props entries, SavedModel file.
EMBEDDED_CARD_KEY = "edgecnn.card"
EMBEDDED_LABELS_KEY = "edgecnn.labels"
SAVED_MODEL_CARD_FILE = "edgecnn.card.json"
OUTPUT_KINDS = ("softmax", "sigmoid", "logits")


@dataclass
class Normalization:
    """How the runtime turns RGB pixels (0..255) into the model's float input.

    The runtime feeds ``(pixel - mean) / std``. edgecnn's own models normalize
    inside themselves, so their cards say mean 0, std 1 (raw pixels) and
    describe the in-model step in ``in_model``.
    """

    mean: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    std: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])
    in_model: str = "none"

    @classmethod
    def raw(cls, in_model: str) -> "Normalization":
        return cls(in_model=in_model)


@dataclass
class ModelCard:
    labels: list[str]
    input_height: int
    input_width: int
    input_channels: int = 3
    channel_order: str = "RGB"
    layout: str = "NHWC"
    normalization: Normalization = field(default_factory=Normalization)
    output_kind: str = "softmax"
    format: str = "keras"
    quantization: str = "none"
    architecture: str = "unknown"
    resize: str = "stretch"
    edgecnn_version: str = __version__
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if isinstance(self.normalization, dict):
            self.normalization = Normalization(**self.normalization)
        if self.output_kind not in OUTPUT_KINDS:
            raise CardError(f"card output_kind {self.output_kind!r} is not one of {', '.join(OUTPUT_KINDS)}")
        if not self.labels:
            raise CardError("card has no labels; every model card needs its class labels")

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def input_size(self) -> tuple[int, int]:
        return self.input_height, self.input_width

    def replace(self, **changes) -> "ModelCard":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "card") -> "ModelCard":
        """The card in ``data`` (parsed JSON); CardError naming ``source``, the field and what it needs when a
        field is missing or has the wrong type or value. Keys it does not know go to ``extra``."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = {k: v for k, v in data.items() if k not in names}
        known = {k: v for k, v in data.items() if k in names}
        missing = [n for n in ("labels", "input_height", "input_width") if n not in known]
        if missing:
            raise CardError(f"{source} is missing {', '.join(missing)}; re-export the model with edgecnn")
        check_fields(known, source)
        try:
            card = cls(**known)
        except TypeError as exc:
            raise CardError(f"{source} is malformed ({exc}); re-export the model with edgecnn") from None
        card.extra.update(unknown)
        return card

    @classmethod
    def from_json(cls, text: str, source: str = "card") -> "ModelCard":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CardError(f"{source} is not valid JSON ({exc}); re-export the model with edgecnn") from None
        if not isinstance(data, dict):
            raise CardError(f"{source} is not a JSON object; re-export the model with edgecnn")
        return cls.from_dict(data, source)

    def save(self, artifact: str | os.PathLike) -> Path:
        """Write the sidecar card for ``artifact`` atomically and return its path."""
        path = card_path(artifact)
        write_json(path, self.to_dict())
        return path

    @classmethod
    def load(cls, artifact: str | os.PathLike) -> "ModelCard":
        path = card_path(artifact)
        if not path.is_file():
            raise CardError(f"no model card at {path}; export the model with edgecnn or pass --labels")
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise CardError(f"cannot read the model card {path} ({exc.strerror}); check its permissions") from None
        try:
            text = raw.decode("utf-8-sig")  # a byte-order mark, as some editors write, is fine
        except UnicodeDecodeError:
            utf16 = raw[:2] in (b"\xff\xfe", b"\xfe\xff")
            raise CardError(f"{path} is not UTF-8 text{' (it is UTF-16)' if utf16 else ''}; save it as UTF-8 JSON "
                            f"or re-export the model with edgecnn") from None
        return cls.from_json(text, source=str(path))


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


STRING = (lambda v: isinstance(v, str), "a string")
SIZE = (lambda v: _is_int(v) and v >= 1, "a whole number >= 1")
# What each field of a card must be: (test, what it expects). ``normalization`` is checked key by key.
FIELDS = {
    "labels": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
               'a list of class names, e.g. ["cat", "dog"]'),
    "input_height": SIZE,
    "input_width": SIZE,
    "input_channels": SIZE,
    "channel_order": (lambda v: isinstance(v, str) and v.upper() in ("RGB", "BGR"), '"RGB" or "BGR"'),
    "layout": STRING,
    "normalization": (lambda v: isinstance(v, dict), 'an object, e.g. {"mean": [0, 0, 0], "std": [1, 1, 1]}'),
    "output_kind": (lambda v: isinstance(v, str) and v in OUTPUT_KINDS, f"one of {', '.join(OUTPUT_KINDS)}"),
    "format": STRING,
    "quantization": STRING,
    "architecture": STRING,
    "resize": STRING,
    "edgecnn_version": STRING,
    "extra": (lambda v: isinstance(v, dict), "an object"),
}


def check_fields(data: dict[str, Any], source: str) -> None:
    """CardError (one line: the card, the field, what it is and what it should be) for the first bad field."""
    for name, (valid, expected) in FIELDS.items():
        if name in data and not valid(data[name]):
            raise _bad_field(source, name, data[name], expected)
    lengths = sorted({1, 3, data.get("input_channels", 3)})  # one value, or one per channel (3 as edgecnn writes)
    for key, value in data.get("normalization", {}).items():
        if key == "in_model":
            valid, expected = isinstance(value, str), "a string"
        elif key in ("mean", "std"):
            valid = isinstance(value, list) and len(value) in lengths and all(map(_is_number, value))
            valid = valid and (key == "mean" or 0 not in value)
            expected = (f"a list of {' or '.join(map(str, lengths))} finite numbers"
                        + (", none of them 0" if key == "std" else ""))
        else:
            valid, expected = False, "only mean, std and in_model in normalization"
        if not valid:
            raise _bad_field(source, f"normalization.{key}", value, expected)


def _bad_field(source: str, name: str, value, expected: str) -> CardError:
    shown = json.dumps(value, default=str)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return CardError(f"{source}: field {name!r} is {shown}; expected {expected}; fix the card or re-export the "
                     f"model with edgecnn")


def card_path(artifact: str | os.PathLike) -> Path:
    """``model.tflite`` -> ``model.tflite.card.json``; a card path is returned unchanged."""
    artifact = Path(artifact)
    if artifact.name.endswith(CARD_SUFFIX):
        return artifact
    return artifact.with_name(artifact.name + CARD_SUFFIX)


def find_card(artifact: str | os.PathLike) -> ModelCard | None:
    """The sidecar card of ``artifact`` if there is one, else None."""
    path = card_path(artifact)
    return ModelCard.load(artifact) if path.is_file() else None
