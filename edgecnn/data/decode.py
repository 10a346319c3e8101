"""Decode any image file into 8-bit RGB by its content, and resize it.

JPEG goes through the device runtime's own reader (OpenCV, :func:`~edgecnn.runtime.preprocess.read_image`):
training sees the very pixels the device will, and OpenCV decodes small photos about twice as fast as Pillow.
Every other format goes through Pillow, which reads more of them (and without Pillow, OpenCV reads all).
A decoder's warnings about a file it still decodes (libjpeg writes ``Corrupt JPEG data: ...`` straight to fd 2)
become edgecnn's own line naming the files: see :func:`decoder_warnings`.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from edgecnn.data.folder import _under
from edgecnn.errors import DataError, first_line
from edgecnn.native_logs import captured_stderr, echo_native, showing
from edgecnn.runtime.imageinfo import DEFAULT_MAX_PIXELS, is_jpeg, pixel_budget_problem
from edgecnn.runtime.preprocess import decode_image_bytes, image_file_bytes

try:
    from PIL import Image, ImageOps, UnidentifiedImageError
except ImportError:  # a device with only the ``device`` extra: OpenCV decodes every format
    Image = None


_watch = threading.local()  # .decoded: the files decode_rgb decoded inside this thread's decoder_warnings()


def decode_rgb(path: str | os.PathLike) -> np.ndarray:
    """Return the image at ``path`` as uint8 RGB (H, W, 3).

    Format is detected from the bytes, not the extension; EXIF orientation is
    applied. Grayscale, alpha (composited on black), palette and 16-bit images
    become 8-bit RGB; an animated GIF gives its first frame. Raises DataError
    when unreadable or over the pixel budget (read from the header first).
    """
    rgb = _decode(path)
    decoded = getattr(_watch, "decoded", None)
    if decoded is not None:
        decoded.append(path)
    return rgb


@contextlib.contextmanager
def decoder_warnings() -> Iterator[list]:
    """Around many :func:`decode_rgb` calls in this thread (a chunk of files): yields a list that, once the block is
    left, holds the files that decoded although their decoder wrote a warning to fd 2 (libjpeg: ``Corrupt JPEG data:
    3 extraneous bytes before marker 0xd9``), for the caller to name in one line (:func:`damaged_line`).

    fd 2 is captured once for the whole block, not per file (decoding runs at thousands of small images a second);
    only when something was written are the block's files decoded again one at a time to tell which. Lines no file
    wrote are written back, and with ``-v`` every line.
    """
    damaged: list = []
    outer = getattr(_watch, "decoded", None)
    _watch.decoded = decoded = []
    try:
        with captured_stderr() as captured:
            yield damaged
    finally:
        _watch.decoded = outer
    if captured.data:
        blamed = _blame(decoded, damaged)
        echo_native(captured.data if showing() else
                    b"".join(line for line in captured.data.splitlines(keepends=True) if line not in blamed))


def _blame(paths: list, damaged: list) -> set[bytes]:
    """Decode ``paths`` again one at a time; add to ``damaged`` each one whose decoder writes to fd 2 and return
    the lines written."""
    lines: set[bytes] = set()
    for path in paths:
        with captured_stderr() as captured, contextlib.suppress(DataError):  # changed meanwhile: not ours to say
            _decode(path)
        if captured.data.strip():
            damaged.append(path)
            lines.update(captured.data.splitlines(keepends=True))
    return lines


def damaged_line(damaged: list, total: int, root: Path | None = None, limit: int = 5) -> str:
    """One warning naming the files :func:`decoder_warnings` found (a few, relative to ``root``)."""
    names = [_under(Path(p), root) if root else str(p) for p in damaged[:limit]]
    where = f" under {root}" if root else ""
    return (f"warning: {len(damaged)} of {total} image files{where} had corrupt data and were decoded anyway "
            f"(parts of an image may be missing or grey; replace or remove them): "
            + ", ".join(names) + (", ..." if len(damaged) > limit else ""))


def _decode(path: str | os.PathLike) -> np.ndarray:
    raw = image_file_bytes(path)
    if Image is None or is_jpeg(raw):
        return cv2.cvtColor(decode_image_bytes(raw, path), cv2.COLOR_BGR2RGB)
    try:
        with Image.open(io.BytesIO(raw)) as img:  # reads the header only: the size is known before decoding
            problem = pixel_budget_problem(path, img.size, DEFAULT_MAX_PIXELS)
            if problem:
                raise DataError(problem)
            img.seek(0)
            img.load()
            # Camera photos: honour the EXIF orientation, as the runtime's read_image does for JPEG.
            return _to_rgb(ImageOps.exif_transpose(img) if img.getexif().get(0x0112, 1) != 1 else img)
    except DataError:
        raise
    except UnidentifiedImageError:  # its message names the in-memory buffer, not the file
        raise DataError(f"cannot decode {path}: not an image format Pillow can read (or the file is corrupt)") from None
    except Exception as exc:  # a plugin's error on a corrupt file (OSError, SyntaxError, EOFError, struct.error, ...)
        raise DataError(f"cannot decode {path}: {exc.__class__.__name__}: {first_line(exc)}") from None


def _to_rgb(img) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(arr[..., None], 3, axis=-1)
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA"):
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32)
        alpha = rgba[..., 3:4] / 255.0
        return (rgba[..., :3] * alpha + 0.5).astype(np.uint8)
    if mode != "RGB":
        img = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


def resize(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Stretch ``rgb`` to (height, width) with bilinear interpolation (as the runtime does)."""
    h, w = size
    if rgb.shape[:2] == (h, w):
        return rgb
    return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR)
