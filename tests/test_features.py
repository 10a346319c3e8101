"""Stored activations: LiteRT (fp32) runs the frozen layers when they convert, with the TensorFlow graph's values."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from tests.test_train import make_colour_folder

pytestmark = pytest.mark.train  # skipped without the train extra (conftest.py)


def _two_cut_net(custom: bool = False):
    """Image -> frozen convs (a residual add, optionally an op TFLite has no builtin for) -> two cuts."""
    import keras
    import tensorflow as tf

    class Cumprod(keras.layers.Layer):  # tf.math.cumprod: no TFLite builtin (conversion fails without TF ops)
        def call(self, x):
            return tf.math.cumprod(x, axis=-1)

    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1, name="normalize")(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu6", name="conv1", trainable=False)(x)
    y = keras.layers.DepthwiseConv2D(3, padding="same", name="dw", trainable=False)(x)
    y = keras.layers.BatchNormalization(name="bn", trainable=False)(y)
    x = keras.layers.Add(name="block_add")(([x, y]))
    if custom:
        x = Cumprod(name="cumprod")(x)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu", name="conv2", trainable=False)(x)
    pooled = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="predictions")(pooled))
    return model, [model.get_layer("head_pool").output, model.get_layer("block_add").output]


def _extract(net, data, folder, engine, **kw):
    from edgecnn.train import features

    stores, seconds = features.extract(net, data, np.arange(len(data)), folder, ["head_pool", "block_add"],
                                       engine=engine, **kw)
    assert seconds > 0
    return [np.array(s.read(np.arange(len(data)))) for s in stores]


@pytest.mark.parametrize("custom", [False, True], ids=["converts", "falls-back"])
def test_stored_features_equal_the_tensorflow_graphs(tmp_path, caplog, custom):
    from edgecnn.data import open_folder
    from edgecnn.train import features

    data = open_folder(make_colour_folder(tmp_path / "data", per_class=7, size=32), 32)  # 21 images: a short batch
    model, cuts = _two_cut_net(custom)
    bottom = features.bottom_model(model, cuts)
    graph = _extract(bottom, data, tmp_path / "tf", "tf")
    eager = _extract(bottom, data, tmp_path / "eager", "auto", eager=True)
    with caplog.at_level(logging.INFO, logger="edgecnn.train"):
        auto = _extract(bottom, data, tmp_path / "auto", "auto")
        again = _extract(bottom, data, tmp_path / "again", "auto")  # the same net: converted once
    engines = [r.getMessage() for r in caplog.records if "frozen layers run on" in r.getMessage()]
    assert len(engines) == 1 and ("TensorFlow graph" if custom else "LiteRT") in engines[0], engines
    assert [a.shape for a in auto] == [(21, 16), (21, 32, 32, 8)]
    for a, b, g, e in zip(auto, again, graph, eager):
        np.testing.assert_array_equal(a, b)
        assert np.ptp(g) > 1e-3  # real activations, not constants
        np.testing.assert_allclose(a, g, rtol=0, atol=1e-5 * np.abs(g).max())
        np.testing.assert_allclose(e, g, rtol=0, atol=1e-5 * np.abs(g).max())


@pytest.mark.slow
def test_litert_runs_the_mobilenet_bottom_like_tensorflow(tmp_path):
    """The README's network (MobileNetV2, two cuts as in a frozen phase that also stores the fine-tune's split)."""
    from edgecnn.data import open_folder
    from edgecnn.models import create_model
    from edgecnn.train import features
    from edgecnn.train.transfer import freeze_backbone, unfreeze_top

    data = open_folder(make_colour_folder(tmp_path / "data", per_class=4, size=32), 32)
    model = create_model("mobilenet_v2", 3, (32, 32, 3), alpha=0.35, weights="none")
    freeze_backbone(model)
    head = features.find_cut(model)
    unfreeze_top(model, 16)
    lower = features.find_cut(model)
    bottom = features.bottom_model(model, [head, lower])
    net = features.LiteBottom.convert(bottom, 2)
    x = np.asarray(data.read(np.arange(len(data))), np.float32)
    for lite, ref in zip(net(x), bottom(x, training=False)):
        ref = np.asarray(ref)
        assert lite.shape == ref.shape
        np.testing.assert_allclose(lite, ref, rtol=0, atol=1e-4 * np.abs(ref).max())


def test_an_unknown_engine_is_refused(tmp_path):
    from edgecnn.data import open_folder

    data = open_folder(make_colour_folder(tmp_path / "data", per_class=2, size=32), 32)
    with pytest.raises(ValueError, match="engine"):
        _extract(_two_cut_net()[0], data, tmp_path / "x", "onnx")
