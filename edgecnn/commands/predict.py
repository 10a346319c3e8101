"""`edgecnn predict MODEL INPUTS...`: classify image files, folders and globs."""

from __future__ import annotations

import argparse
import logging
import math

from edgecnn.card import OUTPUT_KINDS
from edgecnn.commands._args import (
    PROVIDERS_HELP,
    add_max_megapixels,
    max_pixels,
    name_list,
    positive_int,
    thread_count,
)

HELP = "classify images (files, folders, globs) with a .tflite/.onnx/.keras model"

log = logging.getLogger("edgecnn.commands")


def _floats(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"Received {text!r}; expected a number or 3 comma-separated numbers (R,G,B)"
        ) from None
    if len(values) not in (1, 3):
        raise argparse.ArgumentTypeError(f"Received {text!r}; expected 1 or 3 comma-separated numbers")
    if not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"Received {text!r}; expected finite numbers (not nan or inf)")
    return values


def _std(text: str) -> list[float]:
    """``--std``: as ``--mean``, and none so near 0 that (pixel - mean) / std overflows a float32 input: no value under
    255 / (the largest float32) in size."""
    import numpy as np

    values = _floats(text)
    least = 255 / float(np.finfo(np.float32).max)
    if not all(abs(v) >= least for v in values):
        raise argparse.ArgumentTypeError(f"Received {text!r}; expected std values of at least {least:.1e} in size "
                                         f"(255 / std must fit a 32-bit float), e.g. 127.5")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="model file: .tflite, .onnx, .keras/.h5, or a SavedModel folder")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="image files, folders (searched recursively) or glob patterns (quote them: 'imgs/*.jpg')")
    parser.add_argument("--labels", metavar="FILE",
                        help="labels file, one per line (default: the model card's labels). A file with one "
                             "extra first line 'background' is aligned automatically")
    parser.add_argument("--top-k", type=positive_int, default=5, metavar="K", help="classes to show (default: 5)")
    parser.add_argument("--json", action="store_true",
                        help='one JSON object per line: {"input", "top": [{"label", "index", "score"}], "latency_ms"}')
    parser.add_argument("--backend", choices=["litert", "onnx", "keras"],
                        help="runtime to use (default: chosen by the model's file suffix)")
    parser.add_argument("--threads", type=thread_count, metavar="N", help="interpreter threads (default: runtime's)")
    parser.add_argument("--delegate", metavar="PATH",
                        help="TFLite delegate library, e.g. libedgetpu.so.1 for a Coral Edge TPU")
    parser.add_argument("--providers", type=name_list, metavar="LIST", help=PROVIDERS_HELP)
    parser.add_argument("--mean", type=_floats, metavar="M",
                        help="normalization (pixel - mean) / std, one value or R,G,B; overrides the model card "
                             "(default without a card, float inputs: 127.5)")
    parser.add_argument("--std", type=_std, metavar="S", help="see --mean (default without a card: 127.5)")
    parser.add_argument("--crop", choices=["stretch", "center"],
                        help="resize by stretching (default) or center-crop to the model's aspect ratio first")
    parser.add_argument("--output-kind", choices=OUTPUT_KINDS,
                        help="what the model outputs (default: the model card's; logits get a softmax)")
    add_max_megapixels(parser)


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from edgecnn.errors import DataError
    from edgecnn.runtime.classifier import Classifier
    from edgecnn.runtime.inputs import display_name, expand_inputs

    clf = Classifier(
        args.model,
        labels=args.labels,
        threads=args.threads,
        backend=args.backend,
        delegate=args.delegate,
        providers=args.providers,
        mean=args.mean,
        std=args.std,
        crop=args.crop,
        output_kind=args.output_kind,
        max_pixels=max_pixels(args),
    )
    log.debug(clf.describe())
    failed = 0
    total = 0
    for item in expand_inputs(args.inputs):
        total += 1
        if item.error:
            failed += 1
            log.error(f"error: {display_name(item.error)}")  # one line, whatever the file name holds
            continue
        try:
            pred = clf.predict(item.path, top_k=args.top_k)
        except DataError as exc:
            failed += 1
            log.error(f"error: {display_name(str(exc))}")
            continue
        if args.json:
            print(json.dumps(pred.to_dict(), ensure_ascii=False))
        else:
            _print_human(pred)
        sys.stdout.flush()
    if failed:
        log.error(f"{failed} of {total} input(s) failed")
        return 1
    return 0


def _print_human(pred) -> None:
    from edgecnn.runtime.inputs import display_name

    best = pred.top[0]
    print(f"{display_name(pred.input)}: {best.label}  {best.score:.4f}  {pred.feedback}  ({pred.latency_ms:.1f} ms)")
    if len(pred.top) > 1:
        for rank, item in enumerate(pred.top, 1):
            print(f"  {rank:>2}. {item.score:.4f}  {item.label}")
