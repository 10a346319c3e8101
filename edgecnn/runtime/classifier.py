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

from edgecnn.card import OUTPUT_KINDS, ModelCard
from edgecnn.errors import ModelError, UsageError
from edgecnn.runtime.base import Backend, not_a_classifier, score_shape_problem
from edgecnn.runtime.contract import InputContract, find_model_card, resolve_contract
from edgecnn.runtime.cpu import warn_int8_kernels
from edgecnn.runtime.feedback import confidence_feedback
from edgecnn.runtime.imageinfo import DEFAULT_MAX_PIXELS
from edgecnn.runtime.load import load_backend
from edgecnn.runtime.novelty import FeatureStats
from edgecnn.runtime.postprocess import to_probabilities
from edgecnn.runtime.preprocess import CROPS, ImageLike, load_image

log = logging.getLogger("edgecnn.runtime")


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
    ``assumed`` or ``class indices`` (``-v`` output, benchmark results); ``contract``: the
    :class:`~edgecnn.runtime.contract.InputContract` all these come from.
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
        self.threads = threads
        try:
            self._set_up(card, labels, mean=mean, std=std, crop=crop, output_kind=output_kind)
        except BaseException:
            self.backend.close()  # a model that cannot be run here is not left loaded
            raise

    # ----------------------------------------------------------------- setup
    def _set_up(self, card: Optional[ModelCard], labels, *, mean, std, crop, output_kind) -> None:
        """Everything after loading: the card, the input contract, the preprocessing buffers, the feature stats."""
        problem = classifier_problem(self.backend)
        if problem:
            raise not_a_classifier(self.path, problem)
        self.card = card if card is not None else find_model_card(self.path, self.backend)
        warn_int8_kernels(self.path, self.card, self.backend.name)
        # A model nobody here made: its standard TFLite metadata comes before any assumption.
        self.standard = self.backend.standard_metadata() if self.card is None else None
        self.contract: InputContract = resolve_contract(
            self.path, self.backend, self.card, self.standard, labels=labels, mean=mean, std=std, crop=crop,
            output_kind=output_kind)
        self.sources: dict[str, str] = dict(self.contract.sources)
        self.input_spec = self.contract.input_spec
        self.output_kind = self.contract.output_kind
        self.mean, self.std = self.contract.mean, self.contract.std
        self.preprocessor = self.contract.preprocessor()
        # One image, padded with zeros to the model's batch when that is fixed (an ONNX model cannot take another).
        self._batch1 = np.zeros((self.contract.batch,) + self.preprocessor.sample_shape, self.input_spec.dtype)
        # Guards the stateful part: the preprocessor's buffers, _batch1 and the backend's interpreter.
        self._lock = threading.Lock()
        self.num_outputs = self.contract.num_outputs
        self.labels = list(self.contract.labels)
        self.feature_stats = self._find_feature_stats()

    def _find_feature_stats(self) -> Optional[FeatureStats]:
        spec = self.backend.features_spec
        stats = FeatureStats.load(self.path) if spec is not None else None
        if stats is not None and spec.shape[-1] not in (None, stats.feature_dim):
            log.warning("warning: %s has %d features but the feature statistics beside it are for %d; novelty is "
                        "off - export the model and its statistics together", self.path.name, spec.shape[-1],
                        stats.feature_dim)
            return None
        return stats

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

