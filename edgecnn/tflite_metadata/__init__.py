"""TFLite metadata, read (:mod:`.read`) and written (:mod:`.write`) through generated flatbuffer schemas.

Two schemas are involved. The TFLite *model* schema (``Model``: buffers, operator codes and named
``metadata`` entries, each pointing at a buffer) comes with the interpreter package (ai-edge-litert),
else with TensorFlow. The TFLite *metadata* schema (the ``TFLITE_METADATA`` entry MediaPipe Tasks and
the TFLite Task Library read: model name, input normalization and colour space, label files zipped
onto the model) is vendored in :mod:`edgecnn._vendor`. Both need only ``flatbuffers``, so a device
without TensorFlow reads embedded cards and can re-embed one.
"""

from __future__ import annotations

TFLITE_IDENTIFIER = b"TFL3"  # file identifier of a TFLite model flatbuffer (bytes 4..8)
METADATA_KEY = "TFLITE_METADATA"  # the model metadata entry that holds the metadata flatbuffer
METADATA_IDENTIFIER = b"M001"
PARSER_VERSION = "1.0.0"  # every field written here is in metadata schema 1.0.0
LABELS_FILE = "labels.txt"  # name of the zipped label file (TENSOR_AXIS_LABELS)
COLOR_SPACES = {1: "RGB", 2: "GRAYSCALE"}  # ColorSpaceType values; 0 is UNKNOWN

# Where the generated TFLite model schema is found, first that imports wins. TensorFlow's is the
# last resort (importing it starts TensorFlow); the tflite_runtime wheel ships none.
MODEL_SCHEMA_MODULES = ("ai_edge_litert.schema_py_generated", "tensorflow.lite.python.schema_py_generated")
SCHEMA_HINT = "pip install ai-edge-litert"


def model_schema():
    """The generated TFLite model schema module; ImportError naming what to install when none is there."""
    import importlib

    for name in MODEL_SCHEMA_MODULES:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError(f"no TFLite model schema (ai_edge_litert or tensorflow); {SCHEMA_HINT}")


def metadata_schema():
    """The vendored generated TFLite metadata schema module (needs ``flatbuffers``)."""
    from edgecnn._vendor import metadata_schema_py_generated

    return metadata_schema_py_generated
