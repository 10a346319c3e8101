"""The TF-free embedded-card reader: bad bytes fail with a clear ModelError."""

from __future__ import annotations

import pytest

from edgecnn.card_embed import read_embedded_card, tflite_metadata
from edgecnn.errors import ModelError


def test_garbage_is_not_a_tflite_flatbuffer():
    with pytest.raises(ModelError, match="not a readable TFLite flatbuffer"):
        tflite_metadata(b"\xff\xff\xff\x7f" + b"\x00" * 8)


def test_other_formats_have_no_embedded_card(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"PK")
    assert read_embedded_card(path) is None
