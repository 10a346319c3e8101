"""Training runs: CLI, run directory, reproducibility, Ctrl-C, two-phase transfer learning."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from edgecnn.cli import main
from edgecnn.errors import UsageError
from edgecnn.train.config import TrainConfig
from edgecnn.train.fit import train

pytestmark = pytest.mark.train  # skipped without the train extra (conftest.py)

COLOURS = [(220, 40, 40), (40, 200, 40), (40, 40, 220)]


def make_colour_folder(root, per_class: int = 6, size: int = 24):
    """A tiny learnable dataset: one noisy colour per class."""
    rng = np.random.default_rng(0)
    for name, colour in zip(("red", "green", "blue"), COLOURS):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(np.array(colour) + rng.normal(0, 30, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def _config(tmp_path, **changes) -> TrainConfig:
    base = dict(arch="simple_cnn", data=str(make_colour_folder(tmp_path / "data")), out=str(tmp_path / "run"),
                img_size=24, epochs=1, batch_size=8, augment=[], eager=True, verbose=0)
    return TrainConfig(**{**base, **changes})


def test_train_cli_writes_the_run_directory(tmp_path, capsys):
    data = make_colour_folder(tmp_path / "data")
    (data / "red" / "junk.txt").write_text("not an image")
    run = tmp_path / "run"
    code = main(["train", "--arch", "simple_cnn", "--data", str(data), "--img-size", "24", "--epochs", "2",
                 "--batch-size", "8", "--augment", "flip,brightness", "--eager", "--out", str(run)])
    assert code == 0
    err = capsys.readouterr().err  # progress is logged to stderr
    assert "epoch 1/2 [train] loss" in err and "val_acc" in err and "1 unreadable files skipped" in err
    for name in ("model.keras", "model.keras.card.json", "labels.txt", "config.json", "history.json", "history.png",
                 "metrics.json", "data_report.json"):
        assert (run / name).is_file(), name
    config = json.loads((run / "config.json").read_text())
    assert {"data", "val", "val_split", "img_size", "seed"} <= set(config) and config["img_size"] == 24
    card = json.loads((run / "model.keras.card.json").read_text())
    assert card["labels"] == ["blue", "green", "red"] and card["normalization"]["in_model"] == "x / 255"
    assert card["output_kind"] == "softmax" and card["input_height"] == 24
    history = json.loads((run / "history.json").read_text())
    assert len(history["val_accuracy"]) == 2 and history["phase"] == ["train", "train"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 <= metrics["val_accuracy"] <= 1 and metrics["train_images_per_second"] > 0
    assert set(metrics["val"]["per_class"]) == {"blue", "green", "red"}
    report = json.loads((run / "data_report.json").read_text())
    assert report["skipped_count"] == 1 and report["skipped"][0]["path"].endswith("junk.txt")
    assert (run / "labels.txt").read_text().split() == ["blue", "green", "red"]
    # Augmentation lives in tf.data only: the saved model has none.
    import keras

    model = keras.saving.load_model(run / "model.keras", compile=False)
    assert not [layer for layer in model.layers if type(layer).__name__.startswith("Random")]


def test_train_cli_reports_an_empty_class_in_one_line(tmp_path, capsys):
    from test_data import make_messy_folder

    root = make_messy_folder(tmp_path / "data")
    assert main(["train", "--arch", "simple_cnn", "--data", str(root), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: class folder") and "empty_class is empty" in err and "\n" not in err


def test_messy_folder_without_the_empty_class_trains_and_lists_skipped(tmp_path):
    from test_data import make_messy_folder

    root = make_messy_folder(tmp_path / "data", with_empty_class=False)
    result = train(TrainConfig(arch="simple_cnn", data=str(root), out=str(tmp_path / "run"), img_size=24, epochs=1,
                               val_split=0.3, augment=[], eager=True, verbose=0))
    report = json.loads((result.run_dir / "data_report.json").read_text())
    assert sorted(p["path"].rsplit("/", 1)[-1] for p in report["skipped"]) == ["corrupt.jpg", "notes.txt"]


def test_same_seed_gives_the_same_run(tmp_path):
    first = train(_config(tmp_path / "a", epochs=2, augment=["flip", "rotation"]))
    second = train(_config(tmp_path / "b", epochs=2, augment=["flip", "rotation"]))
    h1 = json.loads((first.run_dir / "history.json").read_text())
    h2 = json.loads((second.run_dir / "history.json").read_text())
    np.testing.assert_allclose(h1["loss"], h2["loss"], rtol=1e-5)
    np.testing.assert_allclose(h1["val_loss"], h2["val_loss"], rtol=1e-5)


def test_ctrl_c_keeps_the_best_epoch_and_writes_the_run(tmp_path):
    import keras

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt

    result = train(_config(tmp_path, epochs=5), callbacks=[Interrupt()])
    assert result.interrupted and result.model_path.is_file()
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics["interrupted"] is True and metrics["epochs_run"] == 2 and metrics["best_epoch"] in (1, 2)


def test_ctrl_c_before_any_epoch_propagates(tmp_path):
    import keras

    class Interrupt(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(_config(tmp_path), callbacks=[Interrupt()])


@pytest.mark.slow
def test_two_phase_transfer_freezes_then_fine_tunes_with_batchnorm_frozen(tmp_path):
    import keras

    from edgecnn.models import backbone_layers

    backbone = keras.applications.MobileNetV2(include_top=False, weights=None, alpha=0.35, input_shape=(32, 32, 3))
    weights = tmp_path / "backbone.weights.h5"
    backbone.save_weights(weights)

    seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            layers = backbone_layers(self.model)
            seen.append({
                "trainable_backbone": sum(1 for layer in layers if layer.trainable and layer.weights),
                "trainable_bn": sum(1 for layer in layers
                                    if type(layer).__name__ == "BatchNormalization" and layer.trainable),
                "trainable_head": self.model.get_layer("predictions").trainable,
                "lr": float(self.model.optimizer.learning_rate.numpy()),
            })

    config = _config(tmp_path, arch="mobilenet_v2", alpha=0.35, img_size=32, weights=str(weights), epochs=1,
                     fine_tune_epochs=1, fine_tune_layers=10, learning_rate=1e-3)
    result = train(config, callbacks=[Record()])
    frozen, fine = seen
    assert frozen["trainable_backbone"] == 0 and frozen["trainable_head"]
    assert fine["trainable_bn"] == 0 and 0 < fine["trainable_backbone"] <= 10
    assert fine["lr"] == pytest.approx(frozen["lr"] / 10)
    history = json.loads((result.run_dir / "history.json").read_text())
    assert history["phase"] == ["frozen", "fine-tune"]
    # Each phase trained above its split, on activations stored once; both phases' times are reported.
    phases = json.loads((result.run_dir / "metrics.json").read_text())["phases"]
    assert [p["phase"] for p in phases] == ["frozen", "fine-tune"]
    assert phases[0]["trains_from"] == "head_pool" and phases[1]["trains_from"].startswith("block_")
    assert all(p["seconds"] > 0 and p["images_per_second"] > 0 for p in phases)
    # One pass over the images stored both splits; without augmentation fine-tuning computes nothing more.
    assert phases[0]["feature_seconds"] > 0 and phases[1]["feature_seconds"] == 0
    # The bottom of the backbone was never trained: it still holds the file's weights.
    model = keras.saving.load_model(result.model_path, compile=False)
    np.testing.assert_array_equal(model.get_layer("Conv1").get_weights()[0],
                                  backbone.get_layer("Conv1").get_weights()[0])
    card = json.loads((result.run_dir / "model.keras.card.json").read_text())
    assert card["normalization"]["in_model"] == "x / 127.5 - 1" and card["architecture"] == "mobilenet_v2"


def test_binary_pet_cnn_trains_with_a_sigmoid_card(tmp_path):
    data = make_colour_folder(tmp_path / "data")
    import shutil

    shutil.rmtree(data / "blue")
    result = train(TrainConfig(arch="pet_cnn", data=str(data), out=str(tmp_path / "run"), img_size=24, epochs=1,
                               augment=[], eager=True, verbose=0, class_weights="auto"))
    assert result.card.output_kind == "sigmoid" and result.card.labels == ["green", "red"]


def test_fine_tuning_and_weights_need_a_transfer_architecture(tmp_path):
    with pytest.raises(UsageError, match="--fine-tune-epochs needs a transfer architecture"):
        train(_config(tmp_path / "a", fine_tune_epochs=2))
    with pytest.raises(UsageError, match="no pretrained backbone"):
        train(_config(tmp_path / "b", weights="imagenet"))


def test_balanced_class_weights_favour_rare_classes():
    from edgecnn.train.dataset import balanced_class_weights

    weights = balanced_class_weights(np.array([0, 0, 0, 1]), 2)
    assert weights[1] == pytest.approx(2.0) and weights[0] == pytest.approx(4 / 6)


def test_bad_values_are_echoed(tmp_path):
    with pytest.raises(UsageError, match="--class-weights must be one of none, auto; received 'yes'"):
        train(_config(tmp_path, class_weights="yes"))


def test_runs_are_numbered_and_never_overwritten(tmp_path, monkeypatch, capsys):
    from edgecnn.rundir import check_run_dir, new_run_dir

    monkeypatch.chdir(tmp_path)
    first = new_run_dir(None)
    (first / "model.keras").write_text("a run")
    assert [str(p) for p in (first, new_run_dir(None), new_run_dir(None))] == ["runs/train", "runs/train2",
                                                                                "runs/train3"]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["train", "train2", "train3"]
    with pytest.raises(UsageError, match="already exists and is not empty; pass --exist-ok"):
        check_run_dir(first)
    assert check_run_dir(first, exist_ok=True) == first
    assert new_run_dir(tmp_path / "runs" / "train2") == tmp_path / "runs" / "train2"  # empty: nothing to lose
    # The command refuses before loading any data, in one line.
    data = make_colour_folder(tmp_path / "data")
    assert main(["train", "--arch", "simple_cnn", "--data", str(data), "--out", str(first)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --out runs/train already exists") and "\n" not in err
    assert (first / "model.keras").read_text() == "a run"


def test_a_root_mixing_split_and_class_folders_stops_train_in_one_line(tmp_path, capsys):
    root = make_colour_folder(tmp_path / "data")
    make_colour_folder(root / "train")
    assert main(["train", "--arch", "simple_cnn", "--data", str(root), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "mixes split folders (train) with class folders (blue, green, red)" in err


def test_train_on_a_split_root_uses_its_splits_and_evaluate_its_test(tmp_path, capsys):
    root = tmp_path / "root"
    for split, count in (("train", 6), ("val", 3), ("test", 2)):
        make_colour_folder(root / split, per_class=count)
    run = tmp_path / "run"
    assert main(["train", "--arch", "simple_cnn", "--data", str(root), "--img-size", "24", "--epochs", "1",
                 "--batch-size", "8", "--augment", "none", "--eager", "--out", str(run)]) == 0
    err = capsys.readouterr().err
    assert f"{root} is a split root: training on train/, validation on val/, test on test/" in err
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["train_images"], metrics["val_images"]) == (18, 9)
    report = json.loads((run / "data_report.json").read_text())
    assert [report[k].rsplit("/", 1)[-1] for k in ("train", "val", "test")] == ["train", "val", "test"]
    assert report["classes"] == ["blue", "green", "red"]  # not "train", "val", "test"

    assert main(["evaluate", str(run), "--samples", "2"]) == 0
    out = capsys.readouterr().out
    assert f"on 6 images (test: {root / 'test'})" in out


def test_the_split_is_below_the_first_layer_that_trains():
    from edgecnn.models import create_model
    from edgecnn.train.features import find_cut
    from edgecnn.train.transfer import freeze_backbone, unfreeze_top

    model = create_model("mobilenet_v2", 3, (32, 32, 3), alpha=0.35, weights="none")
    freeze_backbone(model)
    assert find_cut(model)._keras_history.operation.name == "head_pool"  # below the dropout, above the backbone
    unfreeze_top(model, 10)
    cut = find_cut(model)
    first = next(layer for layer in model.layers if layer.trainable_weights)
    # One tensor feeds everything that trains: here the input of the first trained layer.
    assert first.name == "block_16_depthwise" and first._inbound_nodes[0].input_tensors[0] is cut
    unfreeze_top(model, 16)  # the first trained layer is inside a residual block: split below the block
    assert find_cut(model)._keras_history.operation.name == "block_14_add"
    assert find_cut(create_model("simple_cnn", 3, (24, 24, 3))) is None  # everything trains: nothing to store


def _frozen_conv_net(seed: int):
    """Image -> frozen conv -> pooled features -> dropout -> trained softmax: a frozen phase in miniature."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Rescaling(1 / 255, name="normalize")(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="frozen_conv", trainable=False)(x)
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    x = keras.layers.Dropout(0.3, name="head_dropout")(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="predictions")(x))


