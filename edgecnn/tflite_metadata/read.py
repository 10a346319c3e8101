"""Read TFLite metadata without TensorFlow: named entries, custom ops, buffer bounds, standard metadata.

Everything here takes a model path and never raises on a malformed file: the answer is then None
(or ``[]``, ``False``). The file is memory-mapped, so reading one entry of a large model touches
only the pages it needs. edgecnn's exporter stores the model card as the entry ``edgecnn.card``.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import struct
import zipfile
from dataclasses import dataclass, replace
from typing import Iterator, Optional

from edgecnn.labels import label_lines
from edgecnn.tflite_metadata import (
    COLOR_SPACES,
    METADATA_IDENTIFIER,
    METADATA_KEY,
    TFLITE_IDENTIFIER,
    metadata_schema,
    model_schema,
)

log = logging.getLogger(__name__)

MAX_ENTRIES = 10_000  # more metadata entries or operator codes than this: a garbled file, not a model


class _Malformed(Exception):
    pass


# What a garbled flatbuffer raises inside the generated accessors (offsets past the end, bad text).
_UNREADABLE = (OSError, ValueError, struct.error, OverflowError, IndexError, TypeError, BufferError, _Malformed)


@dataclass(frozen=True)
class StandardMetadata:
    """What edgecnn uses from a model's standard metadata (first subgraph, first input and output)."""

    name: Optional[str] = None
    mean: Optional[tuple[float, ...]] = None  # NormalizationOptions of the input, one value or one per channel
    std: Optional[tuple[float, ...]] = None
    color_space: Optional[str] = None  # RGB | GRAYSCALE; None when the metadata does not say
    labels_file: Optional[str] = None  # the output's TENSOR_AXIS_LABELS file, zipped onto the model
    labels: Optional[tuple[str, ...]] = None  # its lines, when the file is there and readable

    @property
    def has_normalization(self) -> bool:
        return bool(self.mean) and bool(self.std) and all(s != 0 for s in self.std)


@contextlib.contextmanager
def _model(path: str | os.PathLike) -> Iterator:
    """The generated ``Model`` accessor over the memory-mapped file (valid inside the ``with``)."""
    schema = model_schema()
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size < 8:
            raise _Malformed
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            if buf[4:8] != TFLITE_IDENTIFIER:
                raise _Malformed
            yield schema.Model.GetRootAs(buf, 0)


def _count(n: int) -> int:
    if n > MAX_ENTRIES:
        raise _Malformed
    return n


def _no_schema(path, exc: ImportError) -> None:
    log.debug("%s: TFLite metadata not read (%s)", path, exc)


def read_metadata(path: str | os.PathLike, name: str) -> Optional[bytes]:
    """The bytes of metadata entry ``name`` in the TFLite file at ``path``, or None."""
    wanted = name.encode("utf-8")
    try:
        with _model(path) as model:
            for i in range(_count(model.MetadataLength())):
                entry = model.Metadata(i)
                if entry.Name() == wanted:
                    return _buffer_bytes(model, entry.Buffer())
    except ImportError as exc:
        _no_schema(path, exc)
    except _UNREADABLE:
        pass
    return None


def _buffer_bytes(model, index: int) -> Optional[bytes]:
    if index >= model.BuffersLength():
        return None
    buffer = model.Buffers(index)
    if not buffer.DataIsNone():
        return buffer.DataAsNumpy().tobytes()  # ValueError when the data runs past the end
    # Models over 2 GB keep buffer data after the flatbuffer: offset/size fields.
    offset, size = buffer.Offset(), buffer.Size()
    data = model._tab.Bytes  # noqa: SLF001  the mapped file
    if offset > 1 and size and offset + size <= len(data):
        return bytes(data[offset:offset + size])
    return None


def buffers_in_bounds(path: str | os.PathLike) -> bool:
    """Whether every weight buffer of the TFLite file lies inside the file.

    A truncated download fails this check; older interpreters (ai-edge-litert 2.0, tflite-runtime)
    crash on such a file instead of raising. True when it cannot be checked (no model schema installed).
    """
    try:
        with _model(path) as model:
            end = len(model._tab.Bytes)  # noqa: SLF001
            if model.BuffersLength() > end // 4:
                return False
            for i in range(model.BuffersLength()):
                buffer = model.Buffers(i)
                if not buffer.DataIsNone():
                    buffer.DataAsNumpy()  # ValueError when the data runs past the end
                if buffer.Offset() > 1 and buffer.Offset() + buffer.Size() > end:
                    return False
            return True
    except ImportError as exc:
        _no_schema(path, exc)
        return True
    except _UNREADABLE:
        return False


