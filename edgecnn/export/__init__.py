"""Export a Keras image classifier to every format in :data:`edgecnn.formats.FORMATS`.

Each artifact is written atomically with its card embedded (where the format
allows) and beside it as ``<artifact>.card.json``, then validated against the
Keras model on real images. Heavy libraries are imported only by the exporters.
"""

from __future__ import annotations

import importlib
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Callable

from edgecnn._io import atomic_path
from edgecnn._native import kept_interrupts
from edgecnn.errors import UsageError, ValidationError
from edgecnn.export.calibration import MIN_CALIBRATION_IMAGES, calibration_images, validation_images
from edgecnn.export.job import INT8_IO, ExportJob
from edgecnn.export.report import ArtifactReport, ExportReport, file_facts, versions
from edgecnn.export.source import load_source
from edgecnn.formats import Format, parse_formats
from edgecnn.labels import write_labels
from edgecnn.machine import x86_without_vnni
from edgecnn.rundir import LABELS_FILE

__all__ = ["ExportReport", "export"]

log = logging.getLogger("edgecnn.export")


def export(
    model,
    formats: str | list[str] = "all",
    out: str | os.PathLike = "export",
    *,
    labels: str | os.PathLike | list[str] | None = None,
    calib_data: str | os.PathLike | None = None,
    calib_samples: int = 200,
    int8_io: str = "uint8",
    opset: int = 17,
    force: bool = False,
    validate: bool = True,
    val_samples: int = 100,
    allow_tf_ops: bool = False,
    seed: int = 0,
) -> ExportReport:
    """Export ``model`` (run dir, .keras file or keras.Model) to ``formats`` in ``out``.

    Returns the :class:`ExportReport` (also saved as ``out/export_report.json``); progress and
    warnings go to the ``edgecnn.export`` logger.
    Raises :class:`ValidationError` after writing everything when an artifact
    misses its format's tolerance; any other bad input raises before ``out`` is touched.
    """
    fmts = parse_formats(formats)
    _check_options(int8_io, calib_samples, val_samples, opset)
    out = Path(out)
    _check_existing(out, fmts, force)  # before load_source, which imports TensorFlow (seconds)
    source = load_source(model, labels)
    run_dir = source.path.parent if source.run_config and source.path else None
    report = ExportReport(model=str(source.path or getattr(source.model, "name", "model")), out=str(out),
                          versions=versions())

    job = ExportJob(source, workdir=Path(), int8_io=int8_io, opset=opset, allow_tf_ops=allow_tf_ops)
    if any(f.quantization == "int8" for f in fmts):
        job.calibration = calibration_images(source.run_config, run_dir, calib_data, source.input_shape,
                                             calib_samples, seed)
        report.calibration = job.calibration.describe()
        report.warnings += _calibration_warnings(job)

    check_set, reference = None, None
    if validate:
        check_set = validation_images(source.run_config, run_dir, calib_data, source.card.labels,
                                      source.input_shape, val_samples, seed)
        report.validation_images = check_set.describe()
        if check_set.synthetic:
            report.warnings.append("no real images found for validation: exports are compared with Keras on "
                                   "synthetic images (agreement only, no accuracy); pass --calib-data DIR")
    if source.card_assumed:
        report.warnings.append("the model has no edgecnn card: assuming it takes raw RGB pixels 0..255 and "
                               "normalizes inside itself; if it expects normalized input, the device will misclassify")
    for warning in report.warnings:
        log.warning(f"warning: {warning}")
    if check_set is not None:
        reference = source.model.predict(check_set.images.astype("float32"), batch_size=32, verbose=0)
        log.info(f"validating on {len(check_set.images)} images from {check_set.source}")

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgecnn-export-") as workdir:
        job.workdir = Path(workdir)
        for fmt in fmts:
            report.artifacts.append(_export_one(job, fmt, out, check_set, reference, report.warnings))
    write_labels(out / LABELS_FILE, source.card.labels)
    path = report.save()
    log.info(f"report: {path}")
    if report.failed:
        raise ValidationError("; ".join(a.validation["failures"] for a in report.failed)
                              + f" (figures in {path})")
    return report


