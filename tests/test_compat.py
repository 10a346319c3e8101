"""edgecnn.compat: each private TensorFlow/Keras API works through its entry point, and its absence is one clear
PrivateAPIError line naming the API and the versions (simulated by removing it)."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

from edgecnn import compat
from edgecnn.errors import PrivateAPIError

pytestmark = pytest.mark.train  # skipped without the train extra (conftest.py)


def _one_line(exc: PrivateAPIError, api: str, package: str) -> None:
    message = str(exc)
    assert "\n" not in message and api in message
    assert f"{package} {compat.installed(package)}" in message
    assert f"written for {package} {compat.WRITTEN_FOR[package]}" in message


@pytest.fixture(scope="module")
def tf():
    import tensorflow

    return tensorflow


@pytest.fixture(scope="module")
def tiny(tf):
    """A 4x4x3 -> 2 dense classifier with fixed weights and its concrete function."""
    import keras

    model = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten(), keras.layers.Dense(2)])
    model.layers[-1].set_weights([np.linspace(-1, 1, 96, dtype=np.float32).reshape(48, 2), np.ones(2, np.float32)])
    function = tf.function(lambda x: model(x, training=False),
                           input_signature=[tf.TensorSpec((1, 4, 4, 3), tf.float32)]).get_concrete_function()
    return model, function


def test_freeze_variables_folds_the_weights_into_constants(tf, tiny):
    model, function = tiny
    frozen = compat.freeze_variables(function)
    assert function.captured_inputs and not frozen.captured_inputs  # no variables left
    x = np.random.default_rng(0).random((1, 4, 4, 3), np.float32)
    np.testing.assert_allclose(frozen(tf.constant(x))[0].numpy(), model(x).numpy(), rtol=1e-6)


def test_freeze_variables_missing_is_one_clear_line_and_the_engine_falls_back(tf, tiny, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "tensorflow.python.framework.convert_to_constants", None)
    with pytest.raises(PrivateAPIError) as info:
        compat.freeze_variables(tiny[1])
    _one_line(info.value, "convert_variables_to_constants_v2", "tensorflow")
    assert "frozen layers run on the TensorFlow graph" in str(info.value)

    from edgecnn.train import features

    caplog.set_level(logging.INFO, logger="edgecnn.train")
    x = np.zeros((1, 4, 4, 3), np.float32)
    engine, name = features._engine(tiny[0], "auto", False, x)
    assert name == "TensorFlow graph" and "convert_variables_to_constants_v2" in caplog.text


def _converter(tf, tiny):
    converter = tf.lite.TFLiteConverter.from_concrete_functions([compat.freeze_variables(tiny[1])])
    rng = np.random.default_rng(0)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([rng.random((1, 4, 4, 3), np.float32)] for _ in range(4))
    converter.experimental_mlir_quantizer = True
    return converter


def test_calibrate_then_quantize_make_a_full_integer_model(tf, tiny):
    from edgecnn.export import tflite_quant

    converter = _converter(tf, tiny)
    compat.calibrate_only(converter)
    calibrated = converter.convert()
    quantized = compat.mlir_quantize(calibrated, disable_per_channel=False, fully_quantize=False,
                                     input_data_type=tf.uint8, output_data_type=tf.uint8,
                                     enable_numeric_verify=False, denylisted_nodes=None)
    assert quantized[4:8] == b"TFL3" and tflite_quant.float_ops(quantized) == []
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=quantized)
    assert interpreter.get_input_details()[0]["dtype"] == np.uint8


def test_calibrate_only_missing_is_one_clear_line(tf, tiny):
    class OldConverter:  # a converter without the private flag
        pass

    with pytest.raises(PrivateAPIError) as info:
        compat.calibrate_only(OldConverter())
    _one_line(info.value, "_experimental_calibrate_only", "tensorflow")


def test_mlir_quantize_missing_or_changed_is_one_clear_line(tf, monkeypatch):
    from tensorflow.lite.python import convert

    monkeypatch.delattr(convert, "mlir_quantize")
    with pytest.raises(PrivateAPIError) as info:
        compat.mlir_quantize(b"")
    _one_line(info.value, "mlir_quantize", "tensorflow")
    monkeypatch.setattr(convert, "mlir_quantize", lambda input_data_str, inference_type=9: b"", raising=False)
    with pytest.raises(PrivateAPIError):  # there, but without the parameters edgecnn passes
        compat.mlir_quantize(b"")


def test_keras_multi_worker_patch_checks_what_it_patches(tf, monkeypatch):
    from keras.src.backend.tensorflow import trainer

    monkeypatch.setattr(trainer, "_edgecnn_patched", False, raising=False)
    monkeypatch.delattr(trainer.TensorFlowTrainer, "_maybe_symbolic_build")
    with pytest.raises(PrivateAPIError) as info:
        compat.patch_keras_multi_worker()
    _one_line(info.value, "keras.src.backend.tensorflow.trainer", "keras")
    assert "train on one machine" in str(info.value)


def test_keras_multi_worker_patch_applies_once_to_this_keras(tf, monkeypatch):
    """Patched in place (the two-worker training in test_train.py checks that it then trains)."""
    from keras.src.backend.tensorflow import trainer

    for name in ("reduce_per_replica", "_edgecnn_patched"):
        monkeypatch.setattr(trainer, name, getattr(trainer, name, False), raising=False)
    monkeypatch.setattr(trainer.TensorFlowTrainer, "_maybe_symbolic_build",
                        trainer.TensorFlowTrainer._maybe_symbolic_build)
    trainer._edgecnn_patched = False
    original = trainer.reduce_per_replica
    compat.patch_keras_multi_worker()
    patched = trainer.reduce_per_replica
    assert trainer._edgecnn_patched and patched is not original
    compat.patch_keras_multi_worker()
    assert trainer.reduce_per_replica is patched  # not wrapped twice
