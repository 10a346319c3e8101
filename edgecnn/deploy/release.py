"""A release: an export folder's files for one board, plus ``release.json`` naming the model the service runs.

Imported on the board (``edgecnn camera RELEASE_DIR``) and on the controller: standard library only.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from edgecnn.card import CARD_SUFFIX
from edgecnn.errors import ModelError, UsageError
from edgecnn.formats import FORMATS
from edgecnn.rundir import EXPORT_REPORT_FILE, FEATURE_STATS_FILE, LABELS_FILE, RELEASE_FILE

AUTO = "auto"  # --format auto: the board's own benchmark picks among the formats that passed


def resolve_model(path: str | os.PathLike) -> Path:
    """The model a path names: a release folder (or the ``current`` link) gives the model its release.json names."""
    path = Path(path)
    release = path / RELEASE_FILE
    if not (path.is_dir() and release.is_file()):
        return path
    try:
        model = json.loads(release.read_text(encoding="utf-8"))["model"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{release} is not a valid release file ({exc}); deploy the release again") from None
    if not isinstance(model, str) or Path(model).name != model or not (path / model).is_file():
        raise ModelError(f"{release} names a model that is not in its folder ({model!r}); deploy the release again")
    return path / model


@dataclass(frozen=True)
class Artifact:
    format: str
    filename: str
    verdict: str  # pass | fail | inconclusive | not validated


def export_artifacts(export_dir: Path) -> list[Artifact]:
    """The models an export folder holds, with the verdict its report gives each (table order)."""
    if not export_dir.is_dir():
        raise UsageError(f"{export_dir} is not a folder; pass the folder `edgecnn export --out` wrote")
    try:
        report = json.loads((export_dir / EXPORT_REPORT_FILE).read_text(encoding="utf-8"))
        entries = {a["format"]: a for a in report["artifacts"]}
    except (OSError, ValueError, KeyError, TypeError):
        raise UsageError(f"{export_dir} has no readable {EXPORT_REPORT_FILE}; deploy a folder written by "
                         f"`edgecnn export` (its report carries each format's verdict)") from None
    found = []
    for fmt in FORMATS.values():
        entry = entries.get(fmt.name)
        if entry and fmt.backend != "keras" and (export_dir / fmt.filename).is_file():
            found.append(Artifact(fmt.name, fmt.filename, (entry.get("validation") or {}).get("verdict")
                                  or "not validated"))
    if not found:
        raise UsageError(f"{export_dir} holds no TFLite or ONNX model; export one first (edgecnn export ...)")
    return found


def choose(artifacts: list[Artifact], fmt: str) -> list[Artifact]:
    """The artifacts a release carries: the one asked for, or every one that passed (``auto``)."""
    if fmt == AUTO:
        passed = [a for a in artifacts if a.verdict == "pass"]
        if not passed:
            verdicts = ", ".join(f"{a.format} {a.verdict}" for a in artifacts)
            raise UsageError(f"no format of this export passed its check ({verdicts}); re-export with more "
                             f"validation images, or name one with --format")
        return passed
    chosen = [a for a in artifacts if a.format == fmt]
    if not chosen:
        raise UsageError(f"the export has no {fmt} model; it has {', '.join(a.format for a in artifacts)}")
    if chosen[0].verdict == "fail":
        raise UsageError(f"{fmt} failed its export check (see export_report.json); choose another --format")
    return chosen


def release_files(export_dir: Path, artifacts: list[Artifact]) -> list[Path]:
    """Each artifact with its card, then the labels, the report and the feature statistics (when exported)."""
    names = ([n for a in artifacts for n in (a.filename, a.filename + CARD_SUFFIX)]
             + [LABELS_FILE, EXPORT_REPORT_FILE, FEATURE_STATS_FILE])
    return [export_dir / n for n in names if (export_dir / n).is_file()]


def write_tarball(files: list[Path], dest: Path) -> str:
    """A deterministic .tar.gz of ``files`` (flat); returns the sha256 of its names and contents."""
    digest = hashlib.sha256()
    members = sorted((f.name, f.read_bytes()) for f in files)
    for name, data in members:
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    with open(dest, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return digest.hexdigest()


def release_id(content_sha: str, fmt: str) -> str:
    """A release's name: the same export and format choice always give the same release (a re-deploy is a no-op)."""
    return f"{content_sha[:12]}-{fmt}"
