"""End to end: built-in digits -> train -> export -> runtime -> comparison table (reduced epochs)."""

import json

import pytest

from edgecnn.data.digits import write_digits_dataset
from edgecnn.data.folder import scan_folder

pytestmark = pytest.mark.train  # skipped without the train extra (conftest.py)


def test_digits_dataset_is_a_real_stratified_image_folder(tmp_path):
    root = write_digits_dataset(tmp_path / "digits")
    train, val = scan_folder(root / "train"), scan_folder(root / "val")
    assert train.class_names == val.class_names == [str(d) for d in range(10)]
    assert len(train.files) + len(val.files) == 1797
    assert 0.18 < len(val.files) / 1797 < 0.22
    import cv2

    img = cv2.imread(str(train.files[0][0]), cv2.IMREAD_UNCHANGED)
    assert img.shape == (32, 32, 3) and img.max() > 128  # real ink, upscaled, RGB


@pytest.mark.slow
def test_quickstart_end_to_end_prints_no_native_log_lines(tmp_path):
    """`edgecnn quickstart` as a user runs it: the table on stdout, edgecnn's progress on stderr and no native
    log line there (no LiteRT "INFO: Created TensorFlow Lite XNNPACK delegate", no converter
    "fully_quantize: 0, ...", no absl "I0000 ..."/"W0000 ..." lines)."""
    import re
    import subprocess
    import sys

    from edgecnn.quickstart import QUICKSTART_FORMATS

    result = subprocess.run([sys.executable, "-m", "edgecnn", "quickstart", "--out", str(tmp_path / "qs"),
                             "--epochs", "3"], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    native = [line for line in result.stderr.splitlines()
              if re.match(r"(INFO|WARNING|ERROR): |[IWEF]\d{4} |fully_quantize: |\[\w+ @ 0x", line)]
    assert native == [], result.stderr[-3000:]
    assert "[3/4] exporting" in result.stderr  # edgecnn's own progress is there
    assert "format" in result.stdout and "median latency" in result.stdout and "tflite-int8" in result.stdout
    saved = json.loads((tmp_path / "qs" / "quickstart.json").read_text())
    results = saved["results"]
    assert [r["format"] for r in results] == list(QUICKSTART_FORMATS)
    by_format = {r["format"]: r for r in results}
    for r in results:
        path = tmp_path / "qs" / r["path"]  # relative to the quickstart folder
        assert path.is_file() and r["size_bytes"] == path.stat().st_size
        assert r["accuracy"] > 0.85, (r["format"], r["accuracy"])
        assert r["median_latency_ms"] > 0
    assert abs(by_format["tflite-int8"]["accuracy"] - by_format["tflite-fp32"]["accuracy"]) <= 0.03
    assert by_format["tflite-int8"]["size_bytes"] < 0.5 * by_format["tflite-fp32"]["size_bytes"]
    assert all(r["path"].startswith("export/model") for r in results)  # relative, never a temp path


# --- the architecture quickstart --data trains (issue 22 item 6) ---------------------------------------------------

def _tiny_flowers(root, classes=("daisy", "rose"), train=6, val=3):
    """A few real flowers5 photos per class, as train/ and val/."""
    import shutil

    from conftest import shared_path

    for cls in classes:
        photos = sorted(shared_path("data", "flowers5", "val", cls).glob("*.jpg"))[:train + val]
        for split, part in (("train", photos[:train]), ("val", photos[train:])):
            (root / split / cls).mkdir(parents=True)
            for photo in part:
                shutil.copy(photo, root / split / cls / photo.name)
    return root


@pytest.mark.slow  # about 3 minutes here: MobileNetV2 trained, exported and measured
def test_quickstart_data_with_weights_trains_mobilenet_v2_and_says_why(tmp_path, caplog):
    import logging

    from conftest import shared_path

    from edgecnn.quickstart import run_quickstart, train_defaults

    weights = shared_path("weights", "mobilenet_v2_1.0_imagenet_no_top.weights.h5")
    data = _tiny_flowers(tmp_path / "photos")
    with caplog.at_level(logging.INFO, logger="edgecnn.quickstart"):
        results = run_quickstart(tmp_path / "qs", data, weights=str(weights), img_size=32, epochs=1,
                                 fine_tune_epochs=1, formats=("tflite-fp32",), verbose=0)
    assert f"architecture: mobilenet_v2 transfer (ImageNet weights from {weights})" in caplog.messages
    saved = json.loads((tmp_path / "qs" / "quickstart.json").read_text())
    assert saved["arch"] == "mobilenet_v2" and saved["img_size"] == 32
    config = json.loads((tmp_path / "qs" / "run" / "config.json").read_text())
    assert config["weights"] == str(weights) and config["fine_tune_epochs"] == 1
    assert config["fine_tune_layers"] == train_defaults()["fine_tune_layers"]  # `edgecnn train`'s default
    assert [r.format for r in results] == ["tflite-fp32"] and results[0].size_bytes > 1_000_000  # a MobileNetV2


def test_quickstart_without_reachable_weights_falls_back_to_simple_cnn_and_says_why(tmp_path, monkeypatch):
    """An empty Keras cache and a download that fails (no network: the download is replaced in-process, so the
    test does not depend on this machine's network)."""
    from edgecnn import quickstart_arch
    from edgecnn.errors import UsageError

    tried = []

    def no_network(home):
        tried.append(home)
        # Keras' own message when the name does not resolve
        raise Exception(f"URL fetch failure on {quickstart_arch.KERAS_WEIGHTS_URL}: None -- [Errno -2] Name or "
                        f"service not known")

    monkeypatch.setattr(quickstart_arch, "download_weights", no_network)
    home = tmp_path / "empty-keras-home"
    home.mkdir()
    choice = quickstart_arch.choose_arch(None, None, builtin=False, home=home)
    assert tried == [home] and (choice.arch, choice.weights) == ("simple_cnn", None)
    assert choice.reason == ("simple_cnn: ImageNet weights unavailable (download failed: URL fetch failure on Keras' "
                             "address: None -- [Errno -2] Name or service not known); pass --weights PATH for "
                             "MobileNetV2 transfer")
    with pytest.raises(UsageError, match=r"^--weights imagenet: ImageNet weights unavailable \(download failed"):
        quickstart_arch.choose_arch(None, "imagenet", builtin=False, home=home)  # asked for: an error, not a fallback
    assert quickstart_arch.choose_arch(None, None, builtin=True, home=home).arch == "simple_cnn"  # digits: no lookup
    assert quickstart_arch.choose_arch("mobilenet_v2", None, builtin=False, home=home).img_size == 128
    assert len(tried) == 2


def test_quickstart_missing_weights_file_is_one_error_line(tmp_path, capsys):
    from edgecnn.cli import main

    data = _tiny_flowers(tmp_path / "photos", train=1, val=1)
    code = main(["quickstart", "--data", str(data), "--out", str(tmp_path / "qs"), "--weights",
                 str(tmp_path / "missing.weights.h5")])
    error = capsys.readouterr().err.strip()
    assert code == 2 and error.splitlines() == [f"error: weights file not found: {tmp_path}/missing.weights.h5; "
                                                f"pass --weights imagenet, none or an existing .weights.h5 file"]
    assert not (tmp_path / "qs" / "run").exists()  # nothing trained


def test_weights_already_in_keras_cache_choose_mobilenet_v2_without_a_download(tmp_path, monkeypatch):
    from conftest import shared_path

    from edgecnn import quickstart_arch

    def no_download(home):
        raise AssertionError("downloaded although the file is in Keras' cache")

    monkeypatch.setattr(quickstart_arch, "download_weights", no_download)
    cached = tmp_path / "keras-home" / "models" / quickstart_arch.KERAS_WEIGHTS_FILE
    cached.parent.mkdir(parents=True)
    cached.symlink_to(shared_path("weights", "mobilenet_v2_1.0_imagenet_no_top.weights.h5"))  # a real weights file
    choice = quickstart_arch.choose_arch(None, None, builtin=False, home=tmp_path / "keras-home")
    assert (choice.arch, choice.weights, choice.img_size) == ("mobilenet_v2", "imagenet", 128)
    assert choice.reason == f"mobilenet_v2 transfer (ImageNet weights in Keras' cache, {cached})"
