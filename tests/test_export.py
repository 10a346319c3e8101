"""Export: every architecture to every format, validated against Keras on images; bad inputs fail cleanly."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import skip_file_without_train_extra

from edgecnn.card import ModelCard
from edgecnn.errors import EdgeCNNError, ExportError, LabelsError, ModelError, UsageError
from edgecnn.formats import FORMATS

pytestmark = pytest.mark.train  # skipped without the train extra (conftest.py)
skip_file_without_train_extra()  # before importing the stack

import keras  # noqa: E402

SIZE = 32
CLASSES = ["red", "green", "blue"]


def _colour_images(rng, channel: int, count: int) -> np.ndarray:
    """Noisy images dominated by one colour channel: an easy, learnable class."""
    images = rng.integers(0, 90, size=(count, SIZE, SIZE, 3))
    images[..., channel] += rng.integers(110, 166, size=(count, 1, 1))
    return np.clip(images, 0, 255).astype(np.uint8)


def _write_folder(root, rng, per_class: int, classes=CLASSES):
    from PIL import Image

    for channel, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True)
        for i, image in enumerate(_colour_images(rng, channel, per_class)):
            Image.fromarray(image).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def colour_data(tmp_path_factory):
    """train/ and val/ folders of three colour classes (PNG), and the training arrays."""
    from edgecnn.data import load_folder

    root = tmp_path_factory.mktemp("colours")
    rng = np.random.default_rng(0)
    _write_folder(root / "train", rng, 24)
    _write_folder(root / "val", rng, 8)
    _write_folder(root / "binary" / "val", rng, 8, CLASSES[:2])
    return root, load_folder(root / "train", SIZE)


def _trained(model, data, binary=False, head_only=False):
    """Fit a few quick epochs so outputs are decisive (int8 is then comparable on accuracy).

    ``head_only`` trains just the last layer (much faster for the MobileNets).
    """
    if head_only:
        for layer in model.layers[:-1]:
            layer.trainable = False
    keep = data.labels < 2 if binary else np.ones(len(data.labels), bool)
    loss = "binary_crossentropy" if binary else "sparse_categorical_crossentropy"
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss=loss)
    model.fit(data.images[keep].astype("float32"), data.labels[keep], epochs=4, batch_size=16, verbose=0)
    return model


def _run_dir(tmp_path, model, data_root, classes=CLASSES, arch="test", val=None):
    """A training run directory as `edgecnn train` leaves it."""
    from edgecnn.card import Normalization

    run = tmp_path / "run"
    run.mkdir()
    model.save(run / "model.keras")
    ModelCard(labels=classes, input_height=SIZE, input_width=SIZE, architecture=arch,
              output_kind="sigmoid" if model.output_shape[-1] == 1 else "softmax",
              normalization=Normalization.raw("x / 255")).save(run / "model.keras")
    (run / "labels.txt").write_text("".join(f"{c}\n" for c in classes))
    (run / "config.json").write_text(json.dumps({"data": str(data_root / "train"), "val": str(val or data_root / "val"),
                                                 "val_split": 0.2, "img_size": SIZE, "seed": 0}))
    return run


def _augmented_model():
    """Augmentation, BatchNorm, residual Add, Concatenate and channel attention (GlobalMax/Avg + Multiply)."""
    from keras import layers

    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = layers.RandomFlip("horizontal", name="flip")(inputs)
    x = layers.RandomRotation(0.1, name="rotate")(x)
    x = layers.RandomContrast(0.2, name="contrast")(x)
    x = layers.Rescaling(1 / 255, name="normalize")(x)
    x = layers.Conv2D(8, 3, padding="same", name="stem")(x)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.ReLU(name="relu")(x)
    branch = layers.Conv2D(8, 3, padding="same", name="branch")(x)
    x = layers.Add(name="residual")([x, branch])
    x = layers.Concatenate(name="concat")([x, layers.Conv2D(4, 1, name="side")(x)])
    attention = layers.Add(name="pool_sum")([layers.GlobalMaxPooling2D(name="gmp")(x),
                                             layers.GlobalAveragePooling2D(name="gap")(x)])
    attention = layers.Dense(12, activation="sigmoid", name="attention")(attention)
    x = layers.Multiply(name="reweight")([x, layers.Reshape((1, 1, 12), name="expand")(attention)])
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(0.3, name="dropout")(x)
    return keras.Model(inputs, layers.Dense(3, activation="softmax", name="predictions")(x))


def _registered():
    """The registry's architectures: an import error in the registry fails the collection (it is not a skip)."""
    from edgecnn.models import list_models

    return list_models()


