"""Expand command-line image inputs: files, folders (recursive) and glob patterns."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional

from edgecnn.runtime.imageinfo import looks_like_image

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


def is_image_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a regular file in an image format OpenCV decodes, by its first bytes (not its suffix).

    FIFOs and devices are never opened (opening a FIFO blocks until a writer comes).
    """
    try:
        if not os.path.isfile(path):
            return False
        with open(path, "rb") as f:
            return looks_like_image(f.read(32))
    except (OSError, ValueError):
        return False


def image_files(folder: str | os.PathLike, recursive: bool = True) -> list[str]:
    """The image files in ``folder`` (recognised by content), in name order; hidden files and folders skipped."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
        for name in sorted(files):
            path = os.path.join(root, name)
            if not name.startswith(".") and is_image_file(path):
                found.append(path)
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
            found = image_files(path)
            if not found:
                yield InputItem(arg, f"no image files under folder {arg} (files are recognised by their content)")
        elif path.exists() or not (_GLOB_CHARS & set(arg)):
            found = [arg]
        else:
            found = []
            for match in sorted(glob.glob(arg, recursive=True)):
                if os.path.isdir(match):
                    found.extend(image_files(match))
                else:
                    found.append(match)
            if not found:
                yield InputItem(arg, f"no files match {arg!r}")
        for item in found:
            if item not in seen:
                seen.add(item)
                yield InputItem(item)
