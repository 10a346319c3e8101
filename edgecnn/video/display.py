"""An OpenCV window when a display exists; otherwise None, with a one-line notice."""

from __future__ import annotations

import logging
import os
import sys
from typing import Optional

import numpy as np

log = logging.getLogger("edgecnn.video")

STOP_KEYS = (ord("q"), ord("Q"), 27)  # q, ESC


class Window:
    """Shows frames; ``show`` returns True when the user pressed q or ESC (or closed the window)."""

    def __init__(self, title: str):
        self.title = title

    def show(self, image: np.ndarray) -> bool:
        import cv2

        cv2.imshow(self.title, image)
        key = cv2.waitKey(1) & 0xFF
        if key in STOP_KEYS:
            return True
        return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1

    def close(self) -> None:
        import cv2

        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error:
            pass


def open_window(title: str) -> Optional[Window]:
    """A Window if this machine can show one, else None after logging why."""
    import cv2

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        log.warning("notice: no display found (DISPLAY is not set); running headless (pass --headless to silence this)")
        return None
    try:
        cv2.namedWindow(title, cv2.WINDOW_AUTOSIZE)
    except cv2.error:
        log.warning("notice: this OpenCV build has no GUI (opencv-python-headless); running headless")
        return None
    return Window(title)
