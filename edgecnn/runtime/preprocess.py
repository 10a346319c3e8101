"""Image decoding and preprocessing with OpenCV: pixels in, model input tensor out.

Pipeline for one image (``Preprocessor.__call__``), all into reused buffers:

1. optional center crop to the model's aspect ratio (a view, no copy);
2. one ``cv2.resize`` with ``INTER_LINEAR`` (``INTER_AREA`` is ~10x slower on
   640x480 frames), skipped when the image already has the input size;
3. one ``cv2.cvtColor`` (BGR -> RGB, on the small resized image), skipped
   when the image is already in the model's channel order;
4. one ``cv2.LUT``: normalization ``(pixel - mean) / std`` and, for quantized
   inputs, ``round(x / scale + zero_point)`` precomputed as a 256-entry table per
   channel, straight into the input dtype; skipped when it is the identity;
5. a transpose into the NCHW buffer for channels-first models.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional, Sequence, Union

import cv2
import numpy as np

from edgecnn._io import special_file
from edgecnn.errors import DataError, UsageError
from edgecnn.native_logs import captured_stderr, echo_native, showing
from edgecnn.runtime.base import TensorSpec
from edgecnn.runtime.imageinfo import (
    DEFAULT_MAX_PIXELS,
    file_size_problem,
    image_size,
    is_jpeg,
    max_file_bytes,
    pixel_budget_problem,
)

log = logging.getLogger("edgecnn.runtime")

ImageLike = Union[str, os.PathLike, np.ndarray]

CROPS = ("stretch", "center")

IMAGE_SUFFIXES = frozenset(
    ".jpg .jpeg .jpe .jfif .png .bmp .dib .gif .webp .tif .tiff .ppm .pgm .pbm .pnm .pfm .sr .ras "
    ".jp2 .exr .hdr .pic .avif .heic".split()
)


def read_image(path: str | os.PathLike, max_pixels: Optional[int] = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode an image file by its content: HxWx3 uint8 BGR (gray, alpha, 16-bit converted).

    Raises DataError for a missing, empty or undecodable file, a FIFO or device, a file too big to be an image
    within ``max_pixels`` and an image over ``max_pixels`` (read from its header before decoding; None: no limit).
    """
    data = image_file_bytes(path, max_pixels)
    with captured_stderr() as captured:  # libjpeg warns on fd 2 about a damaged file it still decodes
        image = decode_image_bytes(data, path, max_pixels)
    if captured.data.strip():
        _decoder_warned(path, captured.data)
    return image


def _decoder_warned(path: str | os.PathLike, data: bytes) -> None:
    """The decoder's own lines with -v; else one line of edgecnn's naming the file."""
    if showing():
        echo_native(data)
        return
    from edgecnn.runtime.inputs import display_name

    first = data.decode(errors="replace").strip().splitlines()[0]
    log.warning(f"warning: {display_name(path)}: damaged image data, decoded anyway (the decoder said: {first})")


def image_file_bytes(path: str | os.PathLike, max_pixels: Optional[int] = DEFAULT_MAX_PIXELS) -> bytes:
    """The whole file at ``path``; DataError when it is missing, empty, a folder, a FIFO or a device, or bigger than
    an image within ``max_pixels`` can be (checked before reading it; None: no limit)."""
    path = Path(path)
    special = special_file(path)
    if special:
        raise DataError(f"{path} is {special}, not an image file; pass image files")
    try:
        with open(path, "rb") as f:
            size, limit = os.fstat(f.fileno()).st_size, max_file_bytes(max_pixels)
            problem = file_size_problem(path, size, max_pixels)
            if problem:
                raise DataError(problem)
            raw = f.read() if limit is None else f.read(size + 1)  # read(n) allocates n bytes first: not the limit
            if limit is not None and len(raw) > size:  # it grew after fstat: read on, within the limit
                raw += f.read(limit + 1 - len(raw))
    except FileNotFoundError:
        raise DataError(f"image not found: {path}") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder, not an image") from None
    except OSError as exc:
        raise DataError(f"cannot read image {path} ({exc.strerror or exc})") from None
    if not raw:
        raise DataError(f"image file {path} is empty (0 bytes)")
    problem = file_size_problem(path, len(raw), max_pixels)  # it grew after fstat
    if problem:
        raise DataError(problem)
    return raw


