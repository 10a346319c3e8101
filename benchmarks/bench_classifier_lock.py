#!/usr/bin/env python
"""What the Classifier's thread lock costs: one thread with and without it, and 4 threads sharing one Classifier.

In one run, on one model (default: the Coral ``mobilenet_v2_1.0_224_quant.tflite`` from ../shared/data/coral),
with a decoded 640x480 BGR frame:

1. ``Classifier.predict`` on one thread with its lock, against the same Classifier with the lock replaced by a
   no-op, timed in interleaved blocks: the ratio of medians is the uncontended lock's cost (target <= 1.02);
2. images/s of 4 threads sharing one Classifier (they take turns in the interpreter) against 4 threads with a
   Classifier each (``--threads 1`` interpreters, so both use the same cores): what sharing costs in throughput.

Usage: python benchmarks/bench_classifier_lock.py [--model M] [--runs 300] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGECNN_SHARED", REPO / ".." / "shared")).resolve()
DEFAULT_MODEL = SHARED / "data" / "coral" / "mobilenet_v2_1.0_224_quant.tflite"
DEFAULT_IMAGE = SHARED / "data" / "coral" / "cat_720p.jpg"
TARGET_RATIO = 1.02
BLOCK = 20


class NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def frame(image: Path):
    import cv2

    return cv2.resize(cv2.imread(str(image), cv2.IMREAD_COLOR), (640, 480), interpolation=cv2.INTER_LINEAR)


def one_thread(clf, img, runs: int) -> dict:
    lock = clf._lock
    times = {"lock": [], "no lock": []}
    for _ in range(5):
        clf.predict(img)
    for block in range(2 * max(1, runs // BLOCK)):
        mode = "lock" if block % 2 == 0 else "no lock"
        clf._lock = lock if mode == "lock" else NoLock()
        for _ in range(BLOCK):
            t0 = time.perf_counter()
            clf.predict(img)
            times[mode].append((time.perf_counter() - t0) * 1e3)
    clf._lock = lock
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"p50_ms_with_lock": round(med["lock"], 4), "p50_ms_without_lock": round(med["no lock"], 4),
            "ratio": round(med["lock"] / med["no lock"], 4)}


def four_threads(classifiers, img, runs: int) -> float:
    """Images/s of 4 threads, thread i using classifiers[i % len(classifiers)]."""
    barrier = threading.Barrier(4)

    def work(i: int) -> None:
        clf = classifiers[i % len(classifiers)]
        barrier.wait()
        for _ in range(runs):
            clf.predict(img)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return 4 * runs / (time.perf_counter() - t0)


def main() -> None:
    from edgecnn.runtime import Classifier

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    img = frame(args.image)
    clf = Classifier(args.model, threads=1)
    result = {"model": str(args.model), "one_thread": one_thread(clf, img, args.runs)}
    per_thread = max(10, args.runs // 4)
    own = [Classifier(args.model, threads=1) for _ in range(4)]
    four_threads(own, img, 3)
    shared_ips = four_threads([clf], img, per_thread)
    own_ips = four_threads(own, img, per_thread)
    result["four_threads"] = {"shared_images_per_s": round(shared_ips, 2), "own_images_per_s": round(own_ips, 2),
                              "shared_over_own": round(shared_ips / own_ips, 3), "cores": os.cpu_count()}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    one = result["one_thread"]
    print(f"{args.model.name}: predict p50 {one['p50_ms_with_lock']:.3f} ms with the lock, "
          f"{one['p50_ms_without_lock']:.3f} ms without: ratio {one['ratio']:.3f} (target <= {TARGET_RATIO})")
    four = result["four_threads"]
    print(f"4 threads: one shared Classifier {four['shared_images_per_s']:.1f} images/s, "
          f"one each {four['own_images_per_s']:.1f} images/s ({four['shared_over_own']:.2f}x, {four['cores']} cores)")


if __name__ == "__main__":
    main()
