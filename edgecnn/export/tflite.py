"""TFLite exporters: fp32, fp16, dynamic range and full integer int8, card embedded."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from edgecnn.card import ModelCard
from edgecnn.errors import ExportError, first_line
from edgecnn.export.embed import embed_in_tflite
from edgecnn.export.job import ExportJob
from edgecnn.export.keras_formats import scratch_saved_model
from edgecnn.export.trace import offending_layers
from edgecnn.formats import Format
from edgecnn.native_logs import native_stderr


def export_fp32(job: ExportJob, fmt: Format, dest: Path) -> ModelCard:
    return _write(job, fmt, dest, _convert(job, fmt))


def export_fp16(job: ExportJob, fmt: Format, dest: Path) -> ModelCard:
    return _write(job, fmt, dest, _convert(job, fmt, fp16=True))


def export_dynamic(job: ExportJob, fmt: Format, dest: Path) -> ModelCard:
    return _write(job, fmt, dest, _convert(job, fmt, dynamic=True))


DEBUG_IMAGES = 50  # calibration images the quantization debugger runs on
REPORTED_LAYERS = 10


def export_int8(job: ExportJob, fmt: Format, dest: Path) -> ModelCard:
    """Full integer: int8 weights and activations; input/output dtype from ``--int8-io``.

    Calibrated once, then quantized: weights first rounded optimally onto the
    int8 grid (``--int8-rounding``), layers kept in float only on request
    (``--int8-float-layers``), and the quantization debugger's per-layer errors
    reported. With ``--allow-tf-ops`` the converter's one-step path is used.
    """
    if job.allow_tf_ops:
        return _write(job, fmt, dest, _convert(job, fmt, int8=True), io_dtype=job.int8_io,
                      **job.calibration_note())
    from edgecnn.export import tflite_quant as tq

    details: dict = {}
    images = job.calibration.images
    names = [layer.name for layer in job.model.layers]
    float_layers: list[str] = []
    if job.int8_float_layers:
        plain = _calibrated(job, fmt, scratch_saved_model(job))
        ranking = tq.layer_errors(plain, images[:DEBUG_IMAGES], names)
        float_layers = tq.choose_float_layers(job.int8_float_layers, ranking, names)
    saved, rounding = scratch_saved_model(job), {"method": "nearest", "layers": []}
    if job.int8_rounding == "optimal":
        saved, rounding = _optimally_rounded(job, images)
    calibrated = _calibrated(job, fmt, saved)
    float_nodes = tq.nodes_of(calibrated, float_layers) if float_layers else []
    try:
        flatbuffer = tq.quantize(calibrated, job.int8_io, float_nodes)
    except Exception as exc:  # noqa: BLE001  (converter errors come as several types)
        raise _conversion_error(job, fmt, exc) from None
    left_float = tq.float_ops(flatbuffer)
    if left_float and not float_layers:
        raise ExportError(f"{fmt.name}: the converter left {len(left_float)} op(s) in float "
                          f"({', '.join(left_float[:3])}); the model cannot be fully integer - export tflite-dynamic")
    errors = tq.layer_errors(calibrated, images[:DEBUG_IMAGES], names)
    details["weight_rounding"] = rounding
    details["float_layers"] = float_layers
    details["largest_errors"] = {
        "images": int(min(len(images), DEBUG_IMAGES)),
        "metric": "RMS error of each quantized op against the float op on the same input, in quantization "
                  "steps of its output (0.29 is rounding alone)",
        "layers": [e.to_dict() for e in errors[:REPORTED_LAYERS]],
    }
    job.details[fmt.name] = details
    extra = {"io_dtype": job.int8_io, **job.calibration_note(), "weight_rounding": rounding["method"],
             "full_integer": not float_layers}
    if float_layers:
        extra["float_layers"] = float_layers
        extra["note"] = (f"{len(float_layers)} layer(s) kept in float ({', '.join(float_layers)}): runs on CPUs, "
                         f"not on a fully-integer accelerator such as the Edge TPU")
    return _write(job, fmt, dest, flatbuffer, **extra)


def _calibrated(job: ExportJob, fmt: Format, saved_model: Path) -> bytes:
    import tensorflow as tf

    from edgecnn.export import tflite_quant

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model), signature_keys=["serve"])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    try:
        return tflite_quant.calibrate(converter, _representative(job))
    except Exception as exc:  # noqa: BLE001
        raise _conversion_error(job, fmt, exc) from None


def _optimally_rounded(job: ExportJob, images) -> tuple[Path, dict]:
    """A SavedModel of the model with its weights optimally rounded onto TFLite's int8 grid (GPTQ)."""
    import logging

    from edgecnn.export import tflite_quant
    from edgecnn.export.keras_formats import write_saved_model

    errors: list[dict] = []
    try:
        model, changed = tflite_quant.snap_weights(job.model, images, "int8-symmetric", errors=errors)
    except Exception as exc:  # noqa: BLE001  (custom layers may not clone: fall back to nearest rounding)
        logging.getLogger("edgecnn.export").info("optimal weight rounding skipped (%s); rounding to nearest",
                                                 str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__)
        return scratch_saved_model(job), {"method": "nearest", "layers": []}
    if not changed:
        return scratch_saved_model(job), {"method": "optimal", "layers": []}
    errors.sort(key=lambda e: -e["nearest"])
    return (write_saved_model(model, job.workdir / "saved_model_int8_weights"),
            {"method": "optimal", "layers": changed,
             "output_error": {"metric": "RMS change of each layer's output on the calibration images, relative to "
                                        "its RMS output, with nearest and with optimal rounding",
                              "layers": errors}})


