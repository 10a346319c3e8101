"""The field loop's features and novelty (issue 24): exports carry the pooled features and their training statistics,
the runtime returns the features, and FeatureStats scores how unlike the training images a frame is."""

from __future__ import annotations

import logging
import tarfile

import numpy as np
import pytest
from conftest import COLOUR_SIZE, COLOURS, CORAL_MODEL  # colour_run: the session's tiny trained export (conftest.py)

from edgecnn.runtime import Classifier
from edgecnn.runtime.novelty import FeatureStats


@pytest.mark.train
@pytest.mark.parametrize("name", ["model_fp32.tflite", "model_int8.tflite", "model.onnx"])
def test_exported_features_match_keras(colour_run, name):
    from edgecnn.export.features import predict_with_features
    from edgecnn.formats import format_for_path

    model, folder, val, report = colour_run
    scores, reference = predict_with_features(model, val.images)
    assert reference.shape == (len(val.images), model.get_layer("fc").units)  # the input of the final Dense
    with Classifier(folder / name) as clf:
        assert clf.backend.num_outputs == 1 and clf.num_classes == 3  # the class output stays the classifier's
        predictions = clf.predict_batch(list(val.images), order="RGB")
        one = clf.predict(val.images[0], order="RGB")
    features = np.stack([p.features for p in predictions])
    assert features.dtype == np.float32 and features.shape == reference.shape
    if "int8" in name:  # quantized features, dequantized by the runtime: within a few steps of Keras
        assert np.corrcoef(features.ravel(), reference.ravel())[0, 1] > 0.99
    else:
        np.testing.assert_allclose(features, reference, atol=1e-4, rtol=1e-4)
        np.testing.assert_allclose(np.stack([p.probabilities for p in predictions]), scores, atol=1e-5)
    np.testing.assert_allclose(one.features, features[0], atol=1e-6)
    checked = report.artifact(format_for_path(name).name).validation["features"]  # the export compared them too
    assert checked["present"] and checked["correlation"] > 0.99


@pytest.mark.train
def test_class_output_comes_first_in_each_format(colour_run):
    import onnx
    from ai_edge_litert.interpreter import Interpreter

    _, folder, _, _ = colour_run
    assert [o.name for o in onnx.load(str(folder / "model.onnx")).graph.output] == ["probabilities", "features"]
    interpreter = Interpreter(model_path=str(folder / "model_int8.tflite"))
    first, second = interpreter.get_output_details()
    assert first["shape"][-1] == 3 and second["shape"][-1] == 64  # scores, then the 64 features of fc
    assert second["dtype"] == np.uint8 and second["quantization"][0] > 0  # int8: the features are quantized too


@pytest.mark.train
def test_standard_tflite_metadata_describes_both_outputs(colour_run):
    from edgecnn.tflite_metadata import METADATA_KEY, metadata_schema
    from edgecnn.tflite_metadata.read import read_metadata

    _, folder, _, _ = colour_run
    data = read_metadata(folder / "model_int8.tflite", METADATA_KEY)
    graph = metadata_schema().ModelMetadata.GetRootAs(data, 0).SubgraphMetadata(0)
    assert graph.OutputTensorMetadataLength() == 2  # one entry per output tensor, as metadata readers require
    assert graph.OutputTensorMetadata(1).Name() == b"features"


@pytest.mark.train
def test_export_writes_feature_stats_that_flag_photos_unlike_the_training_colours(colour_run, flowers_dir):
    from edgecnn.data import load_folder

    _, folder, val, report = colour_run
    path = folder / "feature_stats.npz"
    assert 0 < path.stat().st_size <= 1_000_000
    assert report.features["statistics"] == "feature_stats.npz" and report.features["size"] == 64
    summary = report.features["summary"]
    assert summary["images"] == 90 and summary["classes"] == 3 and summary["threshold_images"] == 36
    with Classifier(folder / "model_fp32.tflite") as clf:
        stats = clf.feature_stats
        assert stats is not None and stats.threshold == pytest.approx(summary["threshold"], abs=1e-4)
        assert clf.card.extra["features"]["output"] == "features"
        inside = np.array([stats.score(p.features) for p in clf.predict_batch(list(val.images), order="RGB")])
        photos = load_folder(flowers_dir / "val", COLOUR_SIZE, limit_per_class=6).images
        outside = np.array([stats.score(p.features) for p in clf.predict_batch(list(photos), order="RGB")])
    assert np.mean(inside > stats.threshold) <= 1 / 36 + 1e-9  # the 99th percentile of these very images
    assert np.mean(outside > stats.threshold) >= 0.8, (np.median(outside), stats.threshold)


