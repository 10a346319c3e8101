"""Surprises worth a line under the table: slow quantized models, accuracy drops, memory hogs.

Each rule compares rows of the same model at the same thread count. A quantized
row's baseline is the float ("none") row of the same runtime backend, so the
rules follow :data:`edgecnn.formats.FORMATS` without naming formats.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable, Optional

from edgecnn.bench.result import Row

INT8_MIN_SPEEDUP = 1.1  # int8 p50 must beat fp32 p50 by this factor, else "not faster"
ACCURACY_DROP_POINTS = 1.0  # percentage points below the reference accuracy
MEMORY_FACTOR = 4.0  # model memory above this many times the file size ...
MEMORY_SLACK_MB = 100.0  # ... and this many MB above it


@dataclass(frozen=True)
class Finding:
    rule: str  # dynamic-slower | int8-not-faster | int8-kernels | accuracy-drop | memory-high
    model: str
    format: str
    threads: Optional[int]
    message: str

    def to_dict(self) -> dict:
        return asdict(self)


def find(rows: Iterable[Row]) -> list[Finding]:
    """Every finding over ``rows``, in row order."""
    rows = [r for r in rows if r.measured]
    out: list[Finding] = []
    once_done: set[tuple[str, str, str]] = set()  # accuracy and memory: once per format, not per thread count
    for row in rows:
        base = baseline(row, rows)
        if base is not None and base.p50:
            ratio = row.p50 / base.p50
            speed = f"p50 {row.p50:.2f} ms vs {base.p50:.2f} ms for {base.format}, {ratio:.2f}x"
            if row.quantization == "dynamic" and ratio > 1.0:
                out.append(_finding("dynamic-slower", row,
                                    f"{row.format} is slower than {base.format} at {_threads(row)} ({speed}): dynamic "
                                    f"range quantizes activations at every call; ship the float or full-int8 model"))
            if row.quantization == "int8" and ratio > 1.0 / INT8_MIN_SPEEDUP:
                out.append(_finding("int8-not-faster", row,
                                    f"{row.format} is not faster than {base.format} at {_threads(row)} ({speed}): "
                                    f"this CPU/runtime lacks fast int8 kernels for the model; int8 still saves "
                                    f"size and memory, but fp32/fp16 may be the better choice here"))
        out += _once(once_done, "int8-kernels", row, _int8_kernels(row))
        out += _once(once_done, "accuracy", row, _accuracy_drop(row, rows))
        out += _once(once_done, "memory", row, _memory_high(_most_memory(row, rows)))
    return out


def _int8_kernels(row: Row) -> list[Finding]:
    """An int8 ONNX model on an x86 CPU without VNNI, whose ONNX Runtime kernels saturate (edgecnn.runtime.cpu)."""
    if row.backend != "onnx" or row.quantization != "int8":
        return []
    from edgecnn.card import find_card
    from edgecnn.errors import CardError
    from edgecnn.runtime.cpu import int8_saturates_here

    try:
        card = find_card(row.path) if row.path else None
    except CardError:
        card = None
    if not int8_saturates_here(card.format if card else row.format, card.extra if card else None):
        return []
    return [_finding("int8-kernels", row,
                     f"{row.format} is int8 ONNX and this x86 CPU has no VNNI: ONNX Runtime's int8 kernels "
                     f"saturate here (not on ARM), so its accuracy and agreement on this machine "
                     f"are lower than on the device; use the float ONNX or a TFLite model here")]


def baseline(row: Row, rows: list[Row]) -> Optional[Row]:
    """The float row of the same model, runtime backend and thread count (None for float rows)."""
    if row.quantization == "none":
        return None
    return next((r for r in rows if r.model == row.model and r.threads == row.threads
                 and r.backend == row.backend and r.quantization == "none"), None)


def reference_accuracy(row: Row, rows: list[Row]) -> Optional[Row]:
    """The row whose top-1 is the reference: the Keras model, else the best float row."""
    same = [r for r in rows if r.model == row.model and r.top1 is not None and r.quantization == "none"]
    keras = [r for r in same if r.backend == "keras"]
    pool = keras or same
    return max(pool, key=lambda r: r.top1) if pool else None


def _accuracy_drop(row: Row, rows: list[Row]) -> list[Finding]:
    ref = reference_accuracy(row, rows)
    if ref is None or row.top1 is None or ref is row or ref.format == row.format:
        return []
    drop = (ref.top1 - row.top1) * 100
    if drop <= ACCURACY_DROP_POINTS:
        return []
    return [_finding("accuracy-drop", row, f"{row.format} loses {drop:.1f} accuracy points against {ref.format} "
                                           f"(top-1 {row.top1:.1%} vs {ref.top1:.1%})")]


def _memory_high(row: Row) -> list[Finding]:
    mem, size = row.model_memory_mb, row.size_bytes
    if mem is None or not size:
        return []
    size_mb = size / 2**20
    if mem <= MEMORY_FACTOR * size_mb or mem - size_mb <= MEMORY_SLACK_MB:
        return []
    return [_finding("memory-high", row, f"{row.format} at {_threads(row)} takes {mem:.0f} MB of memory for a "
                                         f"{size_mb:.1f} MB file ({mem / size_mb:.0f}x): runtime arenas, "
                                         f"unpacked weights or thread buffers; check it fits the device")]


def _once(done: set, kind: str, row: Row, found: list[Finding]) -> list[Finding]:
    key = (kind, row.model, row.format)
    if key in done:
        return []
    done.add(key)
    return found


def _most_memory(row: Row, rows: list[Row]) -> Row:
    same = [r for r in rows if r.model == row.model and r.format == row.format and r.model_memory_mb is not None]
    return max(same, key=lambda r: r.model_memory_mb) if same else row


def _threads(row: Row) -> str:
    return "default threads" if row.threads is None else f"{row.threads} thread{'s' if row.threads != 1 else ''}"


def _finding(rule: str, row: Row, message: str) -> Finding:
    return Finding(rule, row.model, row.format, row.threads, message)
