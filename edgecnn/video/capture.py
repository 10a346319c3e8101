"""LatestFrameCapture: read a source in its own thread and hand the consumer the newest frame.

One slot, no queue. In *latest* mode (live sources) a frame that arrives
before the previous one was taken overwrites it and is counted as dropped, so
inference always runs on the newest frame and nothing grows. In *lossless*
mode (files and folders by default) the reader waits until the slot is taken,
so every frame is processed in order while decoding still overlaps inference.
``pace_fps`` makes any source deliver at most that many frames per second
(``realtime=True``: at the source's own rate), which lets a file stand in for
a live camera (``--fps``/``--realtime``).

When a live source fails, the thread reconnects (close + open) with
exponential backoff up to ``Reconnect.attempts`` times, logging each attempt;
after the last failure :meth:`LatestFrameCapture.get` raises
:class:`SourceLostError`. A live source that cannot be opened at start (a
camera or stream that comes up after the device boots) gets the same
attempts; a file or folder that cannot be opened fails at once.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from edgecnn.errors import SourceError, SourceLostError
from edgecnn.video.frame_sources import Source, SourceReadError

log = logging.getLogger("edgecnn.video")

DEFAULT_FPS = 30.0  # pacing and recording rate when a source does not say


@dataclass
class Frame:
    """One captured frame: its sequence number since start, the BGR image, the capture time."""

    index: int
    image: np.ndarray
    t: float


@dataclass
class Reconnect:
    """Reconnect policy: ``attempts`` tries, waiting ``initial_s`` doubling up to ``max_s``."""

    attempts: int = 5
    initial_s: float = 0.5
    max_s: float = 5.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (1-based)."""
        return min(self.max_s, self.initial_s * 2 ** (attempt - 1))


class LatestFrameCapture:
    """A reader thread with a one-frame slot; see the module docstring."""

    def __init__(
        self,
        source: Source,
        lossless: bool = False,
        pace_fps: Optional[float] = None,
        realtime: bool = False,
        reconnect: Optional[Reconnect] = None,
    ):
        self.source = source
        self.lossless = lossless
        self.pace_fps = pace_fps
        self.realtime = realtime
        self.reconnect = reconnect or Reconnect()
        self.dropped = 0
        self.captured = 0
        self._slot: Optional[Frame] = None
        self._ended = False
        self._error: Optional[SourceError] = None
        self._open_error: Optional[SourceError] = None  # a live source that did not open at start
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # -- consumer side -------------------------------------------------------

    def start(self) -> "LatestFrameCapture":
        """Open the source and start the reader thread.

        A file or folder that cannot be opened raises here, in the caller. A live
        source that cannot be opened is retried by the reader thread, as a lost one is.
        """
        try:
            self.source.open()
        except SourceError as exc:
            if not self.source.live:
                raise
            self._open_error = exc
        if self.realtime and not self.pace_fps:
            self.pace_fps = self.source.fps or DEFAULT_FPS
        self._thread = threading.Thread(target=self._run, name="edgecnn-capture", daemon=True)
        self._thread.start()
        return self

    def get(self, timeout: Optional[float] = None) -> Optional[Frame]:
        """The newest frame not yet taken; None at the end of the stream or after ``timeout`` seconds.

        Raises SourceLostError once reconnecting has failed.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: self._slot is not None or self._ended, timeout):
                return None
            frame, self._slot = self._slot, None
            self._cond.notify_all()
            if frame is None and self._error is not None:
                raise self._error
            return frame

    @property
    def ended(self) -> bool:
        """True once the reader has stopped and the last frame was taken."""
        with self._cond:
            return self._ended and self._slot is None

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the reader and release the source (the reader releases it if still blocked in a read)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> "LatestFrameCapture":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- reader thread -------------------------------------------------------

    def _run(self) -> None:
        try:
            self._read_until_stopped()
        except SourceLostError as exc:
            self._error = exc
        except Exception as exc:  # a source bug must not leave the consumer waiting forever
            self._error = SourceError(f"reading {self.source.name} failed: {exc}")
        finally:
            self.source.close()
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def _read_until_stopped(self) -> None:
        failures = 0
        if self._open_error is not None:
            failures = self._open_at_start(self._open_error)
            if failures < 0:
                return
        started = time.monotonic()
        while not self._stop.is_set():
            try:
                image = self.source.read()
            except SourceReadError as exc:
                failures += 1
                self._reopen(exc, failures)
                continue
            if image is None:
                return
            failures = 0
            if self.pace_fps:
                self._wait_until(started + self.captured / self.pace_fps)
            self._publish(Frame(self.captured, image, time.time()))
            self.captured += 1

    def _publish(self, frame: Frame) -> None:
        with self._cond:
            if self.lossless:
                self._cond.wait_for(lambda: self._slot is None or self._stop.is_set())
            if self._slot is not None:
                self.dropped += 1
            self._slot = frame
            self._cond.notify_all()

    def _open_at_start(self, exc: SourceError) -> int:
        """Retry a live source that did not open at start; the attempts used, or -1 when stopped meanwhile.

        Raises SourceLostError when every attempt failed.
        """
        attempts = self.reconnect.attempts
        for attempt in range(1, attempts + 1):
            delay = self.reconnect.delay(attempt)
            log.warning("warning: %s; reconnect attempt %d/%d in %.1f s", exc, attempt, attempts, delay)
            if self._stop.wait(delay):
                return -1
            try:
                self.source.open()
            except SourceError as open_exc:
                exc = open_exc
                log.warning("warning: reconnect attempt %d/%d failed: %s", attempt, attempts, open_exc)
                continue
            log.info("connected to %s (attempt %d/%d)", self.source.name, attempt, attempts)
            return 0
        raise SourceLostError(
            f"could not open {self.source.name} ({exc}) in {attempts} reconnect attempts; "
            f"check the camera or stream, or raise --reconnect"
        )

    def _reopen(self, exc: SourceReadError, failures: int) -> None:
        """Close and reopen after a failed read; raise SourceLostError when attempts are used up."""
        attempts = self.reconnect.attempts
        self.source.close()
        if failures > attempts:
            raise SourceLostError(
                f"lost {self.source.name} ({exc}) and {attempts} reconnect attempts failed; "
                f"check the camera or stream, or raise --reconnect"
            )
        delay = self.reconnect.delay(failures)
        log.warning("warning: %s; reconnect attempt %d/%d in %.1f s", exc, failures, attempts, delay)
        if self._stop.wait(delay):
            return
        try:
            self.source.open()
        except SourceError as open_exc:
            log.warning("warning: reconnect attempt %d/%d failed: %s", failures, attempts, open_exc)
            return
        log.info("reconnected to %s (attempt %d/%d)", self.source.name, failures, attempts)

    def _wait_until(self, deadline: float) -> None:
        delay = deadline - time.monotonic()
        if delay > 0:
            self._stop.wait(delay)
