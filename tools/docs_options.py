"""Option tables of the docs pages, rendered from edgecnn's own argparse parsers.

A page asks for a command's table with two markers; everything between them is replaced:

    <!-- options: train -->
    <!-- /options -->

    python tools/docs_options.py            # rewrite the tables in docs/*.md
    python tools/docs_options.py --check    # exit 1 naming each page whose table differs from --help

Run it after changing a command's options; tests/test_docs.py runs the check.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from edgecnn._io import write_text

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
BLOCK = re.compile(r"(<!-- options: ([\w][\w -]*?) -->\n)(.*?)(<!-- /options -->)", re.S)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(found[0].choices) if found else {}


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    """Each `edgecnn COMMAND`'s parser (and `COMMAND ACTION`'s, e.g. "collect pull"), built as `--help` builds it."""
    from edgecnn.cli import build_parser

    parsers = {}
    for name, parser in _subparsers(build_parser()).items():
        parsers[name] = parser
        parsers.update({f"{name} {action}": sub for action, sub in _subparsers(parser).items()})
    return parsers


def _flags(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    takes_value = action.nargs != 0
    metavar = action.metavar or (action.dest.upper() if not action.choices else "{" + ",".join(action.choices) + "}")
    metavar = metavar.replace("|", "\\|")
    return ", ".join(f"`{flag} {metavar}`" if takes_value else f"`{flag}`" for flag in action.option_strings)


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    text = parser._get_formatter()._expand_help(action) if action.help else ""
    text = " ".join(text.split()).replace("|", "\\|")
    return f"required; {text}" if action.required and action.option_strings else text


def render(parser: argparse.ArgumentParser) -> str:
    """The markdown table of a parser's arguments (help and hidden options left out)."""
    rows = ["| option | what it does |", "|---|---|"]
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        rows.append(f"| {_flags(action)} | {_help(parser, action)} |")
    return "\n".join(rows) + "\n"


def update(text: str, parsers: dict[str, argparse.ArgumentParser], page: str) -> str:
    """``text`` with every marked table rendered anew; ValueError for a command edgecnn does not have."""
    def table(match: re.Match) -> str:
        name = match.group(2)
        if name not in parsers:
            raise ValueError(f"{page}: <!-- options: {name} --> names no edgecnn command ({', '.join(parsers)})")
        return match.group(1) + render(parsers[name]) + match.group(4)
    return BLOCK.sub(table, text)


def pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def stale_pages() -> list[str]:
    """Docs pages whose option tables differ from what the parsers render now."""
    parsers = command_parsers()
    return [str(p.relative_to(REPO)) for p in pages()
            if update(p.read_text(encoding="utf-8"), parsers, p.name) != p.read_text(encoding="utf-8")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 naming each stale page")
    args = ap.parse_args(argv)
    if args.check:
        stale = stale_pages()
        for page in stale:
            print(f"stale option table: {page} (run: python tools/docs_options.py)", file=sys.stderr)
        return 1 if stale else 0
    parsers = command_parsers()
    for page in pages():
        old = page.read_text(encoding="utf-8")
        new = update(old, parsers, page.name)
        if new != old:
            write_text(page, new)
            print(f"updated {page.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