def test_head_trained_on_stored_features_matches_the_whole_network_trained_on_images(tmp_path):
    import keras

    from edgecnn.data import open_folder
    from edgecnn.train.dataset import steps, train_dataset
    from edgecnn.train.phases import Session

    data = open_folder(make_colour_folder(tmp_path / "data", per_class=8, size=16), 16)

    def head_after_training(on_features: bool):
        model = _frozen_conv_net(0)
        session = Session(model, data, data, np.arange(len(data)), [], 0, 0, eager=True)
        try:
            part = session.prepare("frozen")
            assert part.split == "head_pool" and part.feature_seconds > 0
            net, sources = (part.net, part.train) if on_features else (model, [data])
            net.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy",
                        run_eagerly=True)
            net.fit(train_dataset(sources, data.labels, 8, epochs=3, seed=0), steps_per_epoch=steps(len(data), 8),
                    epochs=3, shuffle=False, verbose=0)
        finally:
            session.close()
        return model.get_layer("predictions").get_weights(), model

    (kernel, bias), model = head_after_training(False)
    (kernel2, bias2), _ = head_after_training(True)
    start = _frozen_conv_net(0).get_layer("predictions").get_weights()[0]
    assert np.abs(kernel - start).max() > 0.05  # the head learnt something...
    np.testing.assert_allclose(kernel2, kernel, rtol=1e-4, atol=1e-5)  # ...and the same from stored features
    np.testing.assert_allclose(bias2, bias, rtol=1e-4, atol=1e-5)


