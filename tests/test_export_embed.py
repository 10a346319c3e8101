"""The TF-free embedded-card reader: files without a readable card give None."""

from __future__ import annotations

from edgecnn.card_embed import read_embedded_card


def test_garbage_tflite_has_no_embedded_card(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"\xff\xff\xff\x7f" + b"\x00" * 8)
    assert read_embedded_card(path) is None


def test_other_formats_have_no_embedded_card(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"PK")
    assert read_embedded_card(path) is None
