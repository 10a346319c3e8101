"""Export a Keras image classifier to every format in :data:`edgecnn.formats.FORMATS`.

Each artifact is written atomically with its card embedded (where the format
allows) and beside it as ``<artifact>.card.json``, then validated against the
Keras model on real images. Heavy libraries are imported only by the exporters.
The output folder is claimed for the export (:func:`~edgecnn.rundir.claim_folder`);
while it is written, a note in it (:data:`UNFINISHED_FILE`) lists the files the
export may leave half-done, so that a re-run after an interrupted export (Ctrl-C,
a kill) replaces them without ``--force``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from edgecnn._io import atomic_path, write_json
from edgecnn.data.imageset import synthetic_images
from edgecnn.errors import CardError, UsageError, ValidationError
from edgecnn.export.calibration import MIN_CALIBRATION_IMAGES, calibration_images, validation_images
from edgecnn.export.features import predict_with_features
from edgecnn.export.job import INT8_IO, INT8_ROUNDING, ExportJob
from edgecnn.export.model_to_export import load_model_to_export
from edgecnn.export.report import ArtifactReport, ExportReport, file_facts, versions
from edgecnn.export.stats import MAX_VALIDATION_IMAGES, MIN_VERDICT_IMAGES
from edgecnn.formats import Format, parse_formats
from edgecnn.labels import write_labels
from edgecnn.native_logs import kept_interrupts
from edgecnn.rundir import EXPORT_REPORT_FILE, FEATURE_STATS_FILE, LABELS_FILE, claim_folder, release_folder
from edgecnn.runtime.base import FEATURES_OUTPUT

__all__ = ["ExportReport", "export"]

log = logging.getLogger("edgecnn.export")

UNFINISHED_FILE = ".export-unfinished.json"  # in --out while an export writes: {"files": [names it may write]}


def export(
    model,
    formats: str | list[str] = "all",
    out: str | os.PathLike = "export",
    *,
    labels: str | os.PathLike | list[str] | None = None,
    calib_data: str | os.PathLike | None = None,
    calib_samples: int = 200,
    int8_io: str = "uint8",
    int8_rounding: str = "optimal",
    int8_float_layers: str | None = None,
    output_kind: str | None = None,
    opset: int = 17,
    force: bool = False,
    validate: bool = True,
    val_samples: int = MAX_VALIDATION_IMAGES,
    allow_tf_ops: bool = False,
    seed: int = 0,
) -> ExportReport:
    """Export ``model`` (run dir, .keras file or keras.Model) to ``formats`` in ``out``.

    Returns the :class:`ExportReport` (also saved as ``out/export_report.json``); progress and
    warnings go to the ``edgecnn.export`` logger.
    Raises :class:`ValidationError` after writing everything when an artifact
    misses its format's tolerance on at least 300 images; any other bad input
    raises before ``out`` is touched.
    """
    fmts = parse_formats(formats)
    _check_options(int8_io, int8_rounding, int8_float_layers, calib_samples, val_samples, opset)
    out = Path(out)
    with _claimed(out):
        return _export(model, fmts, out, labels, calib_data, calib_samples, int8_io, int8_rounding,
                       int8_float_layers, output_kind, opset, force, validate, val_samples, allow_tf_ops, seed)


def _export(model, fmts: list[Format], out: Path, labels, calib_data, calib_samples: int, int8_io: str,
            int8_rounding: str, int8_float_layers: str | None, output_kind: str | None, opset: int, force: bool,
            validate: bool, val_samples: int, allow_tf_ops: bool, seed: int) -> ExportReport:
    _check_existing(out, fmts, force)  # before load_model_to_export, which imports TensorFlow (seconds)
    source = load_model_to_export(model, labels)
    run_dir = source.path.parent if source.run_config and source.path else None
    report = ExportReport(model=str(source.path or getattr(source.model, "name", "model")), out=str(out),
                          versions=versions())

    job = ExportJob(source, workdir=Path(), int8_io=int8_io, opset=opset, allow_tf_ops=allow_tf_ops,
                    int8_rounding=int8_rounding, int8_float_layers=int8_float_layers)
    if any(f.quantization == "int8" for f in fmts):
        job.calibration = calibration_images(source.run_config, run_dir, calib_data, source.input_shape,
                                             calib_samples, seed, labels=source.card.labels)
        report.calibration = job.calibration.describe()
        report.warnings += _calibration_warnings(job)

    check_set, reference = None, None
    if validate:
        check_set = validation_images(source.run_config, run_dir, calib_data, source.card.labels,
                                      source.input_shape, val_samples, seed)
        report.validation_images = check_set.describe()
        report.warnings += _validation_warnings(check_set)
    if source.card_assumed:
        report.warnings.append("the model has no edgecnn card: assuming it takes raw RGB pixels 0..255 and "
                               "normalizes inside itself; if it expects normalized input, the device will misclassify")
    probe = check_set if check_set is not None else (job.calibration or synthetic_images(source.input_shape, 16))
    outputs, features = predict_with_features(source.model, probe.images)
    job.reference_features = features if check_set is not None else None
    report.output_kind = _settle_output_kind(source, outputs, probe.source, output_kind, report.warnings)
    stats = _features(source, run_dir, check_set, features, val_samples, seed, report)
    reference = outputs if check_set is not None else None
    for warning in report.warnings:
        log.warning(f"warning: {warning}")
    if check_set is not None:
        log.info(f"validating on {len(check_set.images)} images from {check_set.source}")

    out.mkdir(parents=True, exist_ok=True)
    claim_folder(out, "--out", "export")  # a new folder; an existing one was claimed before the checks
    unfinished = _mark_unfinished(out, fmts)
    with tempfile.TemporaryDirectory(prefix="edgecnn-export-") as workdir:
        job.workdir = Path(workdir)
        for fmt in fmts:
            report.artifacts.append(_export_one(job, fmt, out, check_set, reference, report.warnings))
    if stats is not None:
        stats.save(out / FEATURE_STATS_FILE)
    write_labels(out / LABELS_FILE, source.card.labels)
    path = report.save()
    unfinished.unlink()  # every file written: a validation failure below is a verdict, not an interruption
    log.info(f"report: {path}")
    if report.failed:
        raise ValidationError("; ".join(a.validation["failures"] for a in report.failed)
                              + f" (figures in {path})")
    return report


def _features(source, run_dir, check_set, features, val_samples: int, seed: int, report: ExportReport):
    """The statistics of the model's pooled features (None without features or training images); the card and
    the report say what the ``features`` output is."""
    if features is None:
        return None
    from edgecnn.export.novelty_stats import feature_stats

    stats = feature_stats(source, run_dir, check_set, features if check_set is not None else None, val_samples, seed)
    note = {"output": FEATURES_OUTPUT, "size": int(features.shape[-1]),
            "statistics": None if stats is None else FEATURE_STATS_FILE,
            "novelty_threshold": None if stats is None else round(stats.threshold, 4)}
    source.card = source.card.replace(extra={**source.card.extra, "features": note})
    report.features = {**note, **({"summary": stats.summary()} if stats is not None else {})}
    if stats is not None:
        meta = stats.meta
        log.info(f"novelty: threshold {stats.threshold:.2f} ({meta['threshold_percentile']:g}th percentile of the "
                 f"scores of {meta['threshold_images']} held-out images), {meta['pca_dims']} of {meta['feature_dim']} "
                 f"feature dimensions on principal axes; written to {FEATURE_STATS_FILE}")
    return stats


def _settle_output_kind(source, outputs, where: str, forced: str | None, warnings: list[str]) -> dict:
    """Decide the card's output kind from the model's outputs (or ``--output-kind``); contradictions are errors."""
    from edgecnn.export import output_kind

    found = output_kind.infer(source.model, outputs, where)
    if forced:
        kind, how = forced, "forced with --output-kind"
        if output_kind.conflict(forced, found):
            warnings.append(f"--output-kind {forced} contradicts the model's outputs ({found.evidence}); "
                            f"the runtime will treat them as {forced}")
    elif source.card_assumed:
        kind, how = found.kind, "from the model's outputs"
    else:
        problem = output_kind.conflict(source.card.output_kind, found)
        if problem:
            raise CardError(f"{problem}; pass --output-kind softmax|sigmoid|logits to say which")
        kind, how = source.card.output_kind, "from the card, checked against the model's outputs"
    source.card = source.card.replace(output_kind=kind,
                                      extra={**source.card.extra, "output_kind_evidence": found.evidence})
    return {"kind": kind, "decided": how, "evidence": found.evidence}


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
                           round(time.perf_counter() - start, 2), details=job.details.get(fmt.name))
    worst = (entry.details or {}).get("largest_errors", {}).get("layers", [])[:3]
    if worst:
        log.info(f"{fmt.name}: largest quantization errors (RMS, in quantization steps; 0.29 is rounding alone): "
            + ", ".join(f"{e['layer']} {e['rmse_over_scale']:.2f}" for e in worst))
    if check_set is not None:
        entry.validation = _validate(job, fmt, dest, check_set, reference)
        log.info(f"{fmt.name}: {size / 1024:.0f} KB, {summary(entry.validation)}")
        for warning in filter(None, (_verdict_warning(fmt, entry.validation), _cpu_warning(fmt, entry.validation))):
            warnings.append(warning)
            log.warning(f"warning: {warning}")
    else:
        log.info(f"{fmt.name}: {size / 1024:.0f} KB (not validated)")
    return entry


def _validate(job: ExportJob, fmt: Format, dest: Path, check_set, reference) -> dict:
    from edgecnn.export import validate
    from edgecnn.runtime.cpu import int8_saturates_here

    outputs, features = validate.run_artifact(dest, check_set.images)
    this_cpu = None
    if fmt.backend == "onnx" and fmt.quantization == "int8" and int8_saturates_here(fmt.name):
        # Judge the int8 arithmetic the artifact means (what ARM computes up to rounding); this CPU's figures too.
        this_cpu = validate.compare(reference, outputs, check_set.labels)
        outputs = validate.exact_onnx_int8(dest, check_set.images)
    figures = validate.compare(reference, outputs, check_set.labels)
    judgement = validate.judge(fmt, figures)
    result = {**figures.to_dict(), **judgement.to_dict(), "tolerance": asdict(fmt.tolerance)}
    if this_cpu is not None:
        result["judged_on"] = ("int8 arithmetic without saturation (QDQ unfused): what ARM computes up to "
                                "rounding (emulated Cortex-A72/A76)")
        result["this_cpu"] = {**this_cpu.to_dict(), "note": "ONNX Runtime's int8 kernels on this x86 CPU without "
                                                            "VNNI saturate"}
    if job.reference_features is not None:
        result["features"] = validate.compare_features(job.reference_features, features)
    if judgement.problems:
        result["problems"] = judgement.problems
    if not judgement.passed:
        result["failures"] = (f"{fmt.name} ({dest.name}) failed validation on {figures.images} images: "
                              + "; ".join(judgement.problems))
    return result


def _verdict_warning(fmt: Format, v: dict) -> str | None:
    problems = "; ".join(v.get("problems", []))
    if v["verdict"] == "fail" and v["passed"]:
        return (f"{fmt.name} would fail ({problems}) but only {v['images']} validation images back it (fewer than "
                f"{MIN_VERDICT_IMAGES}): a warning, not a verdict; validate on more images")
    if v["verdict"] == "inconclusive":
        return (f"{fmt.name}: {problems}: the interval straddles the tolerance, {v['images']} images cannot tell; "
                f"validate on more images")
    return None


def _cpu_warning(fmt: Format, v: dict) -> str | None:
    here = v.get("this_cpu")
    if here is None:
        return None
    acc = (f"accuracy {here['accuracy']:.2%} vs Keras {here['reference_accuracy']:.2%}"
           if here["accuracy"] is not None else f"agreement {here['agreement']:.2%}")
    return (f"{fmt.name} is judged on its int8 arithmetic without saturation (what ARM computes); on this x86 CPU "
            f"without VNNI ONNX Runtime's int8 kernels saturate: {acc}, agreement {here['agreement']:.2%}. The card "
            f"says so and predict, camera and benchmark warn on such CPUs; use model.onnx or a TFLite model here")


def summary(v: dict) -> str:
    """One line of an artifact's validation figures and verdict."""
    text = f"{v['images']} images"
    if v["accuracy"] is not None:
        low, high = v["accuracy_difference_ci95"]
        text += (f", accuracy {v['accuracy']:.2%} vs Keras {v['reference_accuracy']:.2%}, "
                 f"difference {v['accuracy_difference'] * 100:+.1f} points (95% CI {low * 100:+.1f} to "
                 f"{high * 100:+.1f})")
    text += f", agreement {v['agreement']:.2%}, max diff {v['max_abs_diff']:.1e}: {v['verdict']}"
    if not v["passed"]:
        text += "  FAILED"
    elif not v["backed_by_enough_images"]:
        text += f" (fewer than {MIN_VERDICT_IMAGES} images: not binding)"
    return text