ARCH_KWARGS = {"mobilenet_v2": {"alpha": 0.35}, "mobilenet_v3_small": {"alpha": 0.75},
               "mobilenet_v3_large": {"alpha": 0.75}}


def _check_report(report, out, fmts):
    assert [a.format for a in report.artifacts] == fmts
    saved = json.loads((out / "export_report.json").read_text())
    assert {a["format"] for a in saved["artifacts"]} == set(fmts)
    assert [a["path"] for a in saved["artifacts"]] == [FORMATS[f].filename for f in fmts]  # relative to out
    assert saved["out"] == "." and not saved["model"].startswith("/")
    assert saved["versions"]["tf2onnx"] and saved["versions"]["onnxruntime"]
    for a in report.artifacts:
        fmt = FORMATS[a.format]
        v = a.validation
        assert v["passed"], v
        tol = fmt.tolerance
        if tol.max_abs_diff is not None:  # exactness is checked on any number of images
            assert v["max_abs_diff"] <= tol.max_abs_diff
        if tol.max_accuracy_drop is not None:
            # A few dozen test images back no verdict (fewer than 300): the figures must still be in range.
            assert not v["backed_by_enough_images"] and v["verdict"] in ("pass", "inconclusive", "fail")
            low, high = v["accuracy_difference_ci95"]
            assert low <= v["accuracy_difference"] <= high
            assert v["accuracy"] - v["reference_accuracy"] == pytest.approx(v["accuracy_difference"])
            assert v["reference_accuracy"] - v["accuracy"] <= tol.max_accuracy_drop + 0.05
        assert (out / fmt.filename).exists() and ModelCard.load(out / fmt.filename).format == a.format
        assert a.size > 0 and len(a.sha256) == 64
    assert (out / "labels.txt").read_text().split() == report_labels(out)


def embedded_card(path):
    """The card embedded in an exported model, read the way the device runtime reads it."""
    from edgecnn.runtime import load_backend

    backend = load_backend(path)
    try:
        return ModelCard.from_json(backend.embedded_card())
    finally:
        backend.close()


def report_labels(out):
    return ModelCard.load(next(out.glob("*.card.json"))).labels


@pytest.mark.slow
@pytest.mark.parametrize("arch", _registered())
def test_every_architecture_exports_to_every_format(arch, colour_data, tmp_path):
    from edgecnn.export import export
    from edgecnn.models import create_model, get_spec

    root, data = colour_data
    binary = get_spec(arch).binary
    keras.utils.set_random_seed(0)
    model = create_model(arch, 2 if binary else 3, (SIZE, SIZE, 3), **ARCH_KWARGS.get(arch, {}))
    classes = CLASSES[:2] if binary else CLASSES
    model = _trained(model, data, binary, head_only=arch.startswith("mobilenet"))
    run = _run_dir(tmp_path, model, root, classes, arch, val=root / "binary" / "val" if binary else None)
    out = tmp_path / "out"
    report = export(run, "all", out, calib_samples=24, val_samples=24)
    _check_report(report, out, list(FORMATS))


