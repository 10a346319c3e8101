"""``edgecnn benchmark``: export if needed, measure every (format, threads) in a subprocess, report.

>>> from edgecnn.bench import BenchConfig, benchmark
>>> result = benchmark(BenchConfig(models=["runs/flowers"], data="flowers5/val", threads=[1, 2]))
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from edgecnn import progress
from edgecnn.bench import findings as findings_mod
from edgecnn.bench import images as images_mod
from edgecnn.bench.candidates import Candidate, resolve
from edgecnn.bench.result import FAILED, Row, WorkerResult
from edgecnn.bench.worker import TOP_K
from edgecnn.errors import EdgeCNNError, ModelError, UsageError
from edgecnn.formats import parse_formats
from edgecnn.machine import cores, machine_info

log = logging.getLogger("edgecnn.bench")

WORKER_TIMEOUT_S = 1800
RESULT_FILES = ("results.json", "results.csv", "results.md")  # what a run writes into --out (report.write_all)


@dataclass
class BenchConfig:
    models: list[str]
    data: Optional[str] = None
    formats: Optional[str | list[str]] = None  # None: all (an export folder: what it holds)
    threads: Optional[list[Optional[int]]] = None  # None: 1 and the usable cores
    runs: int = 100
    warmup: int = 10
    batch: int = 1
    device: Optional[str] = None
    providers: Optional[list[str]] = None  # ONNX Runtime execution providers for .onnx models (default: CPU)
    out: str = "edgecnn-benchmark"
    plots: bool = True
    plain_progress: bool = False
    force: bool = False  # overwrite the results of an earlier run in ``out``

    def check(self) -> None:
        if not self.models:
            raise UsageError("no MODEL given; pass a Keras model, a run directory, an export folder or model files")
        for name, value, low in (("--runs", self.runs, 1), ("--warmup", self.warmup, 0), ("--batch", self.batch, 1)):
            if not isinstance(value, int) or value < low:
                raise UsageError(f"Received {name}={value!r}; expected a whole number >= {low}")
        from edgecnn.runtime.base import threads_problem

        for t in self.threads or []:
            if threads_problem(t):
                raise UsageError(f"Received --threads value {t!r}; {threads_problem(t)}")


@dataclass
class ModelImages:
    """The images one model is measured on, saved as .npy for its workers."""

    npy: Optional[Path] = None
    labels: Optional[np.ndarray] = None  # class indices in the model's label order; None without labels
    source: str = "none"  # ImageSet.summary(), for results.json
    error: Optional[str] = None  # the model could not be loaded to size its images: its rows fail with this


@dataclass
class BenchResult:
    rows: list[Row]
    findings: list[findings_mod.Finding]
    machine: dict
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def default_threads() -> list[int]:
    usable = cores()["usable"] or 1
    return sorted({1, usable})


def benchmark(config: BenchConfig) -> BenchResult:
    """Run the whole benchmark; write results.{json,csv,md} and the plots into ``config.out``."""
    from edgecnn.rundir import claim_folder, release_folder

    config.check()
    out = Path(config.out)
    _check_out(out, config.force)
    out.mkdir(parents=True, exist_ok=True)  # fail on an unwritable --out before measuring, not after
    claim_folder(out, "--out", "benchmark")  # a benchmark started at the same time into --out fails here
    try:
        _check_out(out, config.force)  # again, claimed: a benchmark that finished meanwhile left its results
        return _benchmark(config, out)
    finally:
        release_folder(out)


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; pass a folder for the results")
    earlier = [name for name in RESULT_FILES if (out / name).exists()]
    if earlier and not force:
        raise UsageError(f"--out {out} already holds the results of an earlier benchmark ({earlier[0]}); "
                         f"pass --force to overwrite them, or choose another --out")


def _benchmark(config: BenchConfig, out: Path) -> BenchResult:
    threads = config.threads or default_threads()
    explicit = config.formats is not None
    formats = parse_formats(config.formats if explicit else "all")
    _check_data(config.data)

    candidates = resolve(config.models, formats, explicit, out)
    rows: list[Row] = []
    predictions: dict[tuple[str, str], list[list[int]]] = {}
    with tempfile.TemporaryDirectory(prefix="edgecnn-bench-") as tmp:
        sets = _image_sets(candidates, config.data, Path(tmp))
        steps = sum(len(threads) if c.path else 1 for c in candidates)
        with progress.steps(steps, "benchmark", log, plain=config.plain_progress) as bar:
            for cand in candidates:
                for i, t in enumerate(threads if cand.path else [None]):
                    bar.step(f"{cand.format} threads={t or 'default'}")
                    row, top = _measure(cand, t, sets, config, accuracy=(i == 0))
                    rows.append(row)
                    if top is not None:
                        predictions[(cand.model, cand.format)] = top
        _accuracy(rows, candidates, predictions, sets)
    found = findings_mod.find(rows)
    machine = machine_info()
    from edgecnn.bench.report import write_all

    out.mkdir(parents=True, exist_ok=True)
    files = write_all(out, rows, found, machine, _config_dict(config, threads, sets))
    notes = []
    if config.plots:
        from edgecnn.bench.plots import write_plots

        plotted, note = write_plots(out, rows)
        files += plotted
        notes += [note] if note else []
    return BenchResult(rows, found, machine, files, notes)


def measure_files(paths: list[str | Path], images, labels=None, threads: Optional[int] = None, runs: int = 50,
                  warmup: int = 5) -> list[Row]:
    """Measure exported files on in-memory uint8 RGB ``images`` (at the models' input size): one Row each.

    The one measuring path for callers that hold their images already (e.g. quickstart):
    each file runs in its own worker subprocess, as in ``edgecnn benchmark``.
    """
    from edgecnn.bench.candidates import model_file

    config = BenchConfig(models=[str(p) for p in paths], runs=runs, warmup=warmup)
    config.check()
    candidates = [model_file(Path(p), "model") for p in paths]
    rows, predictions = [], {}
    with tempfile.TemporaryDirectory(prefix="edgecnn-bench-") as tmp:
        npy = Path(tmp) / "images.npy"
        np.save(npy, np.ascontiguousarray(images))
        sets = {"model": ModelImages(npy, None if labels is None else np.asarray(labels), f"{len(images)} images")}
        for cand in candidates:
            row, top = _measure(cand, threads, sets, config, accuracy=True)
            rows.append(row)
            if top is not None:
                predictions[(cand.model, cand.format)] = top
        _accuracy(rows, candidates, predictions, sets)
    return rows


def _check_data(data: Optional[str]) -> None:
    if data is not None and not Path(data).is_dir():
        from edgecnn.errors import DataError

        raise DataError(f"--data folder not found: {data}; pass a folder with one sub-folder of images per class")


def _image_sets(candidates: list[Candidate], data: Optional[str], tmp: Path) -> dict[str, ModelImages]:
    """The images of each model (by model name), at its input size."""
    sets: dict[str, ModelImages] = {}
    for cand in candidates:
        if cand.path is None or cand.model in sets:
            continue
        try:
            size, labels = _input_size_and_labels(cand.path)
        except EdgeCNNError as exc:  # a model that does not load is a failed row, not the end of the benchmark
            sets[cand.model] = ModelImages(error=str(exc))
            continue
        found = images_mod.load(data, size, labels)
        npy = found.save(tmp / f"{len(sets)}_{size[0]}x{size[1]}.npy")
        sets[cand.model] = ModelImages(npy, found.labels, found.summary())
    return sets


def _input_size_and_labels(path: Path) -> tuple[tuple[int, int], Optional[list[str]]]:
    """From the model card; without one, by loading the model here (cheap for .tflite/.onnx).

    Without a card the labels are None: --data folders then map to classes in sorted order.
    """
    from edgecnn.card import find_card

    card = find_card(path)
    if card is not None:
        from edgecnn.runtime.base import input_size_problem

        too_large = input_size_problem((1, card.input_height, card.input_width, 3), "NHWC")
        if too_large:  # images are loaded at this size: refuse before allocating them
            raise ModelError(f"{path}: the size in its model card is too large: {too_large}")
        return (card.input_height, card.input_width), list(card.labels)
    from edgecnn.runtime import Classifier

    with Classifier(path) as clf:
        return (int(clf.input_spec.height), int(clf.input_spec.width)), None


def _measure(cand: Candidate, threads: Optional[int], sets: dict[str, ModelImages], config: BenchConfig,
             accuracy: bool) -> tuple[Row, Optional[list[list[int]]]]:
    row = Row(cand.model, cand.format, cand.backend, cand.quantization, threads, cand.status, cand.reason,
              str(cand.path) if cand.path else None)
    if cand.path is None:
        return row, None
    row.size_bytes = path_size(cand.path)
    images = sets[cand.model]
    if images.error is not None:
        row.status, row.reason = FAILED, images.error
        return row, None
    cmd = [sys.executable, "-m", "edgecnn.bench.worker", str(cand.path), str(images.npy),
           "--runs", str(config.runs), "--warmup", str(config.warmup), "--batch", str(config.batch)]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    if config.providers and cand.backend == "onnx":
        cmd += ["--providers", ",".join(config.providers)]
    if accuracy:
        cmd.append("--accuracy")
    result = _run_worker(cmd)
    row.take(result)
    return row, result.top_k


def _run_worker(cmd: list[str]) -> WorkerResult:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return WorkerResult(error=f"timed out after {WORKER_TIMEOUT_S} s")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if lines:
        try:
            return WorkerResult.from_json(lines[-1])
        except (ValueError, TypeError):
            pass
    tail = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
    return WorkerResult(error=f"measuring process failed: {tail[:300]}")


def _accuracy(rows: list[Row], candidates: list[Candidate], predictions: dict, sets: dict) -> None:
    """top-1/top-5 against the labels and top-1 agreement with the Keras row, copied to every thread count."""
    by_format = {(c.model, c.format): c for c in candidates}
    for row in rows:
        top = predictions.get((row.model, row.format))
        if top is None:
            continue
        top = np.asarray(top)
        row.images = len(top)
        labels = sets[row.model].labels
        if labels is not None:
            row.top1 = round(float(np.mean(top[:, 0] == labels)), 6)
            if top.shape[1] >= TOP_K and (row.num_classes or 0) > TOP_K:  # with 5 classes top-5 is always 100%
                row.top5 = round(float(np.mean((top[:, :TOP_K] == labels[:, None]).any(axis=1))), 6)
        reference = _keras_reference(row.model, predictions, candidates)
        if reference is not None and len(reference) == len(top):
            row.agreement = round(float(np.mean(np.asarray(reference)[:, 0] == top[:, 0])), 6)
            row.agreement_source = "keras row"
        else:
            v = by_format[(row.model, row.format)].validation
            if v.get("agreement") is not None:
                row.agreement, row.agreement_source = v["agreement"], f"export validation ({v.get('images')} images)"


def _keras_reference(model: str, predictions: dict, candidates: list[Candidate]):
    keras = [c for c in candidates if c.model == model and c.backend == "keras" and c.quantization == "none"]
    for cand in keras:
        if (model, cand.format) in predictions:
            return predictions[(model, cand.format)]
    return None


def path_size(path: Path) -> int:
    """Bytes of a file, or of every file under a folder (a SavedModel)."""
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _config_dict(config: BenchConfig, threads, sets: dict) -> dict:
    data = asdict(config)
    data["threads"] = threads
    data["images"] = {m: s.source for m, s in sets.items()}
    data["accuracy_note"] = "accuracy and agreement are measured once per format (first thread count)"
    data["date"] = time.strftime("%Y-%m-%d %H:%M:%S %z")
    return data
