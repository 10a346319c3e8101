"""`edgecnn` command line: argparse subcommands, each in edgecnn/commands/<name>.py.

A command module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``, keeping heavy imports inside ``run``. Register it in
COMMANDS below. User errors (EdgeCNNError) print one ``error:`` line, exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from edgecnn import __version__
from edgecnn.errors import EdgeCNNError

# Order is the order shown by `edgecnn --help`.
COMMANDS = [
    "quickstart",
    "models",
    "train",
    "evaluate",
    "export",
    "predict",
    "camera",
    "benchmark",
    "doctor",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgecnn",
        formatter_class=lambda prog: argparse.HelpFormatter(prog, max_help_position=16, width=120),
        description="Train a CNN image classifier, export it for the edge, run and benchmark it on a device.",
    )
    parser.add_argument("--version", action="version", version=f"edgecnn {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name in COMMANDS:
        module = importlib.import_module(f"edgecnn.commands.{name.replace('-', '_')}")
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    # TensorFlow's C++ start-up chatter (CPU features, oneDNN) is noise on a terminal; --debug keeps it.
    if "--debug" not in (sys.argv[1:] if argv is None else argv):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except EdgeCNNError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # e.g. --out under a file, a read-only folder, a full disk
        if args.debug:
            raise
        where = f" {exc.filename}" if exc.filename else ""
        print(f"error: cannot write or read{where}: {exc.strerror or exc}; check the path and its permissions",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
