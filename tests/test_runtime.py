"""edgecnn.runtime on real models: the Coral quantized MobileNetV2 and small ONNX graphs built here.

The ONNX models are built with ``onnx.helper`` (milliseconds, no TensorFlow):
global average pool -> dense, so the expected output can be computed with numpy.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
from conftest import CORAL_MODEL

from edgecnn.card import ModelCard, Normalization
from edgecnn.errors import BackendUnavailableError, LabelsError, ModelError, UsageError
from edgecnn.runtime import Classifier, TensorSpec, confidence_feedback, probe_backends
from edgecnn.runtime import litert_backend as litert_mod
from edgecnn.runtime.preprocess import Preprocessor, as_uint8_color, build_lut, center_crop_box, read_image

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402


# --------------------------------------------------------------------------- helpers
def make_onnx(path, *, classes=4, size=8, layout="NCHW", dtype="float32", head="logits", dynamic_batch=True,
              seed=0, card: ModelCard | None = None, metadata: dict | None = None):
    """GAP -> Gemm [-> Softmax | Sigmoid] image classifier; returns (path, W, b)."""
    rng = np.random.default_rng(seed)
    outputs = 1 if head == "sigmoid" else classes
    W = rng.normal(size=(3, outputs)).astype(np.float32)
    b = rng.normal(size=(outputs,)).astype(np.float32)
    batch = "N" if dynamic_batch else 1
    shape = [batch, 3, size, size] if layout == "NCHW" else [batch, size, size, 3]
    elem = {"float32": TensorProto.FLOAT, "uint8": TensorProto.UINT8}[dtype]
    x = helper.make_tensor_value_info("image", elem, shape)
    y = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch, outputs])
    nodes, cur = [], "image"
    if dtype != "float32":
        nodes.append(helper.make_node("Cast", [cur], ["xf"], to=TensorProto.FLOAT))
        cur = "xf"
    if layout == "NHWC":
        nodes.append(helper.make_node("Transpose", [cur], ["xt"], perm=[0, 3, 1, 2]))
        cur = "xt"
    nodes += [
        helper.make_node("GlobalAveragePool", [cur], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"]),
        helper.make_node("Gemm", ["flat", "W", "b"], ["logits" if head != "linear" else "scores"]),
    ]
    if head == "softmax":
        nodes.append(helper.make_node("Softmax", ["logits"], ["scores"], axis=-1))
    elif head == "sigmoid":
        nodes.append(helper.make_node("Sigmoid", ["logits"], ["scores"]))
    elif head == "logits":
        nodes.append(helper.make_node("Identity", ["logits"], ["scores"]))
    inits = [helper.make_tensor("W", TensorProto.FLOAT, W.shape, W.ravel()),
             helper.make_tensor("b", TensorProto.FLOAT, b.shape, b)]
    model = helper.make_model(helper.make_graph(nodes, "clf", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    if card is not None:
        card.save(path)
    return path, W, b


def reference(img_bgr, W, b, mean, std, size, head):
    """What the ONNX model above should output for one BGR image, computed with numpy."""
    img = img_bgr
    if img.shape[:2] != (size, size):
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR)
    x = (img[..., ::-1].astype(np.float64) - np.asarray(mean)) / np.asarray(std)
    z = x.mean(axis=(0, 1)) @ W + b
    if head == "sigmoid":
        p = 1 / (1 + np.exp(-z[0]))
        return np.array([1 - p, p])
    e = np.exp(z - z.max())
    return e / e.sum()


def card_for(labels, size=8, mean=(0.0,) * 3, std=(1.0,) * 3, output_kind="softmax", layout="NCHW"):
    return ModelCard(labels=list(labels), input_height=size, input_width=size, layout=layout,
                     normalization=Normalization(mean=list(mean), std=list(std)), output_kind=output_kind,
                     format="onnx")


@pytest.fixture
def rng():
    return np.random.default_rng(42)


# --------------------------------------------------------------------------- Coral model
def raw_interpreter_scores(model_path, image_path):
    """The reference: ai_edge_litert directly, uint8 pixels in, dequantized scores out."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(model_path), num_threads=2)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    _, h, w, _ = inp["shape"]
    bgr = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    rgb = cv2.cvtColor(cv2.resize(bgr, (int(w), int(h)), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
    interp.set_tensor(inp["index"], rgb[None])
    interp.invoke()
    q = interp.get_tensor(out["index"])[0].astype(np.float64)
    scale, zero_point = out["quantization"]
    return (q - zero_point) * scale


@pytest.fixture(scope="module")
def coral_clf():
    from conftest import shared_path

    return Classifier(shared_path("data", "coral", CORAL_MODEL),
                      labels=shared_path("data", "coral", "imagenet_labels.txt"), threads=2)


def test_coral_cat_is_egyptian_cat_matching_raw_interpreter(coral_clf, coral_dir):
    pytest.importorskip("ai_edge_litert")
    pred = coral_clf.predict(coral_dir / "cat.bmp", top_k=5)
    raw = raw_interpreter_scores(coral_dir / CORAL_MODEL, coral_dir / "cat.bmp")
    assert pred.label == "Egyptian cat"
    assert pred.index == int(np.argmax(raw))
    assert abs(pred.score - raw[pred.index]) <= 0.02
    assert np.allclose(pred.probabilities, raw, atol=0.02)
    assert [t.score for t in pred.top] == sorted((t.score for t in pred.top), reverse=True)
    assert pred.input.endswith("cat.bmp") and pred.latency_ms > 0


def test_coral_grace_hopper_is_military_uniform(coral_clf, coral_dir):
    pred = coral_clf.predict(str(coral_dir / "grace_hopper.bmp"), top_k=3)
    assert pred.label == "military uniform"
    assert len(pred.top) == 3


def test_coral_array_input_bgr_and_rgb_agree(coral_clf, coral_dir):
    bgr = cv2.imread(str(coral_dir / "cat.bmp"))
    a = coral_clf.predict(bgr)
    b = coral_clf.predict(np.ascontiguousarray(bgr[..., ::-1]), order="RGB")
    assert a.input is None
    assert np.array_equal(a.probabilities, b.probabilities)
    # Feeding the wrong order changes the scores: the swap really happens.
    c = coral_clf.predict(bgr, order="RGB")
    assert not np.array_equal(a.probabilities, c.probabilities)


def test_coral_predict_batch_matches_predict(coral_clf, coral_dir):
    paths = [coral_dir / "cat.bmp", coral_dir / "bird.bmp"]
    batch = coral_clf.predict_batch(paths, top_k=2)
    single = [coral_clf.predict(p, top_k=2) for p in paths]
    assert [p.label for p in batch] == [p.label for p in single]
    for x, y in zip(batch, single):
        assert np.array_equal(x.probabilities, y.probabilities)


def test_coral_labels_embedded_in_the_model_are_used(coral_dir):
    clf = Classifier(coral_dir / CORAL_MODEL)
    assert clf.num_classes == 1001 and clf.labels[0] == "background"
    assert clf.predict(coral_dir / "cat.bmp").label == "Egyptian cat"


def test_labels_count_mismatch_is_a_clear_error(coral_dir, tmp_path):
    labels = tmp_path / "ten.txt"
    labels.write_text("".join(f"c{i}\n" for i in range(10)))
    with pytest.raises(LabelsError, match="10 labels but the model has 1001 outputs"):
        Classifier(coral_dir / CORAL_MODEL, labels=labels)


def test_missing_delegate_is_a_clear_error(coral_dir):
    with pytest.raises(ModelError, match="cannot load delegate 'libnot_here_edgetpu.so.1'"):
        Classifier(coral_dir / CORAL_MODEL, delegate="libnot_here_edgetpu.so.1")


def test_bad_threads_value(coral_dir):
    with pytest.raises(UsageError, match="threads=0"):
        Classifier(coral_dir / CORAL_MODEL, threads=0)


# --------------------------------------------------------------------------- ONNX models
def test_onnx_nchw_logits_with_card_matches_numpy(tmp_path, rng):
    mean, std = (120.0, 110.0, 100.0), (60.0, 50.0, 40.0)
    card = card_for("abcd", mean=mean, std=std, output_kind="logits")
    path, W, b = make_onnx(tmp_path / "m.onnx", head="logits", card=card)
    clf = Classifier(path)
    assert clf.input_spec.layout == "NCHW" and clf.labels == list("abcd")
    for shape in [(8, 8, 3), (31, 47, 3)]:  # exact size, and a resize
        img = rng.integers(0, 256, shape, dtype=np.uint8)
        pred = clf.predict(img, top_k=4)
        expected = reference(img, W, b, mean, std, 8, "softmax")
        np.testing.assert_allclose(pred.probabilities, expected, atol=1e-5)
        assert pred.index == int(np.argmax(expected))
        assert pred.label == "abcd"[pred.index]


def test_onnx_providers_default_to_cpu_and_are_checked(tmp_path, rng, capsys, coral_dir):
    import onnxruntime

    from edgecnn.cli import main

    card = card_for("abcd", mean=(120.0,), std=(60.0,), output_kind="logits")
    path, W, b = make_onnx(tmp_path / "m.onnx", head="logits", card=card)
    img = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    default = Classifier(path)
    assert default.backend.providers == ["CPU"] and default.backend.source == "onnxruntime"
    chosen = Classifier(path, providers=["cpu"])
    assert chosen.backend.providers == ["CPU"] and chosen.backend.source == "onnxruntime (CPU)"
    np.testing.assert_array_equal(chosen.predict(img).probabilities, default.predict(img).probabilities)
    with pytest.raises(UsageError, match=r"unknown ONNX Runtime provider 'cdua' \(did you mean 'cuda'\?\)"):
        Classifier(path, providers=["cdua"])
    with pytest.raises(UsageError, match="works with ONNX models only"):
        Classifier(coral_dir / CORAL_MODEL, providers=["cpu"])
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        assert main(["predict", str(path), str(tmp_path), "--providers", "cuda"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ONNX Runtime provider CUDA is not available") and "onnxruntime-gpu" in err


def test_top_k_breaks_ties_by_lower_index_for_every_k(tmp_path, rng):
    """Quantized outputs tie often (int8 scores come in steps of 1/256): top-1 must not depend on top_k."""
    path, _, _ = make_onnx(tmp_path / "m.onnx", classes=6, card=card_for("abcdef"))
    clf = Classifier(path)
    assert [c.index for c in clf.topk(np.array([0.1, 0.3, 0.3, 0.0, 0.3, 0.0]), 1)] == [1]
    for _ in range(50):
        probs = rng.integers(0, 4, 6) / 8.0  # many ties
        expected = np.argsort(-probs, kind="stable")
        for k in range(1, 7):
            assert [c.index for c in clf.topk(probs, k)] == expected[:k].tolist()


def test_onnx_dynamic_batch_runs_one_call(tmp_path, rng):
    path, W, b = make_onnx(tmp_path / "m.onnx", head="softmax", card=card_for("abcd"))
    clf = Classifier(path)
    calls = []
    run = clf.backend.run
    clf.backend.run = lambda batch: calls.append(len(batch)) or run(batch)
    imgs = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(5)]
    preds = clf.predict_batch(imgs)
    assert calls == [5]
    for img, pred in zip(imgs, preds):
        np.testing.assert_allclose(pred.probabilities, reference(img, W, b, 0, 1, 8, "softmax"), atol=1e-5)


def test_onnx_fixed_batch_runs_one_image_per_call(tmp_path, rng):
    path, W, b = make_onnx(tmp_path / "m.onnx", head="softmax", dynamic_batch=False, card=card_for("abcd"))
    clf = Classifier(path)
    imgs = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(3)]
    preds = clf.predict_batch(imgs)
    assert len(preds) == 3
    np.testing.assert_allclose(preds[2].probabilities, reference(imgs[2], W, b, 0, 1, 8, "softmax"), atol=1e-5)


def test_onnx_nhwc_uint8_input_takes_raw_pixels(tmp_path, rng):
    path, W, b = make_onnx(tmp_path / "m.onnx", layout="NHWC", dtype="uint8", head="softmax")
    clf = Classifier(path, labels=["a", "b", "c", "d"])
    assert clf.input_spec.layout == "NHWC" and clf.preprocessor.lut is None
    img = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    np.testing.assert_allclose(clf.predict(img).probabilities, reference(img, W, b, 0, 1, 8, "softmax"), atol=1e-5)


def test_float_model_without_card_defaults_to_minus1_1_and_says_so(tmp_path, rng, caplog):
    path, W, b = make_onnx(tmp_path / "m.onnx", head="logits")
    with caplog.at_level("WARNING", logger="edgecnn.runtime"):
        clf = Classifier(path)
    notes = " ".join(r.getMessage() for r in caplog.records)
    assert "no model card" in notes and "-1..1" in notes and "--mean/--std" in notes
    assert "no labels" in notes and clf.labels == ["class_0", "class_1", "class_2", "class_3"]
    img = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    # No card, logits out of 0..1: softmax applied.
    np.testing.assert_allclose(clf.predict(img).probabilities, reference(img, W, b, 127.5, 127.5, 8, "softmax"),
                               atol=1e-5)
    # --mean/--std override.
    clf2 = Classifier(path, mean=[0, 0, 0], std=[255, 255, 255])
    np.testing.assert_allclose(clf2.predict(img).probabilities, reference(img, W, b, 0, 255, 8, "softmax"), atol=1e-5)


def test_sigmoid_single_output_is_binary(tmp_path, rng):
    card = card_for(["cat", "dog"], output_kind="sigmoid")
    path, W, b = make_onnx(tmp_path / "m.onnx", head="sigmoid", card=card)
    clf = Classifier(path)
    assert clf.labels == ["cat", "dog"] and clf.num_outputs == 1
    img = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    pred = clf.predict(img, top_k=5)
    expected = reference(img, W, b, 0, 1, 8, "sigmoid")
    np.testing.assert_allclose(pred.probabilities, expected, atol=1e-5)
    assert len(pred.top) == 2 and pred.label == ["cat", "dog"][int(np.argmax(expected))]
    with pytest.raises(LabelsError, match="2 labels"):
        Classifier(path, labels=["cat", "dog", "bird"])


def test_background_label_is_aligned(tmp_path):
    path, _, _ = make_onnx(tmp_path / "m.onnx", head="softmax")
    labels = tmp_path / "labels.txt"
    labels.write_text("background\na\nb\nc\nd\n")
    assert Classifier(path, labels=labels).labels == ["a", "b", "c", "d"]
    labels.write_text("x\na\nb\nc\nd\n")
    with pytest.raises(LabelsError, match="5 labels but the model has 4 outputs"):
        Classifier(path, labels=labels)


def test_onnx_card_embedded_in_metadata_props(tmp_path, rng):
    card = card_for(["w", "x", "y", "z"], mean=(10, 20, 30), std=(2, 3, 4))
    path, W, b = make_onnx(tmp_path / "m.onnx", head="softmax", metadata={"edgecnn.card": card.to_json()})
    clf = Classifier(path)
    assert clf.card is not None and clf.labels == ["w", "x", "y", "z"]
    img = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    np.testing.assert_allclose(clf.predict(img).probabilities, reference(img, W, b, (10, 20, 30), (2, 3, 4), 8,
                                                                          "softmax"), atol=1e-5)


def test_center_crop_uses_the_middle(tmp_path):
    path, W, b = make_onnx(tmp_path / "m.onnx", head="softmax", card=card_for("abcd"))
    img = np.zeros((8, 24, 3), np.uint8)
    img[:, 8:16] = (0, 0, 255)  # red centre square (BGR)
    clf = Classifier(path, crop="center")
    np.testing.assert_allclose(clf.predict(img).probabilities,
                               reference(img[:, 8:16], W, b, 0, 1, 8, "softmax"), atol=1e-5)


# --------------------------------------------------------------------------- bad model files
def one_line(exc_info, *needles):
    text = str(exc_info.value)
    assert "\n" not in text
    for needle in needles:
        assert needle in text
    return text


@pytest.mark.parametrize("suffix", [".tflite", ".onnx"])
def test_missing_model(tmp_path, suffix):
    with pytest.raises(ModelError) as exc:
        Classifier(tmp_path / f"nope{suffix}")
    one_line(exc, "not found", f"nope{suffix}")


@pytest.mark.parametrize("suffix", [".tflite", ".onnx"])
def test_empty_model(tmp_path, suffix):
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    with pytest.raises(ModelError) as exc:
        Classifier(path)
    one_line(exc, "empty", str(path))


@pytest.mark.parametrize("suffix", [".tflite", ".onnx"])
def test_text_file_renamed_as_model(tmp_path, suffix):
    path = tmp_path / f"notes{suffix}"
    path.write_text("these are my notes, not a model\n" * 5)
    with pytest.raises(ModelError) as exc:
        Classifier(path)
    text = one_line(exc, str(path))
    assert "not a" in text


def test_truncated_tflite(tmp_path, coral_dir):
    path = tmp_path / "trunc.tflite"
    path.write_bytes((coral_dir / CORAL_MODEL).read_bytes()[:1_000_000])
    with pytest.raises(ModelError) as exc:
        Classifier(path)
    one_line(exc, str(path), "truncated or corrupt")


def test_truncated_onnx(tmp_path):
    good, _, _ = make_onnx(tmp_path / "good.onnx")
    path = tmp_path / "trunc.onnx"
    path.write_bytes(good.read_bytes()[:-40])
    with pytest.raises(ModelError) as exc:
        Classifier(path)
    one_line(exc, str(path), "not a valid ONNX model")


def test_inference_failure_is_a_model_error(tmp_path):
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 8, 8])
    y = helper.make_tensor_value_info("scores", TensorProto.FLOAT, None)
    shape = helper.make_tensor("s", TensorProto.INT64, [2], [-1, 5])  # 192 values cannot be rows of 5
    graph = helper.make_graph([helper.make_node("Reshape", ["image", "s"], ["scores"])], "bad", [x], [y], [shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "bad.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ModelError) as exc:
        clf = Classifier(path, labels=["a"] * 5, mean=0, std=1)
        clf.predict(np.zeros((8, 8, 3), np.uint8))
    one_line(exc, "inference failed", str(path))


def test_multi_input_model_is_rejected(tmp_path):
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 3, 8, 8])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])
    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["y"])], "two", [a, b], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "two.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ModelError, match="2 inputs"):
        Classifier(path)


