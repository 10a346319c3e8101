"""TFLite exporters: fp32, fp16, dynamic range and full integer int8, card embedded."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from edgecnn._native import native_stderr
from edgecnn.card import ModelCard
from edgecnn.errors import ExportError, first_line
from edgecnn.export.embed import embed_in_tflite
from edgecnn.export.job import ExportJob
from edgecnn.export.keras_formats import scratch_saved_model
from edgecnn.export.trace import offending_layers
from edgecnn.formats import Format


def export_fp32(job: ExportJob, fmt: Format, dest: Path) -> ModelCard:
    return _write(job, fmt, dest, _convert(job, fmt))


def export_fp16(job: ExportJob, fmt: Format, dest: Path) -> ModelCard:
    return _write(job, fmt, dest, _convert(job, fmt, fp16=True))


def export_dynamic(job: ExportJob, fmt: Format, dest: Path) -> ModelCard:
    return _write(job, fmt, dest, _convert(job, fmt, dynamic=True))


def export_int8(job: ExportJob, fmt: Format, dest: Path) -> ModelCard:
    """Full integer: int8 weights and activations; input/output dtype from ``--int8-io``."""
    return _write(job, fmt, dest, _convert(job, fmt, int8=True),
                  io_dtype=job.int8_io, **job.calibration_note())


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
