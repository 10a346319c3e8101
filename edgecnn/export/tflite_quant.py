"""Full-integer TFLite quantization in two steps: calibrate once, then quantize (possibly several ways).

The converter's own ``convert()`` does both at once. Split, the calibrated
model (float ops with each tensor's observed min/max) can be quantized fully,
with some layers left in float (``denylisted_nodes``), or instrumented for the
quantization debugger, without re-running calibration.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from edgecnn.compat import calibrate_only, mlir_quantize
from edgecnn.native_logs import native_stderr
from edgecnn.tflite_metadata import model_schema


def calibrate(converter, representative: Callable[[], Iterable]) -> bytes:
    """A calibrated float model: ``converter`` (from a SavedModel) run over the representative images."""
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.experimental_mlir_quantizer = True
    calibrate_only(converter)
    with contextlib.redirect_stdout(io.StringIO()), native_stderr():
        return converter.convert()


def quantize(calibrated: bytes, io_type: str = "uint8", float_nodes: Iterable[str] = (),
             numeric_verify: bool = False) -> bytes:
    """Quantize a calibrated model: int8 everywhere but ``float_nodes`` (tensor names), I/O of ``io_type``."""
    import tensorflow as tf

    dtype = {"uint8": tf.uint8, "int8": tf.int8, "float32": tf.float32}[io_type]
    with native_stderr():  # "fully_quantize: 0, inference_type: 6, ..."
        return mlir_quantize(
            calibrated, disable_per_channel=False, fully_quantize=False, input_data_type=dtype,
            output_data_type=dtype, enable_numeric_verify=numeric_verify,
            denylisted_nodes=list(float_nodes) or None,
        )


@dataclass
class LayerError:
    """How far one quantized op's output is from the float op on the same (quantized) input."""

    tensor: str  # the op's output tensor in the TFLite model
    layer: str  # the Keras layer it comes from (best match), or the tensor name
    op: str
    rmse_over_scale: float  # RMS error in quantization steps: ~0.29 is pure rounding
    max_abs_error: float
    scale: float

    def to_dict(self) -> dict:
        return {"layer": self.layer, "op": self.op, "rmse_over_scale": round(self.rmse_over_scale, 3),
                "max_abs_error": round(self.max_abs_error, 5), "scale": self.scale, "tensor": self.tensor}


def layer_errors(calibrated: bytes, images: np.ndarray, layer_names: Iterable[str] = ()) -> list[LayerError]:
    """Per-op quantization error over ``images`` (the quantization debugger), worst first.

    Each op is compared with its float counterpart fed the same quantized
    input, so an entry is that op's own error, not what it inherited.
    """
    import tensorflow as tf

    debug_model = quantize(calibrated, "float32", numeric_verify=True)
    options = tf.lite.experimental.QuantizationDebugOptions()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), native_stderr():
        warnings.simplefilter("ignore")  # the debugger's tf.lite.Interpreter announces its deprecation
        debugger = tf.lite.experimental.QuantizationDebugger(
            quant_debug_model_content=debug_model, debug_options=options,
            debug_dataset=lambda: ([image[None].astype(np.float32)] for image in images))
        debugger.run()
    text = io.StringIO()
    debugger.layer_statistics_dump(text)
    text.seek(0)
    import csv

    names = sorted(set(layer_names), key=len, reverse=True)
    outputs = signature_outputs(debug_model)
    rows = []
    for row in csv.DictReader(text):
        scale = float(row["scale"])
        mse = float(row["mean_squared_error"])
        tensor = row["tensor_name"]
        rows.append(LayerError(tensor, outputs.get(tensor) or _layer_of(tensor, names), row["op_name"],
                               float(np.sqrt(mse) / scale) if scale > 0 else float("nan"),
                               float(row["max_abs_error"]), scale))
    rows.sort(key=lambda e: -np.nan_to_num(e.rmse_over_scale, nan=-1))
    return rows


