"""Classify a labelled folder with exported models; write each image's class probabilities as JSON.

Runs wherever edgecnn's device runtime is installed: inside the emulated Raspberry Pi (the
rootfs venv) and on the x86 machine for the reference, so both sides go through the same code
(``edgecnn.Classifier``: the card's preprocessing, the backend chosen by the file suffix).

    python classify.py --data VAL_DIR --out DIR [--jobs N] [--per-class N] [--no-exact] MODEL...

Writes ``DIR/<model file name>.json``: {"model", "classes", "images": [[path, label, [p...]], ...]}
(paths relative to VAL_DIR). For an int8 ONNX model it also writes ``<name>.exact.json`` (unless
``--no-exact``): the same model with ONNX Runtime's graph fusions off (QDQ left as DequantizeLinear ->
float op -> QuantizeLinear), i.e. the int8 arithmetic without any CPU's fused int8 kernels.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from edgecnn.data.folder import scan_folder
from edgecnn.runtime import Classifier


def _onnx_unfused(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda batch: session.run(None, {name: batch})[0]


_worker: dict = {}


def _load(model: Path, exact: bool) -> None:
    _worker["clf"] = Classifier(model)
    _worker["run"] = _onnx_unfused(model) if exact else None


def _probabilities(path: Path) -> list[float]:
    clf, run = _worker["clf"], _worker["run"]
    if run is None:
        probs = clf.predict(path).probabilities
    else:
        probs = clf.postprocess(np.asarray(run(clf.preprocess(path)), dtype=np.float32))[0]
    return [round(float(p), 6) for p in probs]


def classify(model: Path, data: Path, exact: bool = False, jobs: int = 1, per_class: int = 0) -> dict:
    """The images of the class-per-folder ``data`` (all, or the first ``per_class`` of each class by name)
    through ``model``, in ``jobs`` processes."""
    _load(model, exact)
    labels = list(_worker["clf"].labels)
    scan = scan_folder(data, None)
    missing = sorted(set(scan.class_names) - set(labels))
    if missing:
        sys.exit(f"error: {data} has classes the model does not know: {', '.join(missing)}")
    if per_class:
        by_class = [[p for p, j in scan.files if j == i][:per_class] for i in range(len(scan.class_names))]
        scan.files = [(p, i) for i, paths in enumerate(by_class) for p in paths]
    paths = [path for path, _ in scan.files]
    if jobs > 1:
        # spawn, not fork: the parent already runs interpreter thread pools, which a fork would copy half-held
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), initializer=_load,
                                 initargs=(model, exact)) as pool:
            probs = list(pool.map(_probabilities, paths, chunksize=8))
    else:
        probs = [_probabilities(path) for path in paths]
    rows = [[path.relative_to(data).as_posix(), labels.index(scan.class_names[index]), p]
            for (path, index), p in zip(scan.files, probs)]
    return {"model": model.name, "classes": labels, "exact_int8": exact, "images": rows}


def is_int8_onnx(model: Path) -> bool:
    from edgecnn.formats import format_for_path

    fmt = format_for_path(model)
    return fmt is not None and fmt.backend == "onnx" and fmt.quantization == "int8"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--jobs", type=int, default=1, help="processes (default 1)")
    parser.add_argument("--per-class", type=int, default=0, help="only the first N images of each class (default: all)")
    parser.add_argument("--no-exact", action="store_true", help="skip the unfused run of int8 ONNX models")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for model in args.models:
        runs = [False, True] if is_int8_onnx(model) and not args.no_exact else [False]
        for exact in runs:
            result = classify(model, args.data, exact, args.jobs, args.per_class)
            name = model.name + (".exact.json" if exact else ".json")
            (args.out / name).write_text(json.dumps(result))
            print(f"{name}: {len(result['images'])} images", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
