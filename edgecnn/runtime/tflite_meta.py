"""Read named metadata entries from a TFLite flatbuffer without TensorFlow or ``flatbuffers``.

A TFLite model is a flatbuffer whose root ``Model`` table has ``buffers``
(field 4) and ``metadata`` (field 6: a vector of ``{name: string, buffer:
uint}``). edgecnn's exporter stores the model card as the metadata entry
``edgecnn.card``, its buffer holding the card's JSON bytes. This reader only
walks those few fields, with bounds checks everywhere: any malformed input
yields ``None``, never an exception.
"""

from __future__ import annotations

import mmap
import os
import struct
from typing import Optional

TFLITE_IDENTIFIER = b"TFL3"

_MODEL_OPERATOR_CODES = 1
_MODEL_BUFFERS = 4
_MODEL_METADATA = 6
_METADATA_NAME = 0
_METADATA_BUFFER = 1
_OPCODE_CUSTOM_CODE = 1
_BUFFER_DATA = 0
_BUFFER_OFFSET = 1
_BUFFER_SIZE = 2


class _Malformed(Exception):
    pass


class _Reader:
    def __init__(self, buf):
        self.buf = buf
        self.n = len(buf)

    def _u(self, fmt: str, pos: int) -> int:
        size = struct.calcsize(fmt)
        if pos < 0 or pos + size > self.n:
            raise _Malformed
        return struct.unpack_from(fmt, self.buf, pos)[0]

    def field(self, table: int, index: int) -> Optional[int]:
        """Absolute position of field ``index`` of the table at ``table``, or None if absent."""
        vtable = table - self._u("<i", table)
        vt_size = self._u("<H", vtable)
        slot = 4 + 2 * index
        if slot + 2 > vt_size:
            return None
        off = self._u("<H", vtable + slot)
        return table + off if off else None

    def deref(self, pos: int) -> int:
        return pos + self._u("<I", pos)

    def vector(self, table: int, index: int) -> tuple[int, int]:
        """(start, length) of a vector field; (0, 0) when absent."""
        pos = self.field(table, index)
        if pos is None:
            return 0, 0
        vec = self.deref(pos)
        length = self._u("<I", vec)
        return vec + 4, length

    def string(self, table: int, index: int) -> Optional[bytes]:
        start, length = self.vector(table, index)
        if not start:
            return None
        if start + length > self.n:
            raise _Malformed
        return bytes(self.buf[start:start + length])

    def scalar(self, table: int, index: int, fmt: str, default: int = 0) -> int:
        pos = self.field(table, index)
        return default if pos is None else self._u(fmt, pos)


def read_metadata(path: str | os.PathLike, name: str) -> Optional[bytes]:
    """The bytes of metadata entry ``name`` in the TFLite file at ``path``, or None."""
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size < 8:
                return None
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _read(_Reader(buf), name.encode("utf-8"))
    except (OSError, ValueError, _Malformed, struct.error, OverflowError):
        return None


def buffers_in_bounds(path: str | os.PathLike) -> bool:
    """Whether every weight buffer of the TFLite file lies inside the file.

    A truncated download fails this check; older interpreters (ai-edge-litert
    2.0, tflite-runtime) crash on such a file instead of raising.
    """
    try:
        with open(path, "rb") as f:
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                r = _Reader(buf)
                root = r.deref(0)
                start, count = r.vector(root, _MODEL_BUFFERS)
                if start + 4 * count > r.n:
                    return False
                for i in range(count):
                    buffer = r.deref(start + 4 * i)
                    data_start, data_len = r.vector(buffer, _BUFFER_DATA)
                    if data_start + data_len > r.n:
                        return False
                    offset, size = r.scalar(buffer, _BUFFER_OFFSET, "<Q"), r.scalar(buffer, _BUFFER_SIZE, "<Q")
                    if offset > 1 and offset + size > r.n:
                        return False
                return True
    except (OSError, ValueError, _Malformed, struct.error, OverflowError):
        return False


def custom_ops(path: str | os.PathLike) -> list[str]:
    """Names of the custom operators a TFLite model uses (``edgetpu-custom-op``, ``FlexConv2D``, ...).

    Ops that are not builtins: an interpreter runs them only when a delegate or
    a registered kernel provides them. Any malformed input yields ``[]``.
    """
    try:
        with open(path, "rb") as f:
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                r = _Reader(buf)
                root = r.deref(0)
                start, count = r.vector(root, _MODEL_OPERATOR_CODES)
                if count > 10_000:
                    raise _Malformed
                names = []
                for i in range(count):
                    code = r.string(r.deref(start + 4 * i), _OPCODE_CUSTOM_CODE)
                    if code:
                        name = code.decode("utf-8", "replace")
                        if name not in names:
                            names.append(name)
                return names
    except (OSError, ValueError, _Malformed, struct.error, OverflowError):
        return []


def has_tflite_identifier(path: str | os.PathLike) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return False
    return len(head) == 8 and head[4:8] == TFLITE_IDENTIFIER


def _read(r: _Reader, wanted: bytes) -> Optional[bytes]:
    root = r.deref(0)
    meta_start, meta_len = r.vector(root, _MODEL_METADATA)
    if meta_len > 10_000:
        raise _Malformed
    for i in range(meta_len):
        entry = r.deref(meta_start + 4 * i)
        if r.string(entry, _METADATA_NAME) != wanted:
            continue
        buffer_index = r.scalar(entry, _METADATA_BUFFER, "<I")
        buf_start, buf_len = r.vector(root, _MODEL_BUFFERS)
        if buffer_index >= buf_len:
            return None
        buffer = r.deref(buf_start + 4 * buffer_index)
        data_start, data_len = r.vector(buffer, _BUFFER_DATA)
        if data_start:
            if data_start + data_len > r.n:
                raise _Malformed
            return bytes(r.buf[data_start:data_start + data_len])
        # Models over 2 GB keep buffer data after the flatbuffer: offset/size fields.
        offset = r.scalar(buffer, _BUFFER_OFFSET, "<Q")
        size = r.scalar(buffer, _BUFFER_SIZE, "<Q")
        if offset > 1 and size and offset + size <= r.n:
            return bytes(r.buf[offset:offset + size])
        return None
    return None
