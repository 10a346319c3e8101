"""Issue 21: outputs that are not scores (items 5, 12, 17b), a closed Classifier (17a), a fixed ONNX batch (17c).

Tiny real models: ONNX graphs built with onnx.helper, Keras/SavedModel ones (skipped without TensorFlow).
"""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
from conftest import CORAL_MODEL

from edgecnn.errors import ExportError, ModelError, UsageError
from edgecnn.runtime import Classifier

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

IMAGE = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)


def one_line(exc_info, *needles: str) -> str:
    text = str(exc_info.value)
    assert "\n" not in text, text
    for needle in needles:
        assert needle in text, text
    return text


def save_onnx(path, nodes, out_shape, in_shape=(1, 3, 16, 16), inits=()):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("image", TensorProto.FLOAT, list(in_shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def scorer(path, units, tail=(), in_shape=(1, 3, 16, 16), out_shape=None):
    """GAP -> Flatten -> Gemm (``units`` scores ``z``), then ``tail`` nodes making ``y`` (default: Identity)."""
    weights = np.arange(3 * units, dtype=np.float32).reshape(3, units) / 100.0
    inits = [helper.make_tensor("W", TensorProto.FLOAT, [3, units], weights.ravel()),
             helper.make_tensor("b", TensorProto.FLOAT, [units], np.linspace(-1, 1, units, dtype=np.float32))]
    nodes = [helper.make_node("GlobalAveragePool", ["image"], ["gap"]), helper.make_node("Flatten", ["gap"], ["flat"]),
             helper.make_node("Gemm", ["flat", "W", "b"], ["z"])]
    nodes += list(tail) or [helper.make_node("Identity", ["z"], ["y"])]
    return save_onnx(path, nodes, out_shape or [in_shape[0], units], in_shape, inits)


@pytest.fixture(scope="module")
def tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow

    return tensorflow


# ------------------------------------------------------------------ item 5: an integer Keras/SavedModel output
@pytest.mark.train
def test_savedmodel_int64_output_is_refused(tf, tmp_path):
    class IndexModel(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 16, 16, 3], tf.float32)])
        def serve(self, x):
            return {"index": tf.reshape(tf.argmax(tf.reduce_mean(x, axis=[1, 2]), axis=-1), [1, 1])}

    module = IndexModel()
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": module.serve})
    with pytest.raises(ModelError) as exc:
        Classifier(tmp_path / "sm", mean=0, std=1)
    one_line(exc, "is not an image classifier", "is int64, not scores")


@pytest.mark.train
def test_keras_int64_output_is_refused(tf, tmp_path):
    import keras

    @keras.saving.register_keras_serializable(package="trust3")
    class ArgMaxIndex(keras.layers.Layer):
        def call(self, x):
            return keras.ops.cast(keras.ops.argmax(x, axis=-1), "int64")

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    model = keras.Model(inputs, ArgMaxIndex()(keras.layers.Dense(3)(x)))
    model.save(tmp_path / "index.keras")
    with pytest.raises(ModelError) as exc:
        Classifier(tmp_path / "index.keras", mean=0, std=1)
    one_line(exc, "is not an image classifier", "is int64, not scores")


# ------------------------------------------------------------------ item 12: the real rank of an ONNX output
@pytest.mark.parametrize("declared", [["N", "K"], [1, 768]], ids=["dynamic", "false"])
def test_onnx_image_output_is_refused_whatever_shape_it_declares(tmp_path, declared):
    path = save_onnx(tmp_path / "identity.onnx", [helper.make_node("Identity", ["image"], ["y"])], declared)
    with pytest.raises(ModelError) as exc:
        Classifier(path, mean=0, std=1)
    one_line(exc, str(path), "is not an image classifier", "it gave an output of 1x3x16x16", "image-to-image")


# ------------------------------------------------------------------ item 17a: a closed Classifier
def test_predict_after_close_is_one_clear_error(tmp_path):
    clf = Classifier(scorer(tmp_path / "m.onnx", 3), labels=list("abc"), mean=0, std=1)
    clf.predict(IMAGE)
    clf.close()
    clf.close()  # twice is fine
    for call in (lambda: clf.predict(IMAGE), lambda: clf.predict_batch([IMAGE, IMAGE])):
        with pytest.raises(UsageError) as exc:
            call()
        one_line(exc, "this Classifier is closed")


