"""Issue 21, second hostile pass: the image cache, claimed output folders, sidecar cards, thread counts.

Each test is one case the pass found: stale cached pixels after ``touch -r``, a pixel slot per unreadable
file, two commands sharing one new ``--out``, a malformed card, ``--threads 100000``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgecnn.data import open_folder

SIZE = 8


def _bmp(path, rgb) -> None:
    """A 16x16 BMP of one colour: the same number of bytes whatever the colour."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((16, 16, 3), rgb, np.uint8)).save(path, format="BMP")


# --- item 4: the cache fingerprint survives no same-size edit ----------------------------------------------------

def test_cache_serves_new_pixels_after_a_same_size_edit_whose_mtime_is_restored(tmp_path):
    for name in ("a", "b"):
        _bmp(tmp_path / "data" / name / "x.bmp", (200, 0, 0))
    target = tmp_path / "data" / "a" / "x.bmp"
    assert open_folder(tmp_path / "data", SIZE).read()[0, 0, 0].tolist() == [200, 0, 0]
    before = os.stat(target)
    _bmp(target, (0, 0, 200))  # same size, new pixels
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # touch -r: the old modification time back
    after = os.stat(target)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert open_folder(tmp_path / "data", SIZE).read()[0, 0, 0].tolist() == [0, 0, 200]


# --- item 14: unreadable files take no pixel slot, and reports summarise them -------------------------------------

def test_thousands_of_empty_files_take_no_cache_space_and_are_summarised_in_a_few_lines(tmp_path, caplog):
    root, empty = tmp_path / "data", 3000
    for name, rgb in (("a", (200, 0, 0)), ("b", (0, 0, 200))):
        for i in range(3):
            _bmp(root / name / f"img{i}.bmp", rgb)
        for i in range(empty // 2):
            (root / name / f"e{i:05d}.jpg").touch()
    with caplog.at_level("INFO", logger="edgecnn.data"):
        data = open_folder(root, SIZE)
    lines = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]  # this load's lines only
    assert len(data) == 6 and len(data.skipped) == empty
    assert data.read()[:, 0, 0].tolist() == [[200, 0, 0]] * 3 + [[0, 0, 200]] * 3
    files = {p.name: p.stat().st_size for p in Path(data.cache).iterdir()}
    pixels = [size for name, size in files.items() if name.endswith(".u8")]
    assert pixels == [6 * SIZE * SIZE * 3], files  # a record per decoded image, none for the empty files
    assert files["index.json"] < 40_000, files
    again = open_folder(root, SIZE)  # from the cache: the same images, the same reasons
    assert np.array_equal(again.read(), data.read()) and again.skipped == data.skipped

    from edgecnn.data.folder import skipped_summary

    summary = skipped_summary(data.skipped)
    assert len(json.dumps(summary)) < 2_000, summary
    assert summary["skipped_count"] == empty
    assert summary["skipped_reasons"] == [{"reason": "image file <file> is empty (0 bytes)", "count": empty}]
    assert len(summary["skipped"]) == 5 and all("is empty" in e["reason"] for e in summary["skipped"])
    assert len(lines) == 1 and len(lines[0]) < 600 and f"{empty} of {empty + 6} files" in lines[0], lines


def test_decoded_images_keep_their_pixels_when_unreadable_files_sit_between_them(tmp_path, monkeypatch):
    from edgecnn.data import cache

    root, colours = tmp_path / "data", {}
    for c in ("a", "b"):
        for i in range(20):
            path = root / c / f"{i:02d}.bmp"
            if i % 3 == 1:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"" if i % 2 else b"junk")
            else:
                colours[path] = (i * 10, 100 if c == "a" else 0, 7)
                _bmp(path, colours[path])
    monkeypatch.setattr(cache, "MIN_PARALLEL", 8)
    monkeypatch.setattr(cache, "CHUNK", 5)
    for workers in (1, 2):
        monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / f"cache{workers}"))
        data = open_folder(root, SIZE, workers=workers)
        assert len(data) == len(colours) and len(data.skipped) == 40 - len(colours)
        assert [tuple(p) for p in data.read()[:, 0, 0].tolist()] == [colours[p] for p in data.paths]
        assert Path(data.cache, json.loads(Path(data.cache, "index.json").read_text())["pixels"]).stat().st_size \
            == len(colours) * SIZE * SIZE * 3


# --- item 6: one --out, one run --------------------------------------------------------------------------------

def _claim_in_a_process(out, barrier, results, release) -> None:
    from edgecnn.errors import UsageError
    from edgecnn.rundir import new_run_dir

    barrier.wait()
    try:
        new_run_dir(out)
        results.put("claimed")
    except UsageError as exc:
        results.put(f"error: {exc}")
    release.wait(30)  # the winner keeps its claim while the other tries


