"""Training-defaults sweep for MobileNetV2 transfer on a flower folder: each config x each seed, full validation set.

Each run is ``edgecnn train`` as a user types it; the figure is the run's own ``metrics.json`` val_accuracy on every
validation image, with a 95% Wilson interval per run and the mean over seeds. The table chose the defaults and the
README walkthrough's command (benchmarks/README.md, "Training defaults").

    python benchmarks/sweep_train_defaults.py --data DATA/flowers5 --weights WEIGHTS.h5 --out /tmp/sweep \
        --seeds 0,1,2 --json benchmarks/results/train_defaults_sweep.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

# name -> train options beyond --arch/--data/--val/--img-size/--weights/--seed
CONFIGS = {
    "old-readme (3 + 4 ft, 40 layers)": ["--epochs", "3", "--fine-tune-epochs", "4", "--fine-tune-layers", "40"],
    "frozen only (10)": ["--epochs", "10", "--fine-tune-epochs", "0"],
    "10 + 6 ft, 40 layers": ["--epochs", "10", "--fine-tune-epochs", "6", "--fine-tune-layers", "40"],
    "10 + 6 ft, 80 layers": ["--epochs", "10", "--fine-tune-epochs", "6", "--fine-tune-layers", "80"],
    "10 + 10 ft, 80 layers": ["--epochs", "10", "--fine-tune-epochs", "10", "--fine-tune-layers", "80"],
    "10 + 10 ft, 120 layers": ["--epochs", "10", "--fine-tune-epochs", "10", "--fine-tune-layers", "120"],
}


def wilson(correct: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for a proportion."""
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def run_one(name: str, extra: list[str], seed: int, args) -> dict:
    out = Path(args.out) / f"{list(CONFIGS).index(name)}-seed{seed}"
    cmd = [sys.executable, "-m", "edgecnn", "-q", "train", "--arch", "mobilenet_v2",
           "--data", str(Path(args.data) / "train"), "--val", str(Path(args.data) / "val"),
           "--img-size", str(args.img_size), "--weights", args.weights, "--seed", str(seed),
           "--out", str(out), "--exist-ok", *extra]
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    seconds = time.perf_counter() - start
    metrics = json.loads((out / "metrics.json").read_text())
    n = metrics["val_images"]
    acc = metrics["val_accuracy"]
    lo, hi = wilson(round(acc * n), n)
    return {"config": name, "options": extra, "seed": seed, "val_accuracy": acc, "val_images": n,
            "ci95": [lo, hi], "seconds": round(seconds, 1), "run": str(out)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder with train/ and val/")
    parser.add_argument("--weights", required=True, help="MobileNetV2 no-top .weights.h5 (or imagenet)")
    parser.add_argument("--out", default="sweep-runs")
    parser.add_argument("--img-size", type=int, default=128)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--configs", default="", help="comma-separated config indexes (default: all)")
    parser.add_argument("--json", default="", help="append results to this JSON file")
    args = parser.parse_args()
    names = list(CONFIGS)
    if args.configs:
        names = [names[int(i)] for i in args.configs.split(",")]
    saved = json.loads(Path(args.json).read_text()) if args.json and Path(args.json).exists() else []
    results = saved["runs"] if isinstance(saved, dict) else saved
    for name in names:
        for seed in (int(s) for s in args.seeds.split(",")):
            row = run_one(name, CONFIGS[name], seed, args)
            print(json.dumps(row), flush=True)
            results = [r for r in results if (r["config"], r["seed"]) != (name, seed)] + [row]
            if args.json:
                tmp = Path(args.json).with_suffix(".tmp")
                tmp.write_text(json.dumps({"cpu": _cpu(), "runs": results}, indent=1))
                os.replace(tmp, args.json)
    print(f"CPU: {_cpu()}")
    for name in names:
        rows = [r for r in results if r["config"] == name]
        if rows:
            mean = sum(r["val_accuracy"] for r in rows) / len(rows)
            print(f"{name:36s} mean {mean:.4f} over {len(rows)} seeds: "
                  + ", ".join(f"{r['val_accuracy']:.4f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]" for r in rows))


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    main()
