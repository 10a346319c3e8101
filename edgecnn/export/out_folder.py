"""The export's ``--out`` folder: claimed for the export, checked for artifacts already there, and marked
unfinished while it is written.

While an export writes, a note in the folder (:data:`UNFINISHED_FILE`) lists the files it may leave half-done,
so that a re-run after an interrupted export (Ctrl-C, a kill) replaces them without ``--force``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from pathlib import Path

from edgecnn._io import write_json
from edgecnn.errors import UsageError
from edgecnn.formats import Format
from edgecnn.rundir import EXPORT_REPORT_FILE, FEATURE_STATS_FILE, LABELS_FILE, claim_folder, release_folder

log = logging.getLogger("edgecnn.export")

UNFINISHED_FILE = ".export-unfinished.json"  # in --out while an export writes: {"files": [names it may write]}


@contextlib.contextmanager
def claimed(out: Path):
    """Hold ``out`` for this export (:func:`~edgecnn.rundir.claim_folder`), from the checks on when it exists."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; pass a folder for the exported models")
    if out.is_dir():
        claim_folder(out, "--out", "export")
    try:
        yield
    finally:
        release_folder(out)


def check_existing(out: Path, fmts: list[Format], force: bool) -> None:
    """UsageError for artifacts already in ``out`` unless ``force``, except those an interrupted export left."""
    existing = [f.filename for f in fmts if (out / f.filename).exists()]
    left = left_unfinished(out)  # ``out`` is claimed: the export that listed them has ended
    replaced = [name for name in existing if name in left]
    existing = [name for name in existing if name not in left]
    if existing and not force:
        raise UsageError(f"{', '.join(existing)} already exist in {out}; pass --force to overwrite "
                         f"or choose another --out")
    if replaced:
        log.info(f"note: replacing {', '.join(replaced)} in {out}, left by an export that did not finish")


def left_unfinished(out: Path) -> set[str]:
    """The files an interrupted export into ``out`` may have left (its :data:`UNFINISHED_FILE`), else none."""
    try:
        return {str(name) for name in json.loads((out / UNFINISHED_FILE).read_text(encoding="utf-8"))["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def mark_unfinished(out: Path, fmts: list[Format]) -> Path:
    """Write :data:`UNFINISHED_FILE` listing what this export writes (and what an interrupted one left), after
    removing the temporary files a killed export left beside them; its path."""
    names = (left_unfinished(out) | {f.filename for f in fmts}
             | {LABELS_FILE, EXPORT_REPORT_FILE, FEATURE_STATS_FILE, UNFINISHED_FILE})
    for name in names:
        for leftover in out.glob(f".{name}.*"):  # atomic_path's temporaries: ".model.onnx.k2j4h1.onnx"
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
    return write_json(out / UNFINISHED_FILE, {"files": sorted(names - {UNFINISHED_FILE})})
