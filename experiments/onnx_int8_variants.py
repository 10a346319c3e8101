"""Measure ONNX Runtime int8 quantization setups of a trained run on this CPU, on its whole validation folder.

Each setup (QDQ or QOperator, activation/weight types, reduce_range, per-channel
or per-tensor, calibration method) is quantized from the same float ONNX export
with the same calibration images, then run through edgecnn's runtime
(``Classifier``, ONNX Runtime with its default graph optimizations: the fused
int8 kernels this CPU picks) and, for reference, with QDQ unfused (the int8
arithmetic without this CPU's kernels). Latency is relative to the float ONNX
model, measured interleaved in this run.

    .venv/bin/python experiments/onnx_int8_variants.py /work/runs/flowers-s1 --out /work/runs/quant/onnx-s1

Slow; not part of CI. Writes OUT/onnx_variants.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from int8_variants import calibration_set, figures, latencies, load_run, probabilities  # noqa: E402

# name: (format, activation type, weight type, per_channel, reduce_range, calibration)
SETUPS = {
    "qdq-s8s8-pc": ("QDQ", "QInt8", "QInt8", True, False, "MinMax"),  # edgecnn's setup before issue 10
    "qdq-u8s8-pc": ("QDQ", "QUInt8", "QInt8", True, False, "MinMax"),
    "qdq-u8s8-pc-rr": ("QDQ", "QUInt8", "QInt8", True, True, "MinMax"),
    "qdq-s8s8-pc-rr": ("QDQ", "QInt8", "QInt8", True, True, "MinMax"),
    "qdq-u8u8-pc": ("QDQ", "QUInt8", "QUInt8", True, False, "MinMax"),
    "qdq-u8u8-pt": ("QDQ", "QUInt8", "QUInt8", False, False, "MinMax"),
    "qop-u8s8-pc": ("QOperator", "QUInt8", "QInt8", True, False, "MinMax"),
    "qop-u8s8-pc-rr": ("QOperator", "QUInt8", "QInt8", True, True, "MinMax"),
    "qop-u8u8-pc": ("QOperator", "QUInt8", "QUInt8", True, False, "MinMax"),
    "qop-u8u8-pt": ("QOperator", "QUInt8", "QUInt8", False, False, "MinMax"),
    "qdq-u8u8-pc-pct": ("QDQ", "QUInt8", "QUInt8", True, False, "Percentile"),
    # weights first rounded optimally onto ONNX Runtime's uint8 grid (GPTQ), then the same quantization
    "snap-qdq-u8u8-pc": ("QDQ", "QUInt8", "QUInt8", True, False, "MinMax"),
    "snap-qdq-s8s8-pc": ("QDQ", "QInt8", "QInt8", True, False, "MinMax"),
}


def quantize(fp32: Path, dest: Path, images: np.ndarray, setup) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fmt, act, weight, per_channel, reduce_range, method = setup
    prepared = dest.with_suffix(".prep.onnx")
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)

    class Reader:
        def __init__(self):
            self.it = iter(images)

        def get_next(self):
            image = next(self.it, None)
            return None if image is None else {"image": image[None].astype(np.float32)}

        def rewind(self):
            self.it = iter(images)

    quantize_static(str(prepared), str(dest), Reader(), quant_format=getattr(QuantFormat, fmt),
                    activation_type=getattr(QuantType, act), weight_type=getattr(QuantType, weight),
                    per_channel=per_channel, reduce_range=reduce_range,
                    calibrate_method=getattr(CalibrationMethod, method))
    prepared.unlink()


def unfused(path: Path, images: np.ndarray) -> np.ndarray:
    """Outputs with QDQ left unfused (DequantizeLinear -> float op -> QuantizeLinear): the int8 arithmetic
    without this CPU's fused kernels (whose u8*s8 pairs saturate on x86 without VNNI)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: images[i:i + 32].astype(np.float32)})[0]
                           for i in range(0, len(images), 32)])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--setups", default=",".join(SETUPS))
    p.add_argument("--calib", default="balanced", choices=("balanced", "random"))
    p.add_argument("--calib-samples", type=int, default=200)
    args = p.parse_args(argv)
    from edgecnn.export import export

    args.out.mkdir(parents=True, exist_ok=True)
    model, card, config, val = load_run(args.run)
    reference = model.predict(val.images.astype("float32"), batch_size=32, verbose=0)
    fp32 = args.out / "model.onnx"
    if not fp32.exists():
        export(args.run, "onnx", args.out, validate=False)
    images = calibration_set(config["data"], card.labels, model.input_shape[1:3], args.calib_samples, args.calib)
    card32 = card.replace(format="onnx")
    results = {"fp32": {**figures(reference, probabilities(fp32, card32, val.images), val.labels),
                        "size": fp32.stat().st_size}}
    paths = {"fp32": fp32}
    int8_card = card.replace(format="onnx-int8", quantization="int8")
    snapped = {}

    def snapped_fp32(grid: str) -> Path:
        if grid not in snapped:
            from edgecnn.export.tflite_quant import snap_weights

            copy, changed = snap_weights(model, images, grid)
            print(f"optimal rounding ({grid}) of {len(changed)} layers", flush=True)
            folder = args.out / f"snapped-{grid}"
            export(copy, "onnx", folder, labels=card.labels, validate=False, force=True)
            snapped[grid] = folder / "model.onnx"
        return snapped[grid]

    for name in args.setups.split(","):
        t = time.time()
        dest = args.out / f"{name}.onnx"
        source = fp32
        if name.startswith("snap-"):
            source = snapped_fp32("uint8-asymmetric" if SETUPS[name][2] == "QUInt8" else "int8-symmetric")
        quantize(source, dest, images, SETUPS[name])
        paths[name] = dest
        r = {**figures(reference, probabilities(dest, int8_card, val.images), val.labels),
             "size_vs_fp32": dest.stat().st_size / results["fp32"]["size"], "setup": SETUPS[name]}
        exact = figures(reference, unfused(dest, val.images), val.labels)
        r["unfused"] = {k: exact[k] for k in ("accuracy", "agreement", "difference", "difference_ci95")}
        r["seconds"] = round(time.time() - t, 1)
        results[name] = r
        print(f"{name:18} acc {r['accuracy']:.4f} (keras {r['keras_accuracy']:.4f}) diff {r['difference'] * 100:+.2f} "
              f"agree {r['agreement']:.4f} | unfused acc {exact['accuracy']:.4f} agree {exact['agreement']:.4f}",
              flush=True)
    lat = latencies(paths, card, val.images[0])
    for name in paths:
        results[name]["latency_vs_fp32"] = lat[name] / lat["fp32"]
        results[name]["latency_ms"] = lat[name]
    (args.out / "onnx_variants.json").write_text(json.dumps(results, indent=2))
    print(f"\n{'setup':18} {'acc':>7} {'diff':>7} {'ci95':>16} {'agree':>7} {'unfused':>8} {'size':>6} {'lat':>5}")
    for name in paths:
        r = results[name]
        u = r.get("unfused", {}).get("accuracy", float("nan"))
        print(f"{name:18} {r['accuracy']:7.4f} {r['difference'] * 100:+7.2f} "
              f"[{r['difference_ci95'][0] * 100:+6.2f},{r['difference_ci95'][1] * 100:+6.2f}] {r['agreement']:7.4f} "
              f"{u:8.4f} {r.get('size_vs_fp32', 1):6.3f} {r['latency_vs_fp32']:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
