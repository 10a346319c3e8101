"""Which features the frozen phase's head should train on when augmentation is asked for: accuracy and cost.

    .venv/bin/python experiments/frozen_schemes.py --copies 2 --seeds 3

MobileNetV2 @128 with the shared ImageNet weights on flowers5: the pooled backbone features of the training
images as they are (clean) and of ``--copies`` augmented versions (the README's default augmentation) are
computed once; then the head (dropout + softmax, as ``edgecnn train`` builds it) trains for 3 epochs
(Adam 1e-3, batch 32) under each scheme, for ``--seeds`` initialisations:

- ``clean``: the clean features every epoch (what ``edgecnn train`` does);
- ``augmented``: epoch e on augmented copy e % copies;
- ``augmented+clean``: the copies, then the clean features, in turn.

Prints the best validation accuracy of each (mean and spread over seeds) and the seconds each extra copy cost;
``--out`` keeps them (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGECNN_SHARED", REPO / ".." / "shared")).resolve()
AUGMENT = ["flip", "rotation", "zoom", "contrast"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "experiments" / "results" / "frozen_schemes.json"))
    args = parser.parse_args()

    import numpy as np

    from edgecnn.data import open_folder

    train = open_folder(SHARED / "data" / "flowers5" / "train", 128)
    val = open_folder(SHARED / "data" / "flowers5" / "val", 128, class_names=train.class_names)

    import keras

    from edgecnn.models import create_model
    from edgecnn.train.augment import build_augmentation
    from edgecnn.train.dataset import eval_dataset, steps, train_dataset
    from edgecnn.train.features import bottom_model, extract, find_cut, top_model
    from edgecnn.train.phases import _scratch_folder
    from edgecnn.train.transfer import freeze_backbone

    weights = SHARED / "weights" / "mobilenet_v2_1.0_imagenet_no_top.weights.h5"
    model = create_model("mobilenet_v2", len(train.class_names), (128, 128, 3), weights=str(weights))
    freeze_backbone(model)
    cut = find_cut(model)
    bottom = bottom_model(model, [cut])
    folder = _scratch_folder()
    everything = np.arange(len(train))
    (clean,), clean_seconds = extract(bottom, train, everything, folder / "clean", ["f"])
    (val_store,), _ = extract(bottom, val, np.arange(len(val)), folder / "val", ["f"])
    copies, copy_seconds = [], []
    for copy in range(1, args.copies + 1):
        (store,), seconds = extract(bottom, train, everything, folder / f"aug{copy}", ["f"],
                                    augmentation=build_augmentation(AUGMENT, 1000 * copy))
        copies.append(store)
        copy_seconds.append(seconds)
    schemes = {"clean": [clean], "augmented": copies, "augmented+clean": copies + [clean]}
    results = {}
    for name, sources in schemes.items():
        accuracies = []
        for seed in range(args.seeds):
            keras.utils.set_random_seed(seed)
            fresh = create_model("mobilenet_v2", len(train.class_names), (128, 128, 3), weights="none")
            freeze_backbone(fresh)
            head = top_model(fresh, find_cut(fresh))  # a new head; the backbone's features are stored
            head.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                         metrics=["accuracy"])
            history = head.fit(train_dataset(sources, train.labels, 32, epochs=args.epochs, seed=seed),
                               steps_per_epoch=steps(len(train), 32), epochs=args.epochs, shuffle=False,
                               validation_data=eval_dataset(val_store, val.labels, 256), verbose=0)
            accuracies.append(max(history.history["val_accuracy"]))
        results[name] = {"val_accuracy": accuracies, "mean": statistics.mean(accuracies),
                         "spread": max(accuracies) - min(accuracies)}
        print(f"{name:16} best val accuracy {statistics.mean(accuracies):.4f} "
              f"(seeds: {', '.join(f'{a:.4f}' for a in accuracies)})", flush=True)
    print(f"features: clean pass {clean_seconds:.0f} s for {len(train)} images; each augmented copy "
          f"{statistics.mean(copy_seconds):.0f} s")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"schemes": results, "clean_seconds": clean_seconds, "copy_seconds": copy_seconds,
                               "epochs": args.epochs, "train_images": len(train), "val_images": len(val),
                               "load_average": os.getloadavg()}, indent=2) + "\n")
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
