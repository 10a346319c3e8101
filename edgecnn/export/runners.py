"""Run an exported artifact on uint8 RGB images and return float32 class probabilities.

Interim runners until ``edgecnn.runtime`` lands; validation then goes through
the runtime's backends instead (see :func:`run_artifact`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def run_artifact(path: Path, images: np.ndarray) -> np.ndarray:
    path = Path(path)
    if path.is_dir():
        return _run_saved_model(path, images)
    runner = {".tflite": _run_tflite, ".onnx": _run_onnx, ".keras": _run_keras}[path.suffix]
    return runner(path, images)


def _run_tflite(path: Path, images: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=2)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    results = []
    for image in images:
        x = image[None].astype(np.float32)
        scale, zero = inp["quantization"]
        if scale:
            x = np.round(x / scale + zero)
        info = np.iinfo(inp["dtype"]) if np.issubdtype(inp["dtype"], np.integer) else None
        if info is not None:
            x = np.clip(x, info.min, info.max)
        interpreter.set_tensor(inp["index"], x.astype(inp["dtype"]))
        interpreter.invoke()
        y = interpreter.get_tensor(out["index"]).astype(np.float32)
        scale, zero = out["quantization"]
        results.append((y - zero) * scale if scale else y)
    return np.concatenate(results)


def _run_onnx(path: Path, images: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: chunk.astype(np.float32)})[0]
                           for chunk in np.array_split(images, max(1, len(images) // 32))])


def _run_keras(path: Path, images: np.ndarray) -> np.ndarray:
    import keras

    model = keras.saving.load_model(path, compile=False)
    return np.asarray(model.predict(images.astype(np.float32), batch_size=32, verbose=0))


def _run_saved_model(path: Path, images: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    outputs = serve(tf.constant(images.astype(np.float32)))
    return next(iter(outputs.values())).numpy()
