"""Soak test for the live loop (not in CI): run for 10 minutes and report RSS growth (target < 10 MB).

Runs the same pieces as `edgecnn camera --headless --json --serve`: a 30 FPS
live source (latest-frame capture, stale frames dropped), the real model,
overlay, JSON lines (to /dev/null) and the preview server (with one MJPEG
client when --watch is given). RSS is sampled every --every seconds; growth is
measured from the end of the warm-up to the end.

Usage: python benchmarks/soak_camera.py [--minutes 10] [--warmup 30] [--every 30] [--watch] [--save out.mp4]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import urllib.request

import psutil
from bench_camera import CORAL, ThrottledSource

from edgecnn.runtime import Classifier
from edgecnn.video.capture import LatestFrameCapture
from edgecnn.video.classify import FrameClassifier
from edgecnn.video.loop import LoopOptions, run_loop
from edgecnn.video.recorder import VideoRecorder
from edgecnn.video.server import PreviewServer
from edgecnn.video.sinks import JsonLines, PreviewSink, RecorderSink

TARGET_MB = 10.0


def watch_stream(url: str, stop: threading.Event) -> None:
    """Read the MJPEG stream like a browser would, until ``stop``."""
    with urllib.request.urlopen(url, timeout=10) as response:
        while not stop.is_set() and response.read(64 * 1024):
            pass


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(CORAL / "mobilenet_v2_1.0_224_quant.tflite"))
    parser.add_argument("--labels", default=str(CORAL / "imagenet_labels.txt"))
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds before the baseline RSS sample")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between RSS samples")
    parser.add_argument("--watch", action="store_true", help="keep one client on the MJPEG stream")
    parser.add_argument("--save", help="also record the annotated video here")
    args = parser.parse_args(argv)

    process = psutil.Process()
    classifier = Classifier(args.model, labels=args.labels)
    server = PreviewServer("127.0.0.1", 0).start()
    devnull = open(os.devnull, "w")
    sinks = [JsonLines(devnull), PreviewSink(server)]
    if args.save:
        sinks.append(RecorderSink(VideoRecorder(args.save, 30)))
    stop = threading.Event()
    if args.watch:
        threading.Thread(target=watch_stream, args=(server.url + "stream.mjpg", stop), daemon=True).start()

    samples: list[tuple[float, float]] = []
    start = time.monotonic()

    def sample() -> None:
        while not stop.wait(min(args.every, args.warmup) if not samples else args.every):
            rss = process.memory_info().rss / 2**20
            samples.append((time.monotonic() - start, rss))
            print(f"  t={samples[-1][0]:6.0f} s  RSS {rss:7.1f} MB", file=sys.stderr, flush=True)

    sampler = threading.Thread(target=sample, daemon=True)
    print(f"soak: {args.minutes:g} min, model {classifier.path.name}, preview {server.url}", file=sys.stderr)
    sampler.start()
    with LatestFrameCapture(ThrottledSource()) as capture:
        outcome = run_loop(capture, FrameClassifier(classifier), LoopOptions(duration_s=args.minutes * 60), sinks)
    stop.set()
    for sink in sinks:
        sink.close()
    final = process.memory_info().rss / 2**20

    summary = outcome.stats.summary()
    baseline = next((rss for t, rss in samples if t >= args.warmup - 1), samples[0][1] if samples else final)
    growth = final - baseline
    ok = growth < TARGET_MB
    print(f"frames {summary['frames']}, dropped {summary['dropped']}, {summary['fps']:.1f} FPS, "
          f"total latency p50 {summary['latency_ms']['total']['p50']} ms")
    print(f"RSS after warm-up {baseline:.1f} MB, at end {final:.1f} MB, growth {growth:+.1f} MB "
          f"(target < {TARGET_MB:g} MB)  {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