def _write(job: ExportJob, fmt: Format, dest: Path, flatbuffer: bytes, **extra) -> ModelCard:
    if job.allow_tf_ops:
        extra["requires_flex_delegate"] = True
        extra["note"] = "exported with --allow-tf-ops: the device needs the TensorFlow Lite Flex delegate"
    card = job.card_for(fmt, **extra)
    dest.write_bytes(embed_in_tflite(flatbuffer, card))
    return card


def _convert(job: ExportJob, fmt: Format, *, fp16=False, dynamic=False, int8=False) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(scratch_saved_model(job)), signature_keys=["serve"])
    builtins = tf.lite.OpsSet.TFLITE_BUILTINS_INT8 if int8 else tf.lite.OpsSet.TFLITE_BUILTINS
    ops = [builtins]
    if job.allow_tf_ops:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
        if int8:
            ops.append(tf.lite.OpsSet.TFLITE_BUILTINS)
    converter.target_spec.supported_ops = ops
    if fp16 or dynamic or int8:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if fp16:
        converter.target_spec.supported_types = [tf.float16]
    if int8:
        io_type = {"uint8": tf.uint8, "int8": tf.int8, "float32": tf.float32}[job.int8_io]
        converter.representative_dataset = _representative(job)
        converter.inference_input_type = io_type
        converter.inference_output_type = io_type
    try:
        # Keras prints its temporary SavedModel's endpoints on stdout; the converter's C++ logs go to fd 2.
        with contextlib.redirect_stdout(io.StringIO()), native_stderr():
            return converter.convert()
    except Exception as exc:  # noqa: BLE001  (converter errors come as several types)
        raise _conversion_error(job, fmt, exc) from None


def _representative(job: ExportJob):
    images = job.calibration.images

    def batches():
        for image in images:
            yield [image[None].astype("float32")]

    return batches


def _conversion_error(job: ExportJob, fmt: Format, exc: Exception) -> ExportError:
    message = str(exc)
    ops = sorted(set(re.findall(r"'(tf\.\w+)' op", message)))
    layers = offending_layers(job.model, message)
    what = []
    if ops:
        what.append(f"op {', '.join(ops)}")
    if layers:
        what.append(f"layer {', '.join(layers)}")
    if not what:
        first = first_line(exc, 300)
        return ExportError(f"{fmt.name}: conversion failed ({first}); try another format or report the model")
    hint = ("pass --allow-tf-ops to keep it as a TensorFlow op (the device then needs the Flex delegate)"
            if not job.allow_tf_ops else "replace the layer with TFLite-supported operations")
    return ExportError(f"{fmt.name} cannot take {' in '.join(what)}; {hint}")
