"""A model's input contract: how the Classifier feeds a model and reads its answer, and where each fact came from.

:func:`resolve_contract` reads it off a loaded backend, the model's card (or its standard TFLite metadata) and the
caller's options, changing none of them. Each fact comes from one small function; normalization, colour order and
labels come with their source: ``options``, ``edgecnn card``, ``TFLite metadata``, ``input quantization``,
``embedded labels``, ``assumed`` or ``class indices``. Notes and warnings go to the ``edgecnn.runtime`` log; what
cannot be fed or read is one typed error.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence, Union

import numpy as np

from edgecnn.card import ModelCard, find_card
from edgecnn.errors import LabelsError, ModelError, UsageError
from edgecnn.labels import align_labels, read_labels
from edgecnn.runtime.base import INDEX_OPS, LAYOUTS, Backend, TensorSpec, guess_layout, input_size_problem
from edgecnn.runtime.preprocess import CROPS, Preprocessor

if TYPE_CHECKING:
    from edgecnn.tflite_metadata.read import StandardMetadata

log = logging.getLogger("edgecnn.runtime")

DEFAULT_FLOAT_MEAN = 127.5
DEFAULT_FLOAT_STD = 127.5

Floats = tuple[float, ...]
LabelsOption = Union[None, str, os.PathLike, Sequence[str]]


@dataclass(frozen=True)
class InputContract:
    """What one model takes and gives, resolved once at load.

    ``sources``: where ``normalization``, ``color`` and ``labels`` came from (see the module docstring).
    """

    input_spec: TensorSpec  # the model's input, with its layout (NHWC or NCHW)
    height: int
    width: int
    mean: Floats
    std: Floats
    channel_order: str
    crop: str
    output_kind: Optional[str]  # softmax | sigmoid | logits, or None: judged from the scores
    batch: int  # the batch of every model call: 1, or the model's fixed batch
    num_outputs: int
    labels: tuple[str, ...]
    sources: dict[str, str] = field(default_factory=dict, hash=False)

    def preprocessor(self) -> Preprocessor:
        """A new Preprocessor feeding this contract (its buffers are its own)."""
        return Preprocessor(self.input_spec, self.height, self.width, self.mean, self.std,
                            channel_order=self.channel_order, crop=self.crop)


def resolve_contract(
    path: Union[str, os.PathLike],
    backend: Backend,
    card: Optional[ModelCard],
    standard: Optional[StandardMetadata],
    *,
    labels: LabelsOption = None,
    mean: Union[None, float, Sequence[float]] = None,
    std: Union[None, float, Sequence[float]] = None,
    crop: Optional[str] = None,
    output_kind: Optional[str] = None,
) -> InputContract:
    """The input contract of a loaded model: options first, then its card, then its standard metadata, then guesses.

    Mutates none of its arguments; a model with a dynamic output shape runs once on a zero batch.
    """
    path = Path(path)
    spec = input_spec(path, backend.input_spec, card)
    height, width = input_size(path, spec, card)
    (mean, std), normalization_source = normalization(path, spec, card, standard, mean, std)
    crop = crop or card_crop(card)
    order, color_source = channel_order(path, spec, card, standard)
    # Built and dropped: refuses what cannot be fed (channels, mean/std) before any model call, and gives the shape.
    sample_shape = Preprocessor(spec, height, width, mean, std, channel_order=order, crop=crop).sample_shape
    batch = fixed_batch(path, spec)
    output_kind = output_kind or (card.output_kind if card else None)
    n = num_outputs(backend, (batch,) + sample_shape)
    if n == 1:
        check_single_unit(path, backend.final_op(), output_kind)
    names, labels_source = class_labels(path, labels, n, card, standard, backend)
    sources = {"normalization": normalization_source, "color": color_source, "labels": labels_source}
    return InputContract(spec, height, width, mean, std, order, crop, output_kind, batch, n, tuple(names), sources)


def find_model_card(path: Path, backend: Backend) -> Optional[ModelCard]:
    """The model's card: the sidecar/release one beside it, else the one embedded in the model, else None."""
    card = find_card(path)
    if card is not None:
        return card
    text = backend.embedded_card()
    if text:
        return ModelCard.from_json(text, source=f"model card embedded in {path}")
    return None


