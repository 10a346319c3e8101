"""One Classifier shared by 4 threads gives the same answers as one thread: 0 wrong over 4 x 500, per backend.

The model is tiny (16x16 input, mean colour -> 3 classes) so 2,000 predictions take a second or two;
each thread cycles through red, green and blue frames starting at a different one, so a frame that
another thread's input overwrote (the failure this guards against) shows up as a wrong class.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from edgecnn.runtime import Classifier

THREADS, PREDICTIONS = 4, 500
LABELS = ["red", "green", "blue"]
# BGR frames (OpenCV's order) whose class index is their position: red, green, blue.
FRAMES = [np.full((24, 32, 3), bgr, np.uint8) for bgr in ((0, 0, 255), (0, 255, 0), (255, 0, 0))]
WEIGHTS = np.eye(3, dtype=np.float32) * 10  # mean of RGB in 0..1 -> logits


def hammer(clf: Classifier) -> tuple[int, list[str]]:
    """Run 4 threads x 500 predictions on one Classifier; return (wrong answers, error messages)."""
    wrong, errors = [0] * THREADS, []
    barrier = threading.Barrier(THREADS)

    def work(t: int) -> None:
        barrier.wait()
        for i in range(PREDICTIONS):
            k = (i + t) % 3
            try:
                if clf.predict(FRAMES[k], top_k=1).index != k:
                    wrong[t] += 1
            except Exception as exc:  # noqa: BLE001  counted: an exception is a failed prediction too
                errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return sum(wrong), errors


def check(clf: Classifier) -> None:
    assert [clf.predict(f, top_k=1).label for f in FRAMES] == LABELS, "the model itself is right on one thread"
    wrong, errors = hammer(clf)
    assert (wrong, errors[:3]) == (0, []), f"{wrong} wrong and {len(errors)} failed of {THREADS * PREDICTIONS}"


def test_onnx_classifier_is_safe_to_share(tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["image"], ["mean"], axes=[2, 3], keepdims=0),
            helper.make_node("MatMul", ["mean", "w"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
        ],
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 3])],
        initializer=[helper.make_tensor("w", TensorProto.FLOAT, [3, 3], WEIGHTS.ravel().tolist())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "tiny.onnx"))
    with Classifier(tmp_path / "tiny.onnx", labels=LABELS, mean=0, std=255) as clf:
        check(clf)


@pytest.fixture(scope="module")
def keras_model(tmp_path_factory):
    import keras

    model = keras.Sequential([
        keras.Input((16, 16, 3)),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3, activation="softmax"),
    ])
    model.layers[-1].set_weights([WEIGHTS, np.zeros(3, np.float32)])
    path = tmp_path_factory.mktemp("keras") / "tiny.keras"
    model.save(path)
    return model, path


@pytest.mark.train
def test_litert_classifier_is_safe_to_share(keras_model, tmp_path):
    import tensorflow as tf

    model, _ = keras_model
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    (tmp_path / "tiny.tflite").write_bytes(converter.convert())
    with Classifier(tmp_path / "tiny.tflite", labels=LABELS, mean=0, std=255) as clf:
        assert clf.backend.name == "litert"
        check(clf)


@pytest.mark.slow  # builds a (tiny) Keras model
@pytest.mark.train
def test_keras_classifier_is_safe_to_share(keras_model):
    _, path = keras_model
    with Classifier(path, labels=LABELS, mean=0, std=255) as clf:
        assert clf.backend.name == "keras"
        check(clf)


@pytest.mark.train
def test_predict_batch_and_preprocess_share_the_lock(tmp_path, keras_model):
    """predict_batch and preprocess from other threads do not disturb predict either."""
    _, path = keras_model
    with Classifier(path, labels=LABELS, mean=0, std=255) as clf:
        expected = clf.preprocess(FRAMES[2])
        bad = []

        def side() -> None:
            for _ in range(100):
                if [p.index for p in clf.predict_batch(FRAMES)] != [0, 1, 2]:
                    bad.append("batch")
                if not np.array_equal(clf.preprocess(FRAMES[2]), expected):
                    bad.append("preprocess")

        th = threading.Thread(target=side)
        th.start()
        for i in range(300):
            if clf.predict(FRAMES[i % 3]).index != i % 3:
                bad.append("predict")
        th.join()
        assert bad == []
