"""Keras backend: the reference, for ``.keras``/``.h5`` files and SavedModel folders.

Needs TensorFlow, which is imported inside this backend's functions only: the
rest of :mod:`edgecnn.runtime` never imports it.
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np

from edgecnn.card import SAVED_MODEL_CARD_FILE
from edgecnn.errors import BackendUnavailableError, ModelError, first_line
from edgecnn.rundir import load_keras
from edgecnn.runtime.base import (
    FEATURES_OUTPUT,
    TensorSpec,
    check_model_file,
    closed_error,
    feature_rows,
    features_position,
    guess_layout,
    inference_error,
    score_rows,
)
from edgecnn.runtime.keras_graph import final_activation, with_features


def _import_keras():
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras
        import tensorflow as tf
    except ImportError as exc:
        raise BackendUnavailableError(
            f"the keras backend needs TensorFlow and Keras ({exc}); pip install 'edgecnn[train]', "
            f"or run an exported .tflite/.onnx model instead"
        ) from None
    return tf, keras


class KerasBackend:
    """A Keras model (``.keras``/``.h5``) or a TensorFlow SavedModel folder."""

    name = "keras"
    source = "keras"

    def __init__(self, path: str | os.PathLike, threads: Optional[int] = None, delegate: Optional[str] = None):
        self.path = check_model_file(path, "Keras")
        tf, keras = _import_keras()
        if threads is not None:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(int(threads))
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:
                pass  # TensorFlow already initialized: threads are fixed for this process
        self._signature = self._model = self._both = None
        self._features_key = features_shape = None
        self._closed = False
        try:
            if self.path.is_dir():
                loaded = tf.saved_model.load(str(self.path))
                self._loaded = loaded
                self._signature = loaded.signatures["serving_default"]
                specs = list(self._signature.structured_input_signature[1].values())
                if len(specs) != 1:
                    raise ModelError(
                        f"{self.path} has {len(specs)} inputs; edgecnn runs single-input image classifiers")
                self._input_key = next(iter(self._signature.structured_input_signature[1]))
                in_shape, in_dtype, in_name = tuple(specs[0].shape), specs[0].dtype.as_numpy_dtype, specs[0].name
                out_specs = self._signature.structured_outputs
                self._features_key = FEATURES_OUTPUT if features_position(sorted(out_specs)) is not None else None
                self._output_key = sorted(k for k in out_specs if k != self._features_key)[0]
                if self._features_key:
                    features_shape = tuple(out_specs[self._features_key].shape)
                out_shape, out_dtype = tuple(out_specs[self._output_key].shape), out_specs[self._output_key].dtype
                outputs = len(out_specs) - (self._features_key is not None)
            else:
                self._model = load_keras(self.path)  # the one Keras loader (edgecnn's custom layers registered)
                if len(self._model.inputs) != 1:
                    raise ModelError(
                        f"{self.path} has {len(self._model.inputs)} inputs; edgecnn runs single-input image classifiers"
                    )
                in_shape = tuple(self._model.inputs[0].shape)
                in_dtype = np.dtype(self._model.inputs[0].dtype)
                in_name = self._model.inputs[0].name
                out_shape, out_dtype = tuple(self._model.outputs[0].shape), self._model.outputs[0].dtype
                outputs = len(self._model.outputs)
                self._both = with_features(self._model)
                if self._both is not None:
                    features_shape = tuple(self._both.outputs[1].shape)
        except ModelError:
            raise
        except Exception as exc:
            first = first_line(exc)
            raise ModelError(
                f"{self.path} is not a loadable Keras model / SavedModel ({first[:200]}); re-export or re-download it"
            ) from None
        shape = tuple(None if d is None else int(d) for d in in_shape)
        self.input_spec = TensorSpec(str(in_name), shape, np.dtype(in_dtype), guess_layout(shape))
        self.output_spec = TensorSpec("output", tuple(None if d is None else int(d) for d in out_shape),
                                      _numpy_dtype(out_dtype), "NC")
        self.num_outputs = outputs
        self.features_spec = None if features_shape is None else TensorSpec(
            FEATURES_OUTPUT, tuple(None if d is None else int(d) for d in features_shape), np.dtype(np.float32), "NC")

    def run(self, batch: np.ndarray) -> np.ndarray:
        if self._closed:
            raise closed_error(self.path)
        try:
            if self._signature is not None:
                out = self._signature(**{self._input_key: batch})[self._output_key]
            else:
                out = self._model(batch, training=False)
            out = out.numpy() if hasattr(out, "numpy") else np.asarray(out)
        except Exception as exc:
            raise inference_error(self.path, exc) from None
        return score_rows(out, len(batch), self.path)

    def run_features(self, batch: np.ndarray) -> tuple[np.ndarray, Optional[np.ndarray]]:
        if self.features_spec is None:
            return self.run(batch), None
        if self._closed:
            raise closed_error(self.path)
        try:
            if self._signature is not None:
                outs = self._signature(**{self._input_key: batch})
                out, features = outs[self._output_key], outs[self._features_key]
            else:
                out, features = self._both(batch, training=False)
            out, features = (np.asarray(t.numpy() if hasattr(t, "numpy") else t) for t in (out, features))
        except Exception as exc:
            raise inference_error(self.path, exc) from None
        return score_rows(out, len(batch), self.path), feature_rows(features, len(batch))

    def final_op(self) -> Optional[str]:
        """The final activation a Keras model's structure shows (nested models included); None for a SavedModel."""
        if self._model is None:
            return None
        return final_activation(self._model)

    def embedded_card(self) -> Optional[str]:
        """A SavedModel folder's ``edgecnn.card.json`` (written there by edgecnn's exporter), if any."""
        inner = self.path / SAVED_MODEL_CARD_FILE
        if self.path.is_dir() and inner.is_file():
            try:
                return inner.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                return None
        return None

    def embedded_labels(self) -> Optional[list[str]]:
        return None

    def standard_metadata(self) -> None:
        return None  # standard TFLite metadata exists only in .tflite files

    def close(self) -> None:
        self._closed = True
        self._model = self._both = None
        self._signature = None


def _numpy_dtype(dtype) -> np.dtype:
    """A Keras/TensorFlow dtype (``"int64"``, ``tf.float32``, ...) as numpy's; float32 for floats numpy lacks."""
    name = getattr(dtype, "name", None) or str(dtype)
    try:
        return np.dtype(name)
    except TypeError:
        return np.dtype(np.float32 if "float" in name else np.object_)  # bfloat16: scores all the same
