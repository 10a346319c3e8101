"""Interop: standard TFLite metadata written into exports and read from models nobody here made,
and edgecnn exports in MediaPipe Tasks' ImageClassifier."""

from __future__ import annotations

import importlib.util
import json
import os
import zipfile

import cv2
import numpy as np
import pytest
from conftest import CORAL_MODEL

from edgecnn.card import ModelCard, Normalization
from edgecnn.runtime import Classifier
from edgecnn.tflite_metadata import LABELS_FILE, METADATA_KEY
from edgecnn.tflite_metadata.read import read_metadata, read_standard_metadata
from edgecnn.tflite_metadata.write import add_entries, build_standard_metadata

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 8


@pytest.fixture(scope="module")
def tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow

    return tensorflow


def _brightness_tflite(tf, outputs: int = 2) -> bytes:
    """A float classifier of mean brightness for input in 0..1: class 0 ("light") when the mean is above 0.5."""
    import keras

    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    dense = keras.layers.Dense(outputs, activation="softmax" if outputs > 1 else "sigmoid")
    out = dense(x)
    # logits: 10 * (mean - 0.5) and its negative (one output: the first only)
    w = np.zeros((3, outputs), np.float32)
    w[:, 0] = 10 / 3
    b = np.array([-5.0, 5.0][:outputs], np.float32)
    if outputs > 1:
        w[:, 1] = -10 / 3
    dense.set_weights([w, b])
    model = keras.Model(inputs, out)

    @tf.function(input_signature=[tf.TensorSpec([1, SIZE, SIZE, 3], tf.float32)])
    def serve(x):
        return model(x, training=False)

    return tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()]).convert()


def _card(labels=("light", "dark"), output_kind="softmax") -> ModelCard:
    return ModelCard(labels=list(labels), input_height=SIZE, input_width=SIZE, output_kind=output_kind,
                     normalization=Normalization.raw("none"), format="tflite-fp32", architecture="brightness")


def _gray(tmp_path, level: int):
    path = tmp_path / f"gray{level}.png"
    cv2.imwrite(str(path), np.full((12, 12, 3), level, np.uint8))
    return path


@pytest.mark.train
def test_export_embedding_keeps_card_and_standard_metadata_and_label_zip(tf, tmp_path):
    from edgecnn.export.embed import embed_in_tflite

    card = _card(labels=("light", "dark"))
    data = embed_in_tflite(_brightness_tflite(tf), card)
    data = embed_in_tflite(data, card)  # embedding again replaces, never duplicates or loses the zip
    path = tmp_path / "model.tflite"  # no sidecar card
    path.write_bytes(data)

    assert ModelCard.from_json(read_metadata(path, "edgecnn.card").decode()) == card
    meta = read_standard_metadata(path)
    assert meta.name == "brightness image classifier" and meta.color_space == "RGB"
    assert meta.mean == (0.0, 0.0, 0.0) and meta.std == (1.0, 1.0, 1.0)  # edgecnn models normalize inside
    assert meta.labels_file == "labels.txt" and meta.labels == ("light", "dark")
    with zipfile.ZipFile(path) as z:
        assert z.namelist() == ["labels.txt"]
        assert all(info.compress_type == zipfile.ZIP_STORED for info in z.infolist())
    clf = Classifier(path)  # the interpreter still loads the model with the zip appended
    assert clf.card == card and clf.sources["normalization"] == "edgecnn card"


@pytest.mark.train
def test_binary_sigmoid_export_labels_its_single_output_with_the_positive_class(tf, tmp_path):
    from edgecnn.export.embed import embed_in_tflite

    path = tmp_path / "binary.tflite"
    path.write_bytes(embed_in_tflite(_brightness_tflite(tf, outputs=1), _card(("cat", "dog"), "sigmoid")))
    assert read_standard_metadata(path).labels == ("dog",)  # MediaPipe shows one score: P(dog)
    assert Classifier(path).labels == ["cat", "dog"]  # edgecnn keeps both, from its card


@pytest.mark.train
def test_float_model_with_standard_normalization_0_255_is_fed_0_to_1(tf, tmp_path, capsys):
    """A model made elsewhere (no edgecnn card) whose metadata says mean 0 / std 255, as MediaPipe Model Maker's."""
    from edgecnn.cli import main

    meta = build_standard_metadata(name="brightness", description="made elsewhere", version="1", mean=[0.0],
                                   std=[255.0], channels=3, num_outputs=2, probabilities=True)
    path = tmp_path / "foreign.tflite"
    path.write_bytes(add_entries(_brightness_tflite(tf), {METADATA_KEY: meta}, {LABELS_FILE: b"light\ndark\n"}))
    # 140/255 = 0.55 is light; fed as -1..1 (the old assumption) it would be 0.10, dark.
    light, dark = _gray(tmp_path, 140), _gray(tmp_path, 100)

    assert main(["-v", "predict", str(path), str(light), str(dark), "--json", "--top-k", "1"]) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line)["top"][0]["label"] for line in out.splitlines()] == ["light", "dark"]
    assert "normalization from TFLite metadata" in err and "labels from TFLite metadata" in err
    assert "float input and no model card" not in err  # no fallback note

    clf = Classifier(path)
    x = clf.preprocess(light)
    np.testing.assert_allclose(x, np.full_like(x, 140 / 255), rtol=1e-6)
    assert clf.sources == {"normalization": "TFLite metadata", "color": "TFLite metadata",
                           "labels": "TFLite metadata"}
    # Options still win over the metadata.
    assert Classifier(path, mean=127.5, std=127.5).sources["normalization"] == "options"