def input_spec(path: Path, spec: TensorSpec, card: Optional[ModelCard]) -> TensorSpec:
    """The model's input with its layout: from the shape, else the card, else NHWC; refused when not an image."""
    if not spec.is_image:
        raise ModelError(
            f"{path} input {spec.describe()} is not a 4-D image tensor; "
            f"edgecnn runs image classifiers with an NHWC or NCHW input"
        )
    layout = guess_layout(spec.shape, default="")
    if not layout:
        layout = card.layout if card and card.layout in LAYOUTS else "NHWC"
    too_large = input_size_problem(spec.shape, layout)
    if too_large:
        raise ModelError(f"{path}: {too_large}")
    if not (np.issubdtype(spec.dtype, np.floating) or spec.dtype in (np.uint8, np.int8)):
        raise ModelError(
            f"{path} input {spec.describe()} has dtype {spec.dtype}; expected float32, uint8 or int8"
        )
    return spec.with_layout(layout)


def input_size(path: Path, spec: TensorSpec, card: Optional[ModelCard]) -> tuple[int, int]:
    """(height, width) to feed: the model's, a dynamic one from the card; a card that disagrees is a note."""
    h, w = spec.height, spec.width
    if card and (h is None or w is None):
        h, w = h or card.input_height, w or card.input_width
        too_large = input_size_problem((1, h, w, 3), "NHWC")
        if too_large:
            raise ModelError(f"{path}: the size in its model card is too large: {too_large}")
    if h is None or w is None:
        raise ModelError(
            f"{path} has a dynamic input size ({spec.describe()}) and no model card says which size "
            f"to feed; export it with a fixed input size or add a card ({path.name}.card.json)"
        )
    if card and (card.input_height, card.input_width) != (h, w):
        log.warning("note: %s card says %dx%d input but the model takes %dx%d; using the model's",
                    path.name, card.input_width, card.input_height, w, h)
    return int(h), int(w)


def normalization(path: Path, spec: TensorSpec, card: Optional[ModelCard], standard: Optional[StandardMetadata],
                  mean, std) -> tuple[tuple[Floats, Floats], str]:
    """((mean, std), source): the options, the card, the input quantization, the standard metadata, or assumed."""
    if mean is not None or std is not None:
        mean = DEFAULT_FLOAT_MEAN if mean is None else mean
        std = DEFAULT_FLOAT_STD if std is None else std
        return (as_floats(mean), as_floats(std)), "options"
    if card is not None:
        return (tuple(card.normalization.mean), tuple(card.normalization.std)), "edgecnn card"
    offset = 128.0 if spec.dtype == np.int8 else 0.0
    if np.issubdtype(spec.dtype, np.integer):
        # Raw pixels in (uint8: q = pixel; int8: q = pixel - 128), through the input quantization when there
        # is one. Standard metadata's NormalizationOptions describe the float model the quantization encodes.
        if spec.is_quantized:
            return ((offset + spec.zero_point,), (1.0 / spec.scale,)), "input quantization"
        return ((offset,), (1.0,)), "assumed"
    found = standard_normalization(path, spec, standard)
    if found is not None:
        return found, "TFLite metadata"
    log.warning(
        "note: %s has a float input and no model card or standard TFLite metadata: feeding (pixel - %g) / %g, "
        "i.e. 0..255 -> -1..1 (pass --mean/--std if the model expects something else)",
        path.name, DEFAULT_FLOAT_MEAN, DEFAULT_FLOAT_STD,
    )
    return ((DEFAULT_FLOAT_MEAN,), (DEFAULT_FLOAT_STD,)), "assumed"


def standard_normalization(path: Path, spec: TensorSpec,
                           standard: Optional[StandardMetadata]) -> Optional[tuple[Floats, Floats]]:
    """The NormalizationOptions of the model's standard TFLite metadata, when usable for this input."""
    if standard is None or not standard.mean or not standard.std:
        return None
    channels = spec.channels or 3
    if not standard.has_normalization or any(len(v) not in (1, channels) for v in (standard.mean, standard.std)):
        log.warning("note: %s: ignoring the TFLite metadata's NormalizationOptions (mean %s, std %s): they do not "
                    "fit a %d-channel input", path.name, list(standard.mean), list(standard.std), channels)
        return None
    return tuple(standard.mean), tuple(standard.std)


def card_crop(card: Optional[ModelCard]) -> str:
    """The card's resize when it is a crop edgecnn knows, else ``stretch``."""
    return card.resize if card and card.resize in CROPS else "stretch"