def test_feature_stats_round_trip_and_score_shifted_features_higher(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 600)
    train = rng.normal(size=(600, 200)) * np.linspace(0.2, 2, 200) + labels[:, None] * 0.5
    stats = FeatureStats.fit(train, labels, source="synthetic").calibrated(
        rng.normal(size=(300, 200)) * np.linspace(0.2, 2, 200), "held out")
    assert stats.components.shape == (64, 200) and stats.meta["pca_dims"] == 64
    saved = stats.save(tmp_path)
    loaded = FeatureStats.load(tmp_path / "model_int8.tflite")  # beside a model file, as in a release folder
    assert saved.name == "feature_stats.npz" and FeatureStats.load(tmp_path).threshold == loaded.threshold
    for name in ("mean", "components", "class_means", "precision"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(stats, name))
    assert loaded.summary() == stats.summary() and loaded.threshold == pytest.approx(stats.threshold)
    probe = rng.normal(size=(50, 200)) * np.linspace(0.2, 2, 200)
    np.testing.assert_allclose(loaded.scores(probe), stats.scores(probe), rtol=1e-6)
    shifted = probe + rng.normal(size=200) * 2  # off the training distribution
    assert np.median(stats.scores(shifted)) > 1.3 * np.median(stats.scores(probe))
    assert np.mean(stats.scores(shifted) > stats.threshold) > 0.9
    assert np.mean(stats.scores(probe) > stats.threshold) < 0.1


def test_unreadable_feature_stats_are_one_warning_and_none(tmp_path, caplog):
    (tmp_path / "feature_stats.npz").write_bytes(b"not an npz")
    with caplog.at_level(logging.WARNING, logger="edgecnn.runtime"):
        assert FeatureStats.load(tmp_path / "model.onnx") is None
    assert len(caplog.records) == 1 and "novelty is off" in caplog.records[0].getMessage()
    assert FeatureStats.load(tmp_path / "elsewhere" / "model.onnx") is None  # no statistics: None, silently


def test_model_without_features_gives_none(coral_dir):
    with Classifier(coral_dir / CORAL_MODEL) as clf:
        assert clf.backend.features_spec is None and clf.feature_stats is None
        prediction = clf.predict(coral_dir / "cat.bmp")
        assert prediction.features is None and prediction.label  # classifies as before
        assert all(p.features is None for p in clf.predict_batch([coral_dir / "bird.bmp"]))


@pytest.mark.train
def test_release_carries_the_feature_stats(colour_run, tmp_path):
    from edgecnn.deploy import release

    _, folder, _, _ = colour_run
    files = release.release_files(folder, release.choose(release.export_artifacts(folder), "tflite-fp32"))
    release.write_tarball(files, tmp_path / "release.tar.gz")
    with tarfile.open(tmp_path / "release.tar.gz") as tar:
        assert "feature_stats.npz" in tar.getnames() and "model_fp32.tflite" in tar.getnames()


@pytest.mark.train
def test_plain_keras_file_exports_features_without_statistics(colour_run, tmp_path, caplog):
    from edgecnn.export import export

    model, _, _, _ = colour_run
    model.save(tmp_path / "plain.keras")
    with caplog.at_level(logging.INFO, logger="edgecnn.export"):
        report = export(tmp_path / "plain.keras", "onnx", tmp_path / "out", labels=list(COLOURS), validate=False)
    assert not (tmp_path / "out" / "feature_stats.npz").exists()
    assert report.features["statistics"] is None and report.features["size"] == 64
    assert sum("feature statistics skipped" in r.getMessage() for r in caplog.records) == 1
    with Classifier(tmp_path / "out" / "model.onnx") as clf:
        assert clf.backend.features_spec is not None and clf.feature_stats is None


@pytest.mark.train
def test_keras_model_file_gives_the_pooled_features_too(colour_run):
    from edgecnn.export.features import predict_with_features

    model, folder, val, _ = colour_run
    _, reference = predict_with_features(model, val.images[:8])
    # The run's model, in the keras backend; it has no card: raw pixels, as its export assumed.
    with Classifier(folder.parent / "run" / "model.keras", mean=0.0, std=1.0) as clf:
        features = np.stack([p.features for p in clf.predict_batch(list(val.images[:8]), order="RGB")])
        assert clf.feature_stats is None  # statistics live in the export folder, not the run
    np.testing.assert_allclose(features, reference, atol=1e-5, rtol=1e-5)


def test_feature_statistics_include_every_training_root(tmp_path):
    """A run trained on several --data roots: the export's feature statistics (and int8 calibration) see the
    added roots too, so frames just collected and retrained on no longer look novel."""
    from test_train import make_colour_folder

    from edgecnn.export.calibration import training_images

    base = make_colour_folder(tmp_path / "base", per_class=4)
    field = make_colour_folder(tmp_path / "field", per_class=3)
    config = {"data": str(base), "val_split": 0.25, "seed": 0, "more_data": [str(field)]}
    found = training_images(config, None, ["blue", "green", "red"], (24, 24, 3), 100)
    assert len(found.images) == 3 * 3 + 3 * 3  # base minus its held-out quarter, plus every added image
    assert str(field) in found.source and sorted(set(found.labels.tolist())) == [0, 1, 2]
    alone = training_images({**config, "more_data": []}, None, ["blue", "green", "red"], (24, 24, 3), 100)
    assert len(alone.images) == 9 and str(field) not in alone.source
