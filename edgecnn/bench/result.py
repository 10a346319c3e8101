"""One benchmark row: a model in one format at one thread count, with every figure measured."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Optional

# Status values, in the order a row can end up in them.
OK = "ok"
VALIDATION_FAILED = "validation failed"  # exported, measured, but outside its format's tolerance
EXPORT_FAILED = "export failed"  # nothing to measure
FAILED = "failed"  # the measuring subprocess failed (load or inference error)


@dataclass
class Row:
    model: str
    format: str
    backend: str  # runtime table name: litert | onnx | keras
    quantization: str  # none | fp16 | dynamic | int8
    threads: Optional[int]  # None: the runtime's default
    status: str = OK
    reason: Optional[str] = None
    path: Optional[str] = None
    size_bytes: Optional[int] = None
    runtime: Optional[str] = None  # the interpreter that ran it, e.g. ai_edge_litert
    input: Optional[str] = None
    sources: Optional[dict] = None  # where normalization, colour order and labels came from (Classifier.sources)
    import_ms: Optional[float] = None
    load_ms: Optional[float] = None
    first_inference_ms: Optional[float] = None
    latency_ms: dict[str, float] = field(default_factory=dict)  # backend.run, batch 1
    classifier_latency_ms: dict[str, float] = field(default_factory=dict)  # Classifier.predict, end to end
    times_ms: list[float] = field(default_factory=list)  # raw backend.run timings (distribution plot)
    throughput: Optional[float] = None  # images/s at batch 1
    batch: Optional[int] = None
    batch_throughput: Optional[float] = None  # images/s at ``batch``
    batch_note: Optional[str] = None
    rss_before_load_mb: Optional[float] = None
    peak_rss_mb: Optional[float] = None
    num_classes: Optional[int] = None
    images: Optional[int] = None  # images classified for accuracy / agreement
    top1: Optional[float] = None  # 0..1, on --data
    top5: Optional[float] = None  # 0..1, only with more than 5 classes (as edgecnn evaluate)
    agreement: Optional[float] = None  # top-1 agreement with the Keras reference, 0..1
    agreement_source: Optional[str] = None  # "keras row" | "export validation"

    @property
    def measured(self) -> bool:
        return bool(self.latency_ms)

    @property
    def p50(self) -> Optional[float]:
        return self.latency_ms.get("p50")

    @property
    def model_memory_mb(self) -> Optional[float]:
        """Peak RSS above the process's RSS just before loading the model."""
        if self.peak_rss_mb is None or self.rss_before_load_mb is None:
            return None
        return round(self.peak_rss_mb - self.rss_before_load_mb, 1)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "model_memory_mb": self.model_memory_mb}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Row":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def take(self, result: "WorkerResult") -> None:
        """Copy a worker's measurements onto this row (every WorkerResult field that names a Row field)."""
        if result.error is not None:
            self.status, self.reason = FAILED, result.error
            return
        mine = {f.name for f in dataclasses.fields(self)}
        for f in dataclasses.fields(result):
            if f.name in mine:
                setattr(self, f.name, getattr(result, f.name))


@dataclass
class WorkerResult:
    """What one measuring subprocess (:mod:`edgecnn.bench.worker`) reports, as one JSON line."""

    error: Optional[str] = None  # first line of the failure; nothing else is set then
    runtime: Optional[str] = None  # the interpreter that ran it, e.g. ai_edge_litert
    input: Optional[str] = None  # the model input, described
    sources: Optional[dict] = None  # Classifier.sources: edgecnn card, TFLite metadata, assumed, ...
    num_classes: Optional[int] = None
    import_ms: Optional[float] = None  # importing the interpreter library
    rss_before_load_mb: Optional[float] = None
    load_ms: Optional[float] = None  # Classifier() construction
    first_inference_ms: Optional[float] = None
    latency_ms: dict[str, float] = field(default_factory=dict)  # backend.run, batch 1
    times_ms: list[float] = field(default_factory=list)
    throughput: Optional[float] = None
    classifier_latency_ms: dict[str, float] = field(default_factory=dict)  # Classifier.predict, end to end
    peak_rss_mb: Optional[float] = None
    top_k: Optional[list[list[int]]] = None  # per image, the top-5 class indices (with --accuracy)
    batch: Optional[int] = None
    batch_latency_ms: Optional[dict[str, float]] = None
    batch_throughput: Optional[float] = None
    batch_note: Optional[str] = None  # why the batch size could not be measured

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "WorkerResult":
        data = json.loads(text)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
