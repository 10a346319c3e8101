"""Writing an export: the artifacts of an :class:`~edgecnn.export.plan.ExportPlan`, each validated against the
Keras model, then the feature statistics, the labels and the report.

Each artifact is written atomically with its card embedded (where the format allows) and beside it as
``<artifact>.card.json``. While the folder is written, its :data:`~edgecnn.export.out_folder.UNFINISHED_FILE`
lists what the export may leave half-done. Heavy libraries are imported only by the exporters.
"""

from __future__ import annotations

import importlib
import logging
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from edgecnn._io import atomic_path
from edgecnn.errors import ValidationError
from edgecnn.export.job import ExportJob
from edgecnn.export.out_folder import mark_unfinished
from edgecnn.export.plan import ExportPlan
from edgecnn.export.report import ArtifactReport, ExportReport, file_facts
from edgecnn.export.stats import MIN_VERDICT_IMAGES
from edgecnn.formats import Format
from edgecnn.labels import write_labels
from edgecnn.native_logs import kept_interrupts
from edgecnn.rundir import FEATURE_STATS_FILE, LABELS_FILE, claim_folder

log = logging.getLogger("edgecnn.export")


def write_export(plan: ExportPlan, out: Path) -> ExportReport:
    """Write ``plan`` into ``out`` (claimed by the caller when it existed) and return its report, also saved there.
    Raises :class:`ValidationError` after writing everything when an artifact failed validation."""
    report = plan.report
    out.mkdir(parents=True, exist_ok=True)
    claim_folder(out, "--out", "export")  # a new folder; an existing one was claimed before the checks
    unfinished = mark_unfinished(out, plan.formats)
    with tempfile.TemporaryDirectory(prefix="edgecnn-export-") as workdir:
        plan.job.workdir = Path(workdir)
        for fmt in plan.formats:
            report.artifacts.append(_export_one(plan.job, fmt, out, plan.check_set, plan.reference, report.warnings))
    if plan.stats is not None:
        plan.stats.save(out / FEATURE_STATS_FILE)
    write_labels(out / LABELS_FILE, plan.source.card.labels)
    path = report.save()
    unfinished.unlink()  # every file written: a validation failure below is a verdict, not an interruption
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
