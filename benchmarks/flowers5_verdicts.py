"""The README's figures for each quantized format on flowers5: size, accuracy vs Keras with its interval, agreement.

Per seed: the README's flowers5 training command (skipped when WORK/seedN/model.keras exists), `edgecnn export`
of the float and quantized formats validated on all 866 val images (WORK/seedN/export/export_report.json), and
onnx-int8's figures with QDQ unfused (the int8 arithmetic export judges on x86 CPUs without VNNI; on other CPUs
export judges ONNX Runtime's own kernels). Prints the README table's rows, latency left out.

    .venv/bin/python benchmarks/flowers5_verdicts.py --work /tmp/f5 --seeds 1,2

About 4 minutes a seed on 2 cores; not part of CI.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"
FORMATS = "tflite-fp32,tflite-fp16,tflite-dynamic,tflite-int8,onnx,onnx-int8"
QUANTIZED = ["tflite-fp16", "tflite-dynamic", "tflite-int8", "onnx-int8"]


def train_and_export(run: Path, seed: int) -> dict:
    edgecnn = [sys.executable, "-m", "edgecnn"]
    if not (run / "model.keras").exists():
        subprocess.run(edgecnn + [
            "train", "--arch", "mobilenet_v2", "--data", str(SHARED / "data/flowers5/train"),
            "--val", str(SHARED / "data/flowers5/val"), "--img-size", "128",
            "--weights", str(SHARED / "weights/mobilenet_v2_1.0_imagenet_no_top.weights.h5"), "--epochs", "3",
            "--fine-tune-epochs", "4", "--fine-tune-layers", "40", "--seed", str(seed), "--out", str(run)], check=True)
    subprocess.run(edgecnn + ["export", str(run), "--formats", FORMATS, "--out", str(run / "export"), "--force"],
                   check=True)
    report = json.loads((run / "export" / "export_report.json").read_text())
    return {a["format"]: {"size": a["size"], **a["validation"]} for a in report["artifacts"]}


def unfused_onnx_int8(run: Path) -> dict:
    """onnx-int8's validation figures and verdict with QDQ left unfused, on the images export validated on."""
    from edgecnn.export import validate
    from edgecnn.export.calibration import validation_images
    from edgecnn.export.model_to_export import load_model_to_export
    from edgecnn.formats import FORMATS as ALL

    source = load_model_to_export(run, None)
    check = validation_images(source.run_config, run, None, source.card.labels, source.input_shape, 1000, 0)
    reference = source.model.predict(check.images.astype("float32"), batch_size=32, verbose=0)
    outputs = validate.exact_onnx_int8(run / "export" / "model_int8.onnx", check.images)
    figures = validate.compare(reference, outputs, check.labels)
    return {**figures.to_dict(), **validate.judge(ALL["onnx-int8"], figures).to_dict()}


def cell(v: dict) -> str:
    low, high = v["accuracy_difference_ci95"]
    return f"{v['accuracy_difference'] * 100:+.1f} [{low * 100:+.1f}, {high * 100:+.1f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for the runs (WORK/seedN)")
    parser.add_argument("--seeds", default="1,2", help="comma-separated training seeds (default 1,2)")
    args = parser.parse_args()
    results = {}
    for seed in map(int, args.seeds.split(",")):
        run = args.work / f"seed{seed}"
        results[seed] = train_and_export(run, seed)
        results[seed]["onnx-int8 unfused"] = {"size": results[seed]["onnx-int8"]["size"], **unfused_onnx_int8(run)}
    (args.work / "flowers5_verdicts.json").write_text(json.dumps(results, indent=1))
    print("| format | size vs fp32 | accuracy vs Keras (" + " / ".join(f"seed {s}" for s in results)
          + ") | agreement | verdicts |")
    for name in QUANTIZED + ["onnx-int8 unfused"]:
        fp32 = "onnx" if name.startswith("onnx") else "tflite-fp32"
        rows = [r[name] for r in results.values()]
        size = rows[0]["size"] / next(iter(results.values()))[fp32]["size"]
        print(f"| `{name}` | {size:.0%} | {' / '.join(cell(v) for v in rows)} | "
              f"{' / '.join(format(v['agreement'], '.1%') for v in rows)} | {' / '.join(v['verdict'] for v in rows)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