def test_two_processes_claiming_one_new_run_folder_get_it_once(tmp_path):
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    barrier, results, release = context.Barrier(2), context.Queue(), context.Event()
    out = tmp_path / "runs" / "same"
    procs = [context.Process(target=_claim_in_a_process, args=(str(out), barrier, results, release))
             for _ in range(2)]
    for proc in procs:
        proc.start()
    try:
        outcomes = sorted(results.get(timeout=60) for _ in procs)
    finally:
        release.set()
        for proc in procs:
            proc.join(30)
    assert outcomes[0] == "claimed" and outcomes[1].startswith("error: --out ") and "in use" in outcomes[1], outcomes


def test_two_threads_claiming_one_new_run_folder_get_it_once(tmp_path):
    import threading

    from edgecnn.errors import UsageError
    from edgecnn.rundir import new_run_dir, release_folder

    out, barrier, both_tried, outcomes = tmp_path / "same", threading.Barrier(2), threading.Barrier(2), []

    def claim() -> None:
        barrier.wait()
        try:
            new_run_dir(out)
            outcomes.append("claimed")
        except UsageError as exc:
            outcomes.append(str(exc))
        both_tried.wait()  # the winner is still running while the other tries

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    release_folder(out)
    assert sorted(outcomes)[1] == "claimed" and "in use" in sorted(outcomes)[0], outcomes
    assert new_run_dir(out) == out  # released: this thread may claim it now (it is still empty)
    release_folder(out)