@pytest.mark.slow
def test_augmentation_and_attention_model_exports_to_every_format(colour_data, tmp_path):
    from edgecnn.export import export

    root, data = colour_data
    keras.utils.set_random_seed(0)
    run = _run_dir(tmp_path, _trained(_augmented_model(), data), root)
    out = tmp_path / "out"
    report = export(run, "all", out, calib_samples=24, val_samples=24)
    _check_report(report, out, list(FORMATS))

    # Augmentation is inactive in the exports: repeated runs give identical outputs equal to Keras.
    from edgecnn.runtime import Classifier

    images = data.images[:6]
    expected = keras.saving.load_model(run / "model.keras").predict(images.astype("float32"), verbose=0)
    with Classifier(out / "model_fp32.tflite") as clf:
        got = np.stack([p.probabilities for p in clf.predict_batch(list(images), order="RGB")])
    np.testing.assert_allclose(got, expected, atol=1e-4)
    # The card is embedded in the TFLite and ONNX files, and uint8 frames go straight into int8 TFLite.
    for name in ("model_fp32.tflite", "model_int8.tflite", "model.onnx", "model_int8.onnx"):
        assert embedded_card(out / name) == ModelCard.load(out / name)
    from ai_edge_litert.interpreter import Interpreter

    detail = Interpreter(model_path=str(out / "model_int8.tflite")).get_input_details()[0]
    assert detail["dtype"] == np.uint8
    int8_card = ModelCard.load(out / "model_int8.tflite")
    assert int8_card.extra["calibration"]["count"] == 24 and "train" in int8_card.extra["calibration"]["source"]


@pytest.fixture(scope="module")
def small_run(colour_data, tmp_path_factory):
    root, data = colour_data
    keras.utils.set_random_seed(0)
    from keras import layers

    model = keras.Sequential([keras.Input((SIZE, SIZE, 3), name="image"), layers.Rescaling(1 / 255),
                              layers.Conv2D(4, 3, strides=2, activation="relu"), layers.GlobalAveragePooling2D(),
                              layers.Dense(3, activation="softmax")])
    return _run_dir(tmp_path_factory.mktemp("small"), _trained(model, data), root)


