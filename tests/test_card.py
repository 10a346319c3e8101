import json

import pytest

from edgecnn.card import ModelCard, Normalization, card_path, find_card
from edgecnn.errors import CardError


def make_card(**kw):
    base = dict(labels=["cat", "dog"], input_height=32, input_width=48,
                normalization=Normalization.raw("x / 255"), architecture="simple_cnn")
    base.update(kw)
    return ModelCard(**base)


def test_round_trip_through_sidecar(tmp_path):
    artifact = tmp_path / "model_int8.tflite"
    artifact.write_bytes(b"x")
    card = make_card(format="tflite-int8", quantization="int8", output_kind="softmax", extra={"calibration": "real"})
    path = card.save(artifact)
    assert path.name == "model_int8.tflite.card.json"
    loaded = ModelCard.load(artifact)
    assert loaded == card
    assert loaded.input_size == (32, 48) and loaded.num_classes == 2
    assert loaded.normalization == Normalization([0.0, 0.0, 0.0], [1.0, 1.0, 1.0], "x / 255")
    assert find_card(artifact) == card


def test_card_file_is_plain_json_with_every_field(tmp_path):
    path = make_card().save(tmp_path / "model.keras")
    data = json.loads(path.read_text())
    for key in ("labels", "input_height", "input_width", "input_channels", "channel_order", "normalization",
                "output_kind", "format", "quantization", "architecture", "edgecnn_version"):
        assert key in data


def test_unknown_keys_are_kept_in_extra():
    card = ModelCard.from_dict({"labels": ["a", "b"], "input_height": 8, "input_width": 8, "future_field": 1})
    assert card.extra["future_field"] == 1


def test_card_path_and_missing_card(tmp_path):
    assert card_path(tmp_path / "m.onnx").name == "m.onnx.card.json"
    assert card_path(tmp_path / "m.onnx.card.json").name == "m.onnx.card.json"
    assert find_card(tmp_path / "m.onnx") is None
    with pytest.raises(CardError, match="no model card"):
        ModelCard.load(tmp_path / "m.onnx")


@pytest.mark.parametrize(
    "text, message",
    [("{not json", "not valid JSON"), ("[1, 2]", "not a JSON object"),
     ('{"labels": ["a"]}', "missing input_height, input_width"),
     ('{"labels": [], "input_height": 1, "input_width": 1}', "no labels"),
     ('{"labels": ["a"], "input_height": 1, "input_width": 1, "output_kind": "relu"}', "output_kind")],
)
def test_bad_cards_give_clear_errors(tmp_path, text, message):
    (tmp_path / "m.tflite.card.json").write_text(text)
    with pytest.raises(CardError, match=message):
        ModelCard.load(tmp_path / "m.tflite")


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path):
    make_card().save(tmp_path / "model.keras")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras.card.json"]
