"""`edgecnn` command line: argparse subcommands, each in edgecnn/commands/<name>.py.

A command module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``, keeping heavy imports inside ``run``. Register it in
COMMANDS below. User errors (EdgeCNNError) print one ``error:`` line, exit 2.

Results go to stdout; every other message goes through ``logging`` (loggers
``edgecnn.<package>``), configured here once: to stderr as plain lines, INFO
and up by default, WARNING and up with ``--quiet``, DEBUG with ``-v``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from edgecnn._version import __version__
from edgecnn.errors import EdgeCNNError
from edgecnn.native_logs import guarded_stderr, quiet_environment, show_native_logs

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
    "deploy",
    "collect",
    "doctor",
]


class Parser(argparse.ArgumentParser):
    """argparse with the error contract: one ``error:`` line (no usage block before it), exit code 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="edgecnn",
        formatter_class=lambda prog: argparse.HelpFormatter(prog, max_help_position=16, width=120),
        description="Train a CNN image classifier, export it for the edge, run and benchmark it on a device.",
    )
    parser.add_argument("--version", action="version", version=f"edgecnn {__version__}")
    _add_common(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name in COMMANDS:
        module = importlib.import_module(f"edgecnn.commands.{name.replace('-', '_')}")
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        _add_common(p, sub_command=True)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def _add_common(parser: argparse.ArgumentParser, sub_command: bool = False) -> None:
    """--debug, -v and -q, taken before or after the command name (documented once, on the main parser)."""
    for flags, text in ((["--debug"], "show full tracebacks instead of one-line errors"),
                        (["-v", "--verbose"], "more detail: debug messages too (e.g. the backend and preprocessing)"),
                        (["-q", "--quiet"], "only warnings and errors: no progress messages")):
        parser.add_argument(*flags, action="store_true", default=argparse.SUPPRESS if sub_command else False,
                            help=argparse.SUPPRESS if sub_command else text)


class _StderrHandler(logging.StreamHandler):
    """Writes each message to whatever ``sys.stderr`` is at that moment (tests and pipes swap it), never into a
    native call's capture of fd 2 (:class:`~edgecnn.native_logs.GuardedStderr`)."""

    @property
    def stream(self):
        return guarded_stderr

    @stream.setter
    def stream(self, value):
        pass


def configure_logging(verbose: bool = False, quiet: bool = False) -> None:
    """The one logging set-up: messages of the ``edgecnn`` loggers, as they are, to stderr."""
    logger = logging.getLogger("edgecnn")
    for handler in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    # absl (TensorFlow, Keras export) calls logging.basicConfig() on a handler-less root logger the first time it
    # logs: every edgecnn message would then print twice. A root handler that drops records keeps it from that.
    if not logging.root.handlers:
        logging.root.addHandler(logging.NullHandler())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    configure_logging(verbose=args.verbose, quiet=args.quiet)
    # Native libraries' log lines (TensorFlow, LiteRT, the converter, FFmpeg) are noise on a terminal;
    # --debug and -v keep them. Set before any command imports those libraries.
    show_native_logs(args.debug or args.verbose)
    quiet_environment()
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