def test_tflite_int8_io_float32_and_existing_artifacts_need_force(small_run, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from edgecnn.export import export

    out = tmp_path / "out"
    export(small_run, "tflite-int8", out, int8_io="float32", calib_samples=24, val_samples=12)
    detail = Interpreter(model_path=str(out / "model_int8.tflite")).get_output_details()[0]
    assert detail["dtype"] == np.float32
    before = (out / "model_int8.tflite").read_bytes()
    with pytest.raises(UsageError, match="--force"):
        export(small_run, "tflite-int8", out)
    assert (out / "model_int8.tflite").read_bytes() == before
    export(small_run, "tflite-int8", out, force=True, validate=False, calib_samples=24)


def test_synthetic_calibration_only_without_images_and_flagged_in_card(small_run, tmp_path, caplog):
    from edgecnn.export import export

    standalone = tmp_path / "standalone.keras"  # no run directory: no images anywhere
    standalone.write_bytes((small_run / "model.keras").read_bytes())
    with caplog.at_level("INFO", logger="edgecnn.export"):
        export(standalone, "tflite-int8", tmp_path / "out", labels=small_run / "labels.txt",
               calib_samples=16, validate=False)
    card = ModelCard.load(tmp_path / "out" / "model_int8.tflite")
    assert card.extra["calibration"]["source"] == "synthetic" and "synthetic" in card.extra["calibration"]["warning"]
    assert any("synthetic" in m for m in caplog.messages)


def test_card_reader_is_tensorflow_free(small_run, tmp_path):
    import subprocess
    import sys

    from edgecnn.export import export

    export(small_run, "tflite-int8", tmp_path, calib_samples=8, validate=False)
    code = ("import sys; from edgecnn.card import ModelCard; from edgecnn.runtime import load_backend; "
            f"c = ModelCard.from_json(load_backend({str(tmp_path / 'model_int8.tflite')!r}).embedded_card()); "
            "print(c.quantization, c.labels, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "int8 ['red', 'green', 'blue'] False"


def test_validation_failure_is_typed_and_names_format(small_run, tmp_path, monkeypatch):
    import dataclasses

    import edgecnn.formats as formats
    from edgecnn.errors import ValidationError
    from edgecnn.export import export

    strict = dataclasses.replace(FORMATS["tflite-fp16"], tolerance=formats.Tolerance(max_abs_diff=0.0))
    monkeypatch.setitem(FORMATS, "tflite-fp16", strict)
    with pytest.raises(ValidationError, match=r"tflite-fp16 .*max probability difference"):
        export(small_run, "tflite-fp16", tmp_path / "out", val_samples=12)
    report = json.loads((tmp_path / "out" / "export_report.json").read_text())
    assert report["artifacts"][0]["validation"]["passed"] is False


def test_unsupported_op_names_layer_and_format(colour_data, tmp_path):
    import tensorflow as tf

    from edgecnn.export import export

    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    x = keras.layers.Dense(4, name="square")(x)
    x = keras.layers.Reshape((2, 2))(x)
    x = keras.layers.Lambda(lambda m: tf.reshape(tf.linalg.det(m), (-1, 1)), name="determinant")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    with pytest.raises(ExportError, match=r"tflite-fp32 cannot take .*determinant.*--allow-tf-ops"):
        export(model, "tflite-fp32", tmp_path / "out", labels=CLASSES, validate=False)
    report = export(model, "tflite-fp32", tmp_path / "flex", labels=CLASSES, validate=False, allow_tf_ops=True)
    card = ModelCard.load(report.artifacts[0].path)
    assert card.extra["requires_flex_delegate"] is True


@pytest.mark.parametrize("make, error, text", [
    (lambda d: d / "missing.keras", ModelError, "model not found"),
    (lambda d: (d / "bad.keras").write_text("not a zip") and d / "bad.keras", ModelError, "not a Keras model"),
    (lambda d: (d / "model.onnx").write_bytes(b"onnx") and d / "model.onnx", ModelError, "not a Keras model"),
    (lambda d: d, ModelError, "without model.keras"),
])
def test_bad_model_is_one_clear_error_and_nothing_written(make, error, text, tmp_path):
    from edgecnn.export import export

    out = tmp_path / "out"
    with pytest.raises(error, match=text):
        export(make(tmp_path), "all", out)
    assert not out.exists()


def test_model_without_labels_fails_before_writing(small_run, tmp_path):
    from edgecnn.export import export

    lone = tmp_path / "lone.keras"
    lone.write_bytes((small_run / "model.keras").read_bytes())
    with pytest.raises(LabelsError, match="--labels"):
        export(lone, "all", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_export_and_errors(small_run, tmp_path, capsys):
    from edgecnn.cli import main

    out = tmp_path / "out"
    assert main(["export", str(small_run), "--formats", "tflite-fp32,onnx", "--out", str(out),
                 "--val-samples", "12"]) == 0
    assert (out / "model_fp32.tflite").exists() and (out / "model.onnx").exists()
    assert "tflite-fp32" in capsys.readouterr().out
    # --strict: 12 images cannot confirm a verdict, so a pipeline that asks for certainty is told so in one line
    strict = tmp_path / "strict"
    assert main(["export", str(small_run), "--formats", "tflite-fp32", "--out", str(strict), "--val-samples", "12",
                 "--strict"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: --strict: not confirmed") and "tflite-fp32 (pass, 12 images)" in err[-1]
    assert (strict / "model_fp32.tflite").exists()  # the artifacts and report stay, for inspection
    assert main(["export", str(tmp_path / "nope.keras"), "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: model not found")
    assert main(["export", str(small_run), "--formats", "tflit", "--out", str(tmp_path / "o3")]) == 2
    assert "did you mean 'tflite" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists() and not (tmp_path / "o3").exists()


def test_cli_strict_refuses_no_validate_before_writing(small_run, tmp_path, capsys):
    from edgecnn.cli import main

    out = tmp_path / "out"
    assert main(["export", str(small_run), "--formats", "tflite-fp32", "--out", str(out), "--strict",
                 "--no-validate"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --strict") and "--no-validate" in err[0]
    assert not out.exists()


def test_cli_strict_fails_an_accuracy_verdict_resting_on_agreement_alone(small_run, tmp_path, capsys):
    """1,000 images without class folders: fp16's accuracy is judged against Keras's own answers, so --strict
    refuses it even though it passes on enough images; fp32's exactness check needs no labels and stands."""
    import shutil

    from PIL import Image

    from edgecnn.cli import main

    flat = tmp_path / "unlabelled"
    flat.mkdir()
    rng = np.random.default_rng(5)
    for i in range(1000):
        Image.fromarray(_colour_images(rng, i % 3, 1)[0]).save(flat / f"{i}.png")
    run = shutil.copytree(small_run, tmp_path / "run")
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "val": str(flat)}))
    out = tmp_path / "out"
    assert main(["export", str(run), "--formats", "tflite-fp32,tflite-fp16", "--out", str(out), "--strict"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: --strict: not confirmed") and "tflite-fp16 (pass on agreement" in err[-1]
    assert "tflite-fp32" not in err[-1]
    fp32, fp16 = (a["validation"] for a in json.loads((out / "export_report.json").read_text())["artifacts"])
    assert fp16["labels_from"] == "keras" and fp16["verdict"] == "pass" and fp16["backed_by_enough_images"]
    assert fp32["verdict"] == "pass" and fp32["images"] == 1000


def test_edgecnn_error_messages_are_single_lines(tmp_path):
    from edgecnn.export import export

    with pytest.raises(EdgeCNNError) as info:
        export(tmp_path / "x.keras", "all", tmp_path / "out")
    assert "\n" not in str(info.value)


def test_validation_takes_every_labelled_image_and_stratifies_beyond_the_cap(colour_data):
    from edgecnn.export.calibration import calibration_images, validation_images

    root, _ = colour_data
    config = {"val": str(root / "val"), "data": str(root / "train")}
    everything = validation_images(config, None, None, CLASSES, (SIZE, SIZE, 3), 1000)
    assert len(everything.images) == 24 and np.bincount(everything.labels).tolist() == [8, 8, 8]
    capped = validation_images(config, None, None, CLASSES, (SIZE, SIZE, 3), 12, seed=1)
    assert np.bincount(capped.labels).tolist() == [4, 4, 4]
    other = validation_images(config, None, None, CLASSES, (SIZE, SIZE, 3), 12, seed=2)
    assert not np.array_equal(capped.images, other.images)
    # Calibration: the same number of images from each class, none augmented (decoded as they are).
    calib = calibration_images(config, None, None, (SIZE, SIZE, 3), 9, labels=CLASSES)
    dominant = calib.images.reshape(9, -1, 3).mean(axis=1).argmax(axis=1)
    assert np.bincount(dominant, minlength=3).tolist() == [3, 3, 3]


def test_int8_report_names_worst_layers_and_float_layers_are_recorded(small_run, tmp_path):
    from edgecnn.export import export
    from edgecnn.export.tflite_quant import float_ops

    report = export(small_run, "tflite-int8", tmp_path / "int8", calib_samples=24, val_samples=12)
    details = report.artifact("tflite-int8").details
    worst = details["largest_errors"]["layers"]
    assert worst and all(e["rmse_over_scale"] >= 0 for e in worst)
    assert worst == sorted(worst, key=lambda e: -e["rmse_over_scale"])
    outputs = {e["layer"] for e in worst if e["tensor"].startswith("StatefulPartitionedCall")}
    assert outputs <= {"class_scores output", "features output"}  # the converter's names, translated
    assert details["weight_rounding"]["method"] == "optimal" and details["weight_rounding"]["layers"]
    card = ModelCard.load(tmp_path / "int8" / "model_int8.tflite")
    assert card.extra["full_integer"] is True and "float_layers" not in card.extra
    assert not float_ops((tmp_path / "int8" / "model_int8.tflite").read_bytes())

    keras_model = keras.saving.load_model(small_run / "model.keras")
    conv = next(layer.name for layer in keras_model.layers if "conv2d" in layer.name)
    report = export(small_run, "tflite-int8", tmp_path / "float", calib_samples=24, val_samples=12,
                    int8_float_layers=conv)
    card = ModelCard.load(tmp_path / "float" / "model_int8.tflite")
    assert card.extra["float_layers"] == [conv] and card.extra["full_integer"] is False
    assert "Edge TPU" in card.extra["note"]
    assert float_ops((tmp_path / "float" / "model_int8.tflite").read_bytes())
    with pytest.raises(UsageError, match="no layer 'conv2x'"):
        export(small_run, "tflite-int8", tmp_path / "bad", calib_samples=8, int8_float_layers="conv2x")
