"""edgecnn benchmark on a tiny model: export through edgecnn.export, measure in subprocesses, write every file."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgecnn.bench.run import BenchConfig, benchmark
from edgecnn.bench.stats import LATENCY_KEYS, latency_stats
from edgecnn.cli import main
from edgecnn.errors import UsageError

CLASSES = ["cat", "dog", "fox"]
SIZE = 16


def _write_images(root: Path, per_class: int = 4) -> Path:
    import cv2

    rng = np.random.default_rng(0)
    for i, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for j in range(per_class):
            img = rng.integers(0, 80, (SIZE, SIZE, 3), dtype=np.uint8)
            img[..., i] += 150  # one dominant channel per class
            cv2.imwrite(str(root / name / f"{j}.png"), img)
    return root


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    """A tiny Keras run directory benchmarked in 4 formats at 1 thread on 12 labeled images."""
    import keras

    from edgecnn.labels import write_labels

    tmp = tmp_path_factory.mktemp("bench")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(len(CLASSES), activation="softmax")(x))
    run_dir = tmp / "tiny"
    run_dir.mkdir()
    model.save(run_dir / "model.keras")
    write_labels(run_dir / "labels.txt", CLASSES)
    data = _write_images(tmp / "val")
    config = BenchConfig(models=[str(run_dir)], data=str(data), formats="keras,tflite-fp32,tflite-dynamic,tflite-int8",
                         threads=[1], runs=20, warmup=2, batch=4, out=str(tmp / "out"), plain_progress=True)
    result = benchmark(config)
    return result, Path(config.out), data


@pytest.mark.slow
@pytest.mark.train
def test_every_format_is_measured_with_all_figures(bench_run):
    result, out, _ = bench_run
    assert [r.format for r in result.rows] == ["keras", "tflite-fp32", "tflite-dynamic", "tflite-int8"]
    for row in result.rows:
        assert row.status in ("ok", "validation failed"), row.reason
        assert row.size_bytes > 0 and row.load_ms > 0 and row.first_inference_ms > 0
        assert row.peak_rss_mb > 0 and row.throughput > 0
        assert set(LATENCY_KEYS) <= set(row.latency_ms) and len(row.times_ms) == 20
        assert row.images == 12 and row.top1 is not None and row.top5 is None  # 3 classes: no top-5
        assert row.agreement is not None and row.agreement_source == "keras row"
    assert result.rows[0].agreement == 1.0
    # Peak RSS is the worker's own (this pytest process holds TensorFlow: several hundred MB more).
    assert all(r.peak_rss_mb < 400 for r in result.rows if r.backend == "litert")


@pytest.mark.slow
@pytest.mark.train
def test_percentiles_are_ordered(bench_run):
    for row in bench_run[0].rows:
        lat = row.latency_ms
        assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
        assert lat["min"] <= lat["mean"] <= lat["max"]


@pytest.mark.slow
@pytest.mark.train
def test_batch_throughput_where_the_model_allows(bench_run):
    tflite = [r for r in bench_run[0].rows if r.backend == "litert"]
    assert all(r.batch == 4 and r.batch_throughput > 0 for r in tflite)


@pytest.mark.slow
@pytest.mark.train
def test_accuracy_equals_a_direct_classifier_run(bench_run):
    from edgecnn.data import load_folder
    from edgecnn.runtime import Classifier

    result, _, data = bench_run
    images = load_folder(data, SIZE, class_names=CLASSES)
    for row in result.rows:
        if row.backend != "litert":
            continue
        with Classifier(row.path) as clf:
            predicted = [clf.predict(img, top_k=1, order="RGB").index for img in images.images]
        assert row.top1 == pytest.approx(float(np.mean(np.array(predicted) == images.labels)))


@pytest.mark.slow
@pytest.mark.train
def test_output_files_exist_and_parse(bench_run):
    result, out, _ = bench_run
    doc = json.loads((out / "results.json").read_text())
    assert doc["machine"]["cpu"] and doc["machine"]["python"] and "numpy" in doc["machine"]["versions"]
    assert len(doc["results"]) == len(result.rows)
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["format"] for r in rows] == [r.format for r in result.rows]
    assert float(rows[1]["latency_p50_ms"]) == result.rows[1].latency_ms["p50"]
    md = (out / "results.md").read_text()
    assert "| format | threads |" in md and "tflite-int8" in md
    # Paths relative to the results folder (exports land in out/models/) or a model's name: no temp paths.
    assert [r["path"] for r in doc["results"]][:2] == ["models/tiny/model.keras", "models/tiny/model_fp32.tflite"]
    assert doc["config"]["models"] == ["tiny"] and doc["config"]["out"] == "."
    assert [r["path"] for r in rows][:2] == ["models/tiny/model.keras", "models/tiny/model_fp32.tflite"]
    assert str(out.parent) not in (out / "results.json").read_text() + (out / "results.csv").read_text()
    for name in ("benchmark.png", "latency_distribution.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
@pytest.mark.train
def test_exported_files_are_measured_as_they_are(bench_run, tmp_path):
    """An export folder, no --data: synthetic images, no accuracy; a corrupt file is a failed row, not a crash."""
    result, out, _ = bench_run
    export_dir = Path(result.rows[1].path).parent
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"TFL3" * 10)
    config = BenchConfig(models=[str(export_dir), str(bad)], formats="tflite-fp32", threads=[1, 2], runs=5,
                         warmup=1, out=str(tmp_path / "out"), plots=False, plain_progress=True)
    rows = benchmark(config).rows
    assert [(r.format, r.threads, r.status) for r in rows] == [
        ("tflite-fp32", 1, "ok"), ("tflite-fp32", 2, "ok"),
        ("broken.tflite", 1, "failed"), ("broken.tflite", 2, "failed")]
    assert rows[0].top1 is None and rows[0].images == 32
    assert "broken.tflite" in rows[2].reason or "TFLite" in rows[2].reason


def test_stats_interpolate_between_the_nearest_timings():
    stats = latency_stats([5.0, 1.0, 3.0, 2.0, 4.0, 10.0])  # sorted 1 2 3 4 5 10: p90 sits halfway from 5 to 10
    assert stats == {"min": 1.0, "mean": 4.1667, "std": 2.9107, "p50": 3.5, "p90": 7.5, "p99": 9.75, "max": 10.0}
    assert latency_stats([7.0])["p99"] == 7.0


@pytest.mark.parametrize("argv, message", [
    (["benchmark", "m.tflite", "--threads", "0"], "expected comma-separated whole numbers"),
    (["benchmark", "m.tflite", "--runs", "x"], "expected a whole number >= 1"),
])
def test_bad_cli_values_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_missing_model_and_unknown_format_are_one_line_errors(tmp_path, capsys):
    assert main(["benchmark", str(tmp_path / "nope.tflite"), "--out", str(tmp_path / "o")]) == 2
    assert "model not found" in capsys.readouterr().err
    with pytest.raises(UsageError, match="did you mean 'tflite-int8'"):
        benchmark(BenchConfig(models=[str(tmp_path)], formats="tflite-int9", out=str(tmp_path / "o")))


def test_bench_imports_no_tensorflow():
    code = ("import sys, edgecnn.bench, edgecnn.bench.worker, edgecnn.bench.report, edgecnn.bench.plots, "
            "edgecnn.doctor, edgecnn.commands.benchmark; "
            "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_device_profiles_parse_and_name_known_formats(monkeypatch):
    from edgecnn.bench.devices import benchmark_defaults, list_devices, load_profile
    from edgecnn.formats import parse_formats

    monkeypatch.delenv("EDGECNN_DEVICES", raising=False)  # the packaged profiles (also in an installed wheel)
    names = list_devices()
    assert {"raspberry-pi-5", "raspberry-pi-4", "raspberry-pi-zero-2w", "jetson-nano", "x86-64"} <= set(names)
    for name in names:
        profile = load_profile(name)
        defaults = benchmark_defaults(profile)
        assert parse_formats(defaults["formats"]) and all(t >= 1 for t in defaults["threads"])
        assert profile["wheels"] and profile["camera"] and profile["recommended"]
    with pytest.raises(UsageError, match="did you mean 'raspberry-pi-5'"):
        load_profile("raspberry-pi-6")


@pytest.mark.slow
@pytest.mark.train
def test_measure_files_on_in_memory_images_matches_the_benchmark(bench_run):
    from edgecnn.bench.run import measure_files
    from edgecnn.data import load_folder

    result, _, data = bench_run
    fp32 = result.rows[1]
    images = load_folder(data, SIZE, class_names=CLASSES)
    row = measure_files([fp32.path], images.images, images.labels, runs=3, warmup=1)[0]
    assert (row.format, row.status, row.images) == ("tflite-fp32", "ok", 12)
    assert row.top1 == fp32.top1 and row.p50 > 0


def test_an_export_folder_holding_model_keras_is_not_exported_again(tmp_path):
    from edgecnn.bench.candidates import is_keras_source

    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_bytes(b"PK")
    assert is_keras_source(run)
    (run / "model_int8.tflite").write_bytes(b"TFL3")
    assert not is_keras_source(run)
    assert is_keras_source(run / "model.keras")