def _holder(folder):
    """A process holding the claim on ``folder`` until its stdin closes."""
    import subprocess
    import sys

    code = ("import sys; from edgecnn.rundir import claim_folder; claim_folder(sys.argv[1], '--out', 'test'); "
            "print('held', flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_benchmark_into_an_out_another_benchmark_holds_is_one_error_line(tmp_path):
    from test_contract import edgecnn, one_error_line, tiny_onnx

    model, out = tiny_onnx(tmp_path / "tiny.onnx"), tmp_path / "bench"
    out.mkdir()
    holder = _holder(out)
    try:
        proc = edgecnn("benchmark", model, "--out", out, "--runs", "1", "--warmup", "0", "--threads", "1")
    finally:
        holder.communicate("")
    assert proc.returncode == 2
    one_error_line(proc.stderr, f"--out {out} is in use by another benchmark")
    assert list(out.iterdir()) == []


@pytest.mark.slow
@pytest.mark.train
def test_train_into_an_out_another_run_holds_is_one_error_line(tmp_path):
    from test_contract import edgecnn

    data, out = tmp_path / "data", tmp_path / "run"
    for name, rgb in (("a", (200, 0, 0)), ("b", (0, 0, 200))):
        for i in range(4):
            _bmp(data / name / f"{i}.bmp", rgb)
    out.mkdir()
    holder = _holder(out)
    try:
        proc = edgecnn("train", "--arch", "simple_cnn", "--data", data, "--img-size", "16", "--epochs", "1",
                       "--out", out, "--quiet", timeout=300)
    finally:
        holder.communicate("")
    err = proc.stderr.decode()
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert f"--out {out} is in use by another training run" in errors[0]
    assert list(out.iterdir()) == []


# --- item 13: a malformed sidecar card is one error line naming the card, the field and what is expected -------

GOOD_CARD = {"labels": ["red", "green", "blue"], "input_height": 16, "input_width": 16, "layout": "NCHW",
             "format": "onnx", "normalization": {"mean": [0, 0, 0], "std": [255, 255, 255], "in_model": "none"}}
BAD_CARDS = {  # id: (changes to GOOD_CARD, the field the error names)
    "normalization-null": ({"normalization": None}, "normalization"),
    "normalization-list": ({"normalization": [0, 1]}, "normalization"),
    "mean-text": ({"normalization": {"mean": "abc"}}, "normalization.mean"),
    "std-zero": ({"normalization": {"mean": [0], "std": [0, 1, 1]}}, "normalization.std"),
    "normalization-unknown-key": ({"normalization": {"mean": [0], "scale": 2}}, "normalization.scale"),
    "extra-text": ({"extra": "x"}, "extra"),
    "labels-text": ({"labels": "rgb"}, "labels"),
    "labels-numbers": ({"labels": [1, 2, 3]}, "labels"),
    "height-text": ({"input_height": "16"}, "input_height"),
    "height-zero": ({"input_height": 0}, "input_height"),
    "width-bool": ({"input_width": True}, "input_width"),
    "channels-float": ({"input_channels": 3.5}, "input_channels"),
    "mean-too-long": ({"normalization": {"mean": [0, 0, 0, 0]}}, "normalization.mean"),
    "std-nan": ({"normalization": {"std": [float("nan")]}}, "normalization.std"),
    "channel-order": ({"channel_order": "XYZ"}, "channel_order"),
    "layout-number": ({"layout": 4}, "layout"),
    "output-kind-number": ({"output_kind": 5}, "output_kind"),
    "format-list": ({"format": ["onnx"]}, "format"),
}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    import cv2
    from test_contract import tiny_onnx

    folder = tmp_path_factory.mktemp("card")
    cv2.imwrite(str(folder / "red.png"), np.full((20, 20, 3), (30, 30, 220), np.uint8))
    return tiny_onnx(folder / "tiny.onnx"), folder / "red.png"


def _predict_with_card(model, image, card_bytes: bytes):
    from test_contract import edgecnn

    card = model.with_name(model.name + ".card.json")
    card.write_bytes(card_bytes)
    try:
        return edgecnn("predict", model, image), card
    finally:
        card.unlink()


def test_the_good_card_predicts(tiny_model):
    proc, _ = _predict_with_card(*tiny_model, json.dumps(GOOD_CARD).encode())
    assert proc.returncode == 0 and proc.stdout.decode().startswith(f"{tiny_model[1]}: red "), proc.stderr.decode()


@pytest.mark.parametrize("case", sorted(BAD_CARDS))
def test_a_malformed_card_is_one_error_line_naming_the_card_and_field(tiny_model, case):
    from test_contract import one_error_line

    changes, field = BAD_CARDS[case]
    proc, card = _predict_with_card(*tiny_model, json.dumps({**GOOD_CARD, **changes}).encode())
    assert proc.returncode == 2, (proc.stdout.decode(), proc.stderr.decode())
    one_error_line(proc.stderr, str(card), f"'{field}'", "expected")


def test_a_utf16_card_is_one_error_line(tiny_model):
    from test_contract import one_error_line

    proc, card = _predict_with_card(*tiny_model, json.dumps(GOOD_CARD).encode("utf-16"))
    assert proc.returncode == 2
    one_error_line(proc.stderr, str(card), "UTF-8")


# --- item 16: a thread count past any machine is refused up front ------------------------------------------------

@pytest.mark.parametrize("model", ["onnx", "tflite"])
def test_predict_with_100000_threads_is_one_error_line(tiny_model, coral_dir, model):
    from conftest import CORAL_MODEL
    from test_contract import edgecnn, one_error_line

    from edgecnn.runtime.base import MAX_THREADS

    path = tiny_model[0] if model == "onnx" else coral_dir / CORAL_MODEL
    proc = edgecnn("predict", path, tiny_model[1], "--threads", "100000", timeout=60)
    assert proc.returncode == 2 and not proc.stdout
    one_error_line(proc.stderr, "--threads", "'100000'", f"from 1 to {MAX_THREADS}")


def test_benchmark_with_100000_threads_is_one_error_line(tiny_model, tmp_path):
    from test_contract import edgecnn, one_error_line

    proc = edgecnn("benchmark", tiny_model[0], "--threads", "1,100000", "--out", tmp_path / "bench", timeout=60)
    assert proc.returncode == 2 and not (tmp_path / "bench").exists()
    one_error_line(proc.stderr, "--threads", "100000")


@pytest.mark.parametrize("threads", [100_000, 0, True, 2.0])
def test_the_api_refuses_a_thread_count_out_of_range(tiny_model, coral_dir, threads):
    from conftest import CORAL_MODEL

    from edgecnn.bench.run import BenchConfig
    from edgecnn.errors import UsageError
    from edgecnn.runtime import Classifier
    from edgecnn.runtime.litert_backend import LiteRTBackend
    from edgecnn.runtime.onnx_backend import OnnxBackend

    for make in (lambda: Classifier(tiny_model[0], threads=threads),
                 lambda: OnnxBackend(tiny_model[0], threads=threads),
                 lambda: LiteRTBackend(coral_dir / CORAL_MODEL, threads=threads),
                 lambda: BenchConfig(models=["m.onnx"], threads=[1, threads]).check()):
        with pytest.raises(UsageError, match=r"Received (--)?threads.*expected a whole number from 1 to 256"):
            make()


def test_the_largest_thread_count_still_runs(tiny_model):
    from edgecnn.runtime import Classifier
    from edgecnn.runtime.base import MAX_THREADS

    with Classifier(tiny_model[0], threads=MAX_THREADS, labels=["red", "green", "blue"]) as clf:
        assert clf.predict(tiny_model[1], top_k=1).label == "red"
