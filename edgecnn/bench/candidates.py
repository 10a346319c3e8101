"""What to measure: MODEL arguments -> (model name, format, file) candidates.

A Keras model or training run directory is exported first (edgecnn.export,
imported lazily); an export folder contributes the files it holds; a model file
is measured as it is.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from edgecnn.bench.result import EXPORT_FAILED, OK, VALIDATION_FAILED
from edgecnn.errors import EdgeCNNError, ModelError, UsageError, first_line
from edgecnn.formats import FORMATS, KERAS_SUFFIXES, Format, backend_for_path, format_for_path
from edgecnn.rundir import EXPORT_REPORT_FILE, MODEL_FILE

log = logging.getLogger("edgecnn.bench")


@dataclass
class Candidate:
    model: str
    format: str
    backend: str
    quantization: str
    path: Optional[Path]  # None when the export failed
    status: str = OK
    reason: Optional[str] = None
    validation: dict = field(default_factory=dict)  # the export report's figures, when exported here


def is_keras_source(path: Path) -> bool:
    """A .keras/.h5 file, or a training run directory (model.keras, and not an export folder)."""
    if path.is_dir():
        return (path / MODEL_FILE).is_file() and not is_export_folder(path)
    return path.suffix.lower() in KERAS_SUFFIXES


def is_export_folder(path: Path) -> bool:
    """A folder written by ``edgecnn export``: its report, or any exported artifact besides model.keras."""
    return (path / EXPORT_REPORT_FILE).is_file() or any(
        (path / f.filename).exists() for f in FORMATS.values() if f.filename != MODEL_FILE)


def resolve(models: list[str], formats: list[Format], explicit_formats: bool, out: Path) -> list[Candidate]:
    """Candidates for every MODEL argument, in argument then table order."""
    found: list[Candidate] = []
    for arg in models:
        path = Path(arg)
        if not path.exists():
            raise ModelError(f"model not found: {path}; pass a .keras file, a training run directory, "
                             f"an export folder or exported model files")
        if is_keras_source(path):
            found += export_source(path, formats, out / "models" / _name(path))
        elif path.is_dir() and not (path / "saved_model.pb").is_file():
            found += export_folder(path, formats, explicit_formats)
        else:
            cand = model_file(path, _name(path.parent) if format_for_path(path) else path.stem)
            if explicit_formats and cand.format in FORMATS and FORMATS[cand.format] not in formats:
                log.warning(f"note: skipping {path}: its format {cand.format} is not in --formats")
                continue
            found.append(cand)
    if not found:
        raise UsageError("nothing to benchmark: no model matches --formats; check the list or the files")
    return found


def _name(path: Path) -> str:
    return (path.parent.name if path.name == MODEL_FILE else path.stem) or "model"


def model_file(path: Path, model: str) -> Candidate:
    fmt = format_for_path(path)
    if fmt is not None:
        return Candidate(model, fmt.name, fmt.backend, fmt.quantization, path)
    backend = backend_for_path(path)
    return Candidate(model, path.name, backend, _guess_quantization(path), path)


def _guess_quantization(path: Path) -> str:
    """From the card when there is one; else "unknown" (the worker reports the input dtype)."""
    from edgecnn.card import find_card

    try:
        card = find_card(path)
    except EdgeCNNError:
        card = None
    return card.quantization if card else ("int8" if "int8" in path.stem or "quant" in path.stem else "none")


def export_folder(folder: Path, formats: list[Format], explicit: bool) -> list[Candidate]:
    """The artifacts an export folder holds (the asked formats only when --formats was given)."""
    report = _read_report(folder)
    wanted = formats if explicit else list(FORMATS.values())
    found = [_from_export(folder.name, f, folder / f.filename, report)
             for f in wanted if (folder / f.filename).exists()]
    if not found:
        names = ", ".join(f.filename for f in wanted)
        raise ModelError(f"{folder} holds none of the exported models asked for ({names}); "
                         f"pass an export folder, model files or a Keras model")
    return found


def _read_report(folder: Path) -> dict:
    path = folder / EXPORT_REPORT_FILE
    try:
        return {a["format"]: a for a in json.loads(path.read_text())["artifacts"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _from_export(model: str, fmt: Format, path: Path, report: dict) -> Candidate:
    entry = report.get(fmt.name) or {}
    validation = entry.get("validation") or {}
    status, reason = OK, None
    if validation and not validation.get("passed", True):
        status, reason = VALIDATION_FAILED, validation.get("failures")
    return Candidate(model, fmt.name, fmt.backend, fmt.quantization, path, status, reason, validation)


def export_source(source: Path, formats: list[Format], out: Path) -> list[Candidate]:
    """Export ``source`` to ``formats`` in ``out``; a failing format becomes an "export failed" row."""
    from edgecnn.errors import ValidationError
    from edgecnn.export import export

    name = out.name
    log.info(f"exporting {source} to {', '.join(f.name for f in formats)} in {out}")
    try:
        export(source, [f.name for f in formats], out, force=True)
    except ValidationError:
        pass  # every artifact is written; the report says which failed
    except EdgeCNNError as exc:
        if len(formats) == 1:
            return [_failed(name, formats[0], exc)]
        log.warning(f"export of all formats failed ({exc}); exporting one format at a time")
        return [c for f in formats for c in export_source_one(source, f, out)]
    report = _read_report(out)
    return [_from_export(name, f, out / f.filename, report) if (out / f.filename).exists() else
            _failed(name, f, "no file written") for f in formats]


def export_source_one(source: Path, fmt: Format, out: Path) -> list[Candidate]:
    from edgecnn.errors import ValidationError
    from edgecnn.export import export

    try:
        export(source, [fmt.name], out, force=True)
    except ValidationError:
        pass
    except Exception as exc:  # noqa: BLE001  one format failing must not stop the others
        return [_failed(out.name, fmt, exc)]
    return [_from_export(out.name, fmt, out / fmt.filename, _read_report(out))]


def _failed(model: str, fmt: Format, exc) -> Candidate:
    return Candidate(model, fmt.name, fmt.backend, fmt.quantization, None, EXPORT_FAILED, first_line(exc, 300))
