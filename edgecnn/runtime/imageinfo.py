"""An image file's pixel size from its header, without decoding it: the guard against decompression bombs.

A 249 KB PNG can decode to 16000x16000 pixels (768 MB as RGB, more while decoding). Decoders
allocate the whole image first, so the size has to be known before decoding. OpenCV has no
header-only call and Pillow is not on a device (the ``device`` extra), so this reads the few
header fields of the common formats itself: PNG, JPEG, GIF, BMP, WebP, TIFF and PNM. Other
formats return None and are checked after decoding instead.

The pixel budget also bounds a file's size before it is read (:func:`file_size_problem`): no image format stores
more than :data:`MAX_BYTES_PER_PIXEL` per pixel, so a bigger file is not an image within the budget.
"""

from __future__ import annotations

import io
import re
import struct
from typing import BinaryIO, Optional

DEFAULT_MAX_PIXELS = 50_000_000  # 50 MP: well above any camera photo, far below what hurts a 1 GB board
MAX_BYTES_PER_PIXEL = 16  # 4 channels of 32-bit float, uncompressed (TIFF, EXR, PFM): the most any format stores
METADATA_BYTES = 16_000_000  # room for EXIF, ICC profiles, thumbnails and other metadata on top of the pixels

# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic): height and width follow.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
# Markers libjpeg skips by their length before the frame header (DHT, DAC, DQT, DNL, DRI, APPn, COM), and those
# without a length (RSTn, TEM). Any other marker before the frame header (SOI again, EOI, SOS, reserved) is fatal.
_JPEG_SEGMENTS = {0xC4, 0xCC, 0xDB, 0xDC, 0xDD, 0xFE, *range(0xE0, 0xF0)}
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xD8)}
# libjpeg's next_marker: skip any bytes up to an 0xFF, swallow further 0xFF fill bytes, skip 0xFF 0x00 pairs; the
# marker is the first byte after an 0xFF that is neither 0x00 nor 0xFF.
_JPEG_MARKER = re.compile(b"\xff[^\x00\xff]")


# Signatures of the formats OpenCV decodes: (offset, bytes). Recognising image files by content, not by
# suffix. (cv2.haveImageReader does the same but crashes on file names that are not valid UTF-8.)
SIGNATURES = (
    (0, b"\xff\xd8\xff"),                                     # JPEG
    (0, b"\x89PNG\r\n\x1a\n"),                                 # PNG
    (0, b"GIF87a"), (0, b"GIF89a"),                           # GIF
    (0, b"BM"),                                               # BMP / DIB
    (8, b"WEBP"),                                             # WebP (RIFF container)
    (0, b"II*\x00"), (0, b"MM\x00*"),                          # TIFF
    (0, b"\x00\x00\x00\x0cjP  \r\n\x87\n"), (0, b"\xff\x4f\xff\x51"),  # JPEG 2000 (jp2, j2k)
    (0, b"v/1\x01"),                                          # OpenEXR
    (0, b"#?RADIANCE"), (0, b"#?RGBE"),                       # Radiance HDR
    (0, b"\x59\xa6\x6a\x95"),                                  # Sun raster
    (4, b"ftypavif"), (4, b"ftypavis"), (4, b"ftypheic"), (4, b"ftypheix"), (4, b"ftypmif1"),  # AVIF / HEIF
)


def looks_like_image(head: bytes) -> bool:
    """Whether a file starting with ``head`` (its first 32 bytes) is in an image format OpenCV decodes."""
    if any(head[offset:offset + len(sig)] == sig for offset, sig in SIGNATURES):
        return head[:2] != b"BM" or len(head) >= 18  # "BM" alone is too short a signature for a stray text file
    # PNM/PAM/PFM: P1..P7, Pf, PF followed by whitespace
    return len(head) >= 3 and head[:1] == b"P" and head[1:2] in b"1234567fF" and head[2:3] in b" \t\r\n"


def is_jpeg(head: bytes) -> bool:
    """Whether a file starting with ``head`` is a JPEG."""
    return head[:2] == b"\xff\xd8"


def is_gif(head: bytes) -> bool:
    """Whether a file starting with ``head`` is a GIF (maybe animated)."""
    return head[:6] in (b"GIF87a", b"GIF89a")


def image_size(data: bytes) -> Optional[tuple[int, int]]:
    """(width, height) read from the header of an image file's bytes; None when the format is not one of
    those above or the header is malformed (a JPEG: where libjpeg finds no frame header either)."""
    try:
        if is_jpeg(data):
            return _jpeg(data)
        f = io.BytesIO(data)  # shares the bytes, no copy
        return _from_head(f.read(64), f)
    except (struct.error, ValueError):
        return None


