"""`edgecnn camera`: classify live video (camera, file, stream, Pi camera, image folder)."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
from typing import Optional

from edgecnn.commands._args import (
    PROVIDERS_HELP,
    add_max_megapixels,
    int_at_least,
    max_pixels,
    name_list,
    non_negative_int,
    positive_float,
    positive_int,
    thread_count,
)
from edgecnn.errors import EdgeCNNError

HELP = "classify live video from a camera, video file, stream, Pi camera or image folder"

log = logging.getLogger("edgecnn.commands")

DEFAULT_BUDGET_MB = 200.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL",
                   help="model file (.tflite, .onnx, .keras, SavedModel folder) or a release folder of edgecnn deploy")
    p.add_argument("--source", default="0",
                   help="camera index (0), /dev/videoN, video file, image folder, rtsp://..., http://... or picamera2 "
                        "(default: 0)")
    p.add_argument("--headless", action="store_true", help="no window (automatic when there is no display)")
    p.add_argument("--json", action="store_true",
                   help="one JSON line per classified frame on stdout, then a summary line")
    p.add_argument("--save", metavar="OUT.mp4", help="record the annotated video (mp4v) to this file")
    p.add_argument("--max-frames", type=positive_int, metavar="N", help="stop after N processed frames")
    p.add_argument("--duration", type=positive_float, metavar="S", help="stop after S seconds")
    p.add_argument("--every", type=positive_int, default=1, metavar="N",
                   help="classify every Nth frame; the others show the last result (default: 1)")
    p.add_argument("--width", type=positive_int, metavar="W", help="camera capture width")
    p.add_argument("--height", type=positive_int, metavar="H", help="camera capture height")
    p.add_argument("--fps", type=positive_float, metavar="F",
                   help="camera frame rate; for files and folders: deliver F frames/s like a live camera "
                        "(stale frames dropped)")
    p.add_argument("--realtime", action="store_true",
                   help="files: play at the file's own frame rate like a live camera (stale frames dropped)")
    p.add_argument("--threads", type=thread_count, metavar="N", help="interpreter threads")
    p.add_argument("--providers", type=name_list, metavar="LIST", help=PROVIDERS_HELP)
    p.add_argument("--top-k", type=positive_int, default=5, metavar="K", help="classes to show (default: 5)")
    p.add_argument("--labels", metavar="FILE", help="labels file, one per line (default: the model card's)")
    p.add_argument("--reconnect", type=non_negative_int, default=5, metavar="N",
                   help="reconnect attempts when a camera or stream fails (default: 5)")
    p.add_argument("--reconnect-delay", type=positive_float, default=0.5, metavar="S",
                   help="first reconnect wait, doubling up to 5 s (default: 0.5)")
    add_max_megapixels(p)
    p.add_argument("--serve", metavar="HOST:PORT",
                   help="serve a browser preview (MJPEG + top-k + drift plots) on HOST:PORT; PORT alone binds "
                        "127.0.0.1")
    _add_collect_arguments(p)


def _add_collect_arguments(p: argparse.ArgumentParser) -> None:
    from edgecnn.collect import rules as r
    from edgecnn.collect.drift import DEFAULT_WINDOW
    from edgecnn.collect.store import RULES

    g = p.add_argument_group("collection and drift (the field loop)")
    g.add_argument("--collect", metavar="DIR",
                   help="keep frames worth labelling in DIR (JPEG as captured + JSON sidecar), by --collect-rules")
    g.add_argument("--collect-rules", type=r.rule_list, default=RULES, metavar="LIST",
                   help=f"rules that keep a frame (default: {','.join(RULES)})")
    g.add_argument("--collect-min-score", type=r.score_threshold, default=r.DEFAULT_MIN_SCORE, metavar="S",
                   help=f"low-score rule: top-1 score under S; also the drift report's threshold "
                        f"(default: {r.DEFAULT_MIN_SCORE})")
    g.add_argument("--collect-margin", type=r.score_threshold, default=r.DEFAULT_MARGIN, metavar="M",
                   help=f"margin rule: top-1 minus top-2 under M (default: {r.DEFAULT_MARGIN})")
    g.add_argument("--collect-random", type=r.probability, default=r.DEFAULT_RANDOM, metavar="P",
                   help=f"random rule: keep each frame with probability P, or 1/N (default: {r.DEFAULT_RANDOM})")
    g.add_argument("--collect-budget", type=positive_float, default=DEFAULT_BUDGET_MB, metavar="MB",
                   help=f"disk budget of DIR; the oldest frames go first (default: {DEFAULT_BUDGET_MB:g})")
    g.add_argument("--collect-rate", type=r.rate_per_min, default=r.DEFAULT_RATE_PER_MIN, metavar="N/min",
                   help=f"keep at most N frames a minute, e.g. 30/min, 1/s (default: {r.DEFAULT_RATE_PER_MIN:g}/min)")
    g.add_argument("--drift-window", type=int_at_least(10), default=DEFAULT_WINDOW, metavar="N",
                   help=f"recent frames the drift report compares with the first hour (default: {DEFAULT_WINDOW})")


def run(args: argparse.Namespace) -> int:
    from edgecnn.deploy.release import resolve_model
    from edgecnn.runtime import Classifier
    from edgecnn.video.capture import DEFAULT_FPS, LatestFrameCapture, Reconnect
    from edgecnn.video.classify import FrameClassifier
    from edgecnn.video.frame_sources import open_source
    from edgecnn.video.loop import LoopOptions, run_loop
    from edgecnn.video.recorder import check_video_path
    from edgecnn.video.server import parse_address
    from edgecnn.video.summary import format_summary

    # Check everything cheap before loading the model or opening the camera.
    if args.save:
        check_video_path(args.save)
    if args.collect:
        _check_collect_folder(args.collect)
    address = parse_address(args.serve) if args.serve else None
    source = open_source(args.source, args.width, args.height, args.fps, max_pixels=max_pixels(args))

    classifier = Classifier(resolve_model(args.model), labels=args.labels, threads=args.threads,
                            providers=args.providers)
    pacing = not source.live and (args.fps is not None or args.realtime)
    capture = LatestFrameCapture(
        source,
        lossless=not source.live and not pacing,
        pace_fps=args.fps if pacing else None,
        realtime=pacing and args.realtime,
        reconnect=Reconnect(attempts=args.reconnect, initial_s=args.reconnect_delay),
    )
    sinks = []
    stop = threading.Event()
    restore = _install_stop_handlers(stop)
    field: list = []
    try:
        capture.start()
        sinks = field = _field_sinks(args, classifier)  # closed even when a later sink fails to open
        sinks = field + _build_sinks(args, address, fps=capture.pace_fps or source.fps or DEFAULT_FPS,
                                     stats=_stats_of(field))
        options = LoopOptions(top_k=args.top_k, every=args.every, max_frames=args.max_frames,
                              duration_s=args.duration)
        outcome = run_loop(capture, FrameClassifier(classifier), options, sinks, stop)
    finally:
        capture.stop()
        close_error = _close_sinks(sinks)
        classifier.close()
        restore()

    if args.save and close_error is None:
        log.info(f"saved {_recorded_frames(sinks)} frames to {args.save}")
    summary = {**outcome.stats.summary(), **_stats_of(field)()}
    if args.json:
        print(json.dumps({"summary": summary}), flush=True)
    else:
        print(format_summary(summary), flush=True)
    errors = [exc for exc in (outcome.error, close_error) if exc is not None]
    for exc in errors:
        log.error(f"error: {exc}")
    return errors[0].exit_code if errors else 0


def _check_collect_folder(path: str) -> None:
    """--collect DIR names a folder, or nothing yet (it is created); a file there is a usage error."""
    import os

    from edgecnn.errors import UsageError

    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"Received --collect {path}; that is a file, expected a folder (created when missing)")
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"Received --collect {path}; cannot create or write a folder there ({parent} is not a "
                         f"writable folder)")


def _field_sinks(args: argparse.Namespace, classifier) -> list:
    """The drift monitor, and the collector when --collect is given (it sees frames before the overlay)."""
    from edgecnn.collect.drift import DriftMonitor

    drift = DriftMonitor(classifier.labels, args.collect_min_score, window=args.drift_window)
    if not args.collect:
        return [drift]
    from edgecnn.collect.collector import build_collector

    return [build_collector(args, classifier), drift]


def _stats_of(field: list):
    """A function giving the field sinks' reports ({"drift": ..., "collect": ...}) for the summary and preview."""
    def stats() -> dict:
        return {sink.REPORT_KEY: sink.summary() for sink in field}

    return stats


