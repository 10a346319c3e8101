"""Issue 21, third pass (input and output): a damaged JPEG's libjpeg warning becomes edgecnn's own line (item 15);
an interrupted export, a full disk under the image cache, the cache deleted mid-build and an earlier quickstart's
folder (item 17)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_path

from edgecnn.data import cache, open_folder

SIZE = 16
DiskUsage = namedtuple("DiskUsage", "total used free")
# What a native library writes straight to fd 2: LiteRT/absl/TensorFlow, libjpeg, the converter, OpenCV.
NATIVE = re.compile(r"^(INFO|WARNING|ERROR): |^[IWEF]\d{4} |Corrupt JPEG|Premature end|fully_quantize|^\[ WARN")


def _jpegs(root: Path, per_class: int = 4, classes=("daisy", "rose")) -> Path:
    """``root/<class>/*.jpg``: real flower photos, and ``daisy/corrupt.jpg``, one with 7 bytes inserted before its
    final FF D9 (libjpeg: "Corrupt JPEG data: 3 extraneous bytes before marker 0xd9", and decodes it)."""
    flowers = shared_path("data", "flowers5", "train")
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for source in sorted((flowers / name).glob("*.jpg"))[:per_class]:
            shutil.copyfile(source, root / name / source.name)
    raw = sorted((flowers / classes[0]).glob("*.jpg"))[per_class].read_bytes()
    assert raw.endswith(b"\xff\xd9")
    (root / classes[0] / "corrupt.jpg").write_bytes(raw[:-2] + b"\0" * 7 + raw[-2:])
    return root


def _native_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if NATIVE.search(line)]


# --- item 15: libjpeg's warnings ----------------------------------------------------------------------------------

@pytest.mark.parametrize("workers", [1, 2])
def test_a_corrupt_jpeg_is_named_in_one_edgecnn_line_and_libjpeg_says_nothing(tmp_path, monkeypatch, capfd, caplog,
                                                                             workers):
    root = _jpegs(tmp_path / "data")
    monkeypatch.setattr(cache, "MIN_PARALLEL", 4)  # worker processes even for these few files
    monkeypatch.setattr(cache, "CHUNK", 3)
    with caplog.at_level("INFO", logger="edgecnn.data"):
        data = open_folder(root, SIZE, workers=workers)
        assert len(data) == 9 and not data.skipped  # decoded anyway
        assert capfd.readouterr().err == ""
        again = open_folder(root, SIZE, workers=workers)  # from the cache: still said, still quiet
        assert np.array_equal(again.read(), data.read())
    assert capfd.readouterr().err == ""
    said = [r.getMessage() for r in caplog.records if "had corrupt data" in r.getMessage()]
    assert len(said) == 2 and all(r.startswith("warning: 1 of 9 image files") and r.endswith(": daisy/corrupt.jpg")
                                  for r in said), said


def test_decoding_without_the_cache_names_a_corrupt_jpeg_too(tmp_path, capfd, caplog):
    root = _jpegs(tmp_path / "data", per_class=2)
    files = sorted(root.rglob("*.jpg"))
    with caplog.at_level("INFO", logger="edgecnn.data"):
        images, kept, skipped = cache.decode_files(files, SIZE, workers=1)
    assert len(kept) == len(files) and not skipped
    assert capfd.readouterr().err == ""
    assert [r.getMessage().rsplit(": ", 1)[1] for r in caplog.records if "had corrupt data" in r.getMessage()] \
        == [str(root / "daisy" / "corrupt.jpg")]


def test_other_lines_on_fd2_while_decoding_are_written_back_and_v_shows_libjpeg(tmp_path, capfd):
    from edgecnn import _native
    from edgecnn.data.decode import decode_rgb, decoder_warnings

    corrupt = _jpegs(tmp_path / "data", per_class=1) / "daisy" / "corrupt.jpg"
    with decoder_warnings() as damaged:
        decode_rgb(corrupt)
        os.write(2, b"a real problem\n")
    assert damaged == [corrupt] and capfd.readouterr().err == "a real problem\n"
    _native.show_native_logs(True)
    try:
        with decoder_warnings() as damaged:
            decode_rgb(corrupt)
    finally:
        _native.show_native_logs(False)
    assert damaged == [corrupt] and "Corrupt JPEG data" in capfd.readouterr().err


def _edgecnn(*args, cache_dir: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("EDGECNN_NATIVE_LOGS", "TF_CPP_MIN_LOG_LEVEL")}
    env["EDGECNN_CACHE_DIR"] = str(cache_dir)  # a fresh cache: every command decodes the corrupt JPEG itself
    return subprocess.run([sys.executable, "-m", "edgecnn", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``edgecnn train`` on 2 x 12 photos and one corrupt JPEG: (run directory, data folder, the command's result)."""
    pytest.importorskip("keras")
    tmp = tmp_path_factory.mktemp("trust3")
    data = _jpegs(tmp / "data", per_class=12)
    result = _edgecnn("train", "--arch", "simple_cnn", "--data", data, "--img-size", 32, "--epochs", 1,
                      "--augment", "none", "--out", tmp / "run", cache_dir=tmp / "cache-train")
    return tmp / "run", data, result


@pytest.mark.slow
@pytest.mark.train
def test_train_prints_only_edgecnn_lines_on_a_folder_with_a_corrupt_jpeg(trained):
    _, _, result = trained
    assert result.returncode == 0, result.stderr[-3000:]
    assert _native_lines(result.stderr) == [], result.stderr
    assert "daisy/corrupt.jpg" in result.stderr and "val_accuracy" in result.stderr


@pytest.mark.slow
@pytest.mark.train
def test_export_prints_only_edgecnn_lines_on_a_folder_with_a_corrupt_jpeg(trained, tmp_path):
    run, _, _ = trained
    result = _edgecnn("export", run, "--formats", "tflite-int8,onnx", "--out", tmp_path / "export",
                      cache_dir=tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-3000:]
    assert _native_lines(result.stderr) == [], result.stderr
    assert "daisy/corrupt.jpg" in result.stderr and "tflite-int8: exporting" in result.stderr


@pytest.mark.slow
@pytest.mark.train
def test_evaluate_prints_only_edgecnn_lines_on_a_folder_with_a_corrupt_jpeg(trained, tmp_path):
    run, data, _ = trained
    result = _edgecnn("evaluate", run, "--data", data, "--out", tmp_path / "eval", cache_dir=tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-3000:]
    assert _native_lines(result.stderr) == [], result.stderr
    assert "daisy/corrupt.jpg" in result.stderr and "accuracy" in result.stdout
