"""`edgecnn doctor`: which inference backends work here, versions, CPU features, cameras, display."""

from __future__ import annotations

import argparse

HELP = "check this machine: inference backends (and why not), versions, CPU features, cameras, display"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument("--import-tensorflow", action="store_true",
                        help="really import TensorFlow/Keras to check them (slow; default: look them up only)")


def run(args: argparse.Namespace) -> int:
    import json

    from edgecnn.doctor import diagnose, render

    report = diagnose(import_tensorflow=args.import_tensorflow)
    print(json.dumps(report.to_dict(), indent=2) if args.json else render(report))
    return 0 if report.ok else 1
