"""`edgecnn models`: the registered architectures, their default input size and parameter count."""

from __future__ import annotations

import argparse

from edgecnn.commands._args import int_at_least

HELP = "list the trainable architectures (name, default input size, parameters)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style name filter, e.g. 'mobilenet*'")
    parser.add_argument("--classes", type=int_at_least(2), default=5, metavar="N",
                        help="classes assumed for the parameter count (default: 5; binary models have 2)")
    parser.add_argument("--no-params", action="store_true", help="skip building models to count parameters (fast)")


def parameter_count(name: str, num_classes: int) -> int:
    """Parameters of ``name`` built at its default size (no pretrained weights)."""
    from edgecnn.models import create_model, get_spec

    spec = get_spec(name)
    size = spec.default_size
    return create_model(name, 2 if spec.binary else num_classes, (size, size, 3)).count_params()


def run(args) -> int:
    from edgecnn.errors import UsageError
    from edgecnn.models import get_spec, list_models

    names = list_models(args.pattern)
    if not names:
        raise UsageError(f"no architecture matches {args.pattern!r}; known: {', '.join(list_models())}")
    rows = []
    for name in names:
        spec = get_spec(name)
        params = "" if args.no_params else f"{parameter_count(name, args.classes):,}"
        kind = "transfer" if spec.transfer else ("binary" if spec.binary else "")
        rows.append((name, f"{spec.default_size}px", params, kind, spec.description))
    header = ("name", "size", "params" if not args.no_params else "", "kind", "description")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    for row in [header] + rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4])
    return 0