def _from_head(head: bytes, f: BinaryIO) -> Optional[tuple[int, int]]:
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
        return struct.unpack(">II", head[16:24])
    if is_gif(head):
        return struct.unpack("<HH", head[6:10])
    if head.startswith(b"BM") and len(head) >= 26:
        if struct.unpack("<I", head[14:18])[0] == 12:  # OS/2 BITMAPCOREHEADER
            return struct.unpack("<HH", head[18:22])
        w, h = struct.unpack("<ii", head[18:26])
        return abs(w), abs(h)
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return _webp(head)
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff(f, "<" if head[:2] == b"II" else ">")
    if len(head) > 2 and head[0:1] == b"P" and head[1:2] in b"123456" and head[2:3].isspace():
        return _pnm(head, f)
    return None


def _jpeg(data: bytes) -> Optional[tuple[int, int]]:
    """The size in the first frame header, found as libjpeg finds it; None where libjpeg would find none either."""
    pos = 2
    for _ in range(10_000):  # segments before the frame header: APPn (EXIF, ICC), DQT, DHT, ...
        found = _JPEG_MARKER.search(data, pos)
        if not found:
            return None
        pos = found.end()
        marker = data[pos - 1]
        if marker in _JPEG_STANDALONE:
            continue
        if marker in _JPEG_SOF:
            _length, _precision, h, w = struct.unpack(">HBHH", data[pos:pos + 7])
            return w, h
        if marker not in _JPEG_SEGMENTS:
            return None
        pos += max(struct.unpack(">H", data[pos:pos + 2])[0], 2)  # libjpeg skips nothing for a length under 2
    return None


def _webp(head: bytes) -> Optional[tuple[int, int]]:
    chunk = head[12:16]
    if chunk == b"VP8X":
        w = int.from_bytes(head[24:27], "little") + 1
        h = int.from_bytes(head[27:30], "little") + 1
        return w, h
    if chunk == b"VP8L":
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        w, h = struct.unpack("<HH", head[26:30])
        return w & 0x3FFF, h & 0x3FFF
    return None


def _tiff(f: BinaryIO, order: str) -> Optional[tuple[int, int]]:
    f.seek(4)
    f.seek(struct.unpack(order + "I", f.read(4))[0])
    entries = struct.unpack(order + "H", f.read(2))[0]
    found = {}
    for _ in range(min(entries, 4096)):
        tag, kind, _count, value = struct.unpack(order + "HHI4s", f.read(12))
        if tag in (256, 257):
            found[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), value[:2] if kind == 3 else value)[0]
    if 256 in found and 257 in found:
        return found[256], found[257]
    return None


def _pnm(head: bytes, f: BinaryIO) -> Optional[tuple[int, int]]:
    f.seek(2)
    text = f.read(4096)
    numbers = []
    for line in text.splitlines():
        line = line.split(b"#")[0]
        numbers += line.split()
        if len(numbers) >= 2:
            return int(numbers[0]), int(numbers[1])
    return None


def max_file_bytes(max_pixels: Optional[int]) -> Optional[int]:
    """The most bytes an image file within ``max_pixels`` can take (None: no limit)."""
    return max_pixels * MAX_BYTES_PER_PIXEL + METADATA_BYTES if max_pixels else None


def file_size_problem(path, size: int, max_pixels: Optional[int]) -> Optional[str]:
    """The one-line reason a file of ``size`` bytes is too big to be an image within ``max_pixels``, or None."""
    limit = max_file_bytes(max_pixels)
    if limit is None or size <= limit:
        return None
    needed = -(-(size - METADATA_BYTES) // MAX_BYTES_PER_PIXEL // 1_000_000)
    return (f"{path} is {size / 1e6:.1f} MB: more than any image file within the {max_pixels / 1e6:g} MP limit can "
            f"be (at most {limit / 1e6:.1f} MB: "
            f"{MAX_BYTES_PER_PIXEL} bytes per pixel plus {METADATA_BYTES / 1e6:g} MB of metadata); "
            f"pass --max-megapixels {needed} if it really is an image")


def pixel_budget_problem(path, size: Optional[tuple[int, int]], max_pixels: Optional[int]) -> Optional[str]:
    """The one-line reason an image of ``size`` is over ``max_pixels``, or None."""
    if size is None or not max_pixels:
        return None
    w, h = size
    if w * h <= max_pixels:
        return None
    return (f"{path} is {w}x{h} pixels ({w * h / 1e6:.1f} MP), over the {max_pixels / 1e6:g} MP limit; "
            f"pass --max-megapixels {-(-w * h // 1_000_000)} to decode it anyway, or resize it first")