def custom_ops(path: str | os.PathLike) -> list[str]:
    """Names of the custom operators a TFLite model uses (``edgetpu-custom-op``, ``FlexConv2D``, ...).

    Ops that are not builtins: an interpreter runs them only when a delegate or a registered
    kernel provides them. Any malformed input yields ``[]``.
    """
    names: list[str] = []
    try:
        with _model(path) as model:
            for i in range(_count(model.OperatorCodesLength())):
                code = model.OperatorCodes(i).CustomCode()
                name = code.decode("utf-8", "replace") if code else ""
                if name and name not in names:
                    names.append(name)
    except ImportError as exc:
        _no_schema(path, exc)
    except _UNREADABLE:
        return []
    return names


def has_tflite_identifier(path: str | os.PathLike) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return False
    return len(head) == 8 and head[4:8] == TFLITE_IDENTIFIER


def output_size(model: bytes) -> int:
    """The size of the last dimension of a TFLite model's first output (its class scores)."""
    graph = model_schema().Model.GetRootAs(model, 0).Subgraphs(0)
    return int(graph.Tensors(graph.Outputs(0)).ShapeAsNumpy()[-1])


# ----------------------------------------------------------------------------------- standard metadata
def read_standard_metadata(path: str | os.PathLike) -> Optional[StandardMetadata]:
    """The standard metadata (``TFLITE_METADATA``) of the TFLite file at ``path``; None when it has none
    or it is unreadable."""
    data = read_metadata(path, METADATA_KEY)
    if not data or data[4:8] != METADATA_IDENTIFIER:
        return None
    try:
        schema = metadata_schema()
    except ImportError as exc:  # flatbuffers missing (e.g. tflite-runtime only)
        log.debug("%s: standard TFLite metadata not read (%s); pip install flatbuffers", path, exc)
        return None
    try:
        found = _summarize(schema.ModelMetadataT.InitFromPackedBuf(bytearray(data), 0), schema)
    except Exception as exc:  # noqa: BLE001  malformed metadata is ignored, never fatal
        log.debug("%s: standard TFLite metadata is malformed (%s); ignoring it", path, exc)
        return None
    if found.labels_file:
        text = read_associated_file(path, found.labels_file)
        try:
            lines = label_lines(text.decode("utf-8")) if text else []
        except UnicodeDecodeError:
            lines = []
        found = replace(found, labels=tuple(lines) or None)
    return found


def _text(value) -> Optional[str]:
    if value is None:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _summarize(meta, schema) -> StandardMetadata:
    graph = (meta.subgraphMetadata or [None])[0]
    inp = (graph.inputTensorMetadata or [None])[0] if graph else None
    out = (graph.outputTensorMetadata or [None])[0] if graph else None
    mean = std = color = None
    if inp is not None:
        for unit in inp.processUnits or []:
            if unit.optionsType == schema.ProcessUnitOptions.NormalizationOptions and unit.options is not None:
                mean = tuple(float(v) for v in (unit.options.mean if unit.options.mean is not None else ()))
                std = tuple(float(v) for v in (unit.options.std if unit.options.std is not None else ()))
        content = inp.content
        if content is not None and content.contentPropertiesType == schema.ContentProperties.ImageProperties:
            color = COLOR_SPACES.get(getattr(content.contentProperties, "colorSpace", 0))
    labels = None
    for f in (out.associatedFiles or []) if out is not None else []:
        if f.type == schema.AssociatedFileType.TENSOR_AXIS_LABELS and f.name:
            labels = _text(f.name)
            break
    return StandardMetadata(_text(meta.name), mean or None, std or None, color, labels)


def _from_zip(path: str | os.PathLike, read):
    """``read(zipfile)`` on the files zipped onto the model at ``path``; None when there are none or they are
    unreadable."""
    try:
        if not zipfile.is_zipfile(path):
            return None
        with zipfile.ZipFile(path) as z:
            return read(z)
    except (OSError, zipfile.BadZipFile, KeyError, ValueError, RuntimeError):
        return None


def associated_file_names(path: str | os.PathLike) -> list[str]:
    """The names of the associated files zipped onto the model at ``path`` (Coral/TF Hub label files too)."""
    return _from_zip(path, lambda z: z.namelist()) or []


def read_associated_file(path: str | os.PathLike, name: str) -> Optional[bytes]:
    """The bytes of associated file ``name`` zipped onto the model at ``path``, or None."""
    return _from_zip(path, lambda z: z.read(name))
