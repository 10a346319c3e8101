"""export_report.json: what was written, how big, its hash, and how it validated."""

from __future__ import annotations

import hashlib
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgecnn._io import portable_path, write_json
from edgecnn._version import __version__
from edgecnn.machine import package_versions
from edgecnn.rundir import EXPORT_REPORT_FILE


@dataclass
class ArtifactReport:
    format: str
    path: str
    card: str
    size: int
    sha256: str
    quantization: str
    seconds: float
    validation: dict[str, Any] | None = None  # Figures.to_dict() + verdict/"passed"/"failures"; None with --no-validate
    details: dict[str, Any] | None = None  # what the exporter reports (int8: weight rounding, debugger, float layers)

    @property
    def passed(self) -> bool:
        return self.validation is None or bool(self.validation.get("passed"))


@dataclass
class ExportReport:
    model: str
    out: str
    artifacts: list[ArtifactReport] = field(default_factory=list)
    calibration: dict[str, Any] | None = None
    validation_images: dict[str, Any] | None = None
    output_kind: dict[str, Any] | None = None  # the card's output kind and the evidence for it
    features: dict[str, Any] | None = None  # the features output and its statistics' summary (runtime/novelty.py)
    warnings: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> list[ArtifactReport]:
        return [a for a in self.artifacts if not a.passed]

    def artifact(self, fmt: str) -> ArtifactReport:
        return next(a for a in self.artifacts if a.format == fmt)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self) -> Path:
        """Write ``out/export_report.json``, its paths relative to ``out`` (or the model's file name)."""
        out = Path(self.out)
        data = self.to_dict()
        data["model"], data["out"] = portable_path(self.model, out), "."
        for artifact in data["artifacts"]:
            for key in ("path", "card"):
                artifact[key] = portable_path(artifact[key], out)
        return write_json(out / EXPORT_REPORT_FILE, data)


def file_facts(path: Path) -> tuple[int, str]:
    """(size in bytes, sha256) of a file, or of every file in a folder (sorted by relative path)."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest, size = hashlib.sha256(), 0
    for f in files:
        if path.is_dir():
            digest.update(str(f.relative_to(path)).encode())
        data = f.read_bytes()
        digest.update(data)
        size += len(data)
    return size, digest.hexdigest()


def versions() -> dict[str, str]:
    """Versions of edgecnn, Python and the converters/runtimes (from package metadata, no imports)."""
    return {"edgecnn": __version__, "python": platform.python_version(), **package_versions()}
