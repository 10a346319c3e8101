"""`edgecnn quickstart`."""

from __future__ import annotations

import argparse

from edgecnn.commands._args import add_weights, int_at_least, positive_int
from edgecnn.quickstart_arch import SCRATCH_EPOCHS, TRANSFER_ARCH, TRANSFER_IMG_SIZE

HELP = "train, export, run and compare a classifier end to end (built-in digits or --data DIR)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="edgecnn-quickstart",
                   help="output folder (default: %(default)s); an existing, non-empty one needs --exist-ok")
    p.add_argument("--exist-ok", "--force", dest="exist_ok", action="store_true",
                   help="write into an existing --out (an earlier quickstart's results there are replaced)")
    p.add_argument("--data", help="your own images: a folder with one sub-folder per class, or train/ and val/")
    p.add_argument("--arch", metavar="NAME",
                   help="architecture (see `edgecnn models`; default: automatic, i.e. simple_cnn for the built-in "
                        "digits, and for --data mobilenet_v2 transfer when ImageNet weights are available "
                        "(--weights PATH, Keras' cache or a download), else simple_cnn)")
    add_weights(p)
    p.add_argument("--epochs", type=positive_int,
                   help=f"training epochs (default: {SCRATCH_EPOCHS} from scratch; for transfer architectures the "
                        f"frozen-backbone phase, default as `edgecnn train`'s, followed by its fine-tuning)")
    p.add_argument("--img-size", type=int_at_least(8),
                   help=f"input size in pixels (default: {TRANSFER_IMG_SIZE} for {TRANSFER_ARCH}, else the "
                        f"architecture's)")


def run(args: argparse.Namespace) -> int:
    from edgecnn.quickstart import results_table, run_quickstart

    results = run_quickstart(args.out, args.data, epochs=args.epochs, arch=args.arch, weights=args.weights,
                             img_size=args.img_size, exist_ok=args.exist_ok)
    print(results_table(results))
    return 0
