"""Third-party code kept in the package because no installable distribution offers it cleanly.

``metadata_schema_py_generated``: the flatc-generated Python bindings of the TFLite metadata schema
(``TFLITE_METADATA``: model name, input normalization and colour space, label files), Apache-2.0, from the
mediapipe 1.2.3 wheel. The packages that ship it either conflict with edgecnn's dependencies (tflite-support
needs protobuf<4; mediapipe needs opencv-contrib-python, which clashes with opencv-python-headless) or are
far larger than the one module. It needs only ``flatbuffers`` (a dependency of ai-edge-litert and TensorFlow).
Refresh it by copying the module from a newer mediapipe wheel; keep the header. Not linted (generated code).
"""
