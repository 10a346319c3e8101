"""A traced inference function of a Keras model (what tf2onnx reads), and converter-error helpers.

Tracing ``model(x, training=False)`` with an explicit input signature (batch
``None``) keeps augmentation and dropout layers out of the export and works
where tf2onnx's own Keras front end fails on Keras 3.
"""

from __future__ import annotations

INPUT_NAME = "image"


def inference_function(model):
    """``tf.function`` over float32 raw-pixel batches of any size, in inference mode."""
    import tensorflow as tf

    from edgecnn.export.features import serving_outputs

    shape = (None, *model.input_shape[1:])

    outputs = serving_outputs(model)  # class scores, and the pooled features where the model has them

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32, name=INPUT_NAME)])
    def serve(image):
        return outputs(image)

    return serve


def offending_layers(model, message: str) -> list[str]:
    """Names of the model's layers (nested included) that a converter's error message mentions."""
    names = []
    for layer in _all_layers(model):
        kind = type(layer).__name__
        if layer is model or kind == "InputLayer" or kind in ("Functional", "Sequential"):
            continue
        label = f"{layer.name} ({kind})"
        if layer.name in message and label not in names:
            names.append(label)
    return names


def _all_layers(model):
    yield model
    for layer in getattr(model, "layers", []):
        yield from _all_layers(layer)
