"""Frame sources: camera, video file, network stream, Raspberry Pi camera, image folder, image file.

Every source yields BGR ``uint8`` frames (OpenCV's order) through one small
interface:

- ``open()``: acquire the device/file; raises :class:`SourceError`.
- ``read()``: the next frame, ``None`` at the end of a file or folder; a live
  source whose read fails raises :class:`SourceReadError` (the capture thread
  then reconnects by calling ``close()`` and ``open()`` again).
- ``close()``: release it; safe to call twice.
- ``live``: True for cameras and streams (latest-frame capture drops stale
  frames), False for files and folders (every frame, in order, by default).
- ``fps``: the nominal frame rate when known, else None.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from pathlib import Path
from typing import Optional, Protocol, Union

import numpy as np

from edgecnn._io import special_file
from edgecnn.errors import DataError, SourceError, first_line
from edgecnn.runtime.imageinfo import DEFAULT_MAX_PIXELS, image_size, is_gif, pixel_budget_problem
from edgecnn.runtime.inputs import image_files, is_image_file

log = logging.getLogger("edgecnn.video")

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp")
STREAM_TIMEOUT_MS = 5000
SOURCE_HINT = ("pass a camera index (0), /dev/videoN, a video file, a folder of images, rtsp://..., http://... "
               "or picamera2")


class SourceReadError(Exception):
    """A live source failed to deliver a frame (the capture thread reconnects)."""


class Source(Protocol):
    name: str
    live: bool
    fps: Optional[float]

    def open(self) -> None: ...

    def read(self) -> Optional[np.ndarray]: ...

    def close(self) -> None: ...


class OpenCVSource:
    """A camera index, /dev/videoN, video file or stream URL read with ``cv2.VideoCapture``."""

    def __init__(
        self,
        target: Union[int, str],
        live: bool,
        width: Optional[int] = None,
        height: Optional[int] = None,
        fps: Optional[float] = None,
    ):
        self.target = target
        self.live = live
        self.name = str(target)
        self.fps: Optional[float] = None
        self._request = (width, height, fps)
        self._cap = None
        self._first: Optional[np.ndarray] = None  # a file's first frame, read by open() to prove it is a video

    def open(self) -> None:
        import cv2

        self.close()
        cap = cv2.VideoCapture(*self._open_args(cv2))
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open video source {self.name}; check that it exists and is not in use "
                              f"({SOURCE_HINT})")
        if self.live:
            self._configure_camera(cap, cv2)
        else:
            ok, frame = cap.read()
            if not ok or frame is None:
                cap.release()
                raise SourceError(
                    f"{self.name} is not a video or image OpenCV can read (no frame could be decoded); "
                    f"pass a video file, a folder of images, a camera or a stream"
                )
            self._first = frame
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and 0 < fps < 1000 else None
        self._cap = cap

    def _open_args(self, cv2) -> tuple:
        if isinstance(self.target, str) and _is_stream_url(self.target):
            timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS,
                        cv2.CAP_PROP_READ_TIMEOUT_MSEC, STREAM_TIMEOUT_MS]
            return self.target, cv2.CAP_ANY, timeouts
        return (self.target,)

    def _configure_camera(self, cap, cv2) -> None:
        width, height, fps = self._request
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        if width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        if fps:
            cap.set(cv2.CAP_PROP_FPS, fps)

    def read(self) -> Optional[np.ndarray]:
        if self._cap is None:
            raise SourceReadError(f"{self.name} is not open")
        if self._first is not None:
            frame, self._first = self._first, None
            return frame
        ok, frame = self._cap.read()
        if ok and frame is not None:
            return frame
        if self.live:
            raise SourceReadError(f"no frame from {self.name}")
        return None

    def close(self) -> None:
        self._first = None
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class FolderSource:
    """The image files of a folder (recognised by content), in name order, as frames (undecodable ones skipped
    with a notice)."""

    live = False
    fps = None

    def __init__(self, folder: Union[str, os.PathLike], max_pixels: Optional[int] = DEFAULT_MAX_PIXELS):
        self.folder = Path(folder)
        self.max_pixels = max_pixels
        self.name = str(self.folder)
        self._paths: list[Path] = []
        self._next = 0

    def open(self) -> None:
        self._paths = [Path(p) for p in image_files(self.folder, recursive=False)]
        if not self._paths:
            raise SourceError(f"no images in folder {self.folder} (files are recognised by their content); "
                              f"pass a folder of image files")
        self._next = 0

    def read(self) -> Optional[np.ndarray]:
        from edgecnn.runtime.preprocess import read_image

        while self._next < len(self._paths):
            path = self._paths[self._next]
            self._next += 1
            try:
                # The reader `edgecnn predict` uses: a file it rejects is skipped here too.
                return read_image(path, self.max_pixels)
            except DataError as exc:
                log.warning("notice: skipping %s: %s", path, exc)
        return None

    def close(self) -> None:
        self._next = len(self._paths)


class ImageFileSource:
    """One image file as one frame, read as `edgecnn predict` reads it: within the pixel budget, checked before
    decoding."""

    live = False
    fps = None

    def __init__(self, path: Union[str, os.PathLike], max_pixels: Optional[int] = DEFAULT_MAX_PIXELS):
        self.path = Path(path)
        self.max_pixels = max_pixels
        self.name = str(self.path)
        self._frame: Optional[np.ndarray] = None

    def open(self) -> None:
        from edgecnn.runtime.preprocess import read_image

        try:
            self._frame = read_image(self.path, self.max_pixels)
        except DataError as exc:
            raise SourceError(str(exc)) from None

    def read(self) -> Optional[np.ndarray]:
        frame, self._frame = self._frame, None
        return frame

    def close(self) -> None:
        self._frame = None


class GifSource:
    """Every frame of a GIF, animated or not, decoded by Pillow: OpenCV's video backend reads an animated GIF as one
    still where FFmpeg is missing. Each frame is checked against the pixel budget (a frame may grow the canvas) and
    composited on black where transparent, as `edgecnn predict` reads the first."""

    live = False

    def __init__(self, path: Union[str, os.PathLike], max_pixels: Optional[int] = DEFAULT_MAX_PIXELS):
        self.path = Path(path)
        self.max_pixels = max_pixels
        self.name = str(self.path)
        self.fps: Optional[float] = None
        self._image = None
        self._first: Optional[np.ndarray] = None  # decoded by open() to prove the file decodes

    def open(self) -> None:
        from PIL import Image

        self.close()
        try:
            self._image = Image.open(self.path)
            self._first = self._decode()
        except SourceError:
            self.close()
            raise
        except Exception as exc:  # Pillow's errors on a corrupt file (OSError, SyntaxError, EOFError, ...)
            self.close()
            raise SourceError(f"cannot decode {self.path}: {type(exc).__name__}: {first_line(exc)}") from None
        duration = self._image.info.get("duration")  # milliseconds per frame
        self.fps = 1000.0 / duration if duration and duration > 1 else None

    def read(self) -> Optional[np.ndarray]:
        if self._first is not None:
            frame, self._first = self._first, None
            return frame
        if self._image is None:
            return None
        try:
            self._image.seek(self._image.tell() + 1)
            return self._decode()
        except EOFError:  # the last frame was read
            return None
        except Exception as exc:  # a frame over the budget, or cut short: the GIF ends there, as a cut video does
            log.warning("notice: %s ends at frame %d: %s", self.name, self._image.tell(), first_line(exc))
            return None

    def _decode(self) -> np.ndarray:
        """The current frame as BGR, once its size is within the pixel budget."""
        from edgecnn.runtime.preprocess import as_uint8_color

        problem = pixel_budget_problem(self.path, self._image.size, self.max_pixels)
        if problem:
            raise SourceError(problem)
        rgba = np.asarray(self._image.convert("RGBA"))
        return as_uint8_color(np.ascontiguousarray(rgba[..., [2, 1, 0, 3]]), self.name)

    def close(self) -> None:
        self._first = None
        if self._image is not None:
            self._image.close()
            self._image = None


class Picamera2Source:
    """The Raspberry Pi camera through the ``picamera2`` library (BGR frames)."""

    live = True
    name = "picamera2"

    def __init__(self, width: Optional[int] = None, height: Optional[int] = None, fps: Optional[float] = None):
        self._request = (width or 640, height or 480, fps)
        self.fps = fps
        self._camera = None

    def open(self) -> None:
        Picamera2 = _import_picamera2()
        self.close()
        width, height, fps = self._request
        try:
            camera = Picamera2()
            # picamera2's "RGB888" is stored B, G, R in memory: OpenCV's order.
            controls = {"FrameRate": float(fps)} if fps else {}
            config = camera.create_video_configuration(main={"size": (width, height), "format": "RGB888"},
                                                       controls=controls)
            camera.configure(config)
            camera.start()
        except Exception as exc:  # picamera2 raises RuntimeError/IndexError etc. without a common base
            raise SourceError(f"cannot start the Pi camera ({exc}); check the ribbon cable and `rpicam-hello "
                              f"--list-cameras`") from None
        self._camera = camera

    def read(self) -> Optional[np.ndarray]:
        if self._camera is None:
            raise SourceReadError("picamera2 is not open")
        try:
            return self._camera.capture_array("main")
        except Exception as exc:
            raise SourceReadError(f"picamera2 capture failed: {exc}") from None

    def close(self) -> None:
        if self._camera is not None:
            try:
                self._camera.stop()
                self._camera.close()
            finally:
                self._camera = None


def _import_picamera2():
    try:
        from picamera2 import Picamera2
    except ImportError:
        raise SourceError(
            "--source picamera2 needs the picamera2 package, which is not importable; on Raspberry Pi OS install "
            "it with `sudo apt install python3-picamera2` and create the venv with --system-site-packages"
        ) from None
    return Picamera2


def open_source(
    spec: Union[str, int],
    width: Optional[int] = None,
    height: Optional[int] = None,
    fps: Optional[float] = None,
    max_pixels: Optional[int] = DEFAULT_MAX_PIXELS,
) -> Source:
    """Build (not yet open) the source named by ``--source``; raises SourceError for an unknown one.

    ``max_pixels``: images of a folder source over this size are skipped; an image file source over it is refused.
    """
    spec = str(spec).strip()
    if spec == "picamera2":
        _import_picamera2()  # a missing package never comes up: fail now, not after the reconnect attempts
        return Picamera2Source(width, height, fps)
    if spec.isdigit():
        return OpenCVSource(int(spec), live=True, width=width, height=height, fps=fps)
    if re.fullmatch(r"/dev/video\d+", spec):
        return OpenCVSource(spec, live=True, width=width, height=height, fps=fps)
    if _is_stream_url(spec):
        return OpenCVSource(spec, live=True)
    path = Path(spec).expanduser()
    if path.is_dir():
        return FolderSource(path, max_pixels)
    if is_image_file(path):
        return _image_file_source(path, max_pixels)
    if path.is_file():
        return OpenCVSource(str(path), live=False)
    special = special_file(path)
    if special:
        raise SourceError(f"--source {spec} is {special}; {SOURCE_HINT}")
    raise SourceError(f"source not found: {spec!r}; {SOURCE_HINT}")


def _image_file_source(path: Path, max_pixels: Optional[int]) -> Source:
    """An image file (by content) decoded as predict decodes it; a GIF, maybe animated, played frame after frame
    once its header is within ``max_pixels``: by Pillow, or without it (a device) by the video backend (FFmpeg)."""
    with open(path, "rb") as f:
        head = f.read(64)
    if not is_gif(head):
        return ImageFileSource(path, max_pixels)
    problem = pixel_budget_problem(path, image_size(head), max_pixels)
    if problem:
        raise SourceError(problem)
    if importlib.util.find_spec("PIL") is not None:
        return GifSource(path, max_pixels)
    return OpenCVSource(str(path), live=False)


def _is_stream_url(spec: str) -> bool:
    scheme, sep, _ = spec.partition("://")
    return bool(sep) and scheme.lower() in STREAM_SCHEMES
