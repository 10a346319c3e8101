"""Read the ModelCard embedded in an exported model, without TensorFlow or onnx.

TFLite: the ``edgecnn.card`` entry of the flatbuffer's ``Model.metadata``
(read by :mod:`edgecnn.runtime.tflite_meta`, which needs nothing beyond the
standard library). ONNX: the ``edgecnn.card`` entry of ``metadata_props``, read
via ``onnxruntime`` (the ``onnx`` package is not installed on devices).
"""

from __future__ import annotations

import os
from pathlib import Path

from edgecnn.card import EMBEDDED_CARD_KEY, ModelCard


def read_embedded_card(path: str | os.PathLike) -> ModelCard | None:
    """The card embedded in a ``.tflite`` or ``.onnx`` file, or None when it has none."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        from edgecnn.runtime.tflite_meta import read_metadata

        data = read_metadata(path, EMBEDDED_CARD_KEY)
        text = data.decode("utf-8") if data else None
    elif suffix == ".onnx":
        text = onnx_metadata(path).get(EMBEDDED_CARD_KEY)
    else:
        return None
    return ModelCard.from_json(text, source=f"card embedded in {path}") if text else None


def onnx_metadata(path: str | os.PathLike) -> dict[str, str]:
    """``metadata_props`` of an ONNX model, read through onnxruntime."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return dict(session.get_modelmeta().custom_metadata_map)
