"""Device runtime: run an exported classifier without TensorFlow.

``import edgecnn.runtime`` loads numpy and OpenCV only; the interpreter
(LiteRT / tflite_runtime / tensorflow.lite, onnxruntime, Keras) is imported
when a model of that kind is loaded.
"""

from edgecnn.runtime.base import Backend, TensorSpec
from edgecnn.runtime.classifier import Classifier, ClassScore, Prediction
from edgecnn.runtime.feedback import FEEDBACK_LEVELS, confidence_feedback
from edgecnn.runtime.load import BACKENDS, BackendStatus, load_backend, probe_backends
from edgecnn.runtime.postprocess import as_class_probs, sigmoid, softmax, to_probabilities
from edgecnn.runtime.preprocess import IMAGE_SUFFIXES, Preprocessor, as_uint8_color, read_image

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendStatus",
    "ClassScore",
    "Classifier",
    "FEEDBACK_LEVELS",
    "IMAGE_SUFFIXES",
    "Prediction",
    "Preprocessor",
    "TensorSpec",
    "as_class_probs",
    "as_uint8_color",
    "confidence_feedback",
    "load_backend",
    "probe_backends",
    "read_image",
    "sigmoid",
    "softmax",
    "to_probabilities",
]
