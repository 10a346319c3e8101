"""Record annotated frames to a video file, atomically: a temp file renamed on close, once it plays back whole."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

from edgecnn.errors import OutputError, UsageError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")
FOURCC = "mp4v"
# cv2.VideoWriter reports no write error (a full disk gives an unplayable file and no word), so the recorder keeps
# this much free on the disk, plus the index the container writes at close, and stops recording when it is not.
MIN_FREE_BYTES = 8_000_000
INDEX_BYTES_PER_FRAME = 64  # an mp4's index (moov) takes about 20 bytes per frame


def check_video_path(path: str | os.PathLike) -> Path:
    """Fail up front on an output path the recorder cannot write, or on a disk without room for it."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise UsageError(f"Received --save {path}; "
                         f"expected a file ending in {', '.join(VIDEO_SUFFIXES)} (e.g. out.mp4)")
    if path.is_dir():
        raise UsageError(f"--save {path} is a folder; pass a file name such as {path / 'out.mp4'}")
    problem = space_problem(path, frames=0)
    if problem:
        raise OutputError(problem)
    return path


def free_bytes(folder: Path) -> Optional[int]:
    """Bytes this user may still write on the file system of ``folder`` (or of its nearest existing parent); None
    when unknown."""
    for candidate in (folder, *folder.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


def space_problem(path: Path, frames: int) -> Optional[str]:
    """The one-line reason the disk of ``path`` has no room for more frames after ``frames`` of them, or None."""
    free, needed = free_bytes(path.parent), MIN_FREE_BYTES + INDEX_BYTES_PER_FRAME * frames
    if free is None or free >= needed:
        return None
    kept = f"; stopped recording after {frames} frames, which are kept" if frames else ""
    return (f"--save {path}: only {_size(free)} free on its disk, and a recording keeps {_size(needed)} free for "
            f"its last frames and index{kept}; free some space or --save to another disk")


def _size(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 1_000_000 else f"{n / 1e3:.0f} KB"


class VideoRecorder:
    """Writes BGR frames with the mp4v codec to a hidden temp file next to ``path``.

    The writer opens on the first frame (its size fixes the video size). ``write`` raises OutputError, the frames so
    far kept, when the disk runs short of room; ``close()`` finalizes the file, checks that it plays back with every
    frame and renames it onto ``path`` (raising OutputError and removing it when it does not), so an interrupted run
    still leaves a playable video with every written frame, and a failed one leaves an earlier ``path`` as it was.
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

        problem = space_problem(self.path, self.frames)
        if problem:
            raise OutputError(problem)
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
        """Finalize, check and move the video into place; returns its path, or None when no frame was written."""
        if self._writer is None:
            return None
        self._writer.release()
        self._writer = None
        if not self._plays_back():
            self._tmp.unlink(missing_ok=True)
            free = free_bytes(self.path.parent)
            disk = f"{_size(free)} free on its disk" if free is not None else "is its disk full?"
            raise OutputError(f"--save {self.path}: the finished video does not play back to its last frame, frame "
                              f"{self.frames} ({disk}); nothing was saved, any earlier {self.path.name} is left as it "
                              f"was; free some space or --save to another disk")
        os.replace(self._tmp, self.path)
        return self.path

    def _plays_back(self) -> bool:
        """Whether the finished temp file opens and reads up to the last frame written (a file cut short by a full
        disk opens, if at all, with fewer frames: an mp4 without its index does not open, an avi's ends early)."""
        import cv2

        cap = cv2.VideoCapture(str(self._tmp))
        try:
            if not cap.isOpened():
                return False
            cap.set(cv2.CAP_PROP_POS_FRAMES, self.frames - 1)
            if not cap.read()[0]:
                return False
            position = round(cap.get(cv2.CAP_PROP_POS_FRAMES))
            return position == self.frames or position <= 0  # 0 or less: this backend does not tell
        finally:
            cap.release()
