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


def export_fp32(job: ExportJob, fmt: Format, dest: Path) -> ModelCard:
    import onnx

    card = job.card_for(fmt, opset=job.opset)
    model = _convert(job, fmt)
    embed_in_onnx(model, card)
    onnx.save_model(model, str(dest))
    return card


def export_int8(job: ExportJob, fmt: Format, dest: Path) -> ModelCard:
    """Static QDQ quantization, per-channel int8 weights, calibrated on the job's images."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32 = job.written.get("onnx") or _fp32_scratch(job)
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
    card = job.card_for(fmt, opset=job.opset, **job.calibration_note())
    model = onnx.load_model(str(quantized))
    embed_in_onnx(model, card)
    onnx.save_model(model, str(dest))
    return card


def _fp32_scratch(job: ExportJob) -> Path:
    path = job.workdir / "model_fp32.onnx"
    export_fp32(job, FORMATS["onnx"], path)
    return path


def _convert(job: ExportJob, fmt: Format):
    import tf2onnx

    serve = inference_function(job.model)
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
    """Name the graph's input ``image``, its output ``probabilities`` and their dynamic first dim ``batch``."""
    renames = {}
    for value, name in ((model.graph.input[0], INPUT_NAME), (model.graph.output[0], "probabilities")):
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