def signature_outputs(flatbuffer: bytes) -> dict[str, str]:
    """Tensor name -> ``"<output> output"`` for the outputs of the model's one signature (``class_scores``,
    ``features``): the converter names those tensors ``StatefulPartitionedCall:N``, which says nothing."""
    import tensorflow as tf

    from edgecnn.runtime.litert_backend import signature_output_names

    with warnings.catch_warnings(), native_stderr():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter announces its deprecation
        interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    outputs = interpreter.get_output_details()
    names = signature_output_names(interpreter, outputs)
    return {o["name"]: f"{name} output" for o, name in zip(outputs, names) if name != o["name"]}


def _layer_of(tensor: str, names: list[str]) -> str:
    """The Keras layer a TFLite tensor name comes from: the longest layer name it contains as a path part."""
    parts = tensor.replace(";", "/").split("/")
    parts += [re.sub(r"_\d+$", "", part) for part in parts]  # Keras 3 suffixes traced layer scopes with _1
    for name in names:
        if name in parts:
            return name
    return tensor.split(";")[0]


INT8_MAX = 127  # TFLite's int8 weights: symmetric, per output channel, narrow range [-127, 127]
GRIDS = ("int8-symmetric", "uint8-asymmetric")  # TFLite int8; ONNX Runtime QUInt8 weights (0..255, zero point)


def _grid(w: np.ndarray, grid: str):
    """Per-column (scale, zero point, qmin, qmax) as the converter computes them from ``w``'s range."""
    if grid == "int8-symmetric":
        scale = np.abs(w).max(axis=0) / INT8_MAX
        zero = np.zeros(w.shape[1])
        qmin, qmax = -INT8_MAX, INT8_MAX
    else:  # onnxruntime compute_scale_zp: the range includes 0; zero point rounded
        low, high = np.minimum(w.min(axis=0), 0), np.maximum(w.max(axis=0), 0)
        scale = (high - low) / 255
        scale[scale == 0] = 1.0
        zero = np.round(-low / scale)
        qmin, qmax = 0, 255
    scale[scale == 0] = 1.0
    return scale, zero, qmin, qmax


def optimal_rounding(weights: np.ndarray, hessian: np.ndarray, grid: str = "int8-symmetric",
                     damp: float = 0.01) -> np.ndarray:
    """Weights (inputs x outputs) on the int8 grid that minimise the output error ``||X (Wq - W)||``.

    GPTQ (Frantar et al., 2023): round one input row at a time and spread its
    rounding error over the rows not yet rounded, weighted by the inverse of
    ``hessian`` = XᵀX. The grid is the converter's own (``int8-symmetric``:
    TFLite, scale = max|w| / 127 per output channel; ``uint8-asymmetric``:
    ONNX Runtime's QUInt8 weights) and each column's extreme weights are pinned
    to the ends of its grid, so the converter recomputes exactly this grid from
    the rounded weights and keeps them as they are.
    """
    w = weights.astype(np.float64).copy()
    rows, cols = w.shape
    scale, zero, qmin, qmax = _grid(w, grid)
    pinned = np.zeros_like(w, dtype=bool)
    pinned_codes = np.zeros_like(w)
    top, bottom = w.argmax(axis=0), w.argmin(axis=0)
    columns = np.arange(cols)
    if grid == "int8-symmetric":
        extreme = np.abs(w).argmax(axis=0)
        pinned[extreme, columns] = True
        pinned_codes[extreme, columns] = np.sign(w[extreme, columns]) * INT8_MAX
    else:
        has_top, has_bottom = w[top, columns] > 0, w[bottom, columns] < 0
        pinned[top[has_top], columns[has_top]] = True
        pinned_codes[top[has_top], columns[has_top]] = qmax
        pinned[bottom[has_bottom], columns[has_bottom]] = True
        pinned_codes[bottom[has_bottom], columns[has_bottom]] = qmin
    h = hessian.astype(np.float64).copy()
    dead = np.diag(h) == 0
    h[dead, dead] = 1.0
    h += damp * np.mean(np.diag(h)) * np.eye(rows)
    upper = np.linalg.cholesky(np.linalg.inv(h)).T  # upper Cholesky factor of H^-1
    codes = np.zeros_like(w)
    for i in range(rows):
        q = np.clip(np.round(w[i] / scale) + zero, qmin, qmax)
        q = np.where(pinned[i], pinned_codes[i], q)
        codes[i] = q
        err = (w[i] - (q - zero) * scale) / upper[i, i]
        update = np.outer(upper[i, i + 1:], err)
        update[pinned[i + 1:]] = 0.0
        w[i + 1:] -= update
    return (codes - zero) * scale


