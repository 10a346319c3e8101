"""Build the MobileNetV2 224 fp32 / int8 TFLite pair the backend benchmarks and the int8 check use.

fp32: keras.applications.MobileNetV2(include_top=True, 224) with the shared
ImageNet weights, behind Rescaling(1/127.5, offset=-1) (raw pixels in, as every
edgecnn model), converted with tf.lite.TFLiteConverter. int8: the same model,
full-integer quantized (uint8 input/output) on real calibration photos
(flowers5 train + coral). Both get a model card, so ``Classifier`` runs them
like exported edgecnn models. ``--onnx`` also writes model.keras, model.onnx and
model_int8.onnx through ``edgecnn.export`` (unvalidated: ImageNet labels, no
ImageNet validation set here). Cached: existing files are kept.

    /work/venv/bin/python benchmarks/make_mobilenet_224.py [--out benchmarks/.cache/mobilenet_v2_224]

Slow (about a minute on 2 cores); not part of CI.
"""

from __future__ import annotations

import argparse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / ".." / "shared"
DEFAULT_OUT = REPO / "benchmarks" / ".cache" / "mobilenet_v2_224"
SIZE = 224


def calibration_images(count: int = 64):
    import cv2
    import numpy as np

    from edgecnn.runtime import read_image

    files = sorted((SHARED / "data" / "flowers5" / "train").rglob("*.jpg"))[:: 40][:count]
    files += sorted((SHARED / "data" / "coral").glob("*.bmp"))
    out = [cv2.cvtColor(cv2.resize(read_image(f), (SIZE, SIZE)), cv2.COLOR_BGR2RGB) for f in files]
    return np.stack(out).astype("float32")


def build_keras():
    import keras

    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1, name="rescale")(inputs)
    base = keras.applications.MobileNetV2(input_shape=(SIZE, SIZE, 3), include_top=True, weights=None)
    base.load_weights(str(SHARED / "weights" / "mobilenet_v2_1.0_224_imagenet.weights.h5"))
    return keras.Model(inputs, base(x), name="mobilenet_v2_224")


def convert(model, int8: bool, calib) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([img[None]] for img in calib)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    return converter.convert()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--onnx", action="store_true", help="also model.keras, model.onnx, model_int8.onnx")
    args = parser.parse_args(argv)
    out: Path = args.out
    targets = {"model_fp32.tflite": False, "model_int8.tflite": True}
    extra = ["model.keras", "model.onnx", "model_int8.onnx"] if args.onnx else []
    if all((out / name).is_file() for name in [*targets, *extra]):
        print(f"cached: {out}")
        return 0

    from edgecnn._io import write_bytes
    from edgecnn.card import ModelCard, Normalization
    from edgecnn.labels import read_labels, write_labels

    out.mkdir(parents=True, exist_ok=True)
    labels = read_labels(SHARED / "data" / "coral" / "imagenet_labels.txt")[1:]  # drop 'background'
    model = build_keras()
    calib = calibration_images()
    out.mkdir(parents=True, exist_ok=True)
    if extra:
        from edgecnn.cli import configure_logging
        from edgecnn.export import export

        configure_logging()  # export's progress lines on stderr
        export(model, ["keras", "onnx", "onnx-int8"], out, labels=labels, force=True, validate=False,
               calib_data=SHARED / "data" / "flowers5" / "train", calib_samples=64)
    for name, int8 in targets.items():
        if (out / name).is_file():
            continue
        write_bytes(out / name, convert(model, int8, calib))
        ModelCard(labels=labels, input_height=SIZE, input_width=SIZE,
                  normalization=Normalization.raw("Rescaling(1/127.5, offset=-1)"),
                  format="tflite-int8" if int8 else "tflite-fp32", quantization="int8" if int8 else "none",
                  architecture="mobilenet_v2").save(out / name)
        print(f"wrote {out / name} ({(out / name).stat().st_size / 1e6:.1f} MB)")
    write_labels(out / "labels.txt", labels)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
