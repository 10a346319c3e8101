"""Where processed frames go: JSON lines, human lines, the recorder, the preview server, a window.

Each sink has ``handle(event) -> bool`` (True asks the loop to stop, e.g. q
pressed) and ``close()``. ``needs_image`` says whether it uses the annotated
frame, so the loop draws the overlay only when someone looks at it; a sink with
``needs_raw`` (the collector, edgecnn.collect) gets the frame before the overlay.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Optional, TextIO

import numpy as np

from edgecnn.video.classify import FrameResult


@dataclass
class FrameEvent:
    """One processed frame as the sinks see it."""

    index: int                      # the frame's sequence number from the source
    t: float                        # unix time of capture
    image: np.ndarray               # BGR, annotated when any sink needs_image
    result: Optional[FrameResult]   # the latest result (this frame's when ``classified``)
    classified: bool                # True when this frame itself was classified
    dropped: int                    # frames dropped so far
    fps: float                      # current loop FPS


class JsonLines:
    """One JSON object per classified frame on ``stream`` (stdout by default)."""

    needs_image = False

    def __init__(self, stream: Optional[TextIO] = None):
        self.stream = stream or sys.stdout

    def handle(self, event: FrameEvent) -> bool:
        if event.classified:
            line = {"frame": event.index, "t": round(event.t, 3), **event.result.to_dict(), "dropped": event.dropped}
            self.stream.write(json.dumps(line) + "\n")
            self.stream.flush()
        return False

    def close(self) -> None:
        pass


class HumanLines:
    """A line whenever the top-1 label changes (quiet enough for hours under systemd)."""

    needs_image = False

    def __init__(self, stream: Optional[TextIO] = None):
        self.stream = stream or sys.stdout
        self._last: Optional[str] = None

    def handle(self, event: FrameEvent) -> bool:
        if event.classified and event.result.top:
            best = event.result.top[0]
            if best.label != self._last:
                self._last = best.label
                self.stream.write(f"frame {event.index}: {best.label} {best.score:.1%} "
                                  f"({event.result.latency_ms['total']:.1f} ms)\n")
                self.stream.flush()
        return False

    def close(self) -> None:
        pass


class RecorderSink:
    """Writes every processed (annotated) frame to a VideoRecorder."""

    needs_image = True

    def __init__(self, recorder):
        self.recorder = recorder

    def handle(self, event: FrameEvent) -> bool:
        self.recorder.write(event.image)
        return False

    def close(self) -> None:
        self.recorder.close()


class PreviewSink:
    """Publishes annotated frames and the latest prediction to a PreviewServer."""

    needs_image = True

    def __init__(self, server):
        self.server = server

    def handle(self, event: FrameEvent) -> bool:
        prediction = None
        if event.classified:
            prediction = {"frame": event.index, "t": round(event.t, 3), **event.result.to_dict(),
                          "dropped": event.dropped, "fps": round(event.fps, 2)}
        self.server.publish(event.image, prediction)
        return False

    def close(self) -> None:
        self.server.close()


class WindowSink:
    """Shows frames in an OpenCV window; q/ESC stops the loop."""

    needs_image = True

    def __init__(self, window):
        self.window = window

    def handle(self, event: FrameEvent) -> bool:
        return self.window.show(event.image)

    def close(self) -> None:
        self.window.close()