def snap_weights(model, images: np.ndarray, grid: str = "int8-symmetric", batch: int = 16, depthwise: bool = True,
                 errors: list | None = None):
    """A copy of ``model`` whose convolution and dense weights sit on TFLite's int8 grid, optimally rounded.

    Weights already on the grid (e.g. pretrained layers that came from an int8
    model) stay as they are; others (fine-tuned or trained in float) get
    :func:`optimal_rounding` against their real inputs on ``images``: 1x1
    convolutions and dense layers as one problem, depthwise convolutions one
    channel (3x3 patch) at a time.
    Returns the copy and the names of the layers it changed; ``errors``, when
    given, receives each layer's output error (relative RMS over ``images``)
    with nearest and with optimal rounding.
    """
    import keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    targets = [layer for layer in copy.layers if (_pointwise(layer) or (depthwise and _depthwise(layer)))
               and not _on_grid(_as_matrix(layer), grid)]
    if not targets:
        return copy, []
    probe = keras.Model(copy.inputs, [layer.input for layer in targets])
    hessians: list = [0.0] * len(targets)
    for start in range(0, len(images), batch):
        outs = probe([images[start:start + batch].astype("float32")], training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        for i, (layer, x) in enumerate(zip(targets, outs)):
            hessians[i] = hessians[i] + _hessian(layer, x)
    for layer, h in zip(targets, hessians):
        values = layer.get_weights()
        kernel = values[0]
        if _depthwise(layer):
            kh, kw, channels, mult = kernel.shape
            flat = kernel.reshape(kh * kw, channels * mult)
            snapped = np.stack([optimal_rounding(flat[:, c:c + 1], h[c], grid)[:, 0]
                                for c in range(flat.shape[1])], axis=1)
        else:
            flat = kernel.reshape(-1, kernel.shape[-1])
            snapped = optimal_rounding(flat, h, grid)
        if errors is not None:
            errors.append({"layer": layer.name, "nearest": _output_error(flat, _nearest(flat, grid), h),
                           "optimal": _output_error(flat, snapped, h)})
        layer.set_weights([snapped.reshape(kernel.shape).astype(kernel.dtype), *values[1:]])
    return copy, [layer.name for layer in targets]


def _nearest(w: np.ndarray, grid: str) -> np.ndarray:
    scale, zero, qmin, qmax = _grid(w.astype(np.float64), grid)
    return (np.clip(np.round(w / scale) + zero, qmin, qmax) - zero) * scale


def _output_error(w: np.ndarray, rounded: np.ndarray, h: np.ndarray) -> float:
    """RMS change of the layer's output relative to its RMS output: sqrt(tr(DᵀHD) / tr(WᵀHW)), D = rounded - W."""
    d = rounded.astype(np.float64) - w
    w = w.astype(np.float64)
    if h.ndim == 3:  # depthwise: one (k*k, k*k) matrix per channel
        num = np.einsum("kc,ckl,lc->", d, h, d)
        den = np.einsum("kc,ckl,lc->", w, h, w)
    else:
        num, den = np.einsum("ic,ij,jc->", d, h, d), np.einsum("ic,ij,jc->", w, h, w)
    return round(float(np.sqrt(num / den)) if den > 0 else 0.0, 5)


def _hessian(layer, x) -> np.ndarray:
    """XᵀX of the layer's input rows: pixels for 1x1/dense, per-channel kxk patches (C, k*k, k*k) for depthwise."""
    if not _depthwise(layer):
        x = np.asarray(x, np.float64).reshape(-1, np.shape(x)[-1])
        return x.T @ x
    import tensorflow as tf

    kh, kw = layer.kernel_size
    sh, sw = layer.strides
    patches = tf.image.extract_patches(x, sizes=[1, kh, kw, 1], strides=[1, sh, sw, 1], rates=[1, 1, 1, 1],
                                       padding=layer.padding.upper())
    channels = np.shape(x)[-1]
    p = np.asarray(patches, np.float64).reshape(-1, kh * kw, channels)  # (rows, k*k, C), patch order (kh, kw)
    return np.einsum("rkc,rlc->ckl", p, p)


def _as_matrix(layer) -> np.ndarray:
    kernel = layer.get_weights()[0]
    if _depthwise(layer):
        kh, kw, channels, mult = kernel.shape
        return kernel.reshape(kh * kw, channels * mult)
    return kernel.reshape(-1, kernel.shape[-1])


def _depthwise(layer) -> bool:
    return type(layer).__name__ == "DepthwiseConv2D" and layer.depth_multiplier == 1 and layer.dilation_rate == (1, 1)


def _pointwise(layer) -> bool:
    kind = type(layer).__name__
    if kind == "Dense":
        return True
    return kind == "Conv2D" and tuple(layer.kernel_size) == (1, 1) and layer.groups == 1


def _on_grid(w: np.ndarray, grid: str) -> bool:
    scale, zero, _, _ = _grid(w.astype(np.float64), grid)
    q = w / scale + zero
    return bool(np.max(np.abs(q - np.round(q))) < 1e-3)


AUTO_FLOAT_THRESHOLD = 1.0  # --int8-float-layers auto: ops whose RMS error exceeds 1 step (rounding alone: 0.29)


def choose_float_layers(spec: str, errors: list[LayerError], layer_names: Iterable[str]) -> list[str]:
    """Keras layer names to keep in float for ``--int8-float-layers`` ``auto``, ``N`` or ``NAME,NAME``."""
    from edgecnn.errors import UsageError, did_you_mean

    spec = spec.strip()
    ranked = []
    for e in errors:
        if e.layer not in ranked:
            ranked.append(e.layer)
    if spec == "auto":
        return [layer for layer in ranked
                if any(e.layer == layer and e.rmse_over_scale > AUTO_FLOAT_THRESHOLD for e in errors)]
    if spec.isdigit():
        return ranked[: int(spec)]
    names = [n.strip() for n in spec.split(",") if n.strip()]
    known = set(layer_names)
    for name in names:
        if name not in known:
            raise UsageError(f"--int8-float-layers: no layer {name!r} in the model{did_you_mean(name, known)}; "
                             f"pass auto, a number, or layer names")
    return names


def op_outputs(flatbuffer: bytes) -> list[tuple[str, str]]:
    """(output tensor name, op name) of every op in a TFLite model's main graph."""
    schema = model_schema()
    model = schema.ModelT.InitFromPackedBuf(flatbuffer, 0)
    graph = model.subgraphs[0]
    names = {}
    for attr in dir(schema.BuiltinOperator):
        if not attr.startswith("_"):
            names[getattr(schema.BuiltinOperator, attr)] = attr
    out = []
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        kind = names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM")
        for index in op.outputs:
            out.append((graph.tensors[index].name.decode(), kind))
    return out


def nodes_of(flatbuffer: bytes, layers: Iterable[str]) -> list[str]:
    """Output tensors of the ops named after ``layers`` (or their sub-layers, e.g. X_BN folded into X)."""
    wanted = list(layers)
    nodes = []
    for tensor, _ in op_outputs(flatbuffer):
        parts = tensor.replace(";", "/").split("/")
        parts += [re.sub(r"_\d+$", "", part) for part in parts]
        if any(part == name or part.startswith(name + "_") for name in wanted for part in parts):
            nodes.append(tensor)
    return nodes


def float_ops(flatbuffer: bytes) -> list[str]:
    """Ops computing in float in a quantized model (besides the I/O Quantize/Dequantize)."""
    schema = model_schema()
    model = schema.ModelT.InitFromPackedBuf(flatbuffer, 0)
    graph = model.subgraphs[0]
    kinds = dict(op_outputs(flatbuffer))
    floating = []
    for op in graph.operators:
        outputs = [graph.tensors[i] for i in op.outputs]
        name = outputs[0].name.decode() if outputs else ""
        if kinds.get(name) in ("QUANTIZE", "DEQUANTIZE"):
            continue
        if any(t.type == schema.TensorType.FLOAT32 for t in outputs):
            floating.append(name)
    return floating
