"""Training throughput (images/s) of edgecnn architectures on synthetic images.

    /work/venv/bin/python benchmarks/bench_train.py                      # simple_cnn and mobilenet_v2 at 128 px
    /work/venv/bin/python benchmarks/bench_train.py --arch food_cnn --img-size 64 --images 128

Each architecture: one warm-up epoch (graph tracing), then timed epochs of
``--images`` random 0..255 images, as model.fit runs them (batch ``--batch-size``,
Adam, no augmentation). Results go to stdout and ``--out`` (JSON) with the
machine's CPU count, so figures from different machines are not mixed up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

DEFAULT_ARCHS = ("simple_cnn", "mobilenet_v2")


def measure(arch: str, img_size: int, images: int, batch_size: int, epochs: int) -> dict:
    import keras
    import numpy as np

    from edgecnn.models import create_model, get_spec

    keras.utils.set_random_seed(0)
    spec = get_spec(arch)
    classes = 2 if spec.binary else 5
    model = create_model(arch, classes, (img_size, img_size, 3))
    model.compile(optimizer="adam", loss="binary_crossentropy" if spec.binary else "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (images, img_size, img_size, 3)).astype("float32")
    y = (np.arange(images) % classes).astype("float32" if spec.binary else "int64")
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)  # warm-up: traces the train step
    warmup = time.perf_counter() - start
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - start
    return {"arch": arch, "img_size": img_size, "batch_size": batch_size, "images": images * epochs,
            "params": model.count_params(), "seconds": round(seconds, 2), "warmup_seconds": round(warmup, 2),
            "images_per_second": round(images * epochs / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", action="append", help="architecture (repeatable; default: simple_cnn, mobilenet_v2)")
    parser.add_argument("--img-size", type=int, default=128)
    parser.add_argument("--images", type=int, default=256, help="images per timed epoch (default: 256)")
    parser.add_argument("--epochs", type=int, default=1, help="timed epochs (default: 1)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "train_throughput.json"))
    args = parser.parse_args()

    results = []
    for arch in args.arch or DEFAULT_ARCHS:
        result = measure(arch, args.img_size, args.images, args.batch_size, args.epochs)
        print(f"{arch:>24} {args.img_size}px: {result['images_per_second']:8.1f} images/s "
              f"({result['images']} images in {result['seconds']} s; warm-up {result['warmup_seconds']} s)", flush=True)
        results.append(result)
    import tensorflow as tf

    record = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "load_average_1min": round(os.getloadavg()[0], 2),
                          "gpus": len(tf.config.list_physical_devices("GPU")), "tensorflow": tf.__version__},
              "results": results}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
