"""Acceptance check for issue 4 (export) on real data: MobileNetV2 on flowers5 at 128 px.

Step 1 (skipped when RUN_DIR/model.keras exists): build MobileNetV2 (alpha 1.0,
ImageNet weights from ../shared/weights) behind Rescaling(1/127.5, offset=-1),
train a GAP + Dropout + Dense(5) head for a few epochs on cached backbone
features (the backbone is frozen, so this equals training the whole model with
a frozen base, minutes faster on 2 cores), and save a run directory
(model.keras + card, labels.txt, config.json) like `edgecnn train` does.

Step 2: `edgecnn export RUN_DIR --formats all`, then print each artifact's size,
agreement with Keras and the accuracy of both on the whole flowers5/val
(866 images), and the int8 / fp32 TFLite size ratio.

    .venv/bin/python experiments/flowers5_export_check.py --run-dir /tmp/flowers5_run --out /tmp/flowers5_export

Slow (a few minutes on 2 cores); not part of CI.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / ".." / "shared"
IMG = 128


def train_run(run_dir: Path, data: Path, weights: Path, epochs: int, seed: int) -> None:
    import keras
    import numpy as np

    from edgecnn.card import ModelCard, Normalization
    from edgecnn.data import load_folder
    from edgecnn.labels import write_labels

    keras.utils.set_random_seed(seed)
    t0 = time.time()
    train = load_folder(data / "train", IMG)
    print(f"loaded {len(train)} train images in {time.time() - t0:.0f}s", flush=True)

    inputs = keras.Input((IMG, IMG, 3), name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1, name="rescale")(inputs)
    base = keras.applications.MobileNetV2(input_shape=(IMG, IMG, 3), include_top=False, weights=None)
    base.load_weights(str(weights))
    base.trainable = False
    features = base(x, training=False)
    backbone = keras.Model(inputs, features)
    t0 = time.time()
    cached = backbone.predict(train.images.astype("float32"), batch_size=64, verbose=0)
    print(f"backbone features {cached.shape} in {time.time() - t0:.0f}s", flush=True)

    head_in = keras.Input(cached.shape[1:])
    h = keras.layers.GlobalAveragePooling2D(name="gap")(head_in)
    h = keras.layers.Dropout(0.2, name="dropout")(h)
    out = keras.layers.Dense(len(train.class_names), activation="softmax", name="predictions")(h)
    head = keras.Model(head_in, out)
    head.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    head.fit(cached, train.labels, epochs=epochs, batch_size=32, shuffle=True, verbose=2)

    y = keras.layers.GlobalAveragePooling2D(name="gap")(features)
    y = keras.layers.Dropout(0.2, name="dropout")(y)
    y = keras.layers.Dense(len(train.class_names), activation="softmax", name="predictions")(y)
    model = keras.Model(inputs, y, name="mobilenet_v2_flowers5")
    model.get_layer("predictions").set_weights(head.get_layer("predictions").get_weights())
    check = np.abs(model.predict(train.images[:8].astype("float32"), verbose=0)
                   - head.predict(cached[:8], verbose=0)).max()
    assert check < 1e-4, check

    run_dir.mkdir(parents=True, exist_ok=True)
    model.save(run_dir / "model.keras")
    ModelCard(
        labels=train.class_names, input_height=IMG, input_width=IMG,
        normalization=Normalization.raw("Rescaling(1/127.5, offset=-1): pixels to [-1, 1]"),
        architecture="mobilenet_v2",
    ).save(run_dir / "model.keras")
    write_labels(run_dir / "labels.txt", train.class_names)
    config = {"data": str((data / "train").resolve()), "val": str((data / "val").resolve()),
              "val_split": 0.0, "img_size": IMG, "seed": seed, "epochs": epochs}
    (run_dir / "config.json").write_text(json.dumps(config, indent=2))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run-dir", type=Path, default=Path("/tmp/flowers5_run"))
    p.add_argument("--out", type=Path, default=Path("/tmp/flowers5_export"))
    p.add_argument("--data", type=Path, default=SHARED / "data" / "flowers5")
    p.add_argument("--weights", type=Path, default=SHARED / "weights" / "mobilenet_v2_1.0_imagenet_no_top.weights.h5")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-samples", type=int, default=866, help="validation images per export (866 = all of val)")
    p.add_argument("--formats", default="all")
    p.add_argument("--train-only", action="store_true")
    args = p.parse_args(argv)

    if not (args.run_dir / "model.keras").exists():
        train_run(args.run_dir, args.data, args.weights, args.epochs, args.seed)
    if args.train_only:
        return 0

    from edgecnn.cli import configure_logging
    from edgecnn.export import export

    configure_logging()  # export's progress lines on stderr
    t0 = time.time()
    report = export(args.run_dir, args.formats, args.out, force=True, val_samples=args.val_samples)
    print(f"\nexported in {time.time() - t0:.0f}s -> {args.out}")
    sizes = {a.format: a.size for a in report.artifacts}
    print(f"{'format':16} {'size KB':>9} {'agree':>7} {'maxdiff':>9} {'acc':>7} {'keras acc':>9}")
    for a in report.artifacts:
        v = a.validation or {}
        print(f"{a.format:16} {a.size / 1024:9.0f} {v.get('agreement', float('nan')):7.4f} "
              f"{v.get('max_abs_diff', float('nan')):9.2e} {v.get('accuracy', float('nan')):7.4f} "
              f"{v.get('reference_accuracy', float('nan')):9.4f}")
        here = v.get("this_cpu")  # onnx-int8 on x86 without VNNI: judged exact, this CPU's kernels beside it
        if here:
            print(f"{'  (this CPU)':16} {'':>9} {here['agreement']:7.4f} {here['max_abs_diff']:9.2e} "
                  f"{here['accuracy']:7.4f} {here['reference_accuracy']:9.4f}")
    for warning in report.warnings:
        print(f"warning: {warning}")
    if "tflite-int8" in sizes and "tflite-fp32" in sizes:
        print(f"tflite int8 / fp32 size: {sizes['tflite-int8'] / sizes['tflite-fp32']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
