"""`edgecnn evaluate`: metrics and report figures for a trained Keras model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from edgecnn.cli import main
from edgecnn.errors import ModelError
from edgecnn.train.metrics import classification_metrics

pytestmark = pytest.mark.train  # skipped without the train extra (conftest.py)


def _run_dir(tmp_path, arch: str, classes: list[str], size: int = 32):
    """A run directory with an untrained model, its card and labels (what edgecnn train writes)."""
    from edgecnn.card import ModelCard, Normalization
    from edgecnn.labels import write_labels
    from edgecnn.models import create_model, get_spec

    spec = get_spec(arch)
    run = tmp_path / "run"
    run.mkdir()
    create_model(arch, len(classes), (size, size, 3)).save(run / "model.keras")
    ModelCard(labels=classes, input_height=size, input_width=size, architecture=arch,
              normalization=Normalization.raw(spec.in_model_normalization),
              output_kind="sigmoid" if spec.binary else "softmax").save(run / "model.keras")
    write_labels(run / "labels.txt", classes)
    return run


def _folder(tmp_path, classes: list[str], per_class: int = 2):
    rng = np.random.default_rng(0)
    for name in classes:
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "data" / name / f"{i}.png")
    return tmp_path / "data"


def test_evaluate_writes_metrics_and_figures(tmp_path, capsys):
    classes = [f"c{i}" for i in range(6)]
    run = _run_dir(tmp_path, "simple_cnn", classes)
    data = _folder(tmp_path, classes)
    out = tmp_path / "eval"
    assert main(["evaluate", str(run), "--data", str(data), "--out", str(out), "--samples", "4"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert f"top-5 {metrics['top5_accuracy']:.4f}" in capsys.readouterr().out
    assert metrics["images"] == 12 and 0 <= metrics["accuracy"] <= metrics["top5_accuracy"] <= 1
    assert set(metrics["per_class"]) == set(classes)
    assert np.asarray(metrics["confusion_matrix"]).sum() == 12
    for name in ("confusion_matrix.png", "predictions.png", "gradcam.png", "feature_maps.png"):
        assert (out / name).stat().st_size > 1000, name


def test_evaluate_binary_model_default_out(tmp_path):
    from edgecnn.train.evaluate import evaluate

    run = _run_dir(tmp_path, "pet_cnn", ["cat", "dog"])
    report = evaluate(run / "model.keras", _folder(tmp_path, ["cat", "dog"]), samples=2)
    assert report["out"] == run / "eval" and "top5_accuracy" not in report["metrics"]
    assert (run / "eval" / "gradcam.png").is_file()


def test_grad_cam_heatmaps_are_normalised_and_image_sized():
    from edgecnn.models import create_model
    from edgecnn.train.explain import feature_maps, grad_cam

    model = create_model("inception_attention_cnn", 3, (32, 32, 3))
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype(np.float32)
    heat, layer = grad_cam(model, images)
    assert heat.shape == (2, 32, 32) and heat.min() >= 0 and heat.max() <= 1 and layer == "attention_apply"
    maps = feature_maps(model, images[0], max_layers=3)
    assert len(maps) == 3 and all(m.ndim == 3 for _, m in maps)


def test_classification_metrics_match_hand_computed_values():
    labels = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]])
    m = classification_metrics(labels, probs, ["a", "b"])
    assert m["accuracy"] == 0.75 and m["confusion_matrix"] == [[1, 1], [0, 2]]
    assert m["per_class"]["a"]["precision"] == 1.0 and m["per_class"]["b"]["recall"] == 1.0
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3)


def test_top5_only_with_more_than_five_classes():
    # Six classes: the first image's true class has the lowest score, every other image's the highest.
    probs = np.eye(6) * 0.9 + 0.02
    probs[0] = [0.0, 0.2, 0.2, 0.2, 0.2, 0.2]
    m = classification_metrics(np.arange(6), probs, [f"c{i}" for i in range(6)])
    assert m["accuracy"] == pytest.approx(5 / 6) and m["top5_accuracy"] == pytest.approx(5 / 6)
    # Five classes: top-5 would be 100% by construction, so it is not reported.
    assert "top5_accuracy" not in classification_metrics(np.arange(5), np.eye(5), [f"c{i}" for i in range(5)])


def test_missing_model_is_a_clear_error(tmp_path):
    from edgecnn.train.evaluate import evaluate

    with pytest.raises(ModelError, match="model not found"):
        evaluate(tmp_path / "nothing", tmp_path)