def _export_one(job: ExportJob, fmt: Format, out: Path, check_set, reference, warnings: list[str]) -> ArtifactReport:
    log.info(f"{fmt.name}: exporting {fmt.filename}")
    exporter = _exporter(fmt)
    dest = out / fmt.filename
    start = time.perf_counter()
    with atomic_path(dest) as tmp, kept_interrupts():  # Ctrl-C swallowed inside a converter still stops here
        card = exporter(job, fmt, tmp)
    card_file = card.save(dest)
    job.written[fmt.name] = dest
    size, sha = file_facts(dest)
    entry = ArtifactReport(fmt.name, str(dest), str(card_file), size, sha, fmt.quantization,
                           round(time.perf_counter() - start, 2))
    if check_set is not None:
        noted = len(warnings)
        entry.validation = _validate(fmt, dest, check_set, reference, warnings)
        log.info(f"{fmt.name}: {size / 1024:.0f} KB, {_summary(entry.validation)}")
        for warning in warnings[noted:]:
            log.warning(f"warning: {warning}")
    else:
        log.info(f"{fmt.name}: {size / 1024:.0f} KB (not validated)")
    return entry


def _validate(fmt: Format, dest: Path, check_set, reference, warnings: list[str]) -> dict:
    from edgecnn.export import validate

    figures = validate.compare(reference, validate.run_artifact(dest, check_set.images), check_set.labels)
    problems = validate.failures(fmt, figures)
    result = {**figures.to_dict(), "passed": not problems}
    if problems and fmt.backend == "onnx" and fmt.quantization == "int8" and x86_without_vnni():
        exact = validate.compare(reference, validate.exact_onnx_int8(dest, check_set.images), check_set.labels)
        result["exact_int8"] = exact.to_dict()
        if not validate.failures(fmt, exact):
            result["passed"] = True
            warnings.append(
                f"{fmt.name}: within tolerance as int8 arithmetic (agreement {exact.agreement:.1%}) but not with "
                f"this CPU's ONNX Runtime kernels (agreement {figures.agreement:.1%}): x86 without VNNI saturates "
                f"int8 products; ARM and VNNI CPUs compute the exact figures"
            )
            return result
    if problems:
        result["failures"] = (f"{fmt.name} ({dest.name}) failed validation on {figures.images} images: "
                              + "; ".join(problems))
    return result


def _summary(v: dict) -> str:
    text = f"agreement {v['agreement']:.2%}, max diff {v['max_abs_diff']:.1e}"
    if v["accuracy"] is not None:
        text += f", accuracy {v['accuracy']:.2%} (Keras {v['reference_accuracy']:.2%})"
    return text + ("" if v["passed"] else "  FAILED")


def _exporter(fmt: Format) -> Callable:
    module, _, function = fmt.exporter.partition(":")
    return getattr(importlib.import_module(module), function)


def _check_options(int8_io: str, calib_samples: int, val_samples: int, opset: int) -> None:
    if int8_io not in INT8_IO:
        raise UsageError(f"received --int8-io={int8_io!r}; expected one of {', '.join(INT8_IO)}")
    if calib_samples < 1:
        raise UsageError(f"--calib-samples must be at least 1; received {calib_samples}")
    if val_samples < 1:
        raise UsageError(f"validation needs at least 1 image; received {val_samples}")
    if not 13 <= opset <= 21:
        raise UsageError(f"received --opset={opset}; expected an ONNX opset from 13 to 21")


def _check_existing(out: Path, fmts: list[Format], force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; pass a folder for the exported models")
    existing = [f.filename for f in fmts if (out / f.filename).exists()]
    if existing and not force:
        raise UsageError(f"{', '.join(existing)} already exist in {out}; pass --force to overwrite "
                         f"or choose another --out")


def _calibration_warnings(job: ExportJob) -> list[str]:
    found = job.calibration
    if found.synthetic:
        return ["no real images found for int8 calibration; calibrating on synthetic images "
                "(int8 accuracy may suffer) - pass --calib-data DIR"]
    if len(found.images) < MIN_CALIBRATION_IMAGES:
        return [f"only {len(found.images)} calibration images in {found.source} (fewer than "
                f"{MIN_CALIBRATION_IMAGES}); int8 accuracy may suffer - pass --calib-data DIR with more"]
    return []
