"""Classifier = backend + preprocessing + postprocessing + labels.

>>> from edgecnn import Classifier
>>> clf = Classifier("model_int8.tflite", threads=2)
>>> pred = clf.predict("cat.jpg", top_k=3)
>>> pred.label, pred.score, pred.feedback
('Egyptian cat', 0.83, 'Pretty sure!')

Arrays passed to ``predict`` are taken as BGR (what ``cv2.imread`` and
``cv2.VideoCapture`` give); pass ``order="RGB"`` for RGB arrays.

Thread-safe: one Classifier may be shared by threads. Its stateful part (the
preprocessing buffers and the interpreter/session, which LiteRT and the reused
input buffer make unsafe to run concurrently) runs under one lock, so calls from
several threads take turns there; decoding image files and postprocessing run
outside it. For parallel inference give each thread its own Classifier.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from edgecnn.card import OUTPUT_KINDS, ModelCard, find_card
from edgecnn.errors import LabelsError, ModelError, UsageError
from edgecnn.labels import align_labels, read_labels
from edgecnn.runtime.base import (
    INDEX_OPS,
    LAYOUTS,
    Backend,
    TensorSpec,
    guess_layout,
    input_size_problem,
    not_a_classifier,
    score_shape_problem,
)
from edgecnn.runtime.cpu import warn_int8_kernels
from edgecnn.runtime.feedback import confidence_feedback
from edgecnn.runtime.imageinfo import DEFAULT_MAX_PIXELS
from edgecnn.runtime.load import load_backend
from edgecnn.runtime.novelty import FeatureStats
from edgecnn.runtime.postprocess import to_probabilities
from edgecnn.runtime.preprocess import CROPS, ImageLike, Preprocessor, load_image

log = logging.getLogger("edgecnn.runtime")

DEFAULT_FLOAT_MEAN = 127.5
DEFAULT_FLOAT_STD = 127.5


@dataclass(frozen=True)
class ClassScore:
    """One entry of a top-k result."""

    label: str
    index: int
    score: float

    def to_dict(self) -> dict:
        return {"label": self.label, "index": self.index, "score": round(float(self.score), 6)}


@dataclass
class Prediction:
    """Top-k classes of one image, best first, with the full probability vector.

    ``latency_ms`` covers preprocessing + inference + postprocessing (not reading
    and decoding an image file); ``timings`` splits it into ``preprocess``,
    ``inference`` and ``postprocess`` (ms). ``to_dict`` is the ``--json`` record.
    ``features``: the model's pooled features (1-D float32; :attr:`Classifier.feature_stats` scores their
    novelty), None when the model has no features output.
    """

    top: list[ClassScore]
    probabilities: np.ndarray = field(repr=False)
    latency_ms: float
    input: Optional[str] = None
    timings: dict = field(default_factory=dict, repr=False)  # preprocess / inference / postprocess, ms
    features: Optional[np.ndarray] = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return self.top[0].label

    @property
    def index(self) -> int:
        return self.top[0].index

    @property
    def score(self) -> float:
        return self.top[0].score

    @property
    def feedback(self) -> str:
        return confidence_feedback(self.score)

    def to_dict(self) -> dict:
        from edgecnn.runtime.inputs import display_name

        return {
            "input": None if self.input is None else display_name(self.input),
            "top": [t.to_dict() for t in self.top],
            "latency_ms": round(float(self.latency_ms), 3),
        }


class Classifier:
    """Run an image classifier (``.tflite``, ``.onnx``, ``.keras``/``.h5`` or a SavedModel folder).

    Parameters
    ----------
    model: path to the model file.
    labels: a list of labels or a labels file; default: the model card's labels,
        else labels embedded in the model, else ``class_<i>``.
    threads: interpreter threads (default: the runtime's choice).
    backend: ``litert`` | ``onnx`` | ``keras``; default chosen by file suffix.
    delegate: a TFLite delegate library, e.g. ``libedgetpu.so.1`` (Coral Edge TPU).
    providers: ONNX Runtime execution providers in order of preference, e.g. ``["cuda"]`` or
        ``["tensorrt", "cuda"]`` (CPU is always the last fallback); default CPU only.
    mean, std: normalization ``(pixel - mean) / std`` (one value or one per
        channel); overrides the card. Without a card, float inputs take the
        NormalizationOptions of the model's standard TFLite metadata, else
        127.5/127.5 (0..255 -> -1..1); 8-bit inputs take raw pixels.
    crop: ``stretch`` (default) or ``center``.
    output_kind: ``softmax`` | ``sigmoid`` | ``logits``; overrides the card. Without
        either, rows outside 0..1 are treated as logits. One output unit reads as a binary
        sigmoid: refused when the graph ends in a softmax or an argmax, warned about when
        neither this, the card nor a final sigmoid says it is one.
    card: a ModelCard to use instead of the sidecar/embedded one.
    max_pixels: image files larger than this (read from their header, before
        decoding) are refused with a DataError; default 50 MP, None for no limit.

    Safe to share between threads: preprocessing into the reused input buffer
    and the interpreter call run under one lock (see the module docstring).

    ``feature_stats``: the :class:`~edgecnn.runtime.novelty.FeatureStats` of the model's training images
    (found beside the model file, e.g. in its export or release folder) when the model has a features output,
    else None.

    ``sources`` says where the normalization, labels and colour order came from: ``options``,
    ``edgecnn card``, ``TFLite metadata``, ``input quantization``, ``embedded labels``,
    ``assumed`` or ``class indices`` (``-v`` output, benchmark results).
    """

    def __init__(
        self,
        model: Union[str, os.PathLike],
        labels: Union[None, str, os.PathLike, Sequence[str]] = None,
        threads: Optional[int] = None,
        *,
        backend: Optional[str] = None,
        delegate: Optional[str] = None,
        providers: Optional[Sequence[str]] = None,
        mean: Union[None, float, Sequence[float]] = None,
        std: Union[None, float, Sequence[float]] = None,
        crop: Optional[str] = None,
        output_kind: Optional[str] = None,
        card: Optional[ModelCard] = None,
        max_pixels: Optional[int] = DEFAULT_MAX_PIXELS,
    ):
        self.path = Path(model)
        self.max_pixels = max_pixels
        if output_kind is not None and output_kind not in OUTPUT_KINDS:
            raise UsageError(f"Received output_kind={output_kind!r}; expected one of: {', '.join(OUTPUT_KINDS)}")
        if crop is not None and crop not in CROPS:
            raise UsageError(f"Received crop={crop!r}; expected one of: {', '.join(CROPS)}")
        self.backend: Backend = load_backend(self.path, backend=backend, threads=threads, delegate=delegate,
                                             providers=providers)
        problem = classifier_problem(self.backend)
        if problem:
            self.backend.close()
            raise not_a_classifier(self.path, problem)
        self.threads = threads
        self.card = card if card is not None else self._find_card()
        warn_int8_kernels(self.path, self.card, self.backend.name)
        # A model nobody here made: its standard TFLite metadata comes before any assumption.
        self.standard = self.backend.standard_metadata() if self.card is None else None
        self.sources: dict[str, str] = {}
        self.input_spec = self._resolve_input_spec(self.backend.input_spec)
        self.output_kind = output_kind or (self.card.output_kind if self.card else None)

        h, w = self._input_size()
        self.mean, self.std = self._normalization(mean, std)
        crop = crop or (self.card.resize if self.card and self.card.resize in CROPS else "stretch")
        order = self._channel_order()
        self.preprocessor = Preprocessor(self.input_spec, h, w, self.mean, self.std, channel_order=order, crop=crop)
        # One image, padded with zeros to the model's batch when that is fixed (an ONNX model cannot take another).
        self._batch1 = np.zeros((self._fixed_batch(),) + self.preprocessor.sample_shape, self.input_spec.dtype)
        # Guards the stateful part: the preprocessor's buffers, _batch1 and the backend's interpreter.
        self._lock = threading.Lock()

        self.num_outputs = self._num_outputs()
        if self.num_outputs == 1:
            self._check_single_unit()
        self.labels = self._resolve_labels(labels)
        self.feature_stats = self._find_feature_stats()

    # ----------------------------------------------------------------- setup
    def _find_feature_stats(self) -> Optional[FeatureStats]:
        spec = self.backend.features_spec
        stats = FeatureStats.load(self.path) if spec is not None else None
        if stats is not None and spec.shape[-1] not in (None, stats.feature_dim):
            log.warning("warning: %s has %d features but the feature statistics beside it are for %d; novelty is "
                        "off - export the model and its statistics together", self.path.name, spec.shape[-1],
                        stats.feature_dim)
            return None
        return stats

    def _find_card(self) -> Optional[ModelCard]:
        card = find_card(self.path)
        if card is not None:
            return card
        text = self.backend.embedded_card()
        if text:
            return ModelCard.from_json(text, source=f"model card embedded in {self.path}")
        return None

    def _resolve_input_spec(self, spec: TensorSpec) -> TensorSpec:
        if not spec.is_image:
            raise ModelError(
                f"{self.path} input {spec.describe()} is not a 4-D image tensor; "
                f"edgecnn runs image classifiers with an NHWC or NCHW input"
            )
        layout = guess_layout(spec.shape, default="")
        if not layout:
            layout = self.card.layout if self.card and self.card.layout in LAYOUTS else "NHWC"
        too_large = input_size_problem(spec.shape, layout)
        if too_large:
            raise ModelError(f"{self.path}: {too_large}")
        if not (np.issubdtype(spec.dtype, np.floating) or spec.dtype in (np.uint8, np.int8)):
            raise ModelError(
                f"{self.path} input {spec.describe()} has dtype {spec.dtype}; expected float32, uint8 or int8"
            )
        return spec.with_layout(layout)

    def _input_size(self) -> tuple[int, int]:
        spec = self.input_spec
        h, w = spec.height, spec.width
        if self.card and (h is None or w is None):
            h, w = h or self.card.input_height, w or self.card.input_width
            too_large = input_size_problem((1, h, w, 3), "NHWC")
            if too_large:
                raise ModelError(f"{self.path}: the size in its model card is too large: {too_large}")
        if h is None or w is None:
            raise ModelError(
                f"{self.path} has a dynamic input size ({spec.describe()}) and no model card says which size "
                f"to feed; export it with a fixed input size or add a card ({self.path.name}.card.json)"
            )
        if self.card and (self.card.input_height, self.card.input_width) != (h, w):
            log.warning("note: %s card says %dx%d input but the model takes %dx%d; using the model's",
                        self.path.name, self.card.input_width, self.card.input_height, w, h)
        return int(h), int(w)

    def _normalization(self, mean, std) -> tuple[tuple[float, ...], tuple[float, ...]]:
        spec = self.input_spec
        if mean is not None or std is not None:
            mean = DEFAULT_FLOAT_MEAN if mean is None else mean
            std = DEFAULT_FLOAT_STD if std is None else std
            self.sources["normalization"] = "options"
            return _as_tuple(mean), _as_tuple(std)
        if self.card is not None:
            self.sources["normalization"] = "edgecnn card"
            return tuple(self.card.normalization.mean), tuple(self.card.normalization.std)
        offset = 128.0 if spec.dtype == np.int8 else 0.0
        if np.issubdtype(spec.dtype, np.integer):
            # Raw pixels in (uint8: q = pixel; int8: q = pixel - 128), through the input quantization when there
            # is one. Standard metadata's NormalizationOptions describe the float model the quantization encodes.
            self.sources["normalization"] = "input quantization" if spec.is_quantized else "assumed"
            return ((offset + spec.zero_point,), (1.0 / spec.scale,)) if spec.is_quantized else ((offset,), (1.0,))
        found = self._standard_normalization()
        if found is not None:
            self.sources["normalization"] = "TFLite metadata"
            return found
        log.warning(
            "note: %s has a float input and no model card or standard TFLite metadata: feeding (pixel - %g) / %g, "
            "i.e. 0..255 -> -1..1 (pass --mean/--std if the model expects something else)",
            self.path.name, DEFAULT_FLOAT_MEAN, DEFAULT_FLOAT_STD,
        )
        self.sources["normalization"] = "assumed"
        return (DEFAULT_FLOAT_MEAN,), (DEFAULT_FLOAT_STD,)

    def _standard_normalization(self) -> Optional[tuple[tuple[float, ...], tuple[float, ...]]]:
        """The NormalizationOptions of the model's standard TFLite metadata, when usable for this input."""
        meta = self.standard
        if meta is None or not meta.mean or not meta.std:
            return None
        channels = self.input_spec.channels or 3
        if not meta.has_normalization or any(len(v) not in (1, channels) for v in (meta.mean, meta.std)):
            log.warning("note: %s: ignoring the TFLite metadata's NormalizationOptions (mean %s, std %s): they do not "
                        "fit a %d-channel input", self.path.name, list(meta.mean), list(meta.std), channels)
            return None
        return tuple(meta.mean), tuple(meta.std)

    def _channel_order(self) -> str:
        if self.card is not None:
            self.sources["color"] = "edgecnn card"
            return self.card.channel_order or "RGB"
        space = self.standard.color_space if self.standard else None
        channels = self.input_spec.channels or 3
        if space == "RGB" or (space == "GRAYSCALE" and channels == 1):
            self.sources["color"] = "TFLite metadata"
        else:
            if space == "GRAYSCALE":
                log.warning("note: %s: the TFLite metadata says grayscale but the input has %d channels; "
                            "feeding RGB", self.path.name, channels)
            self.sources["color"] = "assumed"
        return "RGB"

    def _fixed_batch(self) -> int:
        """The batch every model call takes: 1, or the model's fixed batch (one image, then padding)."""
        batch = self.input_spec.batch or 1
        if batch > 1:
            log.warning("note: %s takes a fixed batch of %d: each single image runs padded to %d (export it with "
                        "batch 1 or a dynamic batch to save the work)", self.path.name, batch, batch)
        return batch

    def _check_single_unit(self) -> None:
        """One output unit reads as a binary sigmoid: refuse one that cannot be, warn when nothing says it is one."""
        op = self.backend.final_op()
        if op == "softmax" or op in INDEX_OPS:
            self.backend.close()
            if op == "softmax":
                raise ModelError(f"{self.path} ends in a softmax over one unit, which is always 1.0: every image "
                                 f"would score 100%; re-export the model with one sigmoid unit (binary) or a softmax "
                                 f"over 2 or more classes")
            raise ModelError(f"{self.path} outputs a class index (its graph ends in {op}), not scores; export the "
                             f"model without its final {op}: edgecnn needs the score vector")
        if self.output_kind in ("sigmoid", "logits") or op == "sigmoid":
            return
        said = ("its card says softmax, which over one unit is always 1.0" if self.output_kind == "softmax"
                else "no card or output kind says it is a sigmoid")
        ends = f"its graph ends in {op}" if op else "edgecnn cannot see the op that makes it"
        log.warning("warning: %s has one output unit, %s, and %s: reading it as a binary sigmoid (values outside "
                    "0..1 as a logit); pass --output-kind sigmoid or logits (output_kind=) if that is right",
                    self.path.name, said, ends)

    def _num_outputs(self) -> int:
        dims = self.backend.output_spec.shape[1:]
        if dims and all(d is not None for d in dims):
            return int(np.prod(dims))
        # Dynamic output shape: ask the model once.
        return int(self.backend.run(self._batch1).shape[1])

    def _resolve_labels(self, labels) -> list[str]:
        n = self.num_outputs
        if labels is not None:
            self.sources["labels"] = "options"
            if isinstance(labels, (str, os.PathLike)):
                source = f"labels file {labels}"
                labels = read_labels(labels)
            else:
                source = "labels"
                labels = [str(x) for x in labels]
        elif self.card is not None:
            labels, source = list(self.card.labels), f"model card of {self.path.name}"
            self.sources["labels"] = "edgecnn card"
        elif self.standard is not None and self.standard.labels:
            labels = list(self.standard.labels)
            source = f"label file {self.standard.labels_file} of the TFLite metadata of {self.path.name}"
            self.sources["labels"] = "TFLite metadata"
        else:
            labels, source = self.backend.embedded_labels(), f"labels embedded in {self.path.name}"
            self.sources["labels"] = "embedded labels"
            if labels is None:
                count = 2 if n == 1 else n
                log.warning("note: %s has no labels (no model card); showing class indices; pass --labels FILE",
                            self.path.name)
                self.sources["labels"] = "class indices"
                return [f"class_{i}" for i in range(count)]
        if n == 1 and len(labels) != 2:
            raise LabelsError(
                f"{source} has {len(labels)} label(s) but {self.path.name} has one sigmoid output (binary); "
                f"pass 2 labels: the negative class first, then the positive"
            )
        return align_labels(labels, n, source=source)

    # ------------------------------------------------------------- inference
    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def preprocess(self, image: ImageLike, order: str = "BGR") -> np.ndarray:
        """One image -> a new input batch for the backend: (1, ...), or zero-padded to the model's fixed batch."""
        if isinstance(image, (str, os.PathLike)):
            order = "BGR"
        out = np.zeros_like(self._batch1)
        img = load_image(image, max_pixels=self.max_pixels)
        with self._lock:
            self.preprocessor(img, order=order, out=out[0])
        return out

    def predict(self, image: ImageLike, top_k: int = 5, order: str = "BGR") -> Prediction:
        """Classify one image: a file path (decoded by content) or an HxW[xC] array (BGR by default)."""
        source = None
        if isinstance(image, (str, os.PathLike)):
            source, order = str(image), "BGR"
        img = load_image(image, max_pixels=self.max_pixels)
        with self._lock:
            t0 = time.perf_counter()
            self.preprocessor(img, order=order, out=self._batch1[0])
            t1 = time.perf_counter()
            raw, features = self._run(self._batch1)
            t2 = time.perf_counter()
        probs = self.postprocess(raw[:1])[0]
        self._check_finite(probs, source)
        top = self.topk(probs, top_k)
        t3 = time.perf_counter()
        timings = {"preprocess": (t1 - t0) * 1e3, "inference": (t2 - t1) * 1e3, "postprocess": (t3 - t2) * 1e3}
        return Prediction(top, probs, (t3 - t0) * 1e3, source, timings, None if features is None else features[0])

    def _run(self, batch: np.ndarray) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """(scores, features or None) of one model call; a model without features takes the plain path."""
        if self.backend.features_spec is None:
            return self.backend.run(batch), None
        return self.backend.run_features(batch)

    def predict_batch(self, images: Sequence[ImageLike], top_k: int = 5, order: str = "BGR") -> list[Prediction]:
        """Classify several images in as few model calls as the input's batch dimension allows.

        Each Prediction's ``latency_ms`` is the batch's time divided by its size.
        """
        images = list(images)
        if not images:
            return []
        sources = [str(im) if isinstance(im, (str, os.PathLike)) else None for im in images]
        decoded = [load_image(im, max_pixels=self.max_pixels) for im in images]
        batch = np.empty((len(decoded),) + self.preprocessor.sample_shape, self.input_spec.dtype)
        chunk = self.input_spec.batch or len(batch)
        outs, features = [], []
        with self._lock:
            t0 = time.perf_counter()
            for i, (img, src) in enumerate(zip(decoded, sources)):
                self.preprocessor(img, order="BGR" if src else order, out=batch[i])
            for start in range(0, len(batch), chunk):
                part = batch[start:start + chunk]
                n = len(part)
                if n < chunk:  # fixed batch size larger than what is left: pad
                    part = np.concatenate([part, np.zeros((chunk - n,) + part.shape[1:], part.dtype)])
                scores, feats = self._run(part)
                outs.append(scores[:n])
                features.append(None if feats is None else feats[:n])
        probs = self.postprocess(np.concatenate(outs))
        for p, s in zip(probs, sources):
            self._check_finite(p, s)
        per_image = (time.perf_counter() - t0) * 1000.0 / len(batch)
        rows = np.concatenate(features) if features[0] is not None else [None] * len(probs)
        return [Prediction(self.topk(p, top_k), p, per_image, s, features=f) for p, s, f in zip(probs, sources, rows)]

    def postprocess(self, raw: np.ndarray) -> np.ndarray:
        """Raw (N, K) float32 output -> class probabilities (N, num_classes)."""
        return to_probabilities(raw, self.output_kind)

    def _check_finite(self, probs: np.ndarray, source: Optional[str]) -> None:
        """A NaN or infinite score is a broken answer: refuse it loudly instead of ranking it."""
        if not np.all(np.isfinite(probs)):
            what = "NaN" if np.isnan(probs).any() else "infinite"
            raise ModelError(
                f"{self.path.name} gave {what} scores for {source or 'this image'}: the model is numerically broken "
                f"for this input, or its normalization is wrong (check --mean/--std); no answer given"
            )

    def topk(self, probs: np.ndarray, top_k: int = 5) -> list[ClassScore]:
        """The ``top_k`` best classes of one probability vector, best first (ties: lower index first)."""
        n = probs.shape[0]
        k = max(1, min(int(top_k), n))
        if k < n:
            kth = probs[np.argpartition(-probs, k - 1)[k - 1]]  # the k-th best score
            # argpartition picks any of the scores tied at the cut: take the lowest indices among them.
            above = np.flatnonzero(probs > kth)
            idx = np.concatenate([above, np.flatnonzero(probs == kth)[: k - len(above)]])
            idx = idx[np.lexsort((idx, -probs[idx]))]
        else:
            idx = np.argsort(-probs, kind="stable")
        labels = self.labels
        return [ClassScore(labels[i], int(i), float(probs[i])) for i in idx]

    # ---------------------------------------------------------------- misc
    def describe(self) -> str:
        card = "card" if self.card else ("standard TFLite metadata" if self.standard else "no card")
        sources = ", ".join(f"{what} from {where}" for what, where in self.sources.items())
        return (f"{self.path.name}: {self.backend.source}, input {self.input_spec.describe()}, "
                f"{self.num_classes} classes, {card}; preprocessing {self.preprocessor.describe()}; {sources}")

    def close(self) -> None:
        """Free the model (after any call in progress); predicting afterwards is one UsageError."""
        with self._lock:
            self.backend.close()

    def __enter__(self) -> "Classifier":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Classifier({str(self.path)!r}, backend={self.backend.name!r}, classes={self.num_classes})"


def classifier_problem(backend: Backend) -> Optional[str]:
    """What makes a loaded model not a classifier edgecnn can run ("2 outputs", ...), or None when it is one.

    A classifier has one output, one score vector per image: ``[N]``, ``[1, N]`` (also with extra 1-sized
    axes, e.g. ``[1, N, 1, 1]``) or ``[1, 1]`` for a sigmoid, with float or 8-bit (quantized) scores.
    """
    outputs = getattr(backend, "num_outputs", 1)
    if outputs != 1:
        return f"{outputs} outputs: this looks like a detection or multi-task model"
    spec = backend.output_spec
    problem = score_shape_problem(spec.shape, backend.input_spec.batch)
    if problem:
        return problem
    dtype = np.dtype(spec.dtype)
    if not (np.issubdtype(dtype, np.floating) or dtype in (np.uint8, np.int8, np.int16)):
        dims = "x".join("?" if d is None else str(d) for d in spec.shape) or "?"
        return f"output {dims} is {dtype.name}, not scores: this looks like a class-index or segmentation map"
    return None


def _as_tuple(value) -> tuple[float, ...]:
    if isinstance(value, (int, float, np.floating, np.integer)):
        return (float(value),)
    try:
        return tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise UsageError(f"Received mean/std {value!r}; expected a number or one number per channel") from None
