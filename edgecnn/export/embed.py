"""Embed the ModelCard (and labels) inside TFLite and ONNX artifacts.

TFLite artifacts carry two kinds of metadata, written in one pass so that neither destroys the
other: edgecnn's own entries (``edgecnn.card``, ``edgecnn.labels``) and the standard TFLite
metadata (``TFLITE_METADATA`` with the label file zipped onto the end of the model), which
MediaPipe Tasks and the TFLite Task Library read. Rewriting the flatbuffer drops anything
appended to it, so the zip is always appended last.

The flatbuffers are read and written by :mod:`edgecnn.tflite_metadata` (no TensorFlow needed, so a
card can be re-embedded on a device); the runtime backends' ``embedded_card()`` /
``embedded_labels()`` read them back, onnxruntime the ONNX ones.
"""

from __future__ import annotations

from edgecnn.card import EMBEDDED_CARD_KEY as CARD_KEY
from edgecnn.card import EMBEDDED_LABELS_KEY as LABELS_KEY
from edgecnn.card import ModelCard
from edgecnn.tflite_metadata import LABELS_FILE, METADATA_KEY
from edgecnn.tflite_metadata.read import output_size
from edgecnn.tflite_metadata.write import add_entries, build_standard_metadata


def card_entries(card: ModelCard) -> dict[str, bytes]:
    """The metadata entries edgecnn embeds: the card as JSON and the labels, one a line."""
    return {
        CARD_KEY: card.to_json().encode("utf-8"),
        LABELS_KEY: "".join(f"{label}\n" for label in card.labels).encode("utf-8"),
    }


def embed_in_tflite(model: bytes, card: ModelCard) -> bytes:
    """The TFLite flatbuffer with edgecnn's card and labels and the standard TFLite metadata added.

    Metadata entries ``edgecnn.card``, ``edgecnn.labels`` and ``TFLITE_METADATA`` (replacing any
    earlier ones), then the labels zipped onto the end as the ``TENSOR_AXIS_LABELS`` file.
    """
    num_outputs = output_size(model)
    labels = _standard_labels(card, num_outputs)
    entries = {**card_entries(card), METADATA_KEY: standard_metadata(card, num_outputs)}
    return add_entries(model, entries, {LABELS_FILE: labels} if labels else {})


def standard_metadata(card: ModelCard, num_outputs: int) -> bytes:
    """The ``TFLITE_METADATA`` flatbuffer describing ``card``'s input contract, outputs and label file."""
    shown = ", ".join(card.labels[:8]) + (", ..." if len(card.labels) > 8 else "")
    color = "RGB" if card.input_channels == 3 else "grayscale"
    return build_standard_metadata(
        name=f"{card.architecture} image classifier",
        description=(f"Classifies a {card.input_width}x{card.input_height} {color} image into one of "
                     f"{card.num_classes} classes ({shown}). Exported by edgecnn {card.edgecnn_version} as "
                     f"{card.format}; the full edgecnn model card is the edgecnn.card metadata entry."),
        version=f"edgecnn {card.edgecnn_version} {card.format}",
        mean=card.normalization.mean,
        std=card.normalization.std,
        channels=card.input_channels,
        num_outputs=num_outputs,
        probabilities=card.output_kind in ("softmax", "sigmoid"),
        labels_file=LABELS_FILE if _standard_labels(card, num_outputs) else None,
        author="edgecnn",
        features=int((card.extra.get("features") or {}).get("size") or 0),
    )


def _standard_labels(card: ModelCard, num_outputs: int) -> bytes:
    """One label a line, one per output (a binary model's single sigmoid output scores its second,
    positive class); empty when the labels do not match the outputs."""
    labels = card.labels
    if num_outputs == 1 and len(labels) == 2:
        labels = labels[1:]
    if len(labels) != num_outputs:
        return b""
    return "".join(f"{label}\n" for label in labels).encode("utf-8")


def embed_in_onnx(model, card: ModelCard) -> None:
    """Set ``edgecnn.card`` and ``edgecnn.labels`` in an ``onnx.ModelProto``'s ``metadata_props``."""
    entries = {k: v.decode("utf-8") for k, v in card_entries(card).items()}
    keep = [(p.key, p.value) for p in model.metadata_props if p.key not in entries]
    del model.metadata_props[:]
    for key, value in keep + list(entries.items()):
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value

