"""Planning an export: everything decided before anything is written under ``--out``.

:func:`plan_export` checks the folder for artifacts already there, loads the model, gathers the calibration and
validation images, predicts the reference outputs, settles the output kind and fits the feature statistics;
its :class:`ExportPlan` is what :func:`edgecnn.export.writer.write_export` writes. Planning writes nothing under
``--out`` (the folder is only claimed, by :func:`edgecnn.export.out_folder.claimed`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgecnn.data.imageset import ImageSet, synthetic_images
from edgecnn.errors import CardError, UsageError
from edgecnn.export.calibration import MIN_CALIBRATION_IMAGES, calibration_images, validation_images
from edgecnn.export.features import predict_with_features
from edgecnn.export.job import INT8_IO, INT8_ROUNDING, ExportJob
from edgecnn.export.model_to_export import ModelToExport, load_model_to_export
from edgecnn.export.out_folder import check_existing
from edgecnn.export.report import ExportReport, versions
from edgecnn.export.stats import MIN_VERDICT_IMAGES
from edgecnn.formats import Format
from edgecnn.rundir import FEATURE_STATS_FILE
from edgecnn.runtime.base import FEATURES_OUTPUT

if TYPE_CHECKING:
    from edgecnn.runtime.novelty import FeatureStats

log = logging.getLogger("edgecnn.export")


@dataclass(frozen=True)
class ExportOptions:
    """The options of :func:`edgecnn.export.export` past the model, the formats and the folder (its keywords)."""

    labels: str | os.PathLike | list[str] | None
    calib_data: str | os.PathLike | None
    calib_samples: int
    int8_io: str
    int8_rounding: str
    int8_float_layers: str | None
    output_kind: str | None
    opset: int
    force: bool
    validate: bool
    val_samples: int
    allow_tf_ops: bool
    seed: int

    def check(self) -> None:
        """UsageError for an option out of range, before anything is loaded or written."""
        if self.int8_io not in INT8_IO:
            raise UsageError(f"received --int8-io={self.int8_io!r}; expected one of {', '.join(INT8_IO)}")
        if self.int8_rounding not in INT8_ROUNDING:
            raise UsageError(f"received --int8-rounding={self.int8_rounding!r}; expected one of "
                             f"{', '.join(INT8_ROUNDING)}")
        if self.int8_float_layers is not None and not self.int8_float_layers.strip():
            raise UsageError("--int8-float-layers needs auto, a number of layers, or comma-separated layer names")
        if self.calib_samples < 1:
            raise UsageError(f"--calib-samples must be at least 1; received {self.calib_samples}")
        if self.val_samples < 1:
            raise UsageError(f"validation needs at least 1 image; received {self.val_samples}")
        if not 13 <= self.opset <= 21:
            raise UsageError(f"received --opset={self.opset}; expected an ONNX opset from 13 to 21")


@dataclass
class ExportPlan:
    """What an export writes, decided before it writes: the model, the formats in order, the exporters' job, the
    validation images and the Keras model's outputs on them, the feature statistics, and the report so far
    (calibration, validation images, output kind, features, warnings; the writing adds the artifacts)."""

    source: ModelToExport
    formats: list[Format]
    job: ExportJob
    report: ExportReport
    check_set: ImageSet | None  # the validation images; None with validate=False
    reference: Any  # the Keras model's outputs on check_set (numpy), None without it
    stats: FeatureStats | None  # the feature statistics to save, None without features or training images


def plan_export(model, fmts: list[Format], out: Path, options: ExportOptions) -> ExportPlan:
    """Plan the export of ``model`` to ``fmts`` in ``out`` (claimed by the caller); nothing under ``out`` is
    written. Raises UsageError for artifacts already there before loading the model."""
    check_existing(out, fmts, options.force)  # before load_model_to_export, which imports TensorFlow (seconds)
    source = load_model_to_export(model, options.labels)
    run_dir = source.path.parent if source.run_config and source.path else None
    report = ExportReport(model=str(source.path or getattr(source.model, "name", "model")), out=str(out),
                          versions=versions())
    job = ExportJob(source, workdir=Path(), int8_io=options.int8_io, opset=options.opset,
                    allow_tf_ops=options.allow_tf_ops, int8_rounding=options.int8_rounding,
                    int8_float_layers=options.int8_float_layers)
    if any(f.quantization == "int8" for f in fmts):
        _calibrate(job, run_dir, options, report)
    check_set = _check_set(source, run_dir, options, report) if options.validate else None
    if source.card_assumed:
        report.warnings.append("the model has no edgecnn card: assuming it takes raw RGB pixels 0..255 and "
                               "normalizes inside itself; if it expects normalized input, the device will misclassify")
    probe = check_set if check_set is not None else (job.calibration or synthetic_images(source.input_shape, 16))
    outputs, features = predict_with_features(source.model, probe.images)
    job.reference_features = features if check_set is not None else None
    report.output_kind = _settle_output_kind(source, outputs, probe.source, options.output_kind, report.warnings)
    stats = _features(source, run_dir, check_set, features, options.val_samples, options.seed, report)
    for warning in report.warnings:
        log.warning(f"warning: {warning}")
    if check_set is not None:
        log.info(f"validating on {len(check_set.images)} images from {check_set.source}")
    return ExportPlan(source, fmts, job, report, check_set, outputs if check_set is not None else None, stats)


def _calibrate(job: ExportJob, run_dir: Path | None, options: ExportOptions, report: ExportReport) -> None:
    """Give ``job`` its int8 calibration images; the report says which, and warns when they are few or made up."""
    source = job.source
    job.calibration = calibration_images(source.run_config, run_dir, options.calib_data, source.input_shape,
                                         options.calib_samples, options.seed, labels=source.card.labels)
    report.calibration = job.calibration.describe()
    report.warnings += _calibration_warnings(job)


def _check_set(source: ModelToExport, run_dir: Path | None, options: ExportOptions,
               report: ExportReport) -> ImageSet:
    """The validation images; the report says which, and warns when they cannot back a verdict."""
    check_set = validation_images(source.run_config, run_dir, options.calib_data, source.card.labels,
                                  source.input_shape, options.val_samples, options.seed)
    report.validation_images = check_set.describe()
    report.warnings += _validation_warnings(check_set)
    return check_set


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
