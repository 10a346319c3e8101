"""Can Keras 3's own ONNX export (``model.export(path, format="onnx")``) replace edgecnn's tf2onnx conversion?

For each model (a MobileNetV2 built with weights None, the same with ImageNet backbone weights when
``--weights`` names the no-top file, whose activations are realistic, and a tutorial CNN; the last Dense made
linear, so that the scores compared are logits, which a saturated softmax cannot hide), both conversions of the
same Keras model: edgecnn's (``tf2onnx.convert.from_function`` on ``edgecnn.export.trace.inference_function``, what
``edgecnn export --formats onnx`` runs before renaming the I/O and embedding the card) and Keras's. For each:
the largest absolute difference of the class logits from Keras's own on real flowers5 validation photos (run
in onnxruntime), the ONNX ops, the file size, the conversion time (median of ``--repeats``, alternating), and
whether the batch dimension stays dynamic.

    python experiments/keras_onnx_export.py --data ../shared/data/flowers5/val \
        --weights ../shared/weights/mobilenet_v2_1.0_imagenet_no_top.weights.h5 --out keras_onnx.json
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

# (name, architecture, input size (small: a loaded 2-core machine), whether the backbone takes --weights)
MODELS = [("mobilenet_v2", "mobilenet_v2", 96, False), ("mobilenet_v2_imagenet", "mobilenet_v2", 96, True),
          ("simple_cnn", "simple_cnn", 64, False)]


def _edgecnn_onnx(model, path: Path, opset: int) -> None:
    import onnx
    import tf2onnx

    from edgecnn.export.trace import inference_function

    serve = inference_function(model)
    proto, _ = tf2onnx.convert.from_function(serve, input_signature=serve.input_signature, opset=opset,
                                             output_path=None)
    onnx.save_model(proto, str(path))


def _keras_onnx(model, path: Path, opset: int) -> None:
    model.export(str(path), format="onnx", opset_version=opset, verbose=False)


CONVERTERS = {"edgecnn (tf2onnx.from_function)": _edgecnn_onnx, "keras model.export(format='onnx')": _keras_onnx}


def _describe(path: Path, images: np.ndarray, reference: np.ndarray) -> dict:
    import onnx
    import onnxruntime as ort

    proto = onnx.load(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    scores = np.concatenate([session.run(None, {name: images[i:i + 8].astype(np.float32)})[0]
                             for i in range(0, len(images), 8)])
    batch = proto.graph.input[0].type.tensor_type.shape.dim[0]
    return {
        "max_abs_diff_vs_keras": float(np.abs(scores - reference).max()),
        "top1_agreement": float(np.mean(scores.argmax(1) == reference.argmax(1))),
        "ops": dict(sorted(collections.Counter(n.op_type for n in proto.graph.node).items())),
        "nodes": len(proto.graph.node),
        "bytes": path.stat().st_size,
        "inputs": [i.name for i in proto.graph.input], "outputs": [o.name for o in proto.graph.output],
        "dynamic_batch": bool(batch.dim_param) or not batch.dim_value,
    }


def measure(arch: str, size: int, weights, data: Path, count: int, repeats: int, opset: int, work: Path) -> dict:
    import keras

    from edgecnn.data import load_folder
    from edgecnn.models import create_model

    work.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    model = create_model(arch, 5, (size, size, 3), **({"weights": weights} if arch.startswith("mobilenet") else {}))
    model.layers[-1].activation = keras.activations.linear  # logits: differences a saturated softmax would hide
    loaded = load_folder(data, size, limit_per_class=max(1, count // 5))
    images = loaded.images.astype(np.float32)
    reference = model.predict(images, batch_size=8, verbose=0)
    times: dict[str, list[float]] = {name: [] for name in CONVERTERS}
    for _ in range(repeats):  # alternating, so machine load hits both alike
        for name, convert in CONVERTERS.items():
            started = time.perf_counter()
            convert(model, work / f"{arch}-{len(times[name])}-{name[:5]}.onnx", opset)
            times[name].append(time.perf_counter() - started)
    out = {"input": [size, size, 3], "images": int(len(images)), "opset": opset,
           "max_abs_logit": float(np.abs(reference).max())}
    for name in CONVERTERS:
        path = work / f"{arch}-0-{name[:5]}.onnx"
        out[name] = {**_describe(path, images, reference), "seconds_median": round(statistics.median(times[name]), 2),
                     "seconds_all": [round(t, 2) for t in times[name]]}
    first, second = (out[name]["ops"] for name in CONVERTERS)
    out["same_ops"] = first == second
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a class-per-folder image folder (flowers5 val)")
    parser.add_argument("--weights", help="MobileNetV2 no-top ImageNet weights (.weights.h5) for the second model")
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--out", default="keras_onnx.json")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf
    import tf2onnx

    result = {"versions": {"keras": keras.__version__, "tensorflow": tf.__version__, "tf2onnx": tf2onnx.__version__}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, arch, size, pretrained in MODELS:
            if pretrained and not args.weights:
                continue
            weights = args.weights if pretrained else "none"
            result[name] = measure(arch, size, weights, Path(args.data), args.images, args.repeats, args.opset,
                                   Path(tmp) / name)
            print(json.dumps({name: result[name]}, indent=1))
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
