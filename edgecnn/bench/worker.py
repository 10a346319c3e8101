"""Measure one model at one thread count in a fresh process; print one JSON object.

    python -m edgecnn.bench.worker MODEL IMAGES.npy [--threads N] [--runs 100] [--warmup 10]
                                   [--batch 1] [--accuracy]

It prints one :class:`edgecnn.bench.result.WorkerResult` as JSON.
IMAGES.npy holds uint8 RGB NHWC images (already at the model's size, so no
decoding or resizing happens in the timed loops). Timed, each on its own:
``backend.run`` on a preprocessed batch (the raw interpreter call) and
``Classifier.predict`` (preprocess + inference + softmax/top-k, end to end).
Peak RSS is read after the batch-1 timed loops, before the accuracy pass and
the batch throughput run, so it covers loading and running the model only. On failure the JSON holds ``error``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from edgecnn.bench.memory import current_rss_mb, peak_rss_mb
from edgecnn.bench.result import WorkerResult
from edgecnn.bench.stats import latency_stats, throughput
from edgecnn.errors import first_line

SAMPLE_IMAGES = 8  # images cycled through in the timed loops
ACCURACY_CHUNK = 32
TOP_K = 5


def _preimport(backend: str) -> None:
    """Import the interpreter outside the load timing (load_ms is the model, not the library)."""
    from edgecnn.runtime.litert_backend import import_interpreter
    from edgecnn.runtime.onnx_backend import import_onnxruntime

    importer = {"litert": import_interpreter, "onnx": import_onnxruntime}.get(backend)
    if importer is None:
        import keras  # noqa: F401
    else:
        importer()


def _time(fn, runs: int) -> list[float]:
    times = []
    for i in range(runs):
        t0 = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t0) * 1000.0)
    return times


def _ms_since(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000.0, 2)


def measure(model: Path, images_path: Path, threads: int | None, runs: int, warmup: int, batch: int,
            accuracy: bool, providers: list[str] | None = None) -> WorkerResult:
    import numpy as np

    from edgecnn.formats import backend_for_path
    from edgecnn.runtime import Classifier

    images = np.load(images_path, mmap_mode="r")
    sample = np.ascontiguousarray(images[:SAMPLE_IMAGES])
    result = WorkerResult()

    t0 = time.perf_counter()
    _preimport(backend_for_path(model))
    result.import_ms = _ms_since(t0)
    result.rss_before_load_mb = current_rss_mb()

    t0 = time.perf_counter()
    clf = Classifier(model, threads=threads, providers=providers)
    result.load_ms = _ms_since(t0)
    t0 = time.perf_counter()
    clf.predict(sample[0], top_k=1, order="RGB")
    result.first_inference_ms = _ms_since(t0)
    result.runtime = clf.backend.source
    result.input = clf.input_spec.describe()
    result.num_classes = clf.num_classes
    result.sources = dict(clf.sources)

    inputs = [clf.preprocess(img, order="RGB") for img in sample]
    run = clf.backend.run
    _time(lambda i: run(inputs[i % len(inputs)]), warmup)
    times = _time(lambda i: run(inputs[i % len(inputs)]), runs)
    result.latency_ms = latency_stats(times)
    result.times_ms = [round(t, 4) for t in times]
    result.throughput = throughput(1, result.latency_ms["mean"])
    result.classifier_latency_ms = latency_stats(
        _time(lambda i: clf.predict(sample[i % len(sample)], top_k=TOP_K, order="RGB"), runs))
    result.peak_rss_mb = peak_rss_mb()

    if accuracy:
        top = []
        for start in range(0, len(images), ACCURACY_CHUNK):
            chunk = np.ascontiguousarray(images[start:start + ACCURACY_CHUNK])
            top += [[c.index for c in p.top] for p in clf.predict_batch(list(chunk), top_k=TOP_K, order="RGB")]
        result.top_k = top
    if batch > 1:  # last: a model that cannot take the batch may be left unusable
        _batch_throughput(result, run, inputs, batch, max(5, runs // batch), warmup)
    clf.close()
    return result


def _batch_throughput(result: WorkerResult, run, inputs, batch: int, runs: int, warmup: int) -> None:
    import numpy as np

    x = np.concatenate([inputs[i % len(inputs)] for i in range(batch)])
    try:
        run(x)
    except Exception as exc:  # noqa: BLE001  a fixed batch size is the model's limit, not an error
        result.batch_note = f"batch {batch} not supported: {first_line(exc, 160)}"
        return
    _time(lambda i: run(x), max(1, warmup // batch))
    stats = latency_stats(_time(lambda i: run(x), runs))
    result.batch, result.batch_latency_ms, result.batch_throughput = batch, stats, throughput(batch, stats["mean"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgecnn.bench.worker", description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("images", type=Path)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--accuracy", action="store_true", help="classify every image; report top-5 indices")
    parser.add_argument("--providers", default=None, help="ONNX Runtime execution providers, comma-separated")
    args = parser.parse_args(argv)
    providers = args.providers.split(",") if args.providers else None
    try:
        out = measure(args.model, args.images, args.threads, args.runs, args.warmup, args.batch, args.accuracy,
                      providers)
        code = 0
    except Exception as exc:  # noqa: BLE001  reported to the parent as data, never a traceback
        out, code = WorkerResult(error=first_line(exc, 500)), 1
    sys.stdout.write(out.to_json() + "\n")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
