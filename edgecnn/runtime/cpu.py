"""Which int8 models this CPU computes wrongly: ONNX Runtime's int8 kernels on x86 without VNNI saturate.

On x86 CPUs without VNNI, ONNX Runtime multiplies int8 weights with VPMADDUBSW,
whose 16-bit pair sums saturate: an int8 ONNX model then scores lower than its
int8 arithmetic does on ARM (or, by design, on x86 with VNNI: AVX-VNNI, AVX512-VNNI). The
card of such a model says where they do not (``int8_saturation_free_on``; older
cards say ``int8_exact_on``) and the runtime warns once per
model on such a CPU. No TensorFlow, no numpy.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from edgecnn import machine

log = logging.getLogger("edgecnn.runtime")

_warned: set[str] = set()


@functools.lru_cache(maxsize=1)
def x86_without_vnni() -> bool:
    """True on an x86 CPU without VNNI, where ONNX Runtime's int8 kernels can saturate (read once)."""
    return machine.x86_without_vnni()


def int8_saturates_here(fmt: str, extra: dict | None = None) -> bool:
    """Whether an ONNX int8 model (format name, card extras) loses accuracy to this CPU's int8 kernels."""
    extra = extra or {}
    free_on = extra.get("int8_saturation_free_on", extra.get("int8_exact_on"))
    if free_on is None and fmt != "onnx-int8":
        return False
    if free_on is not None and "x86" in free_on:  # does not saturate on any x86 CPU
        return False
    return x86_without_vnni()


def already_warned(path) -> None:
    """Do not warn about ``path`` in this process (a caller that reports the figures itself)."""
    _warned.add(str(path))


def warn_int8_kernels(path: Path, card, backend: str) -> None:
    """One warning per model and process when ``card`` describes an int8 ONNX model this CPU computes inexactly."""
    if card is None or backend != "onnx" or card.quantization != "int8":
        return
    if not int8_saturates_here(card.format, card.extra) or str(path) in _warned:
        return
    _warned.add(str(path))
    log.warning("warning: %s is int8 ONNX and this x86 CPU has no VNNI: ONNX Runtime's int8 kernels saturate "
                "here (not on ARM), so it can score several points lower: use the float "
                "ONNX or a TFLite model on this machine", Path(path).name)