def _build_sinks(args: argparse.Namespace, address, fps: float, stats=None) -> list:
    from edgecnn.video.display import open_window
    from edgecnn.video.recorder import VideoRecorder
    from edgecnn.video.server import PreviewServer
    from edgecnn.video.sinks import HumanLines, JsonLines, PreviewSink, RecorderSink, WindowSink

    sinks: list = [JsonLines() if args.json else HumanLines()]
    if args.save:
        sinks.append(RecorderSink(VideoRecorder(args.save, fps)))
    if address is not None:
        server = PreviewServer(*address, stats=stats).start()
        log.info(f"preview at {server.url} (Ctrl-C to stop)")
        sinks.append(PreviewSink(server))
    if not args.headless:
        window = open_window(f"edgecnn: {args.model}")
        if window is not None:
            sinks.append(WindowSink(window))
    return sinks


def _close_sinks(sinks: list) -> Optional[EdgeCNNError]:
    """Close every sink, even after one fails; the first failure (a recording that could not be finished) or None."""
    error = None
    for sink in sinks:
        try:
            sink.close()
        except EdgeCNNError as exc:
            error = error or exc
    return error


def _recorded_frames(sinks: list) -> int:
    return sum(s.recorder.frames for s in sinks if hasattr(s, "recorder"))


def _install_stop_handlers(stop: threading.Event):
    """SIGINT/SIGTERM set ``stop`` (the loop then finishes cleanly); returns a function restoring the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum, frame):
        stop.set()

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, previous in old.items():
            signal.signal(sig, previous)

    return restore
