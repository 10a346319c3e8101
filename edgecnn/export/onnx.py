"""ONNX exporters: float32 via tf2onnx (dynamic batch) and static QDQ int8 via onnxruntime."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from edgecnn.card import ModelCard
from edgecnn.errors import ExportError, first_line
from edgecnn.export.embed import embed_in_onnx
from edgecnn.export.job import ExportJob
from edgecnn.export.trace import INPUT_NAME, inference_function, offending_layers
from edgecnn.formats import FORMATS, Format
from edgecnn.runtime.base import FEATURES_OUTPUT


def export_fp32(job: ExportJob, fmt: Format, dest: Path) -> ModelCard:
    import onnx

    card = job.card_for(fmt, opset=job.opset)
    model = _convert(job, fmt)
    embed_in_onnx(model, card)
    onnx.save_model(model, str(dest))
    return card


# int8 activations, int8 weights per channel (symmetric, scale max|w| / 127: TFLite's grid too, so the weights
# are rounded optimally onto it as for tflite-int8). ONNX Runtime's x86 kernels without VNNI (VPMADDUBSW) saturate
# their 16-bit pair sums; its ARM kernels do not: on emulated Cortex-A72 and A76 (devices/raspberry-pi-*/results/
# emulated-2026-11-28) they follow the QDQ graph's int8 arithmetic (unfused) up to rounding, not bit for bit. x86
# with VNNI accumulates in 32 bits as ARM does; not measured here. No setup avoids the saturation without losing
# accuracy: uint8 weights (U8U8) lose 2.7 points on flowers5 (7-bit weights, reduce_range, 6);
# experiments/onnx_int8_variants.py measures them. The card says so and the runtime warns on such CPUs.
INT8_SATURATION_FREE_ON = ["arm", "x86-vnni"]  # card: CPUs whose ONNX Runtime int8 kernels do not saturate
ONNX_INT8_SETUP = {"format": "QDQ", "activations": "int8", "weights": "int8 per channel, symmetric",
                   "calibration": "MinMax"}
INT8_KERNELS_NOTE = ("ONNX Runtime's int8 kernels on x86 CPUs without VNNI saturate and lose accuracy: there, use "
                     "model.onnx or a TFLite model. Its ARM kernels do not saturate (checked on emulated Cortex-A72 "
                     "and A76: the int8 arithmetic up to rounding); x86 with VNNI should not either (not measured)")


def export_int8(job: ExportJob, fmt: Format, dest: Path) -> ModelCard:
    """Static QDQ quantization, per-channel int8 weights (optimally rounded), calibrated on the job's images."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32, rounding = _int8_source(job, fmt)
    prepared = job.workdir / "model_prepared.onnx"
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    quantized = job.workdir / "model_int8_raw.onnx"
    try:
        quantize_static(
            str(prepared), str(quantized), _Reader(job.calibration.images),
            quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
    except Exception as exc:  # noqa: BLE001
        first = first_line(exc, 300)
        raise ExportError(f"{fmt.name}: onnxruntime quantization failed ({first}); export 'onnx' instead") from None
    card = job.card_for(fmt, opset=job.opset, **job.calibration_note(), onnx_quantization=ONNX_INT8_SETUP,
                        weight_rounding=rounding["method"], int8_kernels=INT8_KERNELS_NOTE,
                        int8_saturation_free_on=INT8_SATURATION_FREE_ON)
    job.details[fmt.name] = {"onnx_quantization": ONNX_INT8_SETUP, "weight_rounding": rounding,
                             "int8_kernels": INT8_KERNELS_NOTE}
    model = onnx.load_model(str(quantized))
    embed_in_onnx(model, card)
    onnx.save_model(model, str(dest))
    return card


def _int8_source(job: ExportJob, fmt: Format) -> tuple[Path, dict]:
    """The float ONNX model to quantize: with weights optimally rounded onto the int8 grid unless told not to."""
    plain = {"method": "nearest", "layers": []}
    if job.int8_rounding != "optimal":
        return job.written.get("onnx") or _fp32_scratch(job), plain
    from edgecnn.export.tflite_quant import snap_weights

    try:
        model, changed = snap_weights(job.model, job.calibration.images, "int8-symmetric")
    except Exception:  # noqa: BLE001  (custom layers may not clone: round to nearest)
        return job.written.get("onnx") or _fp32_scratch(job), plain
    if not changed:
        return job.written.get("onnx") or _fp32_scratch(job), {"method": "optimal", "layers": []}
    onnx_model = _convert(job, fmt, model)
    path = job.workdir / "model_int8_weights.onnx"
    import onnx

    onnx.save_model(onnx_model, str(path))
    return path, {"method": "optimal", "layers": changed}


def _fp32_scratch(job: ExportJob) -> Path:
    path = job.workdir / "model_fp32.onnx"
    export_fp32(job, FORMATS["onnx"], path)
    return path


def _convert(job: ExportJob, fmt: Format, model=None):
    import tf2onnx

    serve = inference_function(model if model is not None else job.model)
    try:
        model, _ = tf2onnx.convert.from_function(
            serve, input_signature=serve.input_signature, opset=job.opset, output_path=None,
        )
    except Exception as exc:  # noqa: BLE001  (tf2onnx raises many types)
        raise _conversion_error(job, fmt, exc) from None
    _check_supported(job, fmt, model)
    _rename_io(model)
    return model


def _check_supported(job: ExportJob, fmt: Format, model) -> None:
    """tf2onnx leaves ops it cannot convert in the graph under their TF names: reject them."""
    from onnx import defs

    unknown = sorted({n.op_type for n in model.graph.node
                      if n.domain in ("", "ai.onnx") and not defs.has(n.op_type)})
    if unknown:
        nodes = " ".join(n.name for n in model.graph.node if n.op_type in unknown)
        layers = offending_layers(job.model, nodes)
        where = f" in layer {', '.join(layers)}" if layers else ""
        raise ExportError(f"{fmt.name} cannot take op {', '.join(unknown)}{where} (opset {job.opset}); "
                          f"try a newer --opset or replace the layer")


def _rename_io(model) -> None:
    """Name the graph's input ``image``, its class output ``probabilities`` (first; ``features`` second where the
    model has them) and their dynamic first dim ``batch``."""
    renames = {}
    pairs = [(model.graph.input[0], INPUT_NAME), (model.graph.output[0], "probabilities")]
    pairs += [(value, FEATURES_OUTPUT) for value in model.graph.output[1:2]]
    for value, name in pairs:
        renames[value.name] = name
        value.name = name
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    for node in model.graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]


def _conversion_error(job: ExportJob, fmt: Format, exc: Exception) -> ExportError:
    message = str(exc)
    ops = sorted(set(re.findall(r"'(\w+)'", message)) & _tf_op_like(message))
    layers = offending_layers(job.model, message)
    first = first_line(exc, 300)
    where = f" in layer {', '.join(layers)}" if layers else ""
    what = f"op {', '.join(ops)}" if ops else f"this model ({first})"
    return ExportError(f"{fmt.name} cannot take {what}{where}; try another --opset or format")


def _tf_op_like(message: str) -> set[str]:
    return set(re.findall(r"\b([A-Z][A-Za-z0-9]+)\b", message))


class _Reader:
    """onnxruntime CalibrationDataReader over uint8 images, fed as float32 raw pixels."""

    def __init__(self, images: np.ndarray):
        self._images = iter(images)

    def get_next(self):
        image = next(self._images, None)
        return None if image is None else {INPUT_NAME: image[None].astype(np.float32)}

    def rewind(self):  # pragma: no cover - not used by MinMax
        pass
