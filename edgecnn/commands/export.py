"""`edgecnn export`: convert a trained Keras classifier to edge formats, validated against Keras."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgecnn.commands._args import int_at_least, positive_int
from edgecnn.errors import UsageError, ValidationError

HELP = "export a trained model to TFLite / ONNX / SavedModel, validated against Keras on real images"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from edgecnn.card import OUTPUT_KINDS
    from edgecnn.export.stats import MAX_VALIDATION_IMAGES, MIN_VERDICT_IMAGES
    from edgecnn.formats import FORMATS

    parser.add_argument("model", metavar="MODEL", help="training run directory or a Keras .keras file")
    parser.add_argument("--formats", default="all", metavar="LIST",
                        help=f"comma-separated formats or 'all' (default): {', '.join(FORMATS)}")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="output folder (default: MODEL/export for a run directory, else ./export)")
    parser.add_argument("--calib-data", metavar="DIR",
                        help="images for int8 calibration (default: the run's training folder)")
    parser.add_argument("--calib-samples", type=positive_int, default=200, metavar="N",
                        help="calibration images for int8 formats (default 200; fewer than 100 warns)")
    parser.add_argument("--int8-io", choices=("uint8", "int8", "float32"), default="uint8",
                        help="input/output type of tflite-int8 (default uint8: camera frames go in as they are)")
    parser.add_argument("--int8-rounding", choices=("optimal", "nearest"), default="optimal",
                        help="tflite-int8 weights: optimal rounding onto the int8 grid against real inputs "
                             "(GPTQ; default) or nearest")
    parser.add_argument("--int8-float-layers", metavar="auto|N|NAMES",
                        help="tflite-int8: keep the layers with the largest quantization error in float "
                             "(auto: those above 1 step; N: the N worst; or layer names); not for integer-only "
                             "accelerators such as the Edge TPU")
    parser.add_argument("--output-kind", choices=OUTPUT_KINDS,
                        help="what the model outputs (default: decided from its outputs on real images)")
    parser.add_argument("--labels", metavar="FILE", help="labels file, one class a line (overrides the card)")
    parser.add_argument("--opset", type=int_at_least(13), default=17, help="ONNX opset (default 17)")
    parser.add_argument("--val-samples", type=positive_int, default=MAX_VALIDATION_IMAGES, metavar="N",
                        help=f"validation images: every labelled one up to N, a class-stratified sample beyond "
                             f"(default {MAX_VALIDATION_IMAGES}; fewer than {MIN_VERDICT_IMAGES} makes verdicts "
                             f"warnings)")
    parser.add_argument("--force", action="store_true", help="overwrite existing artifacts in --out")
    parser.add_argument("--no-validate", dest="validate", action="store_false",
                        help="skip validating each export against the Keras model")
    parser.add_argument("--allow-tf-ops", action="store_true",
                        help="let TFLite keep unsupported ops as TensorFlow ops (device needs the Flex delegate)")
    parser.add_argument("--strict", action="store_true",
                        help="fail (exit 2) unless every artifact passes on enough labelled images: an inconclusive "
                             "verdict, one judged on fewer than 300 images, or an accuracy judged on agreement with "
                             "Keras alone (no labels) fails (for CI and release pipelines); not with --no-validate")


def run(args: argparse.Namespace) -> int:
    from edgecnn.export import export

    if args.strict and not args.validate:
        raise UsageError("--strict confirms each artifact by validating it, and --no-validate skips that; "
                         "drop one of the two")
    out = args.out or (Path(args.model) / "export" if Path(args.model).is_dir() else Path("export"))
    report = export(
        args.model, args.formats, out, labels=args.labels, calib_data=args.calib_data,
        calib_samples=args.calib_samples, int8_io=args.int8_io, int8_rounding=args.int8_rounding,
        int8_float_layers=args.int8_float_layers, output_kind=args.output_kind, opset=args.opset, force=args.force,
        validate=args.validate, val_samples=args.val_samples, allow_tf_ops=args.allow_tf_ops,
    )
    print(f"{'format':16} {'file':20} {'KB':>7} {'N':>5} {'acc':>7} {'keras':>7} {'diff (95% CI)':>22} "
          f"{'agree':>7} {'maxdiff':>8}  verdict")
    for a in report.artifacts:
        v = a.validation
        head = f"{a.format:16} {Path(a.path).name:20} {a.size / 1024:7.0f}"
        if v is None:
            print(f"{head}  not validated")
            continue
        low, high = v["accuracy_difference_ci95"]
        acc = (f"{v['accuracy']:7.2%} {v['reference_accuracy']:7.2%}" if v["accuracy"] is not None
               else f"{'-':>7} {'-':>7}")
        verdict = v["verdict"] + ("" if v["passed"] else " FAILED")
        if v["passed"] and not v["backed_by_enough_images"]:
            verdict += " (not binding)"
        print(f"{head} {v['images']:5d} {acc} {v['accuracy_difference'] * 100:+6.1f} [{low * 100:+5.1f},"
              f"{high * 100:+5.1f}] {v['agreement']:7.2%} {v['max_abs_diff']:8.1e}  {verdict}")
    print(f"wrote {out}")
    unsettled = unconfirmed(report.artifacts) if args.strict else []
    if unsettled:
        raise ValidationError(f"--strict: not confirmed within tolerance: {', '.join(unsettled)}; validate on "
                              f"more labelled images (--val-samples, a larger val set) or drop those formats")
    return 0


def unconfirmed(artifacts) -> list[str]:
    """The artifacts ``--strict`` refuses, each with why: not validated, not ``pass``, on fewer than 300 images,
    or an accuracy tolerance judged without labels (agreement with Keras stands in for accuracy)."""
    found = []
    for a in artifacts:
        v = a.validation
        if v is None:
            found.append(f"{a.format} (not validated)")
        elif v["verdict"] != "pass" or not v["backed_by_enough_images"]:
            found.append(f"{a.format} ({v['verdict']}, {v['images']} images)")
        elif v["tolerance"].get("max_accuracy_drop") is not None and v["labels_from"] != "folder":
            found.append(f"{a.format} (pass on agreement with Keras alone: {v['images']} unlabelled images)")
    return found
