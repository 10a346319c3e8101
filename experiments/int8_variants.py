"""Measure full-int8 TFLite variants of a trained run on its whole validation folder.

For each variant: accuracy of the int8 model and of Keras on every validation
image, the paired accuracy difference with its 95 % interval, top-1 agreement,
max probability difference, size as a share of fp32, and latency relative to
fp32 (median of interleaved single-image runs, 1 thread, measured in this run).
Models run through edgecnn's runtime (``Classifier``), as a device runs them.

    .venv/bin/python experiments/int8_variants.py /work/runs/flowers-s1 --out /work/runs/quant/variants-s1
    .venv/bin/python experiments/int8_variants.py RUN --variants baseline,balanced,float3 --debug-top 12

Slow (minutes per variant on 2 cores); not part of CI. Writes OUT/variants.json and OUT/<variant>.tflite.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def load_run(run: Path):
    import keras

    from edgecnn.card import ModelCard
    from edgecnn.data import load_folder

    model = keras.saving.load_model(run / "model.keras", compile=False)
    card = ModelCard.load(run / "model.keras")
    config = json.loads((run / "config.json").read_text())
    size = model.input_shape[1:3]
    val = load_folder(config["val"], tuple(size), class_names=card.labels)
    return model, card, config, val


def calibration_set(train_dir: str, labels: list[str], size, count: int, how: str, seed: int = 0) -> np.ndarray:
    """``random``: ``count`` files anywhere under the folder (the exporter's old way); ``balanced``: equal per class."""
    from edgecnn.data import scan_folder
    from edgecnn.data.decode import decode_rgb, resize

    scan = scan_folder(train_dir, labels)
    rng = np.random.default_rng(seed)
    if how == "random":
        files = sorted(p for p in Path(train_dir).rglob("*") if p.is_file() and not p.name.startswith("."))
        chosen = [files[i] for i in rng.permutation(len(files))[:count]]
    else:
        per_class = -(-count // len(labels))
        chosen = []
        for index in range(len(labels)):
            members = [p for p, label in scan.files if label == index]
            chosen += [members[i] for i in rng.permutation(len(members))[:per_class]]
    return np.stack([resize(decode_rgb(p), tuple(size)) for p in chosen])


def clipped(calibrated: bytes, percentile: float, how: str, only=(), count: int = 200, per_image: int = 2000,
            seed: int = 0) -> bytes:
    """The calibrated model with each activation's range cut to the ``percentile`` of |x| (symmetric ranges kept)."""
    import flatbuffers
    from ai_edge_litert.interpreter import Interpreter
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(calibrated, 0)
    tensors = model.subgraphs[0].tensors
    ranged = [i for i, t in enumerate(tensors) if t.quantization is not None and t.quantization.min is not None
              and (not only or any(word in t.name.decode() for word in only))]
    interp = Interpreter(model_content=calibrated, experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]["index"]
    images = _CALIB[how]
    rng = np.random.default_rng(seed)
    samples = {i: [] for i in ranged}
    for image in images[:count]:
        interp.set_tensor(inp, image[None].astype(np.float32))
        interp.invoke()
        for i in ranged:
            try:
                values = interp.get_tensor(i).ravel()
            except ValueError:
                continue
            take = values if values.size <= per_image else rng.choice(values, per_image, replace=False)
            samples[i].append(take)
    changed = 0
    for i in ranged:
        if not samples[i] or i == inp:
            continue
        values = np.concatenate(samples[i])
        q = tensors[i].quantization
        lo, hi = float(q.min[0]), float(q.max[0])
        new_lo = min(0.0, float(np.percentile(values, 100 - percentile)))
        new_hi = max(0.0, float(np.percentile(values, percentile)))
        if lo >= 0:
            new_lo = lo  # one-sided ranges (ReLU) keep their zero
        new_lo, new_hi = max(lo, new_lo), min(hi, new_hi)
        if (new_lo, new_hi) != (lo, hi):
            q.min, q.max = np.array([new_lo], np.float32), np.array([new_hi], np.float32)
            changed += 1
    print(f"clipped {changed} of {len(ranged)} ranges to the {percentile} percentile", flush=True)
    builder = flatbuffers.Builder(len(calibrated) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


_CALIB: dict[str, np.ndarray] = {}


def converter_for(saved_model: Path):
    import tensorflow as tf

    return tf.lite.TFLiteConverter.from_saved_model(str(saved_model), signature_keys=["serve"])


def probabilities(path: Path, card, images: np.ndarray) -> np.ndarray:
    from edgecnn.runtime import Classifier

    with Classifier(path, card=card) as clf:
        out = [p.probabilities for s in range(0, len(images), 32)
               for p in clf.predict_batch(list(images[s:s + 32]), order="RGB")]
    return np.stack(out)


def latencies(paths: dict[str, Path], card, image: np.ndarray, rounds: int = 15, per_round: int = 10) -> dict:
    """Median ms of backend.run per model, models interleaved round by round (1 thread)."""
    from edgecnn.runtime import Classifier

    clfs = {name: Classifier(p, card=card, threads=1) for name, p in paths.items()}
    batches = {name: c.preprocess(image, order="RGB") for name, c in clfs.items()}
    times = {name: [] for name in clfs}
    for name, c in clfs.items():
        for _ in range(3):
            c.backend.run(batches[name])
    for _ in range(rounds):
        for name, c in clfs.items():
            t0 = time.perf_counter()
            for _ in range(per_round):
                c.backend.run(batches[name])
            times[name].append((time.perf_counter() - t0) * 1e3 / per_round)
    for c in clfs.values():
        c.close()
    return {name: float(np.median(t)) for name, t in times.items()}


def figures(reference: np.ndarray, probs: np.ndarray, labels: np.ndarray) -> dict:
    from edgecnn.export.stats import paired_difference

    ref, out = reference.argmax(1), probs.argmax(1)
    diff = paired_difference(ref == labels, out == labels)
    return {"images": int(len(labels)), "accuracy": float(np.mean(out == labels)),
            "keras_accuracy": float(np.mean(ref == labels)), "difference": diff.difference,
            "difference_ci95": [diff.low, diff.high], "agreement": float(np.mean(ref == out)),
            "max_abs_diff": float(np.abs(reference - probs).max())}


class Bench:
    """One run's calibrated models, debugger ranking and variant builders (each cached)."""

    def __init__(self, model, card, config, out: Path, io: str, debug_images: int):
        from edgecnn.export.keras_formats import write_saved_model

        self.model, self.card, self.config, self.out, self.io = model, card, config, out, io
        self.size = model.input_shape[1:3]
        self.debug_images = debug_images
        self.saved = out / "saved_model"
        if not self.saved.exists():
            write_saved_model(model, self.saved)
        self.cache: dict[str, bytes] = {}
        self.errors = None

    def calibrated(self, how: str, count: int, saved: Path | None = None, tag: str = "") -> bytes:
        from edgecnn.export import tflite_quant

        key = f"{how}{count}{tag}"
        if key not in self.cache:
            images = calibration_set(self.config["data"], self.card.labels, self.size, count, how)
            _CALIB[how] = images
            t = time.time()
            self.cache[key] = tflite_quant.calibrate(
                converter_for(saved or self.saved), lambda: ([im[None].astype(np.float32)] for im in images))
            print(f"calibrated on {len(images)} {how} images in {time.time() - t:.0f}s", flush=True)
        return self.cache[key]

    def worst(self, n: int) -> list[str]:
        from edgecnn.export import tflite_quant

        if self.errors is None:
            images = calibration_set(self.config["data"], self.card.labels, self.size, self.debug_images,
                                     "balanced", seed=1)
            self.errors = tflite_quant.layer_errors(self.calibrated("balanced", 200), images,
                                                    [layer.name for layer in self.model.layers])
        return [e.tensor for e in self.errors[:n]]

    def gptq(self, count: int = 200, depthwise: bool = True, tag: str = "") -> bytes:
        from edgecnn.export import tflite_quant
        from edgecnn.export.keras_formats import write_saved_model

        images = calibration_set(self.config["data"], self.card.labels, self.size, count, "balanced")
        snapped, changed = tflite_quant.snap_weights(self.model, images, depthwise=depthwise)
        print(f"optimal rounding of {len(changed)} layers: {', '.join(changed)}", flush=True)
        path = self.out / f"saved_model_gptq{tag}"
        if not path.exists():
            write_saved_model(snapped, path)
        return tflite_quant.quantize(self.calibrated("balanced", count, path, "gptq" + tag), self.io)

    def builders(self) -> dict:
        from edgecnn.export import tflite_quant as tq

        out = {
            "baseline": lambda: tq.quantize(self.calibrated("random", 200), self.io),
            "balanced": lambda: tq.quantize(self.calibrated("balanced", 200), self.io),
            "balanced1000": lambda: tq.quantize(self.calibrated("balanced", 1000), self.io),
            "gptq-pw": lambda: self.gptq(depthwise=False, tag="pw"),
            "gptq": self.gptq,
            "gptq1000": lambda: self.gptq(1000, tag="1000"),
        }
        for pct in ("99.9", "99.99", "99.999"):
            out[f"pct{pct}"] = (lambda pct=pct: tq.quantize(
                clipped(self.calibrated("balanced", 200), float(pct), "balanced"), self.io))
            out[f"pct{pct}-linear"] = (lambda pct=pct: tq.quantize(
                clipped(self.calibrated("balanced", 200), float(pct), "balanced", only=("project", "add")), self.io))
        for n in (1, 2, 3, 5, 8):
            out[f"float{n}"] = (lambda n=n: tq.quantize(self.calibrated("balanced", 200), self.io, self.worst(n)))
        return out


def _line(name: str, r: dict) -> str:
    low, high = r["difference_ci95"]
    return (f"{name:14} acc {r['accuracy']:.4f} (keras {r['keras_accuracy']:.4f}) diff {r['difference'] * 100:+.2f} "
            f"[{low * 100:+.2f}, {high * 100:+.2f}] agree {r['agreement']:.4f} maxdiff {r['max_abs_diff']:.3f} "
            f"size {r['size_vs_fp32']:.3f}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--variants", default="baseline,balanced,gptq,float3")
    p.add_argument("--debug-images", type=int, default=50, help="images for the quantization debugger")
    p.add_argument("--debug-top", type=int, default=10)
    p.add_argument("--io", default="uint8")
    args = p.parse_args(argv)
    sys.path.insert(0, str(REPO))

    args.out.mkdir(parents=True, exist_ok=True)
    model, card, config, val = load_run(args.run)
    t0 = time.time()
    reference = model.predict(val.images.astype("float32"), batch_size=32, verbose=0)
    print(f"keras on {len(val)} val images: {np.mean(reference.argmax(1) == val.labels):.4f} ({time.time() - t0:.0f}s)",
          flush=True)
    bench = Bench(model, card, config, args.out, args.io, args.debug_images)
    fp32 = args.out / "fp32.tflite"
    if not fp32.exists():
        fp32.write_bytes(converter_for(bench.saved).convert())
    fp32_card = card.replace(format="tflite-fp32")
    int8_card = card.replace(format="tflite-int8", quantization="int8")
    results = {"fp32": {**figures(reference, probabilities(fp32, fp32_card, val.images), val.labels),
                        "size": fp32.stat().st_size}}
    builders = bench.builders()
    paths = {"fp32": fp32}
    for name in args.variants.split(","):
        t = time.time()
        path = args.out / f"{name}.tflite"
        path.write_bytes(builders[name]())
        paths[name] = path
        probs = probabilities(path, int8_card, val.images)
        results[name] = {**figures(reference, probs, val.labels), "size": path.stat().st_size,
                         "size_vs_fp32": path.stat().st_size / results["fp32"]["size"],
                         "seconds": round(time.time() - t, 1)}
        if name.startswith("float"):
            results[name]["float_layers"] = [e.layer for e in bench.errors[:int(name[5:])]]
        print(_line(name, results[name]), flush=True)
    lat = latencies(paths, card, val.images[0])
    for name in paths:
        results[name]["latency_ms"] = lat[name]
        results[name]["latency_vs_fp32"] = lat[name] / lat["fp32"]
    if bench.errors is not None:
        results["debugger"] = [e.to_dict() for e in bench.errors[:args.debug_top]]
    (args.out / "variants.json").write_text(json.dumps(results, indent=2))
    print(f"\n{'variant':14} {'acc':>7} {'diff':>7} {'ci95':>16} {'agree':>7} {'size':>6} {'lat':>5}")
    for name in paths:
        r = results[name]
        print(f"{name:14} {r['accuracy']:7.4f} {r['difference'] * 100:+7.2f} "
              f"[{r['difference_ci95'][0] * 100:+6.2f},{r['difference_ci95'][1] * 100:+6.2f}] {r['agreement']:7.4f} "
              f"{r['size'] / results['fp32']['size']:6.3f} {r['latency_vs_fp32']:5.2f}")
    if bench.errors is not None:
        print("\nworst layers (RMS error in quantization steps; 0.29 is rounding alone):")
        for e in bench.errors[:args.debug_top]:
            print(f"  {e.rmse_over_scale:8.2f}  {e.layer}  ({e.op})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
