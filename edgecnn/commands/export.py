"""`edgecnn export`: convert a trained Keras classifier to edge formats, validated against Keras."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgecnn.commands._args import int_at_least, positive_int

HELP = "export a trained model to TFLite / ONNX / SavedModel, validated against Keras on real images"


def add_arguments(parser: argparse.ArgumentParser) -> None:
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
    parser.add_argument("--labels", metavar="FILE", help="labels file, one class a line (overrides the card)")
    parser.add_argument("--opset", type=int_at_least(13), default=17, help="ONNX opset (default 17)")
    parser.add_argument("--val-samples", type=positive_int, default=100, metavar="N",
                        help="validation images per export (default 100)")
    parser.add_argument("--force", action="store_true", help="overwrite existing artifacts in --out")
    parser.add_argument("--no-validate", dest="validate", action="store_false",
                        help="skip validating each export against the Keras model")
    parser.add_argument("--allow-tf-ops", action="store_true",
                        help="let TFLite keep unsupported ops as TensorFlow ops (device needs the Flex delegate)")


def run(args: argparse.Namespace) -> int:
    from edgecnn.export import export

    out = args.out or (Path(args.model) / "export" if Path(args.model).is_dir() else Path("export"))
    report = export(
        args.model, args.formats, out, labels=args.labels, calib_data=args.calib_data,
        calib_samples=args.calib_samples, int8_io=args.int8_io, opset=args.opset, force=args.force,
        validate=args.validate, val_samples=args.val_samples, allow_tf_ops=args.allow_tf_ops,
    )
    print(f"{'format':16} {'file':24} {'KB':>8}  validation")
    for a in report.artifacts:
        v = a.validation
        check = "skipped" if v is None else (
            f"agree {v['agreement']:.1%}  maxdiff {v['max_abs_diff']:.1e}"
            + (f"  acc {v['accuracy']:.1%} (keras {v['reference_accuracy']:.1%})" if v["accuracy"] is not None else ""))
        print(f"{a.format:16} {Path(a.path).name:24} {a.size / 1024:8.0f}  {check}")
    print(f"wrote {out}")
    return 0
