"""The folder `edgecnn collect pull` fills: frames sorted into ``<predicted class>/`` sub-folders, ready to relabel.

Layout of ``OUT``::

    <class>/<host>-<stem>.jpg     a pulled frame, in the folder of the class the model predicted: a person fixes
                                  the label by moving the file to another class folder
    .sidecars/<host>-<stem>.json  its sidecar as the camera wrote it (hidden: training sees class folders only)
    index.csv                     one row per frame ever pulled: file, host, time, predicted, score, rule, novelty

The folder is a class-per-folder dataset as it is (``edgecnn train --data base --data OUT``). A frame is stored
from a board's archive only when the sha256 of its picture and sidecar match the board's manifest; its files are
written through a temporary file and renamed, and everything is on disk (``os.sync``) before the board removes
anything. A frame the index already names is not stored again, wherever a person has moved it since (a re-run,
or a pull interrupted before the board removed it).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from edgecnn._io import write_bytes
from edgecnn.collect import store
from edgecnn.errors import OutputError

log = logging.getLogger(__name__)

INDEX_FILE = "index.csv"
SIDECARS = ".sidecars"
MANIFEST = "manifest.json"  # in a board's archive: [{"stem", "image_sha256", "sidecar_sha256"}, ...]
INDEX_COLUMNS = ("file", "host", store.TIME, store.PREDICTED, store.SCORE, store.RULE, store.NOVELTY)
UNKNOWN_CLASS = "unknown"  # the folder of a frame whose sidecar names no prediction


@dataclass
class Stored:
    """What one board's archive gave: the stems now safe here (the board may remove them), and counts."""

    verified: list[str] = field(default_factory=list)
    new: int = 0
    already: int = 0
    corrupt: int = 0


def host_name(spec: str) -> str:
    """A host as it appears in file names: ``pi@cam1.local:22`` -> ``pi_cam1.local_22``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", spec).strip("._") or "host"


def class_folder(label) -> str:
    """A predicted label as a folder name (no path separators, not hidden)."""
    name = re.sub(r"[/\\\x00]+", "_", str(label or "")).strip().lstrip(".")
    return name or UNKNOWN_CLASS


def read_index(out: Path) -> list[dict]:
    try:
        with open(out / INDEX_FILE, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        return []


def _write_index(out: Path, rows: list[dict]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=INDEX_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_bytes(out / INDEX_FILE, text.getvalue().encode("utf-8"))


def _members(archive: Path) -> tuple[tarfile.TarFile, list[dict]]:
    try:
        tar = tarfile.open(archive, "r")
    except (OSError, tarfile.TarError) as exc:
        raise OutputError(f"the archive pulled from the board ({archive.name}) is unreadable ({exc}); pull "
                          f"again") from None
    try:
        manifest = json.loads(tar.extractfile(MANIFEST).read())
    except (KeyError, AttributeError, ValueError, tarfile.TarError) as exc:
        tar.close()
        raise OutputError(f"the archive pulled from the board has no readable {MANIFEST} ({exc}); pull again") from None
    return tar, manifest


def _read_member(tar: tarfile.TarFile, name: str, sha256: str) -> bytes | None:
    """A member's bytes when its sha256 matches the board's; None otherwise (never extracted to a path)."""
    try:
        data = tar.extractfile(name).read()
    except (KeyError, AttributeError, tarfile.TarError):
        return None
    return data if hashlib.sha256(data).hexdigest() == sha256 else None


def _write_frame(out: Path, file: str, name: str, picture: bytes, sidecar: bytes) -> None:
    try:
        write_bytes(out / SIDECARS / f"{name}{store.SIDECAR_SUFFIX}", sidecar)
        write_bytes(out / file, picture)
    except OSError as exc:
        raise OutputError(f"cannot write {out / file} ({exc.strerror or exc})") from None


def _row(file: str, host: str, meta: dict) -> dict:
    row = {key: meta.get(key) for key in INDEX_COLUMNS[2:]}
    return {"file": file, "host": host, **{k: "" if v is None else v for k, v in row.items()}}


def store_archive(archive: Path, out: Path, host: str) -> Stored:
    """Store the verified frames of one board's archive in ``out`` and index them; the archive is then removed."""
    rows = read_index(out)
    known = {Path(r["file"]).name for r in rows}
    result = Stored()
    tar, manifest = _members(archive)
    with tar:
        for item in manifest:
            stem = str(item.get("stem", ""))
            name = f"{host_name(host)}-{stem}"
            if f"{name}{store.IMAGE_SUFFIX}" in known:
                result.verified.append(stem)
                result.already += 1
                continue
            picture = _read_member(tar, stem + store.IMAGE_SUFFIX, item.get("image_sha256", ""))
            sidecar = _read_member(tar, stem + store.SIDECAR_SUFFIX, item.get("sidecar_sha256", ""))
            if picture is None or sidecar is None or not store.STEM_RE.match(stem):
                result.corrupt += 1  # stays on the board; the next pull tries again
                continue
            try:
                meta = json.loads(sidecar)
            except ValueError:
                meta = {}
            file = f"{class_folder(meta.get(store.PREDICTED))}/{name}{store.IMAGE_SUFFIX}"
            _write_frame(out, file, name, picture, sidecar)
            rows.append(_row(file, host, meta))
            known.add(f"{name}{store.IMAGE_SUFFIX}")
            result.verified.append(stem)
            result.new += 1
    if result.new:
        os.sync()  # the frames on disk before the index names them (a sync per archive, not an fsync per file)
        try:
            _write_index(out, rows)
        except OSError as exc:
            raise OutputError(f"cannot write {out / INDEX_FILE} ({exc.strerror or exc})") from None
        os.sync()  # and the index, before the board removes anything
    archive.unlink()
    if result.corrupt:
        log.warning(f"warning: {host}: {result.corrupt} frames did not match their checksum; left on the board")
    return result
