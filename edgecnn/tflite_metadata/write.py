"""Write TFLite metadata without TensorFlow: named entries, the standard metadata flatbuffer, zipped files.

A TFLite model is rewritten through the generated model schema's object API (what TensorFlow's
``flatbuffer_utils`` does), so this runs wherever the interpreter package is installed: a card can
be re-embedded on a device. Rewriting the flatbuffer drops anything appended to the model, so the
associated files are zipped on last.
"""

from __future__ import annotations

import io
import zipfile
from typing import Optional, Sequence

from edgecnn.errors import BackendUnavailableError
from edgecnn.tflite_metadata import (
    LABELS_FILE,
    METADATA_IDENTIFIER,
    PARSER_VERSION,
    TFLITE_IDENTIFIER,
    metadata_schema,
    model_schema,
)


def add_entries(model: bytes, entries: dict[str, bytes], files: Optional[dict[str, bytes]] = None) -> bytes:
    """``model`` with metadata ``entries`` (name -> bytes, replacing same-named ones), then ``files`` zipped on.

    The flatbuffer is rewritten first (which drops anything appended to the model before), the
    zip appended last, so one call keeps both.
    """
    import flatbuffers
    import numpy as np

    try:
        schema = model_schema()
    except ImportError as exc:
        raise BackendUnavailableError(f"cannot write TFLite metadata: {exc}") from None
    obj = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    old = obj.metadata or []
    for entry in old:
        if _name(entry.name) in entries:
            obj.buffers[entry.buffer].data = None  # emptied, not removed: tensors refer to buffers by index
    obj.metadata = [m for m in old if _name(m.name) not in entries]
    for name, payload in entries.items():
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(payload, dtype=np.uint8)
        obj.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = name
        entry.buffer = len(obj.buffers) - 1
        obj.metadata.append(entry)
    builder = flatbuffers.Builder(1024)
    builder.Finish(obj.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    flatbuffer = bytes(builder.Output())
    return append_files(flatbuffer, files) if files else flatbuffer


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


def build_standard_metadata(
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
    features: int = 0,
) -> bytes:
    """The ``TFLITE_METADATA`` flatbuffer for a single-input image classifier.

    ``mean``/``std``: the input's normalization ``(pixel - mean) / std`` (for quantized inputs, of
    the real values the quantization encodes). ``probabilities``: outputs are scores in 0..1. ``features``: the
    size of a second output, the pooled features (0: none).
    """
    import flatbuffers

    schema = metadata_schema()
    graph = schema.SubGraphMetadataT()
    graph.inputTensorMetadata = [_image_input(schema, [float(v) for v in mean], [float(v) for v in std], channels)]
    graph.outputTensorMetadata = [_scores_output(schema, num_outputs, probabilities, labels_file)]
    if features:
        graph.outputTensorMetadata.append(_features_output(schema, features))
    meta = schema.ModelMetadataT()
    meta.name, meta.description, meta.version, meta.author = name, description, version, author
    meta.subgraphMetadata = [graph]
    meta.minParserVersion = PARSER_VERSION

    builder = flatbuffers.Builder(1024)
    builder.Finish(meta.Pack(builder), METADATA_IDENTIFIER)
    return bytes(builder.Output())


def _image_input(schema, mean: list[float], std: list[float], channels: int):
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
    return image


def _features_output(schema, size: int):
    features = schema.TensorMetadataT()
    features.name = "features"
    features.description = f"The {size} pooled features that feed the classifier's head (novelty scores)."
    features.content = schema.ContentT()
    features.content.contentPropertiesType = schema.ContentProperties.FeatureProperties
    features.content.contentProperties = schema.FeaturePropertiesT()
    return features


def _scores_output(schema, num_outputs: int, probabilities: bool, labels_file: Optional[str]):
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
    return scores


def _name(name) -> str:
    return name.decode("utf-8") if isinstance(name, bytes) else str(name)