def channel_order(path: Path, spec: TensorSpec, card: Optional[ModelCard],
                  standard: Optional[StandardMetadata]) -> tuple[str, str]:
    """(channel order, source): the card's, else RGB (said by the standard metadata, or assumed)."""
    if card is not None:
        return card.channel_order or "RGB", "edgecnn card"
    space = standard.color_space if standard else None
    channels = spec.channels or 3
    if space == "RGB" or (space == "GRAYSCALE" and channels == 1):
        return "RGB", "TFLite metadata"
    if space == "GRAYSCALE":
        log.warning("note: %s: the TFLite metadata says grayscale but the input has %d channels; "
                    "feeding RGB", path.name, channels)
    return "RGB", "assumed"


def fixed_batch(path: Path, spec: TensorSpec) -> int:
    """The batch every model call takes: 1, or the model's fixed batch (one image, then padding)."""
    batch = spec.batch or 1
    if batch > 1:
        log.warning("note: %s takes a fixed batch of %d: each single image runs padded to %d (export it with "
                    "batch 1 or a dynamic batch to save the work)", path.name, batch, batch)
    return batch


def num_outputs(backend: Backend, batch_shape: tuple[int, ...]) -> int:
    """The model's number of output units: from its output shape, else (dynamic) from one run on a zero batch."""
    dims = backend.output_spec.shape[1:]
    if dims and all(d is not None for d in dims):
        return int(np.prod(dims))
    return int(backend.run(np.zeros(batch_shape, backend.input_spec.dtype)).shape[1])


def check_single_unit(path: Path, op: Optional[str], output_kind: Optional[str]) -> None:
    """One output unit reads as a binary sigmoid: refuse one that cannot be, warn when nothing says it is one.

    ``op``: the op that makes the output (the backend's ``final_op()``).
    """
    if op == "softmax":
        raise ModelError(f"{path} ends in a softmax over one unit, which is always 1.0: every image "
                         f"would score 100%; re-export the model with one sigmoid unit (binary) or a softmax "
                         f"over 2 or more classes")
    if op in INDEX_OPS:
        raise ModelError(f"{path} outputs a class index (its graph ends in {op}), not scores; export the "
                         f"model without its final {op}: edgecnn needs the score vector")
    if output_kind in ("sigmoid", "logits") or op == "sigmoid":
        return
    said = ("its card says softmax, which over one unit is always 1.0" if output_kind == "softmax"
            else "no card or output kind says it is a sigmoid")
    ends = f"its graph ends in {op}" if op else "edgecnn cannot see the op that makes it"
    log.warning("warning: %s has one output unit, %s, and %s: reading it as a binary sigmoid (values outside "
                "0..1 as a logit); pass --output-kind sigmoid or logits (output_kind=) if that is right",
                path.name, said, ends)


def class_labels(path: Path, labels: LabelsOption, n: int, card: Optional[ModelCard],
                 standard: Optional[StandardMetadata], backend: Backend) -> tuple[list[str], str]:
    """(labels, source) for ``n`` output units: the options, the card, the standard metadata, the model's own,
    else class indices. One unit (a binary sigmoid) takes two labels."""
    found, what, source = _found_labels(path, labels, card, standard, backend)
    if found is None:
        log.warning("note: %s has no labels (no model card); showing class indices; pass --labels FILE", path.name)
        return [f"class_{i}" for i in range(2 if n == 1 else n)], "class indices"
    if n == 1 and len(found) != 2:
        raise LabelsError(
            f"{what} has {len(found)} label(s) but {path.name} has one sigmoid output (binary); "
            f"pass 2 labels: the negative class first, then the positive"
        )
    return align_labels(found, n, source=what), source


def _found_labels(path: Path, labels: LabelsOption, card: Optional[ModelCard], standard: Optional[StandardMetadata],
                  backend: Backend) -> tuple[Optional[list[str]], str, str]:
    """(labels or None, what they are for messages, source): the first place that has them."""
    if isinstance(labels, (str, os.PathLike)):
        return read_labels(labels), f"labels file {labels}", "options"
    if labels is not None:
        return [str(x) for x in labels], "labels", "options"
    if card is not None:
        return list(card.labels), f"model card of {path.name}", "edgecnn card"
    if standard is not None and standard.labels:
        return (list(standard.labels), f"label file {standard.labels_file} of the TFLite metadata of {path.name}",
                "TFLite metadata")
    return backend.embedded_labels(), f"labels embedded in {path.name}", "embedded labels"


def as_floats(value) -> Floats:
    """A mean/std option (one number or one per channel) as a tuple of floats."""
    if isinstance(value, (int, float, np.floating, np.integer)):
        return (float(value),)
    try:
        return tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise UsageError(f"Received mean/std {value!r}; expected a number or one number per channel") from None
