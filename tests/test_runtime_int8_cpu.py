"""int8 ONNX models on x86 CPUs without VNNI: the card says where they do not saturate, and users are warned once."""

from __future__ import annotations

import logging

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from edgecnn.card import ModelCard  # noqa: E402
from edgecnn.runtime import cpu  # noqa: E402


def _tiny_onnx(path):
    """(batch, 8, 8, 3) float -> mean over the image: 3 scores."""
    from onnx import TensorProto, helper

    node = helper.make_node("ReduceMean", ["image"], ["probabilities"], axes=[1, 2], keepdims=0)
    graph = helper.make_graph([node], "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 8, 8, 3])],
                              [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, 3])])
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


@pytest.mark.parametrize("saturating", [True, False])
def test_classifier_warns_once_about_int8_onnx_on_cpus_that_saturate(tmp_path, monkeypatch, caplog, saturating):
    from edgecnn.runtime import Classifier

    monkeypatch.setattr(cpu, "x86_without_vnni", lambda: saturating)
    path = _tiny_onnx(tmp_path / "model_int8.onnx")
    ModelCard(labels=["a", "b", "c"], input_height=8, input_width=8, format="onnx-int8", quantization="int8",
              extra={"int8_saturation_free_on": ["arm", "x86-vnni"]}).save(path)
    with caplog.at_level(logging.WARNING, logger="edgecnn.runtime"):
        for _ in range(2):
            with Classifier(path) as clf:
                clf.predict(np.zeros((8, 8, 3), np.uint8))
    warnings = [r.getMessage() for r in caplog.records if "has no VNNI" in r.getMessage()]
    assert len(warnings) == (1 if saturating else 0)


def test_which_models_saturate(monkeypatch):
    monkeypatch.setattr(cpu, "x86_without_vnni", lambda: True)
    assert cpu.int8_saturates_here("onnx-int8")  # an older card without the key
    assert cpu.int8_saturates_here("custom", {"int8_saturation_free_on": ["arm", "x86-vnni"]})
    assert cpu.int8_saturates_here("custom", {"int8_exact_on": ["arm", "x86-vnni"]})
    assert not cpu.int8_saturates_here("onnx-int8", {"int8_saturation_free_on": ["arm", "x86"]})
    assert not cpu.int8_saturates_here("onnx-int8", {"int8_exact_on": ["arm", "x86"]})  # cards before 2026-11-28
    assert not cpu.int8_saturates_here("tflite-int8")
    monkeypatch.setattr(cpu, "x86_without_vnni", lambda: False)
    assert not cpu.int8_saturates_here("onnx-int8")


def test_benchmark_finding_names_the_cpu_problem(tmp_path, monkeypatch):
    from edgecnn.bench.findings import find
    from edgecnn.bench.result import Row

    monkeypatch.setattr(cpu, "x86_without_vnni", lambda: True)
    path = _tiny_onnx(tmp_path / "model_int8.onnx")
    ModelCard(labels=["a", "b", "c"], input_height=8, input_width=8, format="onnx-int8", quantization="int8",
              extra={"int8_saturation_free_on": ["arm", "x86-vnni"]}).save(path)
    rows = [Row("m", "onnx-int8", "onnx", "int8", t, path=str(path), latency_ms={"p50": 1.0}) for t in (1, 2)]
    found = [f for f in find(rows) if f.rule == "int8-kernels"]
    assert len(found) == 1 and "VNNI" in found[0].message
