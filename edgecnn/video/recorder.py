"""Record annotated frames to a video file, atomically: a temp file renamed on close."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

from edgecnn.errors import UsageError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")
FOURCC = "mp4v"


def check_video_path(path: str | os.PathLike) -> Path:
    """Fail up front on an output path the recorder cannot write."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise UsageError(f"Received --save {path}; "
                         f"expected a file ending in {', '.join(VIDEO_SUFFIXES)} (e.g. out.mp4)")
    if path.is_dir():
        raise UsageError(f"--save {path} is a folder; pass a file name such as {path / 'out.mp4'}")
    return path


class VideoRecorder:
    """Writes BGR frames with the mp4v codec to a hidden temp file next to ``path``.

    The writer opens on the first frame (its size fixes the video size);
    ``close()`` finalizes the file and renames it onto ``path``, so an
    interrupted run still leaves a playable video with every written frame.
    """

    def __init__(self, path: str | os.PathLike, fps: float):
        self.path = check_video_path(path)
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.frames = 0
        self._writer = None
        self._tmp: Optional[Path] = None
        self._size: Optional[tuple[int, int]] = None

    def write(self, image: np.ndarray) -> None:
        import cv2

        h, w = image.shape[:2]
        if self._writer is None:
            self._open(w, h)
        elif (w, h) != self._size:
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_LINEAR)
        self._writer.write(image)
        self.frames += 1

    def _open(self, width: int, height: int) -> None:
        import cv2

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=self.path.suffix, dir=self.path.parent)
        os.close(fd)
        os.unlink(tmp)  # only the unique name is needed; the writer creates the file with normal permissions
        self._tmp = Path(tmp)
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*FOURCC), self.fps, (width, height))
        if not writer.isOpened():
            self._tmp.unlink(missing_ok=True)
            raise UsageError(f"cannot write {self.path} with the {FOURCC} codec; this OpenCV build lacks it, try "
                             f"--save out.avi")
        self._writer, self._size = writer, (width, height)

    def close(self) -> Optional[Path]:
        """Finalize and move the video into place; returns its path, or None when no frame was written."""
        if self._writer is None:
            return None
        self._writer.release()
        self._writer = None
        os.replace(self._tmp, self.path)
        return self.path
