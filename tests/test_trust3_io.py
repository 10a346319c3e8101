"""Issue 21, third pass (input and output): a damaged JPEG's libjpeg warning becomes edgecnn's own line (item 15);
an interrupted export, a full disk under the image cache, the cache deleted mid-build and an earlier quickstart's
folder (item 17)."""

from __future__ import annotations

import contextlib
import errno
import json
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
from edgecnn.errors import DataError, UsageError

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
        assert _native_lines(capfd.readouterr().err) == []  # edgecnn's own lines may show
        again = open_folder(root, SIZE, workers=workers)  # from the cache: still said, still quiet
        assert np.array_equal(again.read(), data.read())
    assert _native_lines(capfd.readouterr().err) == []  # edgecnn's own lines may show
    said = [r.getMessage() for r in caplog.records if "had corrupt data" in r.getMessage()]
    assert len(said) == 2 and all(r.startswith("warning: 1 of 9 image files") and r.endswith(": daisy/corrupt.jpg")
                                  for r in said), said


def test_decoding_without_the_cache_names_a_corrupt_jpeg_too(tmp_path, capfd, caplog):
    root = _jpegs(tmp_path / "data", per_class=2)
    files = sorted(root.rglob("*.jpg"))
    with caplog.at_level("INFO", logger="edgecnn.data"):
        images, kept, skipped = cache.decode_files(files, SIZE, workers=1)
    assert len(kept) == len(files) and not skipped
    assert _native_lines(capfd.readouterr().err) == []  # edgecnn's own lines may show
    assert [r.getMessage().rsplit(": ", 1)[1] for r in caplog.records if "had corrupt data" in r.getMessage()] \
        == [str(root / "daisy" / "corrupt.jpg")]


def test_other_lines_on_fd2_while_decoding_are_written_back_and_v_shows_libjpeg(tmp_path, capfd):
    from edgecnn import native_logs
    from edgecnn.data.decode import decode_rgb, decoder_warnings

    corrupt = _jpegs(tmp_path / "data", per_class=1) / "daisy" / "corrupt.jpg"
    with decoder_warnings() as damaged:
        decode_rgb(corrupt)
        os.write(2, b"a real problem\n")
    assert damaged == [corrupt] and capfd.readouterr().err == "a real problem\n"
    native_logs.show_native_logs(True)
    try:
        with decoder_warnings() as damaged:
            decode_rgb(corrupt)
    finally:
        native_logs.show_native_logs(False)
    assert damaged == [corrupt] and "Corrupt JPEG data" in capfd.readouterr().err


