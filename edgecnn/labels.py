"""Class labels: reading, writing and aligning them with a model's outputs."""

from __future__ import annotations

import os
from pathlib import Path

from edgecnn._io import special_file, write_text
from edgecnn.errors import LabelsError


def read_labels(path: str | os.PathLike) -> list[str]:
    """Read one label per line (blank trailing lines ignored; ``0 cat`` / ``0: cat`` prefixes stripped)."""
    path = Path(path)
    special = special_file(path)
    if special:
        raise LabelsError(f"labels file {path} is {special}, not a text file; pass a text file with one label per line")
    if not path.is_file():
        raise LabelsError(f"labels file not found: {path}; pass a text file with one label per line")
    try:
        lines = label_lines(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise LabelsError(f"labels file {path} is not UTF-8 text; pass a text file with one label per line") from None
    labels = [_strip_index(line, i) for i, line in enumerate(lines)]
    if not labels:
        raise LabelsError(f"labels file {path} is empty; it needs one label per line")
    return labels


def label_lines(text: str) -> list[str]:
    """One label per line of ``text``, each stripped, blank trailing lines dropped (files and embedded labels)."""
    lines = [line.strip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _strip_index(line: str, i: int) -> str:
    for sep in (": ", ":", " ", "\t"):
        head, found, tail = line.partition(sep)
        if found and head == str(i) and tail.strip():
            return tail.strip()
    return line


def write_labels(path: str | os.PathLike, labels: list[str]) -> Path:
    return write_text(path, "".join(f"{label}\n" for label in labels))


def align_labels(labels: list[str], num_outputs: int, source: str = "labels") -> list[str]:
    """Return labels matching ``num_outputs`` model outputs.

    A list with one extra leading ``background`` entry (TF-slim style) is
    aligned by dropping it; a binary sigmoid model (1 output) takes 2 labels.
    Any other mismatch is an error.
    """
    if num_outputs == 1 and len(labels) == 2:
        return list(labels)
    if len(labels) == num_outputs:
        return list(labels)
    if len(labels) == num_outputs + 1 and labels[0].strip().lower() == "background":
        return list(labels[1:])
    raise LabelsError(
        f"{source} has {len(labels)} labels but the model has {num_outputs} outputs; "
        f"pass a labels file with {num_outputs} lines (or {num_outputs + 1} starting with 'background')"
    )