def decode_image_bytes(raw: bytes, path: str | os.PathLike,
                       max_pixels: Optional[int] = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """``read_image`` for a file already read (``path`` names it in errors)."""
    size = image_size(raw)
    jpeg = is_jpeg(raw)
    if jpeg and size is None:  # no frame header where libjpeg looks for one: it would not decode it either
        raise DataError(undecodable(path))
    problem = pixel_budget_problem(path, size, max_pixels)  # from the header, before decoding
    if problem:
        raise DataError(problem)
    # JPEG: IMREAD_COLOR applies the EXIF orientation (training reads JPEGs through here too); JPEG has no
    # alpha or 16-bit to keep. Other formats: IMREAD_UNCHANGED keeps alpha and 16-bit for as_uint8_color.
    try:
        image = cv2.imdecode(np.frombuffer(raw, dtype=np.uint8), cv2.IMREAD_COLOR if jpeg else cv2.IMREAD_UNCHANGED)
    except cv2.error:  # a decoder's assertion (a PFM of height 0): about this file only
        image = None
    if image is None or image.size == 0:
        raise DataError(undecodable(path))
    problem = pixel_budget_problem(path, (image.shape[1], image.shape[0]), max_pixels)  # formats without a header read
    if problem:
        raise DataError(problem)
    return as_uint8_color(image, source=str(path))


def undecodable(path: str | os.PathLike) -> str:
    """The one-line reason for a file OpenCV cannot decode."""
    return f"cannot decode {path}: not an image format OpenCV can read (or the file is corrupt)"


def as_uint8_color(image: np.ndarray, source: str = "image") -> np.ndarray:
    """Any decoded image -> HxWx3 uint8, keeping its channel order.

    Gray (HxW or HxWx1) is repeated to 3 channels, an alpha channel is composited
    on black (as the training loader does), 16-bit is scaled to 8-bit, float
    images in 0..1 are scaled to 0..255.
    Arrays already HxWx3 uint8 are returned as they are (no copy).
    """
    if not isinstance(image, np.ndarray):
        raise DataError(f"{source}: expected a numpy image array or a path, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8:
        return image
    if image.ndim not in (2, 3) or image.size == 0 or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise DataError(f"{source}: expected an HxW, HxWx1, HxWx3 or HxWx4 image, got shape {image.shape}")
    if image.dtype != np.uint8:
        image = _to_uint8(image, source)
    if image.ndim == 2 or image.shape[2] == 1:
        return cv2.cvtColor(image.reshape(image.shape[:2]), cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        alpha = image[..., 3:4].astype(np.float32) / 255.0
        return (image[..., :3] * alpha + 0.5).astype(np.uint8)
    return image


def _to_uint8(image: np.ndarray, source: str) -> np.ndarray:
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    if image.dtype == np.int8:
        return (image.astype(np.int16) + 128).astype(np.uint8)
    if np.issubdtype(image.dtype, np.floating):
        peak = float(np.nanmax(image)) if image.size else 0.0
        scale = 255.0 if peak <= 1.0 else 1.0
        return np.clip(np.nan_to_num(image) * scale + 0.5, 0, 255).astype(np.uint8)
    if np.issubdtype(image.dtype, np.integer):
        return np.clip(image, 0, 255).astype(np.uint8)
    raise DataError(f"{source}: unsupported pixel type {image.dtype}")


def center_crop_box(height: int, width: int, target_h: int, target_w: int) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) of the largest centered region with the target's aspect ratio."""
    if height * target_w > width * target_h:  # too tall: crop rows
        h = max(1, round(width * target_h / target_w))
        y0 = (height - h) // 2
        return y0, y0 + h, 0, width
    w = max(1, round(height * target_w / target_h))
    x0 = (width - w) // 2
    return 0, height, x0, x0 + w


def build_lut(
    mean: Sequence[float],
    std: Sequence[float],
    dtype: np.dtype,
    scale: Optional[float] = None,
    zero_point: int = 0,
    channels: int = 3,
) -> Optional[np.ndarray]:
    """A (1, 256, C) table pixel -> model input value, or None when it is the identity on uint8.

    Real value ``x = (pixel - mean) / std``; quantized integer inputs store
    ``round(x / scale + zero_point)`` clipped to the dtype's range; plain integer
    inputs store ``round(x)`` clipped; float inputs store ``x``.
    """
    dtype = np.dtype(dtype)
    mean = _per_channel(mean, channels, "mean")
    std = _per_channel(std, channels, "std")
    if np.any(std == 0):
        raise UsageError(f"Received std={std.tolist()}; every std must be non-zero")
    pixels = np.arange(256, dtype=np.float64)[:, None]
    x = (pixels - mean[None, :]) / std[None, :]  # (256, C)
    if np.issubdtype(dtype, np.integer):
        if scale:
            x = x / scale + zero_point
        info = np.iinfo(dtype)
        table = np.clip(np.round(x), info.min, info.max).astype(dtype)
        if dtype == np.uint8 and np.array_equal(table, np.repeat(pixels.astype(np.uint8), channels, axis=1)):
            return None
    else:
        # cv2.LUT has no float16/float64 tables: build float32, the caller casts.
        table = x.astype(np.float32)
    return np.ascontiguousarray(table.reshape(1, 256, channels))


def _per_channel(values: Sequence[float], channels: int, what: str) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if arr.size == 1:
        arr = np.repeat(arr, channels)
    if arr.size != channels:
        raise UsageError(f"Received {what}={arr.tolist()}; expected 1 or {channels} values")
    if not np.all(np.isfinite(arr)):
        raise UsageError(f"Received {what}={arr.tolist()}; expected finite numbers (not nan or inf)")
    return arr


class Preprocessor:
    """Turns images into one model input sample (H,W,C or C,H,W) in the input dtype.

    Not thread-safe: it reuses its buffers. ``__call__`` returns a buffer that
    the next call overwrites unless ``out`` is given.
    """

    def __init__(
        self,
        spec: TensorSpec,
        height: int,
        width: int,
        mean: Sequence[float] = (0.0,),
        std: Sequence[float] = (1.0,),
        channel_order: str = "RGB",
        crop: str = "stretch",
    ):
        if crop not in CROPS:
            raise UsageError(f"Received crop={crop!r}; expected one of: {', '.join(CROPS)}")
        channel_order = channel_order.upper()
        if channel_order not in ("RGB", "BGR"):
            raise UsageError(f"Received channel order {channel_order!r}; expected RGB or BGR")
        self.spec = spec
        self.height, self.width = int(height), int(width)
        self.channels = int(spec.channels or 3)
        if self.channels not in (1, 3):
            raise UsageError(f"model input has {self.channels} channels; edgecnn feeds 1 (gray) or 3 (color)")
        self.layout = spec.layout
        self.dtype = np.dtype(spec.dtype)
        self.channel_order = channel_order
        self.crop = crop
        self.mean, self.std = tuple(mean), tuple(std)
        self.lut = build_lut(mean, std, self.dtype, spec.scale if spec.is_quantized else None,
                             spec.zero_point, self.channels)
        self._lut_dtype = self.lut.dtype if self.lut is not None else np.dtype(np.uint8)
        h, w, c = self.height, self.width, self.channels
        self._resized = np.empty((h, w, 3), np.uint8)
        self._color = np.empty((h, w, 3), np.uint8)
        self._gray = np.empty((h, w), np.uint8)
        self._mapped = np.empty((h, w, c) if c == 3 else (h, w), self._lut_dtype)
        self.sample_shape = (c, h, w) if self.layout == "NCHW" else (h, w, c)
        self._out = np.empty(self.sample_shape, self.dtype)

    def __call__(self, image: np.ndarray, order: str = "BGR", out: Optional[np.ndarray] = None) -> np.ndarray:
        """``image``: HxWx3 uint8 in channel ``order`` (use :func:`as_uint8_color` for anything else)."""
        if out is None:
            out = self._out
        img = image
        if self.crop == "center":
            y0, y1, x0, x1 = center_crop_box(img.shape[0], img.shape[1], self.height, self.width)
            img = img[y0:y1, x0:x1]
        if img.shape[0] != self.height or img.shape[1] != self.width:
            img = cv2.resize(img, (self.width, self.height), dst=self._resized, interpolation=cv2.INTER_LINEAR)
        if self.channels == 1:
            code = cv2.COLOR_BGR2GRAY if order.upper() == "BGR" else cv2.COLOR_RGB2GRAY
            img = cv2.cvtColor(img, code, dst=self._gray)
        elif order.upper() != self.channel_order:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB, dst=self._color)  # same swap both ways
        if self.lut is not None:
            img = cv2.LUT(img, self.lut, dst=self._mapped)
        if self.channels == 1:
            img = img.reshape(self.height, self.width, 1)
        if self.layout == "NCHW":
            img = img.transpose(2, 0, 1)
        np.copyto(out, img, casting="unsafe")
        return out

    def describe(self) -> str:
        norm = "raw pixels" if self.lut is None else f"mean {list(self.mean)}, std {list(self.std)}"
        return (f"{self.width}x{self.height}x{self.channels} {self.layout} {self.dtype.name}, {self.crop}, "
                f"{self.channel_order}, {norm}")


def load_image(image: ImageLike, source: Optional[str] = None,
               max_pixels: Optional[int] = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A path or an array -> HxWx3 uint8 (paths decode to BGR, within ``max_pixels``; arrays keep their order)."""
    if isinstance(image, (str, os.PathLike)):
        return read_image(image, max_pixels)
    return as_uint8_color(image, source or "image")
