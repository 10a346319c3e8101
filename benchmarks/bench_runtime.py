#!/usr/bin/env python
"""Runtime overhead benchmark: ``Classifier.predict`` vs the raw interpreter, peak RSS, import + load time.

In one run, on a MobileNetV2 224 quantized model (default: the Coral
``mobilenet_v2_1.0_224_quant.tflite`` from ../shared/data/coral):

1. latency of ``Classifier.predict(frame)`` on a decoded 640x480 BGR frame
   (resize + colour swap + inference + dequantize + top-5) against the raw
   interpreter's ``set_tensor + invoke + get_tensor`` on a ready 224x224 tensor,
   both at ``--threads`` (default 2), timed in interleaved blocks; the ratio of
   medians has a target of <= 1.25;
2. peak RSS of a fresh process that imports ``edgecnn.runtime``, loads the model
   and runs predictions (target <= 150 MB), next to a raw-interpreter process;
3. import + load time of that process (``import edgecnn.runtime`` +
   ``Classifier(...)``), cold (first run) and warm (second run; target <= 0.5 s).

Usage: python benchmarks/bench_runtime.py [--model M.tflite] [--threads 2] [--runs 200] [--json] [--check]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGECNN_SHARED", REPO / ".." / "shared")).resolve()
CORAL = SHARED / "data" / "coral"
DEFAULT_MODEL = CORAL / "mobilenet_v2_1.0_224_quant.tflite"
DEFAULT_IMAGE = CORAL / "cat_720p.jpg"

TARGET_RATIO = 1.25
TARGET_RSS_MB = 150.0
TARGET_LOAD_S = 0.5


def decoded_frame(image: Path):
    import cv2

    bgr = cv2.imread(str(image), cv2.IMREAD_COLOR)
    if bgr is None:
        sys.exit(f"bench_runtime: cannot read {image}")
    return cv2.resize(bgr, (640, 480), interpolation=cv2.INTER_LINEAR)


def _peak_rss_mb() -> float:
    """Peak RSS of this process. Linux: VmHWM (ru_maxrss survives exec, so a child started by a big
    parent would report the parent's peak)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 if sys.platform != "darwin" else peak / (1024.0 * 1024.0)


# ------------------------------------------------------------------ child processes
def child(mode: str, model: str, image: str, threads: int, runs: int) -> None:
    """Runs in a fresh process: time import + load, run predictions, print JSON with peak RSS."""
    t0, c0 = time.perf_counter(), time.process_time()
    if mode == "runtime":
        from edgecnn.runtime import Classifier

        t_import = time.perf_counter()
        clf = Classifier(model, threads=threads)
        t_load, c_load = time.perf_counter(), time.process_time()
        frame = decoded_frame(Path(image))
        for _ in range(runs):
            label = clf.predict(frame).label
    else:
        import numpy as np
        from ai_edge_litert.interpreter import Interpreter

        t_import = time.perf_counter()
        interp = Interpreter(model_path=model, num_threads=threads)
        interp.allocate_tensors()
        t_load, c_load = time.perf_counter(), time.process_time()
        inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
        x = np.zeros(inp["shape"], inp["dtype"])
        for _ in range(runs):
            interp.set_tensor(inp["index"], x)
            interp.invoke()
            label = int(interp.get_tensor(out["index"]).argmax())
    print(json.dumps({
        "import_s": t_import - t0,
        "load_s": t_load - t_import,
        "import_load_s": t_load - t0,
        "import_load_cpu_s": c_load - c0,  # CPU time: less sensitive to a busy machine than wall time
        "peak_rss_mb": _peak_rss_mb(),
        "label": label,
        "heavy_modules": [m for m in ("tensorflow", "keras", "onnxruntime") if m in sys.modules],
    }))


def run_child(mode: str, args) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--model", str(args.model), "--image", str(args.image),
           "--threads", str(args.threads), "--child-runs", "20"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    if result.returncode != 0:
        sys.exit(f"bench_runtime: child {mode} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ in-process latency
def latency(args) -> dict:
    import cv2
    from ai_edge_litert.interpreter import Interpreter

    from edgecnn.runtime import Classifier

    frame = decoded_frame(args.image)
    clf = Classifier(args.model, threads=args.threads)
    interp = Interpreter(model_path=str(args.model), num_threads=args.threads)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    _, h, w, _ = inp["shape"]
    tensor = cv2.cvtColor(cv2.resize(frame, (int(w), int(h)), interpolation=cv2.INTER_LINEAR),
                          cv2.COLOR_BGR2RGB)[None].astype(inp["dtype"])

    def raw_once():
        interp.set_tensor(inp["index"], tensor)
        interp.invoke()
        return interp.get_tensor(out["index"])

    def clf_once():
        return clf.predict(frame)

    for _ in range(args.warmup):
        raw_once()
        clf_once()
    raw_ms, clf_ms, stages = [], [], {"preprocess": [], "inference": [], "postprocess": []}
    block = 10
    for i in range(max(1, args.runs // block)):
        # Interleave blocks (and alternate which goes first) so drift and thermal effects hit both.
        order = (("raw", raw_once), ("clf", clf_once)) if i % 2 == 0 else (("clf", clf_once), ("raw", raw_once))
        for name, fn in order:
            for _ in range(block):
                t0 = time.perf_counter()
                result = fn()
                dt = (time.perf_counter() - t0) * 1e3
                if name == "raw":
                    raw_ms.append(dt)
                else:
                    clf_ms.append(dt)
                    for k in stages:
                        stages[k].append(result.timings[k])
    raw_top = int(raw_once()[0].argmax())
    pred = clf.predict(frame)
    return {
        "raw_median_ms": statistics.median(raw_ms),
        "raw_mean_ms": statistics.fmean(raw_ms),
        "classifier_median_ms": statistics.median(clf_ms),
        "classifier_mean_ms": statistics.fmean(clf_ms),
        "ratio": statistics.median(clf_ms) / statistics.median(raw_ms),
        "stages_median_ms": {k: statistics.median(v) for k, v in stages.items()},
        "runs": len(raw_ms),
        "label": pred.label,
        "same_top1_as_raw": pred.index == raw_top,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE, help="decoded and resized to a 640x480 frame")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=200, help="timed runs of each (in interleaved blocks of 10)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--child", choices=["runtime", "raw"], help=argparse.SUPPRESS)
    parser.add_argument("--child-runs", type=int, default=20, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, str(args.model), str(args.image), args.threads, args.child_runs)
        return 0
    if not args.model.is_file():
        sys.exit(f"bench_runtime: model not found: {args.model} (set EDGECNN_SHARED or pass --model)")

    # Processes first (while this one is small), then the in-process latency comparison.
    cold = run_child("runtime", args)
    warm_runs = [run_child("runtime", args) for _ in range(3)]
    warm = min(warm_runs, key=lambda r: r["import_load_s"])
    warm["import_load_s_all"] = [round(r["import_load_s"], 3) for r in warm_runs]
    warm["peak_rss_mb"] = max(r["peak_rss_mb"] for r in warm_runs)
    raw_proc = run_child("raw", args)
    lat = latency(args)
    import platform

    import cv2
    import numpy

    results = {
        "model": str(args.model),
        "loadavg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan"),
        "threads": args.threads,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
                   f"numpy {numpy.__version__}, OpenCV {cv2.__version__}",
        "latency": lat,
        "runtime_process": {"cold": cold, "warm": warm},
        "raw_interpreter_process": raw_proc,
        "targets": {
            "ratio": {"value": lat["ratio"], "target": TARGET_RATIO, "ok": lat["ratio"] <= TARGET_RATIO},
            "peak_rss_mb": {"value": warm["peak_rss_mb"], "target": TARGET_RSS_MB,
                            "ok": warm["peak_rss_mb"] <= TARGET_RSS_MB},
            "import_load_s_warm": {"value": warm["import_load_s"], "target": TARGET_LOAD_S,
                                   "ok": warm["import_load_s"] <= TARGET_LOAD_S},
        },
    }
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        _report(results)
    ok = all(t["ok"] for t in results["targets"].values())
    return 0 if ok or not args.check else 1


def _report(r: dict) -> None:
    lat, warm, cold, raw = r["latency"], r["runtime_process"]["warm"], r["runtime_process"]["cold"], \
        r["raw_interpreter_process"]
    st = lat["stages_median_ms"]
    mark = {True: "ok", False: "MISSED"}
    t = r["targets"]
    print(f"model   {Path(r['model']).name}, {r['threads']} threads; {r['machine']}")
    print(f"latency (median of {lat['runs']}, 640x480 BGR frame)")
    print(f"  raw interpreter set_tensor+invoke+get_tensor  {lat['raw_median_ms']:8.2f} ms")
    print(f"  Classifier.predict                            {lat['classifier_median_ms']:8.2f} ms"
          f"   (preprocess {st['preprocess']:.2f}, inference {st['inference']:.2f}, "
          f"postprocess {st['postprocess']:.2f})")
    print(f"  ratio                                         {lat['ratio']:8.3f}     target <= {TARGET_RATIO}"
          f"  {mark[t['ratio']['ok']]}")
    print(f"  top-1: {lat['label']} (same as raw: {lat['same_top1_as_raw']})")
    print("process (import edgecnn.runtime + load + 20 predictions)")
    print(f"  peak RSS                                      {warm['peak_rss_mb']:8.1f} MB    target <= "
          f"{TARGET_RSS_MB:.0f}  {mark[t['peak_rss_mb']['ok']]}   (raw interpreter process: "
          f"{raw['peak_rss_mb']:.1f} MB)")
    print(f"  import + load, warm                           {warm['import_load_s']:8.3f} s     target <= "
          f"{TARGET_LOAD_S}  {mark[t['import_load_s_warm']['ok']]}   (import {warm['import_s']:.3f} s, "
          f"load {warm['load_s']:.3f} s; best of {warm['import_load_s_all']}; cold {cold['import_load_s']:.3f} s)")
    print(f"  import + load CPU time                        {warm['import_load_cpu_s']:8.3f} s     "
          f"(raw interpreter process: {raw['import_load_s']:.3f} s wall, {raw['import_load_cpu_s']:.3f} s CPU)")
    print(f"  load average (1 min) during the run: {r['loadavg_1min']:.2f} on {os.cpu_count()} cores")
    print(f"  heavy modules loaded: {warm['heavy_modules'] or 'none'}")


if __name__ == "__main__":
    sys.exit(main())
