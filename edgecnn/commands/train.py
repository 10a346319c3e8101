"""`edgecnn train`: fit an architecture from the registry on a class-per-folder image dataset."""

from __future__ import annotations

import argparse

from edgecnn.commands._args import add_weights, fraction, int_at_least, non_negative_int, positive_float, positive_int

HELP = "train a CNN classifier on a class-per-folder image dataset (writes a new run directory)"


def _augment_list(text: str) -> list[str]:
    return [] if text.strip().lower() in ("", "none") else [t.strip() for t in text.split(",") if t.strip()]


def _address_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from edgecnn.train.augment import AUGMENTATIONS
    from edgecnn.train.config import CLASS_WEIGHTS, TRANSFER_FINE_TUNE_EPOCHS, default

    parser.add_argument("--arch", required=True, metavar="NAME", help="architecture (see `edgecnn models`)")
    parser.add_argument("--data", required=True, action="append", metavar="DIR",
                        help="training images, one sub-folder per class; or a split root with train/ and val/ "
                             "(and test/) folders, each with one sub-folder per class. Repeat it to add more "
                             "roots, e.g. a folder from `edgecnn collect pull`: merged by class name, they add "
                             "training images; the first root's classes are the model's and it alone validates")
    parser.add_argument("--val", metavar="DIR", help="validation images (same class folders); default: split --data")
    parser.add_argument("--val-split", type=fraction, default=default("val_split"), metavar="F",
                        help="fraction of --data held out for validation when --val is absent (default: %(default)s)")
    parser.add_argument("--img-size", type=int_at_least(8), metavar="N",
                        help="square input size (default: the architecture's)")
    parser.add_argument("--epochs", type=positive_int, default=default("epochs"), metavar="N",
                        help="epochs (the frozen-backbone phase for transfer architectures; default: %(default)s)")
    parser.add_argument("--batch-size", type=positive_int, default=default("batch_size"), metavar="N",
                        help="default: %(default)s")
    parser.add_argument("--learning-rate", type=positive_float, default=default("learning_rate"), metavar="LR",
                        help="default: %(default)s")
    add_weights(parser)
    parser.add_argument("--alpha", type=positive_float, metavar="A", help="MobileNet width multiplier (default: 1.0)")
    parser.add_argument("--fine-tune-epochs", type=non_negative_int, metavar="N",
                        help="epochs fine-tuning the top backbone layers after the frozen phase (default: "
                             f"{TRANSFER_FINE_TUNE_EPOCHS} for mobilenet_*, 0 for the others)")
    parser.add_argument("--fine-tune-layers", type=positive_int, default=default("fine_tune_layers"), metavar="N",
                        help="top backbone layers to unfreeze when fine-tuning; BatchNorm stays frozen "
                             "(default: %(default)s)")
    parser.add_argument("--fine-tune-lr", type=positive_float, metavar="LR",
                        help="fine-tuning learning rate (default: --learning-rate / 10)")
    parser.add_argument("--augment", type=_augment_list, default=",".join(default("augment")), metavar="LIST",
                        help=f"comma-separated training augmentations from {','.join(AUGMENTATIONS)}, "
                             "or none (default: %(default)s)")
    parser.add_argument("--class-weights", choices=CLASS_WEIGHTS, default=default("class_weights"),
                        help="auto: weight classes inversely to their frequency (imbalanced data)")
    parser.add_argument("--patience", type=non_negative_int, default=default("patience"), metavar="N",
                        help="early stopping: epochs without val_accuracy gain (default: %(default)s)")
    parser.add_argument("--seed", type=non_negative_int, default=default("seed"),
                        help="random seed for split, shuffling and init (default: %(default)s)")
    parser.add_argument("--out", metavar="RUN_DIR",
                        help="run directory (default: runs/train, then runs/train2, runs/train3, ...); "
                             "an existing, non-empty one needs --exist-ok")
    parser.add_argument("--exist-ok", "--force", dest="exist_ok", action="store_true",
                        help="write into an existing --out (the run files there are replaced)")
    parser.add_argument("--eager", action="store_true",
                        help="run eagerly (no graph tracing): faster on tiny datasets, easier to debug")
    parser.add_argument("--augment-copies", type=non_negative_int, default=default("augment_copies"), metavar="N",
                        help="augmented copies of each image whose frozen-layer activations fine-tuning reuses "
                             "(default: %(default)s; see docs/train.md)")
    parser.add_argument("--cluster", type=_address_list, metavar="HOST:PORT,...",
                        help="train on several machines: every worker's address, the same list on each "
                             "(or set TF_CONFIG); needs --worker-index")
    parser.add_argument("--worker-index", type=non_negative_int, metavar="N",
                        help="this machine's position in --cluster (0: the chief, which writes --out)")


def config_from_args(args):
    from edgecnn.train.config import TrainConfig

    augment = args.augment if isinstance(args.augment, list) else _augment_list(args.augment)
    return TrainConfig(
        arch=args.arch, data=args.data[0], more_data=args.data[1:], out=args.out, val=args.val,
        val_split=args.val_split,
        img_size=args.img_size, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
        seed=args.seed, augment=augment, patience=args.patience, verbose=0 if getattr(args, "quiet", False) else 1,
        weights=args.weights, alpha=args.alpha, fine_tune_epochs=args.fine_tune_epochs,
        fine_tune_layers=args.fine_tune_layers, fine_tune_lr=args.fine_tune_lr,
        class_weights=args.class_weights, eager=args.eager, exist_ok=args.exist_ok,
        augment_copies=args.augment_copies, cluster=args.cluster, worker_index=args.worker_index,
    )


def run(args) -> int:
    import logging

    from edgecnn.train.fit import train

    result = train(config_from_args(args))
    if result.interrupted:
        logging.getLogger("edgecnn.commands").warning(f"interrupted: best model so far saved in {result.run_dir}")
        return 130
    return 0
