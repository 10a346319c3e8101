"""Runtime vs Keras on small real models converted here: TFLite fp32/int8, ONNX (tf2onnx), Keras itself.

Needs the train extra (the ``train`` marker skips it without); builds and converts in about 7 s of CPU time.
"""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from edgecnn.card import ModelCard, Normalization
from edgecnn.runtime import Classifier, softmax

pytestmark = pytest.mark.train

SIZE = 16
LABELS = ["daisy", "rose", "tulip"]


def _card(fmt, output_kind="softmax", labels=LABELS, quantization="none"):
    return ModelCard(labels=list(labels), input_height=SIZE, input_width=SIZE,
                     normalization=Normalization.raw("Rescaling(1/127.5, offset=-1)"), output_kind=output_kind,
                     format=fmt, quantization=quantization, architecture="test_cnn")


@pytest.fixture(scope="module")
def tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow

    return tensorflow


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(7)
    # Smooth-ish random images so the models' outputs differ clearly between images.
    small = rng.integers(0, 256, (6, 4, 4, 3), dtype=np.uint8)
    return [cv2.resize(im, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR) for im in small]


def _build(keras, head: str, seed: int):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    units, act = {"softmax": (3, "softmax"), "logits": (3, None), "sigmoid": (1, "sigmoid")}[head]
    outputs = keras.layers.Dense(units, activation=act, kernel_initializer=keras.initializers.RandomNormal(0, 2))(x)
    return keras.Model(inputs, outputs)


def _tflite(tf, model, int8_io=None, reps=None):
    @tf.function(input_signature=[tf.TensorSpec([None, SIZE, SIZE, 3], tf.float32)])
    def serve(x):
        return model(x, training=False)

    # No trackable object argument: with it, int8 calibration fails on READ_VARIABLE (TF 2.21).
    conv = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()])
    if int8_io:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([r[None].astype(np.float32)] for r in reps)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = int8_io
        conv.inference_output_type = int8_io
    return conv.convert()


@pytest.fixture(scope="module")
def artifacts(tf, tmp_path_factory, images):
    import keras

    out = tmp_path_factory.mktemp("keras_models")
    rng = np.random.default_rng(3)
    reps = [cv2.resize(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8), (SIZE, SIZE)) for _ in range(64)]
    models = {head: _build(keras, head, seed) for seed, head in enumerate(["softmax", "logits", "sigmoid"])}
    paths = {}

    m = models["softmax"]
    paths["keras"] = out / "model.keras"
    m.save(paths["keras"])
    _card("keras").save(paths["keras"])
    paths["fp32"] = out / "model_fp32.tflite"
    paths["fp32"].write_bytes(_tflite(tf, m))
    _card("tflite-fp32").save(paths["fp32"])
    paths["int8"] = out / "model_int8.tflite"
    paths["int8"].write_bytes(_tflite(tf, m, tf.int8, reps))
    _card("tflite-int8", quantization="int8").save(paths["int8"])
    paths["uint8"] = out / "model_uint8.tflite"
    paths["uint8"].write_bytes(_tflite(tf, m, tf.uint8, reps))
    _card("tflite-int8", quantization="int8").save(paths["uint8"])

    import tf2onnx

    @tf.function(input_signature=[tf.TensorSpec([None, SIZE, SIZE, 3], tf.float32, name="image")])
    def serve(x):
        return m(x, training=False)

    paths["onnx"] = out / "model.onnx"
    tf2onnx.convert.from_function(serve, input_signature=serve.input_signature, opset=17,
                                  output_path=str(paths["onnx"]))
    _card("onnx").save(paths["onnx"])

    paths["logits"] = out / "logits.tflite"
    paths["logits"].write_bytes(_tflite(tf, models["logits"]))
    _card("tflite-fp32", output_kind="logits").save(paths["logits"])
    paths["sigmoid"] = out / "sigmoid.tflite"
    paths["sigmoid"].write_bytes(_tflite(tf, models["sigmoid"]))
    _card("tflite-fp32", output_kind="sigmoid", labels=["cat", "dog"]).save(paths["sigmoid"])

    batch = np.stack(images).astype(np.float32)
    expected = {head: model(batch, training=False).numpy() for head, model in models.items()}
    return paths, expected


def _rgb(img_bgr):
    return img_bgr[..., ::-1]


@pytest.mark.parametrize("name,atol", [("keras", 1e-5), ("fp32", 1e-4), ("onnx", 1e-4)])
def test_float_formats_match_keras(artifacts, images, name, atol):
    paths, expected = artifacts
    clf = Classifier(paths[name])
    assert clf.labels == LABELS
    # Images are handed over as RGB arrays (Keras saw them as RGB).
    got = np.stack([clf.predict(np.ascontiguousarray(img), order="RGB").probabilities for img in images])
    np.testing.assert_allclose(got, expected["softmax"], atol=atol)


@pytest.mark.parametrize("name", ["int8", "uint8"])
def test_int8_tflite_close_to_keras(artifacts, images, name):
    paths, expected = artifacts
    clf = Classifier(paths[name], threads=2)
    assert clf.input_spec.is_quantized and clf.input_spec.dtype == np.dtype(name)
    got = np.stack([p.probabilities for p in clf.predict_batch(list(images), order="RGB")])
    assert np.abs(got - expected["softmax"]).max() < 0.08
    assert (got.argmax(1) == expected["softmax"].argmax(1)).mean() >= 5 / 6


def test_dynamic_batch_tflite_and_bgr_files(artifacts, images, tmp_path):
    paths, expected = artifacts
    files = []
    for i, img in enumerate(images):
        files.append(tmp_path / f"im{i}.png")
        cv2.imwrite(str(files[-1]), _rgb(img))  # cv2 writes BGR: store the RGB image correctly
    clf = Classifier(paths["fp32"])
    assert clf.input_spec.batch is None  # dynamic batch: one interpreter call for all
    preds = clf.predict_batch(files)
    np.testing.assert_allclose(np.stack([p.probabilities for p in preds]), expected["softmax"], atol=1e-4)
    assert preds[0].input == str(files[0])


def test_logits_card_gets_softmax(artifacts, images):
    paths, expected = artifacts
    clf = Classifier(paths["logits"])
    got = np.stack([clf.predict(np.ascontiguousarray(img), order="RGB").probabilities for img in images])
    np.testing.assert_allclose(got, softmax(expected["logits"].astype(np.float32)), atol=1e-4)


def test_sigmoid_tflite_is_binary(artifacts, images):
    paths, expected = artifacts
    clf = Classifier(paths["sigmoid"])
    pred = clf.predict(np.ascontiguousarray(images[0]), order="RGB")
    p = float(expected["sigmoid"][0, 0])
    np.testing.assert_allclose(pred.probabilities, [1 - p, p], atol=1e-4)
    assert pred.label == ("dog" if p > 0.5 else "cat")


def test_card_embedded_in_tflite_metadata(artifacts, images, tmp_path):
    from edgecnn.export import embed

    paths, expected = artifacts
    card = _card("tflite-fp32", labels=["x", "y", "z"])
    path = tmp_path / "embedded.tflite"  # no sidecar card
    path.write_bytes(embed.embed_in_tflite(paths["fp32"].read_bytes(), card))
    clf = Classifier(path)
    assert clf.card is not None and clf.card.labels == ["x", "y", "z"] and clf.labels == ["x", "y", "z"]
    got = clf.predict(np.ascontiguousarray(images[1]), order="RGB").probabilities
    np.testing.assert_allclose(got, expected["softmax"][1], atol=1e-4)