def _exporter(fmt: Format):
    module, _, function = fmt.exporter.partition(":")
    return getattr(importlib.import_module(module), function)


def _check_options(int8_io: str, int8_rounding: str, int8_float_layers: str | None, calib_samples: int,
                   val_samples: int, opset: int) -> None:
    if int8_io not in INT8_IO:
        raise UsageError(f"received --int8-io={int8_io!r}; expected one of {', '.join(INT8_IO)}")
    if int8_rounding not in INT8_ROUNDING:
        raise UsageError(f"received --int8-rounding={int8_rounding!r}; expected one of {', '.join(INT8_ROUNDING)}")
    if int8_float_layers is not None and not int8_float_layers.strip():
        raise UsageError("--int8-float-layers needs auto, a number of layers, or comma-separated layer names")
    if calib_samples < 1:
        raise UsageError(f"--calib-samples must be at least 1; received {calib_samples}")
    if val_samples < 1:
        raise UsageError(f"validation needs at least 1 image; received {val_samples}")
    if not 13 <= opset <= 21:
        raise UsageError(f"received --opset={opset}; expected an ONNX opset from 13 to 21")


@contextlib.contextmanager
def _claimed(out: Path):
    """Hold ``out`` for this export (:func:`~edgecnn.rundir.claim_folder`), from the checks on when it exists."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; pass a folder for the exported models")
    if out.is_dir():
        claim_folder(out, "--out", "export")
    try:
        yield
    finally:
        release_folder(out)


def _check_existing(out: Path, fmts: list[Format], force: bool) -> None:
    """UsageError for artifacts already in ``out`` unless ``force``, except those an interrupted export left."""
    existing = [f.filename for f in fmts if (out / f.filename).exists()]
    left = _unfinished(out)  # ``out`` is claimed: the export that listed them has ended
    replaced = [name for name in existing if name in left]
    existing = [name for name in existing if name not in left]
    if existing and not force:
        raise UsageError(f"{', '.join(existing)} already exist in {out}; pass --force to overwrite "
                         f"or choose another --out")
    if replaced:
        log.info(f"note: replacing {', '.join(replaced)} in {out}, left by an export that did not finish")


def _unfinished(out: Path) -> set[str]:
    """The files an interrupted export into ``out`` may have left (its :data:`UNFINISHED_FILE`), else none."""
    try:
        return {str(name) for name in json.loads((out / UNFINISHED_FILE).read_text(encoding="utf-8"))["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def _mark_unfinished(out: Path, fmts: list[Format]) -> Path:
    """Write :data:`UNFINISHED_FILE` listing what this export writes (and what an interrupted one left), after
    removing the temporary files a killed export left beside them; its path."""
    names = (_unfinished(out) | {f.filename for f in fmts}
             | {LABELS_FILE, EXPORT_REPORT_FILE, FEATURE_STATS_FILE, UNFINISHED_FILE})
    for name in names:
        for leftover in out.glob(f".{name}.*"):  # atomic_path's temporaries: ".model.onnx.k2j4h1.onnx"
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
    return write_json(out / UNFINISHED_FILE, {"files": sorted(names - {UNFINISHED_FILE})})


def _validation_warnings(check_set) -> list[str]:
    if check_set.synthetic:
        return ["no real images found for validation: exports are compared with Keras on synthetic images "
                "(agreement only, no accuracy); pass --calib-data DIR"]
    if check_set.labels is None:
        return [f"the validation images in {check_set.source} have no class folders matching the labels: accuracy "
                f"is judged against Keras's own answers"]
    if len(check_set.images) < MIN_VERDICT_IMAGES:
        return [f"only {len(check_set.images)} labelled validation images in {check_set.source} (fewer than "
                f"{MIN_VERDICT_IMAGES}): verdicts are warnings, not failures; validate on more images"]
    return []


def _calibration_warnings(job: ExportJob) -> list[str]:
    found = job.calibration
    if found.synthetic:
        return ["no real images found for int8 calibration; calibrating on synthetic images "
                "(int8 accuracy may suffer) - pass --calib-data DIR"]
    if len(found.images) < MIN_CALIBRATION_IMAGES:
        return [f"only {len(found.images)} calibration images in {found.source} (fewer than "
                f"{MIN_CALIBRATION_IMAGES}); int8 accuracy may suffer - pass --calib-data DIR with more"]
    return []
