"""Standard TFLite metadata: the ``TFLITE_METADATA`` entry MediaPipe Tasks and the TFLite Task Library read.

A model's ``TFLITE_METADATA`` buffer is a flatbuffer of the TFLite metadata schema (file identifier
``M001``): the model's name, its input's colour space and normalization (``(pixel - mean) / std``
for float inputs), and associated files such as the label file (``TENSOR_AXIS_LABELS``), which
are zipped onto the end of the model file. edgecnn writes it into every TFLite export
(:func:`build`, used by :mod:`edgecnn.export.embed`) and reads it from models nobody here made
(:func:`read`). Both go through the vendored generated schema module and ``flatbuffers`` (a
dependency of ai-edge-litert); without ``flatbuffers`` reading returns None.
"""

from __future__ import annotations

import io
import logging
import os
import zipfile
from dataclasses import dataclass, replace
from typing import Optional, Sequence

from edgecnn.labels import label_lines
from edgecnn.runtime.tflite_meta import read_metadata

log = logging.getLogger("edgecnn.runtime")

METADATA_KEY = "TFLITE_METADATA"  # the model metadata entry that holds the metadata flatbuffer
METADATA_IDENTIFIER = b"M001"
PARSER_VERSION = "1.0.0"  # every field written here is in metadata schema 1.0.0
LABELS_FILE = "labels.txt"  # name of the zipped label file (TENSOR_AXIS_LABELS)
COLOR_SPACES = {1: "RGB", 2: "GRAYSCALE"}  # ColorSpaceType values; 0 is UNKNOWN


def _schema():
    from edgecnn._vendor import metadata_schema_py_generated as schema

    return schema


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


def read(path: str | os.PathLike) -> Optional[StandardMetadata]:
    """The standard metadata of the TFLite file at ``path``; None when it has none or it is unreadable."""
    data = read_metadata(path, METADATA_KEY)
    if not data or data[4:8] != METADATA_IDENTIFIER:
        return None
    try:
        schema = _schema()
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


# ------------------------------------------------------------------------------------------------ writing
def build(
    *,
    name: str,
    description: str,
    version: str,
    mean: Sequence[float],
    std: Sequence[float],
    channels: int,
    num_outputs: int,
    probabilities: bool,
    labels_file: Optional[str] = LABELS_FILE,
    author: Optional[str] = None,
) -> bytes:
    """The ``TFLITE_METADATA`` flatbuffer for a single-input image classifier.

    ``mean``/``std``: the input's normalization ``(pixel - mean) / std`` (for quantized inputs, of
    the real values the quantization encodes). ``probabilities``: outputs are scores in 0..1.
    """
    import flatbuffers

    schema = _schema()
    mean = [float(v) for v in mean]
    std = [float(v) for v in std]

    image = schema.TensorMetadataT()
    image.name = "image"
    image.description = (f"Input image, {'RGB' if channels == 3 else 'grayscale'} pixels 0..255 fed as "
                         f"(pixel - mean) / std with the NormalizationOptions below.")
    image.content = schema.ContentT()
    image.content.contentPropertiesType = schema.ContentProperties.ImageProperties
    image.content.contentProperties = schema.ImagePropertiesT()
    image.content.contentProperties.colorSpace = (schema.ColorSpaceType.RGB if channels == 3
                                                  else schema.ColorSpaceType.GRAYSCALE)
    norm = schema.ProcessUnitT()
    norm.optionsType = schema.ProcessUnitOptions.NormalizationOptions
    norm.options = schema.NormalizationOptionsT()
    norm.options.mean, norm.options.std = mean, std
    image.processUnits = [norm]
    image.stats = schema.StatsT()
    image.stats.min = [(0.0 - m) / s for m, s in zip(mean, std)]
    image.stats.max = [(255.0 - m) / s for m, s in zip(mean, std)]

    scores = schema.TensorMetadataT()
    scores.name = "probability" if probabilities else "score"
    scores.description = f"Scores of the {num_outputs} classes" + (", 0..1." if probabilities else " (logits).")
    scores.content = schema.ContentT()
    scores.content.contentPropertiesType = schema.ContentProperties.FeatureProperties
    scores.content.contentProperties = schema.FeaturePropertiesT()
    if probabilities:
        scores.stats = schema.StatsT()
        scores.stats.min, scores.stats.max = [0.0], [1.0]
    if labels_file:
        labels = schema.AssociatedFileT()
        labels.name = labels_file
        labels.description = "Labels of the classes, one per line, in output order."
        labels.type = schema.AssociatedFileType.TENSOR_AXIS_LABELS
        scores.associatedFiles = [labels]

    graph = schema.SubGraphMetadataT()
    graph.inputTensorMetadata, graph.outputTensorMetadata = [image], [scores]
    meta = schema.ModelMetadataT()
    meta.name, meta.description, meta.version, meta.author = name, description, version, author
    meta.subgraphMetadata = [graph]
    meta.minParserVersion = PARSER_VERSION

    builder = flatbuffers.Builder(1024)
    builder.Finish(meta.Pack(builder), METADATA_IDENTIFIER)
    return bytes(builder.Output())


def append_files(model: bytes, files: dict[str, bytes]) -> bytes:
    """``model`` with ``files`` zipped onto its end, as the metadata populator does.

    The archive is stored uncompressed, with offsets from the start of the model file; readers
    (MediaPipe, the Task Library, Python's zipfile) find it from its end record.
    """
    buf = io.BytesIO(model)
    buf.seek(0, io.SEEK_END)
    with zipfile.ZipFile(buf, "a", compression=zipfile.ZIP_STORED) as z:
        for name, data in files.items():
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()
