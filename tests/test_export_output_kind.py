"""Output kind from evidence: what a model outputs on images decides softmax / sigmoid / logits, nested models too."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import skip_file_without_train_extra

pytestmark = pytest.mark.train  # skipped without the train extra (conftest.py)
skip_file_without_train_extra()  # before importing the stack

import keras  # noqa: E402

from edgecnn.card import ModelCard  # noqa: E402
from edgecnn.errors import CardError  # noqa: E402
from edgecnn.export import output_kind  # noqa: E402
from edgecnn.runtime.keras_graph import final_activation  # noqa: E402

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"
CORAL = SHARED / "data" / "coral"
IMAGENET_WEIGHTS = SHARED / "weights" / "mobilenet_v2_1.0_224_imagenet.weights.h5"


def _nested(classes: int = 120, activation="softmax", size: int = 16):
    """A keras.applications-style network (its own Functional model ending in the activation) behind Rescaling."""
    from keras import layers

    inner_in = keras.Input((size, size, 3))
    x = layers.Conv2D(8, 3, activation="relu")(inner_in)
    x = layers.GlobalAveragePooling2D()(x)
    inner = keras.Model(inner_in, layers.Dense(classes, activation=activation, name="predictions")(x), name="net")
    outer_in = keras.Input((size, size, 3), name="image")
    return keras.Model(outer_in, inner(layers.Rescaling(1 / 127.5, offset=-1)(outer_in)))


def test_observed_kinds():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(20, 7))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert output_kind.observed(probs) == "softmax"
    assert output_kind.observed(logits) == "logits"
    assert output_kind.observed(1 / (1 + np.exp(-logits))) == "probabilities"
    assert output_kind.observed(rng.random((20, 1))) == "probabilities"
    assert output_kind.observed(np.full((4, 3), np.nan)) == "logits"


def test_structure_is_read_through_nested_models():
    assert final_activation(_nested()) == "softmax"
    assert final_activation(_nested(activation="sigmoid")) == "sigmoid"
    assert final_activation(_nested(activation=None)) == "linear"
    assert _nested().layers[-1].__class__.__name__ == "Functional"  # the outer model's last layer hides it


def test_infer_uses_outputs_then_structure():
    images = np.random.default_rng(1).integers(0, 256, (12, 16, 16, 3)).astype("float32")
    for activation, expected in (("softmax", "softmax"), ("sigmoid", "sigmoid"), (None, "logits")):
        model = _nested(activation=activation)
        found = output_kind.infer(model, model.predict(images, verbose=0), "test images")
        assert found.kind == expected, (activation, found)
        assert "12 images from test images" in found.evidence


def test_export_decides_nested_softmax_and_refuses_a_contradicting_card(tmp_path):
    from edgecnn.export import export

    model = _nested()
    labels = [f"class_{i}" for i in range(120)]
    report = export(model, "tflite-fp32", tmp_path / "a", labels=labels, val_samples=16)
    card = ModelCard.load(tmp_path / "a" / "model_fp32.tflite")
    assert card.output_kind == "softmax" and "summing to 1" in card.extra["output_kind_evidence"]
    assert report.output_kind["kind"] == "softmax"

    path = tmp_path / "nested.keras"
    model.save(path)
    ModelCard(labels=labels, input_height=16, input_width=16, output_kind="logits").save(path)
    with pytest.raises(CardError, match="card says output_kind logits .* softmax.*--output-kind"):
        export(path, "tflite-fp32", tmp_path / "b", validate=False)
    assert not (tmp_path / "b").exists()
    report = export(path, "tflite-fp32", tmp_path / "c", validate=False, output_kind="logits")
    assert ModelCard.load(tmp_path / "c" / "model_fp32.tflite").output_kind == "logits"
    assert any("--output-kind logits contradicts" in w for w in report.warnings)


@pytest.mark.slow
def test_nested_imagenet_softmax_exports_and_predict_matches_keras(tmp_path, capsys):
    """MobileNetV2 with its 1000-class softmax inside a Functional model behind Rescaling, as users build them."""
    if not (IMAGENET_WEIGHTS.is_file() and CORAL.is_dir()):
        pytest.skip("needs ../shared/weights and ../shared/data/coral")
    from keras import layers

    from edgecnn.cli import main
    from edgecnn.data.decode import decode_rgb, resize
    from edgecnn.export import export

    size = 160
    net = keras.applications.MobileNetV2(input_shape=(size, size, 3), include_top=True, weights=None, classes=1000)
    net.load_weights(str(IMAGENET_WEIGHTS))
    inputs = keras.Input((size, size, 3), name="image")
    model = keras.Model(inputs, net(layers.Rescaling(1 / 127.5, offset=-1)(inputs)))
    path = tmp_path / "classifier.keras"
    model.save(path)

    photos = [CORAL / n for n in ("cat.bmp", "grace_hopper.bmp", "bird.bmp", "sunflower.bmp")]
    calib = tmp_path / "calib"
    calib.mkdir()
    flowers = sorted((SHARED / "data" / "flowers5" / "val").rglob("*.jpg"))[::40][:20]
    for i, photo in enumerate(photos + flowers):
        (calib / f"{i}{photo.suffix}").write_bytes(photo.read_bytes())
    out = tmp_path / "out"
    report = export(path, "tflite-int8,onnx", out, labels=CORAL / "imagenet_labels.txt", calib_data=calib,
                    calib_samples=24, val_samples=24)
    assert report.output_kind["kind"] == "softmax"
    for name in ("model_int8.tflite", "model.onnx"):
        assert ModelCard.load(out / name).output_kind == "softmax"

    expected = model.predict(np.stack([resize(decode_rgb(p), (size, size)) for p in photos]).astype("float32"),
                             verbose=0)
    for name in ("model_int8.tflite", "model.onnx"):
        capsys.readouterr()
        assert main(["predict", str(out / name), *map(str, photos), "--json", "--top-k", "1"]) == 0
        lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
        for line, want in zip(lines, expected):
            top = line["top"][0]
            assert top["index"] == int(want.argmax()), (name, line)
            assert abs(top["score"] - float(want.max())) <= 0.05, (name, line, float(want.max()))