def _edgecnn(*args, cache_dir: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("EDGECNN_NATIVE_LOGS", "TF_CPP_MIN_LOG_LEVEL")}
    env["EDGECNN_CACHE_DIR"] = str(cache_dir)  # a fresh cache: every command decodes the corrupt JPEG itself
    return subprocess.run([sys.executable, "-m", "edgecnn", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``edgecnn train`` on 2 x 12 photos and one corrupt JPEG: (run directory, data folder, the command's result)."""
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


# --- item 17 (a): an interrupted export ---------------------------------------------------------------------------

@pytest.mark.train
def test_a_rerun_after_an_interrupted_export_succeeds_without_force(tmp_path, monkeypatch):
    import keras

    from edgecnn import export as export_module
    from edgecnn.card import ModelCard, Normalization
    from edgecnn.export import writer
    from edgecnn.formats import FORMATS

    run = tmp_path / "run"
    run.mkdir()
    model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Rescaling(1 / 255),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2, activation="softmax")])
    model.save(run / "model.keras")
    ModelCard(labels=["a", "b"], input_height=SIZE, input_width=SIZE, architecture="test", output_kind="softmax",
              normalization=Normalization.raw("x / 255")).save(run / "model.keras")
    out, real = tmp_path / "out", writer._exporter

    def interrupted(fmt):
        if fmt.name != "tflite-fp32":
            return real(fmt)

        def convert(job, fmt, tmp):
            tmp.write_bytes(b"half a model")
            raise KeyboardInterrupt  # Ctrl-C in the converter, after model.keras was written

        return convert

    monkeypatch.setattr(writer, "_exporter", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_module.export(run, "keras,tflite-fp32", out, validate=False)
    assert (out / "model.keras").is_file() and not (out / "model_fp32.tflite").exists()
    (out / ".model_fp32.tflite.x1y2z3.tflite").write_bytes(b"what a kill -9 leaves")  # atomic_path's temporary
    monkeypatch.setattr(writer, "_exporter", real)

    report = export_module.export(run, "keras,tflite-fp32", out, validate=False)  # the same command again
    assert [a.format for a in report.artifacts] == ["keras", "tflite-fp32"]
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # no note, no temporaries left
    with pytest.raises(UsageError, match="--force"):  # a finished export is kept as before
        export_module.export(run, "keras", out, validate=False)
    assert (out / FORMATS["tflite-fp32"].filename).stat().st_size > 100


# --- item 17 (b): a full disk under the image cache -------------------------------------------------------------

def _bmps(root: Path, count: int = 4) -> Path:
    from PIL import Image

    for i in range(count):
        (root / "ab"[i % 2]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((20, 20, 3), i * 30 % 250, np.uint8)).save(root / "ab"[i % 2] / f"{i}.bmp")
    return root


def _left_in_cache() -> list[str]:
    return sorted(p.name for p in cache.cache_root().rglob("*") if p.is_file() and p.name not in (".lock",))


def test_a_cache_that_does_not_fit_says_how_much_in_units_that_are_not_zero(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(cache.shutil, "disk_usage", lambda path: DiskUsage(10**6, 10**6, 1000))
    with pytest.raises(DataError) as caught:
        open_folder(_bmps(tmp_path / "data"), SIZE)
    message = str(caught.value)
    assert "0.0 GB" not in message and "3.0 KB" in message and "1000 B free" in message, message
    assert str(tmp_path / "cache") in message and cache.CACHE_ENV in message


@pytest.mark.parametrize("where", ["pixels", "index"])
def test_a_full_disk_while_building_the_cache_is_one_line_and_leaves_no_pixel_file(tmp_path, monkeypatch, where):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if where == "pixels":
        monkeypatch.setattr(cache.RecordFile, "write", full)
    else:  # the pixels fit, the index after them does not
        monkeypatch.setattr(cache, "write_text", full)
    with pytest.raises(DataError) as caught:
        open_folder(_bmps(tmp_path / "data"), SIZE)
    message = str(caught.value)
    assert "\n" not in message and str(tmp_path / "cache") in message and cache.CACHE_ENV in message
    assert "full" in message, message
    assert _left_in_cache() == []


def test_a_real_full_disk_while_building_the_cache(tmp_path, monkeypatch):
    """On a 64 KB tmpfs (root only) that another process has filled between the free-space check and the writes."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        monkeypatch.setenv(cache.CACHE_ENV, str(disk / "cache"))
        monkeypatch.setattr(cache.shutil, "disk_usage", lambda path: DiskUsage(10**9, 0, 10**9))
        with pytest.raises(DataError, match=f"{cache.CACHE_ENV}"):
            open_folder(_bmps(tmp_path / "data", 40), 32)  # 40 x 3 KB
        assert _left_in_cache() == []
        assert shutil.disk_usage(disk).used < 8192  # no open descriptor keeps a removed pixel file's blocks
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=True)


# --- item 17 (c): the cache deleted while it is built -------------------------------------------------------------

@pytest.mark.parametrize("workers", [1, 2])
def test_deleting_the_cache_while_it_is_built_costs_a_notice_not_the_run(tmp_path, monkeypatch, caplog, workers):
    import edgecnn.progress

    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(cache, "MIN_PARALLEL", 4)
    monkeypatch.setattr(cache, "CHUNK", 2)
    deleted = []

    class Bar:
        def advance(self, n):  # after the first chunk of the first build: rm -rf ~/.cache/edgecnn
            if not deleted:
                deleted.append(n)
                shutil.rmtree(tmp_path / "cache")

    monkeypatch.setattr(edgecnn.progress, "live", lambda *args, **kwargs: contextlib.nullcontext(Bar()))
    root = _bmps(tmp_path / "data", 8)
    with caplog.at_level("INFO", logger="edgecnn.data"):
        data = open_folder(root, SIZE, workers=workers)
    assert deleted and len(data) == 8
    assert data.read()[:, 0, 0, 0].tolist() == [i * 30 for i in (0, 2, 4, 6, 1, 3, 5, 7)]
    notes = [r.getMessage() for r in caplog.records if "deleted" in r.getMessage()]
    assert len(notes) == 1 and str(tmp_path / "cache") in notes[0], notes


# --- item 17 (d): quickstart --out ---------------------------------------------------------------------------------

class _Trained(Exception):
    """Raised by a stand-in for training: the quickstart got that far."""


def _no_training(monkeypatch):
    import edgecnn.train.fit

    def train(config):
        raise _Trained(config.out)

    monkeypatch.setattr(edgecnn.train.fit, "train", train)


@pytest.mark.train
def test_quickstart_refuses_an_earlier_quickstarts_folder_unless_exist_ok(tmp_path, monkeypatch, capsys):
    from edgecnn.cli import main

    _no_training(monkeypatch)
    out = tmp_path / "qs"
    out.mkdir()
    (out / "quickstart.json").write_text(json.dumps({"results": []}))
    assert main(["quickstart", "--out", str(out), "--data", str(_bmps(tmp_path / "data"))]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"error: --out {out} already exists and is not empty") and "--exist-ok" in error
    assert len(error.splitlines()) == 1 and json.loads((out / "quickstart.json").read_text()) == {"results": []}
    with pytest.raises(_Trained):
        main(["quickstart", "--out", str(out), "--data", str(tmp_path / "data"), "--exist-ok"])
    with pytest.raises(_Trained):  # an empty folder, or a new one, needs nothing
        main(["quickstart", "--out", str(tmp_path / "new"), "--data", str(tmp_path / "data")])
