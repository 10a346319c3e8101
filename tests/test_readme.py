"""The README's commands, not its sentences: the two set-up commands (CI runs the second), and every `edgecnn ...`
command in its code blocks and the docs' parses with edgecnn's real argparse (parsed only, nothing runs)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from edgecnn.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
SETUP = "python3 -m venv .venv && "


def shell_blocks(page: Path) -> list[str]:
    """Code blocks of commands: bash/sh blocks whole, console blocks' `$ ` lines (the rest is output)."""
    text = page.read_text(encoding="utf-8")
    blocks = re.findall(r"^```(?:bash|sh)\n(.*?)^```", text, flags=re.M | re.S)
    for console in re.findall(r"^```console\n(.*?)^```", text, flags=re.M | re.S):
        commands = re.findall(r"^\$ (.*(?:\\\n.*)*)", console, flags=re.M)
        blocks.append("\n".join(commands) + "\n")
    return blocks


def shell_lines(block: str) -> list[str]:
    """Each command line of a block: continuations joined, `# comments` removed."""
    out = []
    for line in re.sub(r"\\\n\s*", " ", block).splitlines():
        line = re.split(r"\s+#\s", line.strip(), maxsplit=1)[0].strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def simple_commands(line: str) -> list[list[str]]:
    """A shell line's simple commands as argv lists, split at `&&`, `||`, `;` and `|` outside quotes."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands, current = [], []
    for token in lexer:
        if token in ("&&", "||", ";", "|"):
            commands.append(current)
            current = []
        else:
            current.append(token)
    return [c for c in [*commands, current] if c]


def setup_commands() -> list[str]:
    """The README block made only of the `python3 -m venv ...` set-up commands."""
    blocks = [shell_lines(b) for b in shell_blocks(REPO / "README.md")]
    found = [lines for lines in blocks if lines and all(line.startswith(SETUP) for line in lines)]
    assert len(found) == 1, "the README needs one code block holding just the set-up commands"
    return found[0]


def edgecnn_commands(page: Path) -> list[list[str]]:
    """Every `edgecnn ...` (or `.../bin/edgecnn ...`) command of a page's shell blocks, as its argv."""
    return [argv for block in shell_blocks(page) for line in shell_lines(block) if "edgecnn" in line
            for argv in simple_commands(line) if argv[0] == "edgecnn" or argv[0].endswith("/bin/edgecnn")]


def test_readme_gives_exactly_two_setup_commands():
    commands = setup_commands()
    assert commands == [
        "python3 -m venv .venv && .venv/bin/pip install -e '.[train]' && .venv/bin/edgecnn quickstart",
        "python3 -m venv .venv && .venv/bin/pip install -q -e '.[dev]' && .venv/bin/python -m pytest",
    ]


def test_ci_runs_the_readme_test_command_then_the_slow_set():
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    readme = ci.index(setup_commands()[1])  # the fast set: a bare pytest deselects slow (tests/conftest.py)
    assert ".venv/bin/python -m pytest -m slow" in ci[readme + 1:]


def test_readme_stays_short():
    assert len((REPO / "README.md").read_text(encoding="utf-8").splitlines()) <= 200


def test_the_walkthrough_runs_train_export_deploy_and_camera():
    verbs = [argv[1] for argv in edgecnn_commands(REPO / "README.md")]
    assert [v for v in verbs if v in ("train", "export", "deploy", "camera")] == ["train", "export", "deploy", "camera"]


PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
COMMANDS = [(page, argv) for page in PAGES for argv in edgecnn_commands(page)]


@pytest.mark.parametrize("page,argv", COMMANDS, ids=[f"{p.name}:{shlex.join(a[1:])[:60]}" for p, a in COMMANDS])
def test_documented_command_parses(page, argv, capsys):
    command = shlex.join(argv)
    try:
        args = build_parser().parse_args(argv[1:])
    except SystemExit as exc:
        pytest.fail(f"{page.name}: `{command}` does not parse: {capsys.readouterr().err.strip()} (exit {exc.code})")
    assert getattr(args, "_run", None), f"{page.name}: `{command}` names no command"


def test_a_wrong_option_is_caught():
    """The parse check itself can fail: a misspelt option is refused by the real parser."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(shlex.split("train --arch mobilenet_v2 --data photos --img-szie 128"))