def test_delegate_is_refused_for_non_tflite_models(tmp_path):
    good, _, _ = make_onnx(tmp_path / "good.onnx")
    with pytest.raises(UsageError, match="--delegate 'libedgetpu.so.1' works with TFLite models only"):
        Classifier(good, delegate="libedgetpu.so.1")


def test_unknown_suffix_and_backend(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"x")
    with pytest.raises(UsageError, match="--backend"):
        Classifier(path)
    with pytest.raises(UsageError, match="unknown backend 'onx'.*'onnx'"):
        Classifier(path, backend="onx")


# --------------------------------------------------------------------------- preprocessing
def test_read_image_decodes_by_content_and_converts(tmp_path):
    rgba = np.zeros((5, 7, 4), np.uint8)
    rgba[..., 0] = 10
    rgba[..., 1] = 20
    rgba[..., 2] = 30
    rgba[..., 3] = 40
    png_named_jpg = tmp_path / "really_a_png.jpg"
    png_named_jpg.write_bytes(cv2.imencode(".png", rgba)[1].tobytes())
    img = read_image(png_named_jpg)
    # alpha 40/255 composited on black, as the training loader does
    assert img.shape == (5, 7, 3) and img.dtype == np.uint8 and tuple(img[0, 0]) == (2, 3, 5)

    gray16 = np.full((4, 4), 0x8000, np.uint16)
    p16 = tmp_path / "gray16.png"
    cv2.imwrite(str(p16), gray16)
    img = read_image(p16)
    assert img.shape == (4, 4, 3) and img.dtype == np.uint8 and (img == 128).all()