def test_predict_after_close_is_one_clear_error_litert(coral_dir):
    with Classifier(coral_dir / CORAL_MODEL) as clf:
        pass
    with pytest.raises(UsageError) as exc:
        clf.predict(IMAGE)
    one_line(exc, "this Classifier is closed")


# ------------------------------------------------------------------ item 17c: a fixed ONNX batch
def test_fixed_onnx_batch_runs_padded(tmp_path):
    path = scorer(tmp_path / "b4.onnx", 3, in_shape=(4, 3, 16, 16))
    clf = Classifier(path, labels=list("abc"), mean=0, std=1, output_kind="logits")
    one = clf.predict(IMAGE)
    many = clf.predict_batch([IMAGE] * 5)
    np.testing.assert_allclose(one.probabilities, many[4].probabilities, rtol=1e-6)
    assert one.label == many[0].label


# ------------------------------------------------------------------ item 17b: one output unit
def test_one_unit_softmax_is_refused(tmp_path):
    path = scorer(tmp_path / "m.onnx", 1, [helper.make_node("Softmax", ["z"], ["y"], axis=1)])
    with pytest.raises(ModelError) as exc:
        Classifier(path, labels=["no", "yes"], mean=0, std=1)
    one_line(exc, str(path), "softmax over one unit", "always 1.0")


def test_class_index_as_float_is_refused(tmp_path):
    tail = [helper.make_node("ArgMax", ["z"], ["i"], axis=1, keepdims=1),
            helper.make_node("Cast", ["i"], ["y"], to=TensorProto.FLOAT)]
    path = scorer(tmp_path / "m.onnx", 3, tail, out_shape=[1, 1])
    with pytest.raises(ModelError) as exc:
        Classifier(path, labels=["no", "yes"], output_kind="sigmoid", mean=0, std=1)
    one_line(exc, str(path), "class index", "argmax")


def test_one_unit_read_as_sigmoid_only_when_something_says_so(tmp_path, caplog):
    linear = scorer(tmp_path / "linear.onnx", 1)
    with caplog.at_level(logging.WARNING, logger="edgecnn.runtime"):
        Classifier(linear, labels=["no", "yes"], mean=0, std=1)
    warned = [r.getMessage() for r in caplog.records if "one output unit" in r.getMessage()]
    assert len(warned) == 1 and "gemm" in warned[0] and "--output-kind" in warned[0], warned
    caplog.clear()
    sigmoid = scorer(tmp_path / "sigmoid.onnx", 1, [helper.make_node("Sigmoid", ["z"], ["y"])])
    with caplog.at_level(logging.WARNING, logger="edgecnn.runtime"):
        Classifier(sigmoid, labels=["no", "yes"], mean=0, std=1)
        Classifier(linear, labels=["no", "yes"], output_kind="logits", mean=0, std=1)
    assert not [r for r in caplog.records if "one output unit" in r.getMessage()]


def test_litert_sees_the_op_that_ends_the_graph(coral_dir):
    from edgecnn.runtime.litert_backend import LiteRTBackend

    backend = LiteRTBackend(coral_dir / CORAL_MODEL)
    assert backend.final_op() == "softmax"  # SOFTMAX, then nothing that changes values


@pytest.mark.train
def test_keras_one_unit_softmax_is_refused_at_runtime_and_export(tf, tmp_path):
    import keras

    from edgecnn.export import output_kind

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="softmax")(x))
    model.save(tmp_path / "one.keras")
    with pytest.raises(ModelError) as exc:
        Classifier(tmp_path / "one.keras", labels=["no", "yes"], mean=0, std=1)
    one_line(exc, "softmax over one unit", "always 1.0")
    with pytest.raises(ExportError) as exc:
        output_kind.infer(model, np.ones((4, 1), np.float32), "test images")
    one_line(exc, "softmax over one unit", "always 1.0")


def test_export_refuses_one_unit_of_whole_numbers_as_a_class_index():
    from edgecnn.export import output_kind

    unknown_structure = object()  # nothing declared: not a sigmoid, not a linear layer
    with pytest.raises(ExportError) as exc:
        output_kind.infer(unknown_structure, np.array([[0.0], [3.0], [2.0]]), "test images")
    one_line(exc, "class index")
    assert output_kind.infer(unknown_structure, np.array([[0.2], [0.9]]), "test images").kind == "sigmoid"
