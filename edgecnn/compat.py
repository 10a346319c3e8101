"""Every private TensorFlow / Keras API edgecnn uses, each behind one entry point that checks it first.

None of these is public: any release may move or change them. Each entry point looks for exactly what it
uses (the attribute, the function and its parameters) and, when that is gone, raises one
:class:`PrivateAPIError` line naming the API, the installed version and the version it was written for.
Callers with a public path fall back on it (the frozen-layer engine runs the TensorFlow graph instead).

=================================  ==================================================================  ==============
entry point                        private API                                                         used by
=================================  ==================================================================  ==============
:func:`freeze_variables`           ``tensorflow.python.framework.convert_to_constants``                train/features
:func:`calibrate_only`             ``TFLiteConverter._experimental_calibrate_only``                    tflite_quant
:func:`mlir_quantize`              ``tensorflow.lite.python.convert.mlir_quantize``                    tflite_quant
:func:`patch_keras_multi_worker`   ``keras.src.backend.tensorflow.trainer`` (keras-team/keras#20585)   distribute
=================================  ==================================================================  ==============
"""

from __future__ import annotations

import inspect
import logging

from edgecnn.errors import PrivateAPIError
from edgecnn.machine import dist_version

log = logging.getLogger(__name__)

# The versions these entry points were written and tested against (major.minor).
WRITTEN_FOR = {"tensorflow": "2.21", "keras": "3.15"}
DISTRIBUTIONS = {"tensorflow": ("tensorflow", "tensorflow-cpu"), "keras": ("keras",)}
QUANTIZE_PARAMETERS = ("disable_per_channel", "fully_quantize", "input_data_type", "output_data_type",
                       "enable_numeric_verify", "denylisted_nodes")
MULTI_WORKER_NEEDS = {  # attribute of keras.src.backend.tensorflow.trainer -> the parameters edgecnn relies on
    "reduce_per_replica": ("values", "strategy", "reduction"),
    "_collective_all_reduce_multi_worker": ("strategy",),
    "TensorFlowTrainer._maybe_symbolic_build": ("self", "iterator", "data_batch"),
    "TensorFlowTrainer._symbolic_build": ("data_batch",),
}


def installed(package: str) -> str:
    return dist_version(*DISTRIBUTIONS[package]) or "(version unknown)"


def changed(api: str, package: str, consequence: str) -> PrivateAPIError:
    """The one-line error for private ``api`` of ``package`` missing or changed."""
    return PrivateAPIError(f"{api} (a private {package} API) is missing or changed in {package} {installed(package)}; "
                           f"edgecnn was written for {package} {WRITTEN_FOR[package]}: {consequence}")


def _has_parameters(function, names) -> bool:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    return all(name in parameters for name in names)


# ---------------------------------------------------------------------------------------------- TensorFlow
def freeze_variables(function):
    """The concrete ``function`` with its variables folded into constants (the TFLite converter's graph path)."""
    try:
        from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
    except ImportError:
        raise changed("tensorflow.python.framework.convert_to_constants.convert_variables_to_constants_v2",
                      "tensorflow", "frozen layers run on the TensorFlow graph instead of LiteRT") from None
    return convert_variables_to_constants_v2(function)


def calibrate_only(converter) -> None:
    """Make ``converter.convert()`` stop after calibration (float ops carrying each tensor's min/max)."""
    if not hasattr(converter, "_experimental_calibrate_only"):
        raise changed("TFLiteConverter._experimental_calibrate_only", "tensorflow",
                      f"tflite-int8 needs tensorflow {WRITTEN_FOR['tensorflow']}")
    converter._experimental_calibrate_only = True  # the quantization debugger's route


def mlir_quantize(calibrated: bytes, **options) -> bytes:
    """TFLite's quantizer on a calibrated model (``options``: those of :data:`QUANTIZE_PARAMETERS`)."""
    try:
        from tensorflow.lite.python import convert
    except ImportError:
        convert = None
    quantize = getattr(convert, "mlir_quantize", None)
    if quantize is None or not _has_parameters(quantize, QUANTIZE_PARAMETERS):
        raise changed("tensorflow.lite.python.convert.mlir_quantize", "tensorflow",
                      f"tflite-int8 needs tensorflow {WRITTEN_FOR['tensorflow']}")
    return quantize(calibrated, **options)


# ---------------------------------------------------------------------------------------------- Keras
def _attribute(module, dotted: str):
    value = module
    for part in dotted.split("."):
        value = getattr(value, part, None)
    return value


def patch_keras_multi_worker() -> None:
    """Two fixes Keras 3 needs to fit under MultiWorkerMirroredStrategy (keras-team/keras#20585).

    Keras averages each step's scalar logs with ``strategy.reduce(..., axis=0)``, which fails on scalars, and
    builds the model from one batch reduced across workers, which fails on per-replica values. Here the logs
    are averaged across workers with ``axis=None`` and the model is built from this worker's own batch.
    """
    try:
        from keras.src import tree
        from keras.src.backend.tensorflow import trainer
    except ImportError:
        trainer = tree = None
    if getattr(trainer, "_edgecnn_patched", False):
        return
    if trainer is None or not all(_has_parameters(_attribute(trainer, name), params)
                                  for name, params in MULTI_WORKER_NEEDS.items()):
        raise changed("keras.src.backend.tensorflow.trainer", "keras",
                      "multi-worker training works around a bug of its TensorFlow trainer; install keras "
                      f"{WRITTEN_FOR['keras']} or train on one machine")
    if not installed("keras").startswith(WRITTEN_FOR["keras"] + "."):
        log.debug("multi-worker fixes written for keras %s applied to keras %s", WRITTEN_FOR["keras"],
                  installed("keras"))
    _apply_multi_worker_fixes(trainer, tree)


def _apply_multi_worker_fixes(trainer, tree) -> None:
    import tensorflow as tf

    reduce_per_replica = trainer.reduce_per_replica

    def reduce_logs(values, strategy, reduction="auto"):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return reduce_per_replica(values, strategy, reduction)

    def symbolic_build(self, iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, it in iterator:
                batch = next(it)
                data_batch = tree.map_structure(
                    lambda v: (self.distribute_strategy.experimental_local_results(v)[0]
                               if isinstance(v, tf.distribute.DistributedValues) else v), batch)
                break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    trainer.reduce_per_replica = reduce_logs
    trainer.TensorFlowTrainer._maybe_symbolic_build = symbolic_build
    trainer._edgecnn_patched = True
