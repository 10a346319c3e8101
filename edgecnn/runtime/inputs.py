"""Expand command-line image inputs: files, folders (recursive) and glob patterns."""

from __future__ import annotations

import glob
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional

from edgecnn.runtime.imageinfo import looks_like_image

_GLOB_CHARS = frozenset("*?[")


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def display_name(path: str | os.PathLike) -> str:
    """A path (or any text about one) as one line of valid, unambiguous Unicode text for output: bytes that are not
    UTF-8 become ``\\xNN`` (``caf\\xe9.jpg``), a backslash ``\\\\``, a newline ``\\n`` (and ``\\r``, ``\\t``), any other
    unprintable character ``\\uNNNN``; two different names never show the same.

    File names on Linux are bytes; Python keeps undecodable ones as lone surrogates, which would reach
    stdout as raw bytes and make a ``--json`` line invalid UTF-8.
    """
    text = os.fsdecode(path)
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(_escape(char) for char in text)


def _escape(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    if "\udc80" <= char <= "\udcff":  # an undecodable byte, which os.fsdecode keeps as a lone surrogate
        return f"\\x{ord(char) - 0xdc00:02x}"
    if char.isprintable():
        return char
    return f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}"


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


def glob_once(pattern: str) -> list[str]:
    """``glob.glob(pattern, recursive=True)``, except that ``**`` visits each real folder once: symlinks to folders
    are followed, but a link back into a folder already searched (``loop -> .``) is not searched again."""
    parts = pattern.split("/")
    if "**" not in parts:
        return glob.glob(pattern)
    i = parts.index("**")
    prefix, rest = "/".join(parts[:i]) or ("/" if i else ""), "/".join(parts[i + 1:])
    bases = glob.glob(prefix) if prefix else [""]
    found = []
    for base in bases:
        folders = _real_folders(base)
        if rest:
            for folder in folders:
                found += glob_once(os.path.join(glob.escape(folder), rest))
        else:  # a final ``**``: the folders and the files in them (``**/``: the folders only)
            found += [folder for folder in folders if folder]
            if not pattern.endswith("/"):
                found += [path for folder in folders for path in _names(folder) if not os.path.isdir(path)]
    return found


def _real_folders(base: str) -> list[str]:
    """``base`` and the folders under it (hidden ones skipped, as ``**`` skips them), each real folder once."""
    found, visited, stack = [], set(), [base]
    while stack:
        folder = stack.pop()
        try:
            info = os.stat(folder or ".")
        except OSError:
            continue
        if (info.st_dev, info.st_ino) in visited or not stat.S_ISDIR(info.st_mode):
            continue
        visited.add((info.st_dev, info.st_ino))
        found.append(folder)
        stack += [path for path in reversed(_names(folder)) if os.path.isdir(path)]
    return found


def _names(folder: str) -> list[str]:
    """The paths of the entries of ``folder`` that do not start with a dot."""
    try:
        return [os.path.join(folder, name) for name in sorted(os.listdir(folder or ".")) if not name.startswith(".")]
    except OSError:
        return []


def expand_inputs(inputs: Iterable[str]) -> Iterator[InputItem]:
    """Files as given (any suffix: decoding decides), image files under folders, glob matches.

    An argument that names nothing, a folder without images or a pattern that
    matches nothing yields one item with ``error`` set. Each real file comes once, whatever the links to it.
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
            for match in sorted(glob_once(arg)):
                if os.path.isdir(match):
                    found.extend(image_files(match))
                else:
                    found.append(match)
            if not found:
                yield InputItem(arg, f"no files match {arg!r}")
        for item in found:
            real = os.path.realpath(item)
            if real not in seen:
                seen.add(real)
                yield InputItem(item)
