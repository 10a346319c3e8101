"""LatestFrameCapture (lossless, latest-frame, paced, reconnect) and the live loop, with fake sources."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from edgecnn.errors import SourceError, SourceLostError
from edgecnn.runtime import ClassScore
from edgecnn.video.capture import LatestFrameCapture, Reconnect
from edgecnn.video.classify import FrameResult
from edgecnn.video.frame_sources import SourceReadError
from edgecnn.video.loop import LoopOptions, run_loop

FAST = Reconnect(attempts=2, initial_s=0.01, max_s=0.02)
HANG_S = 60  # a guard against a hang, not a speed: two busy cores can stall a thread for seconds


class CountingSource:
    """Frames whose first pixel holds their number; optional delay per frame; ``live`` as given."""

    name = "counting"
    fps = None

    def __init__(self, n: int, live: bool = False, delay_s: float = 0.0):
        self.n, self.live, self.delay_s = n, live, delay_s
        self.produced = 0
        self.opened = self.closed = 0

    def open(self):
        self.opened += 1

    def read(self):
        if self.produced >= self.n:
            return None
        if self.delay_s:
            time.sleep(self.delay_s)
        image = np.zeros((8, 8, 3), np.uint8)
        image[0, 0] = (self.produced % 256, self.produced // 256 % 256, 0)
        self.produced += 1
        return image

    def close(self):
        self.closed += 1


class FailingSource(CountingSource):
    """A live source that fails after ``fail_after`` frames; reopening works ``reopen_ok`` times."""

    name = "failing-cam"

    def __init__(self, fail_after: int, reopen_ok: int = 0):
        super().__init__(n=10**9, live=True)
        self.fail_after, self.reopen_ok = fail_after, reopen_ok
        self.failed = False

    def open(self):
        self.opened += 1
        if self.opened > 1:
            if self.reopen_ok <= 0:
                raise SourceError("camera unplugged")
            self.reopen_ok -= 1
            self.failed = False

    def read(self):
        if self.failed or self.produced == self.fail_after:
            self.failed = True
            self.fail_after = -1
            raise SourceReadError("no frame from failing-cam")
        return super().read()


def frame_number(image: np.ndarray) -> int:
    return int(image[0, 0, 0]) + 256 * int(image[0, 0, 1])


def fake_classify(delay_s: float = 0.0):
    def classify(image, top_k):
        if delay_s:
            time.sleep(delay_s)
        top = [ClassScore("thing", 0, 0.9), ClassScore("other", 1, 0.1)][:top_k]
        return FrameResult(top, {"preprocess": 0.1, "inference": delay_s * 1e3, "total": delay_s * 1e3 + 0.1})

    return classify


def drain(capture: LatestFrameCapture, consume_s: float = 0.0, before_next=None) -> list[int]:
    """Every frame the consumer gets until the end; ``before_next(index)`` runs after each one is taken."""
    taken = []
    while True:
        frame = capture.get(timeout=HANG_S)
        if frame is None:
            assert capture.ended, "get timed out before the stream ended"
            return taken
        taken.append(frame.index)
        assert frame_number(frame.image) == frame.index % 65536
        if consume_s:
            time.sleep(consume_s)
        if before_next:
            before_next(frame.index)


def wait_for(condition, what: str) -> None:
    """Poll ``condition`` until it holds (a hang guard of HANG_S seconds, not a speed limit)."""
    deadline = time.monotonic() + HANG_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.001)


def test_lossless_capture_delivers_every_frame_in_order():
    source = CountingSource(200)
    with LatestFrameCapture(source, lossless=True) as capture:
        taken = drain(capture, consume_s=0.0005)
    assert taken == list(range(200))
    assert capture.dropped == 0
    assert source.closed >= 1


def test_latest_capture_drops_stale_frames_and_keeps_one_slot():
    source = CountingSource(100, live=True, delay_s=0.002)

    def slow_consumer(index: int) -> None:  # the source reads 5 more frames before the next get, however busy the CPU
        wait_for(lambda: source.produced >= min(index + 6, source.n), "the source to read 5 more frames")

    with LatestFrameCapture(source) as capture:
        taken = drain(capture, before_next=slow_consumer)
    assert taken == sorted(taken) and len(set(taken)) == len(taken)
    assert len(taken) < 50, "a slow consumer must not see every frame"
    assert capture.dropped == 100 - len(taken), "every frame not taken is counted as dropped"
    assert taken[-1] == 99, "the last frame delivered is the newest one"


def test_paced_file_source_runs_at_the_requested_rate():
    source = CountingSource(10)
    start = time.monotonic()
    with LatestFrameCapture(source, pace_fps=100) as capture:
        taken = drain(capture)
    elapsed = time.monotonic() - start
    assert taken[-1] == 9 and len(taken) + capture.dropped == 10
    assert elapsed >= 0.09  # frame 9 waits until 9/100 s after the start; a busy CPU only adds time


def test_failed_reconnects_raise_source_lost_after_each_attempt_is_logged(caplog):
    caplog.set_level("INFO", logger="edgecnn.video")
    source = FailingSource(fail_after=3)
    capture = LatestFrameCapture(source, reconnect=FAST).start()
    taken = []
    with pytest.raises(SourceLostError, match="2 reconnect attempts failed"):
        while True:
            frame = capture.get(timeout=HANG_S)
            if frame is not None:
                taken.append(frame.index)
    capture.stop()
    assert len(taken) >= 1 and taken[-1] <= 2
    attempts = [line for line in caplog.messages if "reconnect attempt" in line and " in " in line]
    assert [a.split("reconnect attempt ")[1][:3] for a in attempts] == ["1/2", "2/2"]
    assert source.opened == 3  # the first open plus two reconnects


def test_successful_reconnect_resumes_numbering(caplog):
    caplog.set_level("INFO", logger="edgecnn.video")
    source = FailingSource(fail_after=5, reopen_ok=1)
    source.n = 12
    with LatestFrameCapture(source, lossless=True, reconnect=FAST) as capture:
        taken = drain(capture)
    assert taken == list(range(12))
    assert any("reconnected to failing-cam" in line for line in caplog.messages)


def test_capture_stop_releases_a_live_source_promptly():
    source = CountingSource(10**9, live=True, delay_s=0.001)
    capture = LatestFrameCapture(source).start()
    assert capture.get(timeout=HANG_S) is not None
    capture.stop(timeout=HANG_S)
    assert source.closed >= 1


# --- the loop ----------------------------------------------------------------------------


class RecordingSink:
    needs_image = True

    def __init__(self, quit_after=None):
        self.events, self.quit_after = [], quit_after

    def handle(self, event):
        self.events.append(event)
        return self.quit_after is not None and len(self.events) >= self.quit_after

    def close(self):
        pass


def test_loop_processes_every_file_frame_and_classifies_every_nth():
    sink = RecordingSink()
    with LatestFrameCapture(CountingSource(30), lossless=True) as capture:
        outcome = run_loop(capture, fake_classify(), LoopOptions(top_k=1, every=3), [sink])
    stats = outcome.stats
    assert outcome.error is None and stats.stop_reason == "end of stream"
    assert [e.index for e in sink.events] == list(range(30))
    assert [e.index for e in sink.events if e.classified] == list(range(0, 30, 3))
    assert stats.processed == 30 and stats.classified == 10
    assert all(len(e.result.top) == 1 for e in sink.events)
    summary = stats.summary()
    assert summary["frames"] == 30 and summary["latency_ms"]["total"]["p50"] == pytest.approx(0.1)


def test_loop_stops_on_max_frames_key_and_stop_event():
    with LatestFrameCapture(CountingSource(100), lossless=True) as capture:
        assert run_loop(capture, fake_classify(), LoopOptions(max_frames=7)).stats.processed == 7
    with LatestFrameCapture(CountingSource(100), lossless=True) as capture:
        outcome = run_loop(capture, fake_classify(), LoopOptions(), [RecordingSink(quit_after=4)])
        assert (outcome.stats.processed, outcome.stats.stop_reason) == (4, "key")
    stop = threading.Event()
    stop.set()
    with LatestFrameCapture(CountingSource(100), lossless=True) as capture:
        outcome = run_loop(capture, fake_classify(), LoopOptions(), stop=stop)
        assert (outcome.stats.processed, outcome.stats.stop_reason) == (0, "stopped")


def test_loop_reports_a_lost_source_instead_of_raising():
    capture = LatestFrameCapture(FailingSource(fail_after=4), reconnect=FAST).start()
    outcome = run_loop(capture, fake_classify(), LoopOptions())
    capture.stop()
    assert isinstance(outcome.error, SourceLostError)
    assert outcome.stats.stop_reason == "source lost"
    assert 1 <= outcome.stats.processed <= 4
