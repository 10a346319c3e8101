"""The live loop: newest frame -> classify -> overlay -> sinks, until something says stop."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Optional, Sequence

from edgecnn.errors import EdgeCNNError, OutputError, SourceLostError
from edgecnn.video.capture import LatestFrameCapture
from edgecnn.video.classify import FrameClassifierFn, FrameResult
from edgecnn.video.overlay import draw_overlay
from edgecnn.video.sinks import FrameEvent
from edgecnn.video.summary import RunStats

POLL_S = 0.1  # how often a waiting loop re-checks stop/duration
FPS_SMOOTHING = 0.1


@dataclass
class LoopOptions:
    top_k: int = 5
    every: int = 1                       # classify every Nth processed frame; the others reuse the last result
    max_frames: Optional[int] = None     # stop after this many processed frames
    duration_s: Optional[float] = None   # stop after this many seconds


@dataclass
class LoopOutcome:
    stats: RunStats
    error: Optional[EdgeCNNError] = None  # a lost source, or an output that could not be written (a full disk)


def run_loop(
    capture: LatestFrameCapture,
    classify: FrameClassifierFn,
    options: LoopOptions,
    sinks: Sequence = (),
    stop: Optional[threading.Event] = None,
) -> LoopOutcome:
    """Process frames from a started ``capture`` until end of stream, a limit, a sink or ``stop``.

    Returns the run's statistics; a lost source or a sink that cannot write (OutputError) ends the run with
    ``outcome.error`` set instead of raising. Sinks are not closed here.
    """
    stop = stop or threading.Event()
    stats = RunStats()
    outcome = LoopOutcome(stats)
    draw = any(getattr(s, "needs_image", False) for s in sinks)
    raw = [s for s in sinks if getattr(s, "needs_raw", False)]  # they see the frame before the overlay
    sinks = [s for s in sinks if s not in raw]
    deadline = time.monotonic() + options.duration_s if options.duration_s else None
    result: Optional[FrameResult] = None
    fps = _Fps()

    while True:
        reason = _stop_requested(stop, deadline)
        if reason:
            stats.stop_reason = reason
            break
        try:
            frame = capture.get(timeout=POLL_S)
        except SourceLostError as exc:
            stats.stop_reason, outcome.error = "source lost", exc
            break
        if frame is None:
            if capture.ended:
                stats.stop_reason = "end of stream"
                break
            continue

        stats.frame_started()
        classified = stats.processed % options.every == 0
        if classified:
            result = classify(frame.image, options.top_k)
            stats.add_latency(result.latency_ms)
        fps.tick()
        event = FrameEvent(frame.index, frame.t, frame.image, result, classified, capture.dropped, fps.value)
        reason = _deliver(event, raw, outcome)
        if draw and result is not None:
            draw_overlay(frame.image, result.top, result.latency_ms["inference"], fps.value)
        reason = _deliver(event, sinks, outcome) or reason
        stats.frame_done(capture.dropped)
        if not reason and options.max_frames is not None and stats.processed >= options.max_frames:
            reason = "max frames"
        if reason:
            stats.stop_reason = reason
            break

    stats.dropped = capture.dropped
    return outcome


def _deliver(event: FrameEvent, sinks: Sequence, outcome: LoopOutcome) -> Optional[str]:
    """Hand ``event`` to every sink; "key" when one asks to stop, "output failed" (``outcome.error`` set) when one
    cannot write, else None."""
    try:
        return "key" if any([bool(sink.handle(event)) for sink in sinks]) else None  # every sink sees the frame
    except OutputError as exc:
        outcome.error = exc
        return "output failed"


def _stop_requested(stop: threading.Event, deadline: Optional[float]) -> Optional[str]:
    """Why the loop must stop before taking another frame, or None."""
    if stop.is_set():
        return "stopped"
    if deadline is not None and time.monotonic() >= deadline:
        return "duration"
    return None


class _Fps:
    """Loop frames per second, smoothed exponentially."""

    def __init__(self):
        self.value, self._last = 0.0, None

    def tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None and now > self._last:
            instant = 1.0 / (now - self._last)
            self.value = instant if self.value == 0 else self.value + FPS_SMOOTHING * (instant - self.value)
        self._last = now
