"""argparse value types shared by the commands; each bad value echoes what was received."""

from __future__ import annotations

import argparse
import math


def int_at_least(low: int):
    """An argparse type: a whole number >= ``low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"Received {text!r}; expected a whole number >= {low}")
        return value

    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def thread_count(text: str) -> int:
    """An argparse type: interpreter threads, 1 to :data:`~edgecnn.runtime.base.MAX_THREADS`."""
    from edgecnn.runtime.base import threads_problem

    try:
        value = int(text)
    except ValueError:
        value = 0
    if threads_problem(value):
        raise argparse.ArgumentTypeError(f"Received {text!r}; {threads_problem(value)}")
    return value


def fraction(text: str) -> float:
    """An argparse type: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"Received {text!r}; expected a number between 0 and 1, e.g. 0.2")
    return value


def name_list(text: str) -> list[str]:
    """An argparse type: comma-separated names, e.g. ``cuda,cpu``."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"Received {text!r}; expected comma-separated names, e.g. cuda,cpu")
    return names


PROVIDERS_HELP = ("ONNX Runtime execution providers for .onnx models, in order of preference, e.g. cuda or "
                  "tensorrt,cuda (need onnxruntime-gpu; CPU stays the fallback; `edgecnn doctor` lists what is "
                  "available; default: cpu)")


def add_weights(parser: argparse.ArgumentParser) -> None:
    """``--weights imagenet|none|PATH``: backbone weights for the transfer architectures (train, quickstart)."""
    parser.add_argument("--weights", metavar="imagenet|none|PATH",
                        help="backbone weights for mobilenet_*: imagenet (Keras download, the default), none, "
                             "or a Keras .weights.h5 backbone file")


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"Received {text!r}; expected a number > 0")
    return value


MIN_MEGAPIXELS = 1e-6  # one pixel: less would switch the limit off
MAX_MEGAPIXELS = 100_000  # 100 gigapixels (300 GB decoded): far past any board's memory


def megapixels(text: str) -> float:
    """An argparse type: a pixel budget in megapixels, a finite number from :data:`MIN_MEGAPIXELS` to
    :data:`MAX_MEGAPIXELS`."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not MIN_MEGAPIXELS <= value <= MAX_MEGAPIXELS:  # nan too
        raise argparse.ArgumentTypeError(f"Received {text!r}; expected megapixels from {MIN_MEGAPIXELS:g} (one "
                                         f"pixel) to {MAX_MEGAPIXELS:g}, e.g. 50")
    return value


def add_max_megapixels(parser: argparse.ArgumentParser) -> None:
    """``--max-megapixels MP``: image files over this size are refused before decoding (a decompression bomb)."""
    from edgecnn.runtime.imageinfo import DEFAULT_MAX_PIXELS

    parser.add_argument("--max-megapixels", type=megapixels, default=DEFAULT_MAX_PIXELS / 1e6, metavar="MP",
                        help=f"refuse image files over MP megapixels, read from their header before decoding "
                             f"(default: {DEFAULT_MAX_PIXELS / 1e6:g})")


def max_pixels(args: argparse.Namespace) -> int:
    """``--max-megapixels`` in pixels."""
    return max(1, round(args.max_megapixels * 1e6))
