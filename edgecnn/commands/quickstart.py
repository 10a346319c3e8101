"""`edgecnn quickstart`."""

from __future__ import annotations

import argparse

from edgecnn.commands._args import int_at_least, positive_int

HELP = "train, export, run and compare a classifier end to end (built-in digits or --data DIR)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="edgecnn-quickstart",
                   help="output folder (default: %(default)s); an existing, non-empty one needs --exist-ok")
    p.add_argument("--exist-ok", "--force", dest="exist_ok", action="store_true",
                   help="write into an existing --out (an earlier quickstart's results there are replaced)")
    p.add_argument("--data", help="your own images: a folder with one sub-folder per class, or train/ and val/")
    p.add_argument("--epochs", type=positive_int, default=8, help="training epochs (default: %(default)s)")
    p.add_argument("--img-size", type=int_at_least(8), help="input size in pixels (default: the architecture's)")


def run(args: argparse.Namespace) -> int:
    from edgecnn.quickstart import results_table, run_quickstart

    results = run_quickstart(args.out, args.data, epochs=args.epochs, img_size=args.img_size,
                             exist_ok=args.exist_ok)
    print(results_table(results))
    return 0
