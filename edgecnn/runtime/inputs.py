"""Expand command-line image inputs: files, folders (recursive) and glob patterns."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional

from edgecnn.runtime.preprocess import IMAGE_SUFFIXES

_GLOB_CHARS = frozenset("*?[")


def display_name(path: str | os.PathLike) -> str:
    """A path as valid Unicode text for output: bytes that are not UTF-8 become ``\\xNN`` (``caf\\xe9.jpg``).

    File names on Linux are bytes; Python keeps undecodable ones as lone surrogates, which would reach
    stdout as raw bytes and make a ``--json`` line invalid UTF-8.
    """
    return os.fsencode(path).decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class InputItem:
    """One image path to classify, or an input argument that matched nothing (``error`` set)."""

    path: str
    error: Optional[str] = None


def _images_in(folder: Path) -> list[str]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                found.append(os.path.join(root, name))
    return found


def expand_inputs(inputs: Iterable[str]) -> Iterator[InputItem]:
    """Files as given (any suffix: decoding decides), image files under folders, glob matches.

    An argument that names nothing, a folder without images or a pattern that
    matches nothing yields one item with ``error`` set.
    """
    seen: set[str] = set()
    for arg in inputs:
        path = Path(arg)
        if path.is_dir():
            found = _images_in(path)
            if not found:
                shown = ", ".join(sorted(IMAGE_SUFFIXES)[:4])
                yield InputItem(arg, f"no image files ({shown}, ...) under folder {arg}")
        elif path.exists() or not (_GLOB_CHARS & set(arg)):
            found = [arg]
        else:
            found = []
            for match in sorted(glob.glob(arg, recursive=True)):
                if os.path.isdir(match):
                    found.extend(_images_in(Path(match)))
                else:
                    found.append(match)
            if not found:
                yield InputItem(arg, f"no files match {arg!r}")
        for item in found:
            if item not in seen:
                seen.add(item)
                yield InputItem(item)
