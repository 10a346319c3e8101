"""Read the ModelCard embedded in an exported model, without TensorFlow or onnx.

TFLite: edgecnn adds entries to the flatbuffer's ``Model.metadata`` list
(``edgecnn.card``: the card as JSON; ``edgecnn.labels``: one label per line),
each pointing at a buffer; they are read here with a few lines of manual
flatbuffer parsing, so a device needs nothing beyond numpy.
ONNX: the card is the ``edgecnn.card`` entry of ``metadata_props``, read via
``onnxruntime`` (the ``onnx`` package is not installed on devices).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from edgecnn.card import ModelCard
from edgecnn.errors import ModelError

CARD_KEY = "edgecnn.card"
LABELS_KEY = "edgecnn.labels"

# Field indices in the TFLite schema (tensorflow/compiler/mlir/lite/schema/schema.fbs).
_MODEL_BUFFERS, _MODEL_METADATA = 4, 6
_METADATA_NAME, _METADATA_BUFFER = 0, 1
_BUFFER_DATA, _BUFFER_OFFSET, _BUFFER_SIZE = 0, 1, 2


def read_embedded_card(path: str | os.PathLike) -> ModelCard | None:
    """The card embedded in a ``.tflite`` or ``.onnx`` file, or None when it has none."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        text = tflite_metadata(path.read_bytes()).get(CARD_KEY)
        return ModelCard.from_json(text.decode("utf-8"), source=f"card embedded in {path}") if text else None
    if suffix == ".onnx":
        text = onnx_metadata(path).get(CARD_KEY)
        return ModelCard.from_json(text, source=f"card embedded in {path}") if text else None
    return None


def onnx_metadata(path: str | os.PathLike) -> dict[str, str]:
    """``metadata_props`` of an ONNX model, read through onnxruntime."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return dict(session.get_modelmeta().custom_metadata_map)


def tflite_metadata(model: bytes) -> dict[str, bytes]:
    """Every ``Model.metadata`` entry of a TFLite flatbuffer: name -> buffer bytes."""
    try:
        return _FlatModel(model).metadata()
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise ModelError(f"not a readable TFLite flatbuffer ({exc}); re-export the model with edgecnn") from None


class _FlatModel:
    """Just enough of a flatbuffer reader for ``Model.metadata`` and ``Model.buffers``."""

    def __init__(self, data: bytes):
        self.data = memoryview(data)
        self.root = self._u32(0)

    def _u32(self, pos: int) -> int:
        return struct.unpack_from("<I", self.data, pos)[0]

    def _field(self, table: int, index: int) -> int | None:
        """Absolute position of field ``index`` of the table at ``table``, or None if absent."""
        vtable = table - struct.unpack_from("<i", self.data, table)[0]
        vt_size = struct.unpack_from("<H", self.data, vtable)[0]
        entry = 4 + 2 * index
        if entry >= vt_size:
            return None
        offset = struct.unpack_from("<H", self.data, vtable + entry)[0]
        return table + offset if offset else None

    def _deref(self, pos: int) -> int:
        return pos + self._u32(pos)

    def _vector(self, table: int, index: int) -> tuple[int, int]:
        """(position of first element, length) of a vector field; (0, 0) if absent."""
        pos = self._field(table, index)
        if pos is None:
            return 0, 0
        vec = self._deref(pos)
        return vec + 4, self._u32(vec)

    def _tables(self, table: int, index: int) -> list[int]:
        start, length = self._vector(table, index)
        return [self._deref(start + 4 * i) for i in range(length)]

    def _uint(self, table: int, index: int, fmt: str) -> int:
        pos = self._field(table, index)
        return struct.unpack_from(fmt, self.data, pos)[0] if pos is not None else 0

    def buffer(self, index: int) -> bytes:
        table = self._tables(self.root, _MODEL_BUFFERS)[index]
        start, length = self._vector(table, _BUFFER_DATA)
        if length:
            return bytes(self.data[start:start + length])
        offset, size = self._uint(table, _BUFFER_OFFSET, "<Q"), self._uint(table, _BUFFER_SIZE, "<Q")
        return bytes(self.data[offset:offset + size]) if offset > 1 else b""

    def metadata(self) -> dict[str, bytes]:
        entries = {}
        for table in self._tables(self.root, _MODEL_METADATA):
            start, length = self._vector(table, _METADATA_NAME)
            name = bytes(self.data[start:start + length]).decode("utf-8")
            entries[name] = self.buffer(self._uint(table, _METADATA_BUFFER, "<I"))
        return entries
