"""edgecnn.runtime.contract: the input contract resolved from a loaded model, its card or metadata and the options,
without a Classifier: the Coral quantized MobileNetV2 and small ONNX graphs built here (onnx.helper, milliseconds)."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
from conftest import CORAL_MODEL

from edgecnn.card import ModelCard, Normalization
from edgecnn.errors import LabelsError, ModelError, UsageError
from edgecnn.runtime import Classifier
from edgecnn.runtime import classifier as classifier_mod
from edgecnn.runtime.contract import InputContract, resolve_contract
from edgecnn.runtime.load import load_backend

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

from tests.test_trust3_outputs import save_onnx  # noqa: E402


def small_onnx(path, *, units: int = 3, batch=1, head: str = "Softmax", dynamic_output: bool = False):
    """Mean colour -> MatMul -> ``head`` over ``units`` outputs; an 8x8 NCHW float input of ``batch`` images."""
    nodes = [helper.make_node("ReduceMean", ["image"], ["mean"], axes=[2, 3], keepdims=0),
             helper.make_node("MatMul", ["mean", "w"], ["logits"]),
             helper.make_node(head, ["logits"], ["y"], **({"axis": 1} if head == "Softmax" else {}))]
    weights = helper.make_tensor("w", TensorProto.FLOAT, [3, units], np.ones(3 * units).tolist())
    return save_onnx(path, nodes, [batch, "K"] if dynamic_output else [batch, units], in_shape=(batch, 3, 8, 8),
                     inits=[weights])


@pytest.fixture
def coral(coral_dir):
    """(model path, its loaded LiteRT backend, the backend's standard TFLite metadata)."""
    path = coral_dir / CORAL_MODEL
    backend = load_backend(path, threads=1)
    yield path, backend, backend.standard_metadata()
    backend.close()


def coral_card(labels, **changes) -> ModelCard:
    card = ModelCard(labels=list(labels), input_height=224, input_width=224, channel_order="BGR", resize="center",
                     normalization=Normalization(mean=[1.0, 2.0, 3.0], std=[4.0, 5.0, 6.0]), format="tflite")
    return card.replace(**changes)


def test_quantized_tflite_takes_its_metadata_and_input_quantization(coral):
    path, backend, standard = coral
    spec_before, standard_before = backend.input_spec, copy.deepcopy(standard)
    contract = resolve_contract(path, backend, None, standard)
    assert isinstance(contract, InputContract)
    assert contract.sources == {"normalization": "input quantization", "color": "TFLite metadata",
                                "labels": "TFLite metadata"}
    assert contract.mean == (128.0,) and contract.std == (128.0,)  # q = pixel through scale 1/128, zero point 128
    assert (contract.height, contract.width, contract.channel_order, contract.crop) == (224, 224, "RGB", "stretch")
    assert contract.input_spec.layout == "NHWC" and contract.input_spec.dtype == np.uint8
    assert contract.batch == 1 and contract.num_outputs == 1001 and contract.output_kind is None
    assert len(contract.labels) == 1001 and contract.labels[0] == "background"
    # Nothing it read was changed: the backend's input spec and the metadata are as they were.
    assert backend.input_spec == spec_before and standard == standard_before
    with pytest.raises(dataclasses.FrozenInstanceError):
        contract.batch = 2


def test_options_come_before_the_card_and_the_card_before_the_metadata(coral, caplog):
    path, backend, standard = coral
    names = list(standard.labels)
    card = coral_card(names, input_height=100, input_width=100, output_kind="sigmoid")
    card_before, names_before = copy.deepcopy(card.to_dict()), list(names)
    with caplog.at_level("WARNING", logger="edgecnn.runtime"):
        from_card = resolve_contract(path, backend, card, None)
    assert "card says 100x100 input but the model takes 224x224; using the model's" in caplog.text
    assert from_card.sources == {"normalization": "edgecnn card", "color": "edgecnn card", "labels": "edgecnn card"}
    assert (from_card.mean, from_card.std) == ((1.0, 2.0, 3.0), (4.0, 5.0, 6.0))
    assert (from_card.channel_order, from_card.crop, from_card.output_kind) == ("BGR", "center", "sigmoid")
    assert (from_card.height, from_card.width) == (224, 224)

    options = resolve_contract(path, backend, card, None, labels=names, mean=0, std=[255.0], crop="stretch",
                               output_kind="logits")
    assert options.sources == {"normalization": "options", "color": "edgecnn card", "labels": "options"}
    assert (options.mean, options.std, options.crop, options.output_kind) == ((0.0,), (255.0,), "stretch", "logits")
    # One of mean/std given: the other is the float default.
    assert resolve_contract(path, backend, card, None, std=2).mean == (127.5,)
    assert card.to_dict() == card_before and names == names_before


def test_labels_that_do_not_fit_the_outputs_are_a_labels_error(coral, tmp_path):
    path, backend, standard = coral
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\nc\n")
    with pytest.raises(LabelsError, match="labels file .*labels.txt has 3 labels but the model has 1001 outputs"):
        resolve_contract(path, backend, None, standard, labels=labels)
    with pytest.raises(LabelsError, match="model card of"):
        resolve_contract(path, backend, coral_card(["x", "y"]), None)
    with pytest.raises(UsageError, match="mean/std"):
        resolve_contract(path, backend, None, standard, mean="dark")


def test_float_onnx_without_card_is_assumed_asks_the_model_its_outputs_and_says_so(tmp_path, caplog):
    path = small_onnx(tmp_path / "m.onnx", units=5, batch=2, dynamic_output=True)
    backend = load_backend(path)
    try:
        with caplog.at_level("WARNING", logger="edgecnn.runtime"):
            contract = resolve_contract(path, backend, None, backend.standard_metadata())
    finally:
        backend.close()
    assert contract.sources == {"normalization": "assumed", "color": "assumed", "labels": "class indices"}
    assert (contract.mean, contract.std) == ((127.5,), (127.5,))
    assert contract.input_spec.layout == "NCHW" and (contract.height, contract.width) == (8, 8)
    assert contract.batch == 2 and contract.num_outputs == 5  # the output's width came from one run
    assert contract.labels == tuple(f"class_{i}" for i in range(5))
    notes = [r.getMessage() for r in caplog.records]
    assert len(notes) == 3
    assert "no model card or standard TFLite metadata" in notes[0]
    assert "takes a fixed batch of 2" in notes[1]
    assert "has no labels" in notes[2]


def test_one_softmax_unit_is_refused_and_the_classifier_closes_its_backend(tmp_path, monkeypatch):
    path = small_onnx(tmp_path / "one.onnx", units=1)
    backend = load_backend(path)
    try:
        with pytest.raises(ModelError, match="softmax over one unit"):
            resolve_contract(path, backend, None, None)
        # Resolving closed nothing: the caller owns the backend.
        assert backend.run(np.zeros((1, 3, 8, 8), np.float32)).shape == (1, 1)
    finally:
        backend.close()

    loaded = []

    def recording_load_backend(*args, **kwargs):
        loaded.append(load_backend(*args, **kwargs))
        return loaded[-1]

    monkeypatch.setattr(classifier_mod, "load_backend", recording_load_backend)
    with pytest.raises(ModelError, match="softmax over one unit"):
        Classifier(path)
    sigmoid = small_onnx(tmp_path / "sigmoid.onnx", units=1, head="Sigmoid")
    with pytest.raises(LabelsError, match="pass 2 labels"):
        Classifier(sigmoid, labels=["a", "b", "c"])
    assert len(loaded) == 2
    for closed in loaded:
        with pytest.raises(UsageError, match="closed"):
            closed.run(np.zeros((1, 3, 8, 8), np.float32))


def test_classifier_attributes_are_its_contract(coral_dir):
    with Classifier(coral_dir / CORAL_MODEL, threads=1) as clf:
        contract = clf.contract
        assert clf.sources == contract.sources and clf.sources is not contract.sources
        assert (clf.input_spec, clf.mean, clf.std, clf.output_kind) == (contract.input_spec, contract.mean,
                                                                          contract.std, contract.output_kind)
        assert clf.labels == list(contract.labels) and clf.num_outputs == contract.num_outputs
        assert clf.preprocessor.sample_shape == (224, 224, 3) and clf.preprocessor.crop == contract.crop
