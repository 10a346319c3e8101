"""The install steps of ``devices/<board>/README.md``, as the harness runs them.

The README's "## Install" section holds two bash blocks: the first runs on the
user's computer (it builds the wheel with ``pip wheel``; ``scp`` copies it to the
board), the second on the board. The harness runs the first block's ``pip wheel``
line on this machine, copies the wheel into the emulated board's home folder as
``scp`` would, and runs the second block there as one bash script (``set -e``),
exactly as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

VENV = "~/edgecnn-venv"  # where the READMEs put edgecnn on the board


@dataclass
class InstallSteps:
    readme: Path
    build: str  # the `pip wheel` command, run in the checkout
    board: str  # the board's block, run as one bash script


def _section(text: str, title: str) -> str:
    parts = re.split(r"^## ", text, flags=re.M)
    for part in parts[1:]:
        if part.splitlines()[0].strip().lower() == title.lower():
            return part
    return ""


def _blocks(section: str) -> list[str]:
    return re.findall(r"^\s*```(?:bash|sh)\n(.*?)^\s*```", section, flags=re.M | re.S)


def _commands(block: str) -> list[str]:
    return [line.strip() for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]


def install_steps(readme: Path) -> InstallSteps:
    """The install commands of a device README; ValueError naming what is missing when the README changed shape."""
    blocks = _blocks(_section(readme.read_text(encoding="utf-8"), "Install"))
    if len(blocks) < 2:
        raise ValueError(f"{readme}: '## Install' needs two bash blocks (on your computer; on the board)")
    build = [line for line in _commands(blocks[0]) if " wheel " in f" {line} "]
    if len(build) != 1:
        raise ValueError(f"{readme}: the first Install block needs exactly one `pip wheel` line")
    if VENV not in blocks[1]:
        raise ValueError(f"{readme}: the board's Install block no longer installs into {VENV}")
    return InstallSteps(readme, strip_comment(build[0]), blocks[1])


def strip_comment(line: str) -> str:
    """``cmd   # why`` -> ``cmd`` (a `#` after two spaces starts the README's comment)."""
    return re.split(r"\s{2,}#", line, maxsplit=1)[0].strip()


def board_commands(block: str) -> list[tuple[str, str]]:
    """The board block as (user, command) pairs: ``sudo X && sudo Y`` runs ``X && Y`` as root (qemu-user
    cannot run the setuid sudo), anything else as the board's user. Mixing both in one line is refused."""
    joined = re.sub(r"\\\n\s*", " ", block)
    out = []
    for line in joined.splitlines():
        command = line.strip()
        if not command or command.startswith("#"):
            continue
        parts = re.split(r"\s*(?:&&|;)\s*", strip_comment(command))
        sudo = [p.startswith("sudo ") for p in parts]
        if any(sudo) and not all(sudo):
            raise ValueError(f"cannot run a line that mixes sudo and user commands: {command}")
        out.append(("root", re.sub(r"(^|&&\s*|;\s*)sudo\s+", r"\1", command)) if all(sudo) else ("user", command))
    return out