@pytest.mark.train
def test_float_model_without_metadata_still_falls_back_with_a_note(tf, tmp_path, caplog):
    path = tmp_path / "bare.tflite"
    path.write_bytes(_brightness_tflite(tf))
    clf = Classifier(path)
    assert clf.sources["normalization"] == "assumed" and clf.mean == (127.5,)
    assert "float input and no model card" in caplog.text


def test_coral_model_reads_as_before_with_its_metadata_named(coral_dir):
    """The Coral model (uint8 input) keeps raw pixels through its quantization, whatever its metadata says."""
    clf = Classifier(coral_dir / CORAL_MODEL)
    assert clf.standard.mean == (127.5,) and clf.standard.labels_file == "imagenet_labels.txt"
    assert clf.sources == {"normalization": "input quantization", "color": "TFLite metadata",
                           "labels": "TFLite metadata"}
    image = cv2.imread(str(coral_dir / "cat.bmp"))
    rgb = cv2.cvtColor(cv2.resize(image, (224, 224), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
    assert np.array_equal(clf.preprocess(image)[0], rgb)  # q = pixel, as before
    assert clf.labels[0] == "background" and clf.predict(coral_dir / "cat.bmp").label == "Egyptian cat"


def test_malformed_standard_metadata_is_ignored(coral_dir, tmp_path):
    data = bytearray((coral_dir / CORAL_MODEL).read_bytes())
    start = data.find(b"M001") + 4
    data[start:start + 200] = b"\xff" * 200  # garble the metadata flatbuffer after its identifier
    path = tmp_path / "garbled.tflite"
    path.write_bytes(bytes(data))
    assert read_standard_metadata(path) is None
    assert Classifier(path).predict(coral_dir / "cat.bmp").label == "Egyptian cat"  # labels: the zipped .txt


# ------------------------------------------------------------------------------------------- MediaPipe
def _mediapipe_tool():
    spec = importlib.util.spec_from_file_location("mediapipe_check", os.path.join(REPO, "tools", "mediapipe_check.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def mediapipe():
    tool = _mediapipe_tool()
    target, why = tool.ensure_mediapipe()
    if target is None:
        pytest.skip(f"MediaPipe cannot run here: {why}")
    return tool, target


@pytest.fixture(scope="module")
def flowers_export(tmp_path_factory):
    """A small CNN trained briefly on real flowers5 photos, exported to tflite-fp32 and tflite-int8."""
    import keras
    from conftest import shared_path

    from edgecnn.data import load_folder
    from edgecnn.export import export
    from edgecnn.models import create_model

    flowers = shared_path("data", "flowers5")
    size = 32
    train = load_folder(flowers / "train", size, limit_per_class=24)
    keras.utils.set_random_seed(0)
    model = create_model("simple_cnn", len(train.class_names), (size, size, 3))
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(train.images.astype("float32"), train.labels, epochs=6, batch_size=16, verbose=0)
    root = tmp_path_factory.mktemp("mp_flowers")
    path = root / "model.keras"
    model.save(path)
    (root / "labels.txt").write_text("".join(f"{c}\n" for c in train.class_names))
    export(path, "tflite-fp32,tflite-int8", root / "export", labels=root / "labels.txt",
           calib_data=flowers / "train", calib_samples=60, validate=False)
    images = []
    for name in train.class_names:
        images += sorted((flowers / "val" / name).glob("*.jpg"))[:8]
    return root / "export", images


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["model_fp32.tflite", "model_int8.tflite"])
@pytest.mark.train
def test_mediapipe_image_classifier_agrees_with_edgecnn(mediapipe, flowers_export, fmt):
    tool, target = mediapipe
    export_dir, images = flowers_export
    result = tool.compare(target, export_dir / fmt, images)["same_pixels"]
    assert result["named_like_edgecnn"] == 1.0  # MediaPipe found the label file and the classes' names
    assert result["agreement"] >= 0.95, result  # 40 real photos; the whole flowers5 val: see the note
    assert result["mean_abs_score_diff"] < (1e-4 if "fp32" in fmt else 0.02), result  # same normalization
