"""Embed the ModelCard (and labels) inside TFLite and ONNX artifacts.

The reading side is each runtime backend's ``embedded_card()`` / ``embedded_labels()``
(TF-free, for devices): :mod:`edgecnn.runtime.tflite_meta` for TFLite, onnxruntime for ONNX.
"""

from __future__ import annotations

from edgecnn.card import EMBEDDED_CARD_KEY as CARD_KEY
from edgecnn.card import EMBEDDED_LABELS_KEY as LABELS_KEY
from edgecnn.card import ModelCard


def card_entries(card: ModelCard) -> dict[str, bytes]:
    """The metadata entries edgecnn embeds: the card as JSON and the labels, one a line."""
    return {
        CARD_KEY: card.to_json().encode("utf-8"),
        LABELS_KEY: "".join(f"{label}\n" for label in card.labels).encode("utf-8"),
    }


def embed_in_tflite(model: bytes, card: ModelCard) -> bytes:
    """Return the TFLite flatbuffer with ``edgecnn.card``/``edgecnn.labels`` metadata entries added."""
    import numpy as np
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    obj = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    obj.metadata = [m for m in (obj.metadata or []) if _name(m.name) not in (CARD_KEY, LABELS_KEY)]
    for name, payload in card_entries(card).items():
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(payload, dtype=np.uint8)
        obj.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = name
        entry.buffer = len(obj.buffers) - 1
        obj.metadata.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(obj))


def embed_in_onnx(model, card: ModelCard) -> None:
    """Set ``edgecnn.card`` and ``edgecnn.labels`` in an ``onnx.ModelProto``'s ``metadata_props``."""
    entries = {k: v.decode("utf-8") for k, v in card_entries(card).items()}
    keep = [(p.key, p.value) for p in model.metadata_props if p.key not in entries]
    del model.metadata_props[:]
    for key, value in keep + list(entries.items()):
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value


def _name(name) -> str:
    return name.decode("utf-8") if isinstance(name, bytes) else str(name)
