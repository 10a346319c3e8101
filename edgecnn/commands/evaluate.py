"""`edgecnn evaluate MODEL [--data DIR]`: accuracy, per-class report and explanation figures for a Keras model."""

from __future__ import annotations

import argparse

from edgecnn.commands._args import positive_int

HELP = ("evaluate a trained Keras model on an image folder: "
        "metrics, confusion matrix, predictions, Grad-CAM, feature maps")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a run directory or its model.keras (labels from the card or labels.txt)")
    parser.add_argument("--data", metavar="DIR",
                        help="images, one sub-folder per class, or a split root (its test/, else val/); default: "
                             "the run's test split when it was trained on a split root with test/, else its val/")
    parser.add_argument("--out", metavar="DIR", help="report folder (default: <run dir>/eval)")
    parser.add_argument("--batch-size", type=positive_int, default=32, metavar="N", help="default: 32")
    parser.add_argument("--samples", type=positive_int, default=12, metavar="N",
                        help="images shown in the predictions and Grad-CAM grids (default: 12)")


def run(args) -> int:
    import logging

    from edgecnn.train.evaluate import evaluate

    report = evaluate(args.model, args.data, args.out, batch_size=args.batch_size, samples=args.samples)
    metrics = report["metrics"]
    line = f"accuracy {metrics['accuracy']:.4f} on {metrics['images']} images ({metrics['split']}: {metrics['data']})"
    if "top5_accuracy" in metrics:
        line += f", top-5 {metrics['top5_accuracy']:.4f}"
    print(line)
    width = max(len(n) for n in metrics["per_class"])
    print(f"{'class'.ljust(width)}  precision  recall  f1     support")
    for name, m in metrics["per_class"].items():
        print(f"{name.ljust(width)}  {m['precision']:.3f}      {m['recall']:.3f}   {m['f1']:.3f}  {m['support']}")
    for name, reason in report["skipped_figures"].items():
        logging.getLogger("edgecnn.commands").warning(f"note: {name} figure skipped for this model ({reason})")
    print(f"reports in {report['out']}")
    return 0
