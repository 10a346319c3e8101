"""Registry and architectures: every model builds, takes raw 0..255 RGB and trains one epoch."""

from __future__ import annotations

import numpy as np
import pytest

from edgecnn.errors import UsageError
from edgecnn.models import create_model, get_spec, list_models

pytestmark = pytest.mark.train  # skipped without the train extra (conftest.py)

EXPECTED = {"simple_cnn", "regularized_cnn", "pet_cnn", "residual_cnn", "inception_attention_cnn", "food_cnn",
            "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large"}
SIZE = 32
SMALL = {"mobilenet_v2": {"alpha": 0.35}, "mobilenet_v3_small": {"alpha": 0.75}, "mobilenet_v3_large": {"alpha": 0.75},
         "residual_cnn": {"width": 8}}


def _classes(name: str) -> int:
    return 2 if get_spec(name).binary else 3


def test_registry_lists_the_tutorial_and_mobilenet_architectures():
    assert EXPECTED <= set(list_models())
    assert list_models("mobilenet*") == ["mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small"]


def test_unknown_name_lists_known_ones_and_suggests_closest():
    with pytest.raises(UsageError, match=r"did you mean 'mobilenet_v2'.*known: .*simple_cnn"):
        get_spec("mobilenet2")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_architecture_takes_raw_pixels_and_trains_one_epoch(name):
    import keras

    spec = get_spec(name)
    classes = _classes(name)
    keras.utils.set_random_seed(0)
    model = create_model(name, classes, (SIZE, SIZE, 3), **SMALL.get(name, {}))
    # Normalization is the model's first step after the input: a Rescaling layer.
    first = next(layer for layer in model.layers if type(layer).__name__ != "InputLayer")
    assert type(first).__name__ == "Rescaling"
    assert spec.in_model_normalization in ("x / 255", "x / 127.5 - 1")
    assert not [layer for layer in model.layers if type(layer).__name__.startswith("Random")]

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (8, SIZE, SIZE, 3)).astype("float32")  # raw 0..255, uint8 range
    y = np.arange(8) % classes
    loss = "binary_crossentropy" if spec.binary else "sparse_categorical_crossentropy"
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"], run_eagerly=True)  # no tracing: fast
    out = model.predict(x, verbose=0)
    if spec.binary:
        assert out.shape == (8, 1) and np.all((out > 0) & (out < 1))
        targets = y.astype("float32")[:, None]
    else:
        assert out.shape == (8, classes)
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
        targets = y
    history = model.fit(x, targets, epochs=1, batch_size=4, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_binary_model_needs_two_classes():
    with pytest.raises(UsageError, match="exactly 2 classes"):
        create_model("pet_cnn", 3, (SIZE, SIZE, 3))


def test_too_small_input_is_refused_with_the_minimum():
    with pytest.raises(UsageError, match="at least 32px"):
        create_model("mobilenet_v2", 3, (16, 16, 3), alpha=0.35)


def test_layer_names_do_not_depend_on_what_was_built_before():
    first = [layer.name for layer in create_model("mobilenet_v3_small", 3, (SIZE, SIZE, 3), alpha=0.75).layers]
    create_model("inception_attention_cnn", 3, (SIZE, SIZE, 3))
    again = [layer.name for layer in create_model("mobilenet_v3_small", 3, (SIZE, SIZE, 3), alpha=0.75).layers]
    assert first == again


def test_backbone_weights_file_is_loaded_and_alpha_mismatch_is_explained(tmp_path):
    import keras

    reference = keras.applications.MobileNetV2(include_top=False, weights=None, alpha=0.35, input_shape=(SIZE, SIZE, 3))
    path = tmp_path / "backbone.weights.h5"
    reference.save_weights(path)
    model = create_model("mobilenet_v2", 3, (SIZE, SIZE, 3), alpha=0.35, weights=str(path))
    np.testing.assert_array_equal(model.get_layer("Conv1").get_weights()[0],
                                  reference.get_layer("Conv1").get_weights()[0])
    with pytest.raises(UsageError, match="does not fit mobilenet_v2 alpha 0.5.*--weights none"):
        create_model("mobilenet_v2", 3, (SIZE, SIZE, 3), alpha=0.5, weights=str(path))
    with pytest.raises(UsageError, match="weights file not found"):
        create_model("mobilenet_v2", 3, (SIZE, SIZE, 3), alpha=0.35, weights=str(tmp_path / "missing.weights.h5"))


def test_imagenet_download_failure_suggests_a_weights_file(monkeypatch):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(UsageError, match=r"--weights PATH.*--weights none"):
        create_model("mobilenet_v2", 3, (SIZE, SIZE, 3), alpha=0.35, weights="imagenet")


def test_tutorial_models_refuse_pretrained_weights():
    with pytest.raises(UsageError, match="no pretrained backbone"):
        create_model("simple_cnn", 3, (SIZE, SIZE, 3), weights="imagenet")


def test_models_command_lists_names_sizes_and_parameters(capsys):
    from edgecnn.cli import main

    assert main(["models", "simple_cnn"]) == 0
    out = capsys.readouterr().out
    assert "simple_cnn" in out and "32px" in out and "122,245" in out  # 5 classes at 32 px


def test_models_command_rejects_unknown_pattern(capsys):
    from edgecnn.cli import main

    assert main(["models", "resnet*", "--no-params"]) == 2
    assert "known:" in capsys.readouterr().err