def _free_ports(count: int) -> list[int]:
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_train_together_and_the_chiefs_model_exports_and_predicts(tmp_path):
    """MultiWorkerMirroredStrategy on 127.0.0.1: two processes, one model; only the chief writes a run."""
    import os
    import subprocess
    import sys

    from edgecnn.data.digits import write_digits_dataset

    digits = write_digits_dataset(tmp_path / "digits")
    cluster = ",".join(f"127.0.0.1:{port}" for port in _free_ports(2))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    workers = [subprocess.Popen(
        [sys.executable, "-m", "edgecnn", "train", "--arch", "simple_cnn", "--data", str(digits / "train"),
         "--val", str(digits / "val"), "--epochs", "1", "--batch-size", "32", "--out", str(tmp_path / f"run{i}"),
         "--cluster", cluster, "--worker-index", str(i)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for i in range(2)]
    try:
        outputs = [w.communicate(timeout=600) for w in workers]
    finally:
        for w in workers:
            w.kill()
    for w, (_, err) in zip(workers, outputs):
        assert w.returncode == 0, err[-2000:]
    epoch_lines = [[line for line in err.splitlines() if line.startswith("epoch 1/1")] for _, err in outputs]
    # One model trained in step: both workers report the same losses and validation figures.
    assert len(epoch_lines[0]) == 1 and epoch_lines[0][0].rsplit(" ", 1)[0] == epoch_lines[1][0].rsplit(" ", 1)[0]
    assert "worker 1: done" in outputs[1][1] and not (tmp_path / "run1").exists()
    run = tmp_path / "run0"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["workers"] == 2 and metrics["val_images"] == 360

    assert main(["export", str(run), "--formats", "tflite-fp32", "--val-samples", "40", "--out",
                 str(tmp_path / "export")]) == 0
    from edgecnn.runtime import Classifier

    clf = Classifier(tmp_path / "export" / "model_fp32.tflite")
    images = sorted((digits / "val").glob("*/*.png"))[::9]
    right = sum(clf.predict(str(p)).label == p.parent.name for p in images)
    assert right / len(images) >= 0.3  # one epoch on digits: far above chance (0.1)


def test_several_data_roots_train_as_one_and_the_run_records_them(tmp_path, capsys):
    """--data BASE --data MORE: merged by class name (MORE may lack classes); validation stays BASE's."""
    base = make_colour_folder(tmp_path / "base", per_class=5)
    more = make_colour_folder(tmp_path / "more", per_class=3)
    for f in (more / "green").iterdir():
        f.unlink()
    (more / "green").rmdir()  # a collection holds only the classes the camera kept
    (more / "index.csv").write_text("file,host\n")  # what `edgecnn collect pull` writes beside the class folders
    (more / ".sidecars").mkdir()
    (more / ".sidecars" / "x.json").write_text("{}")
    run = tmp_path / "run"
    code = main(["train", "--arch", "simple_cnn", "--data", str(base), "--data", str(more), "--img-size", "24",
                 "--epochs", "1", "--batch-size", "8", "--augment", "none", "--eager", "--out", str(run)])
    assert code == 0
    assert f"+6 training images from {more.resolve()} (blue, red)" in capsys.readouterr().err
    report = json.loads((run / "data_report.json").read_text())
    assert [r["role"] for r in report["roots"]] == ["base (training part)", "added to training"]
    assert report["roots"][1] == {"path": str(more.resolve()), "role": "added to training", "images": 6,
                                  "per_class": [3, 0, 3], "collection": True}
    assert report["val_per_class"] == [1, 1, 1] and report["train_per_class"] == [4 + 3, 4, 4 + 3]
    assert "skipped_count" not in report or report["skipped_count"] == 0  # index.csv and .sidecars are no images
    config = json.loads((run / "config.json").read_text())
    assert config["data"] == str(base.resolve()) and config["more_data"] == [str(more.resolve())]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["train_images"] == 12 + 6 and metrics["val_images"] == 3


def test_a_class_only_a_later_root_has_is_one_error_line(tmp_path, capsys):
    base = make_colour_folder(tmp_path / "base", per_class=2)
    more = make_colour_folder(tmp_path / "more", per_class=2)
    (more / "red").rename(more / "Red")
    code = main(["train", "--arch", "simple_cnn", "--data", str(base), "--data", str(more), "--img-size", "24",
                 "--epochs", "1", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and err.startswith("error: --data ")
    assert "has classes the first --data root lacks: Red (did you mean 'red'?)" in err and "move their images" in err
    assert not (tmp_path / "run" / "model.keras").exists()
    code = main(["train", "--arch", "simple_cnn", "--data", str(base), "--data", str(tmp_path / "nope"),
                 "--out", str(tmp_path / "run2")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "nope is not a folder" in err


def test_merged_roots_read_each_image_from_its_own_root(tmp_path):
    from edgecnn.data.cache import open_folder
    from edgecnn.data.merge import add_roots

    base = open_folder(make_colour_folder(tmp_path / "base", per_class=2), 24)
    more = make_colour_folder(tmp_path / "more", per_class=3)
    merged = add_roots(base, [str(more)], 24)
    alone = open_folder(more, 24)
    assert len(merged) == 6 + 9 and merged.class_names == base.class_names
    positions = [14, 0, 7, 6]  # mixed order, across both roots
    expected = np.stack([base.read([0])[0] if p < 6 else alone.read([p - 6])[0] for p in positions])
    assert np.array_equal(merged.read(positions), expected)
    assert merged.labels.tolist() == base.labels.tolist() + alone.labels.tolist()
    sub = merged.subset([7, 1])
    assert np.array_equal(sub.read(), merged.read([7, 1])) and sub.labels.tolist() == merged.labels[[7, 1]].tolist()
    assert add_roots(base, [], 24) is base