def test_read_image_errors(tmp_path):
    from edgecnn.errors import DataError

    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(DataError, match="cannot decode"):
        read_image(bad)
    with pytest.raises(DataError, match="not found"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        read_image(tmp_path / "empty.png")


def test_as_uint8_color_variants():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert as_uint8_color(gray).shape == (3, 4, 3)
    assert as_uint8_color(gray[..., None])[..., 2].tolist() == gray.tolist()
    f = np.ones((2, 2, 3), np.float32) * 0.5
    assert (as_uint8_color(f) == 128).all()
    same = np.zeros((2, 2, 3), np.uint8)
    assert as_uint8_color(same) is same
    from edgecnn.errors import DataError

    with pytest.raises(DataError, match="shape"):
        as_uint8_color(np.zeros((2, 2, 5), np.uint8))


def test_lut_quantization_rules():
    # uint8 quantized, raw pixels (the Coral convention): identity -> no table at all.
    assert build_lut([128], [128], np.uint8, scale=1 / 128, zero_point=128) is None
    # int8 raw pixels: pixel - 128.
    lut = build_lut([128 - 5], [1 / 0.5], np.int8, scale=0.5, zero_point=-5)
    assert lut.dtype == np.int8 and lut[0, 0, 0] == -128 and lut[0, 255, 2] == 127
    # A card's normalization through quantization: x = (p - 127.5) / 127.5, q = round(x / (1/128) + 0).
    lut = build_lut([127.5], [127.5], np.int8, scale=1 / 128, zero_point=0)
    assert lut[0, 0, 0] == -128 and lut[0, 255, 0] == 127
    # Float: per-channel normalization.
    lut = build_lut([1, 2, 3], [2, 4, 8], np.float32)
    assert lut.dtype == np.float32 and lut[0, 9, 0] == 4.0 and lut[0, 10, 1] == 2.0 and lut[0, 11, 2] == 1.0
    with pytest.raises(UsageError, match="std"):
        build_lut([0], [0], np.float32)
    with pytest.raises(UsageError, match="expected 1 or 3"):
        build_lut([0, 1], [1], np.float32)


def test_preprocessor_reuses_buffers_and_layouts():
    spec = TensorSpec("x", (1, 3, 4, 6), np.dtype(np.float32), "NCHW")
    pre = Preprocessor(spec, 4, 6, mean=[0], std=[1])
    img = np.zeros((8, 12, 3), np.uint8)
    img[..., 0] = 200  # blue in BGR
    out = pre(img)
    assert out.shape == (3, 4, 6) and out.dtype == np.float32
    assert (out[2] == 200).all() and (out[0] == 0).all()  # RGB: blue is channel 2
    assert pre(img) is out
    gray_spec = TensorSpec("x", (1, 4, 6, 1), np.dtype(np.uint8), "NHWC")
    g = Preprocessor(gray_spec, 4, 6)(img)
    assert g.shape == (4, 6, 1)


def test_center_crop_box():
    assert center_crop_box(480, 640, 224, 224) == (0, 480, 80, 560)
    assert center_crop_box(640, 480, 224, 224) == (80, 560, 0, 480)
    assert center_crop_box(100, 100, 50, 100) == (25, 75, 0, 100)


def test_confidence_feedback_thresholds():
    assert confidence_feedback(0.95) == "Super confident!"
    assert confidence_feedback(0.9) == "Pretty sure!"
    assert confidence_feedback(0.71) == "Pretty sure!"
    assert confidence_feedback(0.6) == "Hmm, I think..."
    assert confidence_feedback(0.5) == "Not very sure..."
    assert confidence_feedback(0.1) == "Not very sure..."


# --------------------------------------------------------------------------- backends and imports
def test_import_runtime_and_predict_tflite_without_tensorflow(coral_dir):
    code = textwrap.dedent(f"""
        import json, sys
        import edgecnn.runtime
        heavy = ("tensorflow", "keras", "onnxruntime", "ai_edge_litert", "tflite_runtime")
        at_import = [m for m in heavy if m in sys.modules]
        from edgecnn import Classifier
        pred = Classifier({str(coral_dir / CORAL_MODEL)!r}, threads=1).predict({str(coral_dir / "cat.bmp")!r})
        print(json.dumps({{"at_import": at_import, "label": pred.label,
                          "after": [m for m in heavy if m in sys.modules]}}))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout.strip().splitlines()[-1])
    assert info["at_import"] == []
    assert info["label"] == "Egyptian cat"
    assert "tensorflow" not in info["after"] and "keras" not in info["after"]
    assert "onnxruntime" not in info["after"]


numpy2_only = pytest.mark.skipif(int(np.__version__.split(".")[0]) < 2, reason="tests behaviour under numpy 2")


@numpy2_only
def test_probe_detects_tflite_runtime_numpy2_crash(tmp_path, monkeypatch):
    pkg = tmp_path / "tflite_runtime"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "interpreter.py").write_text(
        "raise SystemError('initialization of _pywrap_tensorflow_interpreter_wrapper raised unreported exception')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    src = litert_mod.probe_interpreter("tflite_runtime", "tflite_runtime.interpreter")
    assert not src.available
    assert "tflite_runtime crashes with numpy 2; pip install ai-edge-litert (or numpy<2)" in src.detail
    # Nothing else available: the error names the fix.
    monkeypatch.setattr(litert_mod, "_CHOSEN", None)
    monkeypatch.setattr(litert_mod, "INTERPRETER_SOURCES", (("no_such_litert.interpreter", "ai_edge_litert"),
                                                             ("tflite_runtime.interpreter", "tflite_runtime")))
    with pytest.raises(BackendUnavailableError, match=r"numpy 2; pip install ai-edge-litert"):
        litert_mod.import_interpreter()


@numpy2_only
def test_tflite_runtime_that_imports_under_numpy2_is_still_reported_broken(tmp_path, monkeypatch):
    pkg = tmp_path / "tflite_runtime"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "interpreter.py").write_text("class Interpreter: pass\ndef load_delegate(p): pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    src = litert_mod.probe_interpreter("tflite_runtime", "tflite_runtime.interpreter")
    assert not src.available
    assert "tflite_runtime crashes with numpy 2; pip install ai-edge-litert (or numpy<2)" in src.detail


def test_failed_batch_resize_leaves_the_interpreter_usable(coral_dir):
    from edgecnn.errors import ModelError
    from edgecnn.runtime.litert_backend import LiteRTBackend

    backend = LiteRTBackend(coral_dir / CORAL_MODEL)
    one = np.zeros((1, 224, 224, 3), np.uint8)
    expected = backend.run(one)
    try:
        backend.run(np.zeros((4, 224, 224, 3), np.uint8))
    except ModelError:
        pass  # this model has a fixed batch of 1
    np.testing.assert_allclose(backend.run(one), expected)


def test_interpreter_fallback_order(monkeypatch):
    monkeypatch.setattr(litert_mod, "_CHOSEN", None)
    monkeypatch.setattr(litert_mod, "INTERPRETER_SOURCES", (("no_such_litert.interpreter", "ai_edge_litert"),
                                                             ("no_such_tflite.interpreter", "tflite_runtime")))
    with pytest.raises(BackendUnavailableError, match="pip install ai-edge-litert"):
        litert_mod.import_interpreter()
    monkeypatch.setattr(litert_mod, "INTERPRETER_SOURCES", (("no_such_litert.interpreter", "ai_edge_litert"),
                                                             ("ai_edge_litert.interpreter", "tflite_runtime")))
    assert litert_mod.import_interpreter().available


def test_probe_backends_lists_every_runtime():
    statuses = probe_backends()
    names = [(s.backend, s.module) for s in statuses]
    assert ("litert", "ai_edge_litert") in names and ("onnx", "onnxruntime") in names and ("keras", "keras") in names
    onnx_status = next(s for s in statuses if s.module == "onnxruntime")
    assert onnx_status.available and onnx_status.version
    import onnxruntime

    providers = ", ".join(p.removesuffix("ExecutionProvider") for p in onnxruntime.get_available_providers())
    assert onnx_status.line() == f"onnx    onnxruntime      ok ({onnxruntime.__version__}): providers: {providers}"
    assert "CPU" in onnx_status.detail.split(": ")[1].split(", ")  # what `edgecnn doctor` shows for --providers
    for status in statuses:  # one aligned line each: backend, module, ok/missing, and why not
        line = status.line()
        assert line.startswith(f"{status.backend:7s} {status.module:16s} ") and status.detail in line
        assert line.split()[2].startswith("ok" if status.available else "missing")


def test_tflite_metadata_reader_is_robust(coral_dir, tmp_path):
    from edgecnn.tflite_metadata.read import read_metadata

    model = coral_dir / CORAL_MODEL
    assert read_metadata(model, "min_runtime_version").rstrip(b"\0") == b"1.5.0"
    assert read_metadata(model, "edgecnn.card") is None
    data = model.read_bytes()
    rng = np.random.default_rng(0)
    for i, blob in enumerate([data[:5000], data[:8], rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(),
                              b"\xff" * 64]):
        path = tmp_path / f"junk{i}.tflite"
        path.write_bytes(blob)
        assert read_metadata(path, "min_runtime_version") is None


# --------------------------------------------------------------------------- models that are not classifiers
def _onnx_graph(path, nodes, inputs, outputs, inits=()):
    model = helper.make_model(helper.make_graph(nodes, "g", inputs, outputs, list(inits)),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


IMAGE_IN = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 8, 8])


@pytest.mark.parametrize("name, nodes, outputs, message", [
    ("two_outputs", [helper.make_node("Identity", ["image"], ["a"]), helper.make_node("Identity", ["image"], ["b"])],
     [("a", TensorProto.FLOAT, [1, 3, 8, 8]), ("b", TensorProto.FLOAT, [1, 3, 8, 8])], "2 outputs"),
    ("image_out", [helper.make_node("Identity", ["image"], ["y"])], [("y", TensorProto.FLOAT, [1, 3, 8, 8])],
     "output 1x3x8x8: this looks like a pose/segmentation model"),
    ("pose", [helper.make_node("Transpose", ["image"], ["t"], perm=[0, 2, 3, 1]),
              helper.make_node("Tile", ["t", "reps"], ["y"])],
     [("y", TensorProto.FLOAT, [1, 48, 48, 18])], "output 1x48x48x18: this looks like a pose/segmentation model"),
    ("index_map", [helper.make_node("ArgMax", ["image"], ["y"], axis=1, keepdims=0)],
     [("y", TensorProto.INT64, [1, 8, 8])], "output 1x8x8: this looks like a pose/segmentation model"),
    ("argmax", [helper.make_node("GlobalAveragePool", ["image"], ["m"]),
                helper.make_node("Flatten", ["m"], ["f"]), helper.make_node("ArgMax", ["f"], ["y"], axis=1)],
     [("y", TensorProto.INT64, [1, 1])], "output 1x1 is int64, not scores"),
    ("rows", [helper.make_node("Reshape", ["image", "rows"], ["y"])], [("y", TensorProto.FLOAT, [4, 48])],
     "output 4x48 for an input batch of 1: more than one score vector per image"),
])
def test_models_that_are_not_classifiers_are_refused_at_load(tmp_path, name, nodes, outputs, message):
    inits = [helper.make_tensor("reps", TensorProto.INT64, [4], [1, 6, 6, 6]),
             helper.make_tensor("rows", TensorProto.INT64, [2], [4, 48])]
    used = {i for n in nodes for i in n.input}
    outs = [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs]
    path = _onnx_graph(tmp_path / f"{name}.onnx", nodes, [IMAGE_IN], outs, [i for i in inits if i.name in used])
    with pytest.raises(ModelError) as exc:
        Classifier(path)
    one_line(exc, str(path), "is not an image classifier", message)


@pytest.mark.parametrize("shape", [[1, 4], [4], [1, 4, 1, 1], ["N", 4], [1, 1]])
def test_score_vector_shapes_are_classifiers(tmp_path, shape):
    n = 1 if shape == [1, 1] else 4
    nodes = [helper.make_node("GlobalAveragePool", ["image"], ["m"]), helper.make_node("Flatten", ["m"], ["f"]),
             helper.make_node("Gemm", ["f", "W", "b"], ["z"]), helper.make_node("Reshape", ["z", "s"], ["y"])]
    target = [1 if d == "N" else d for d in shape]
    inits = [helper.make_tensor("W", TensorProto.FLOAT, [3, n], np.ones(3 * n, np.float32)),
             helper.make_tensor("b", TensorProto.FLOAT, [n], np.arange(n, dtype=np.float32)),
             helper.make_tensor("s", TensorProto.INT64, [len(target)], target)]
    path = _onnx_graph(tmp_path / "ok.onnx", nodes, [IMAGE_IN],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], inits)
    clf = Classifier(path, labels=["a", "b"] if n == 1 else list("abcd"), mean=0, std=1)
    assert clf.predict(np.zeros((8, 8, 3), np.uint8)).label == ("a" if n == 1 else "d")
