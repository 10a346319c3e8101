"""What a Keras classifier's graph shows: the final activation that makes its scores, and its pooled features.

Read from the model's structure (nested models included), never by running it. The Keras backend uses both at run
time; export uses them to settle the output kind and to add the ``features`` output to every artifact. Keras is
imported only by :func:`with_features`.
"""

from __future__ import annotations


def final_activation(model) -> str | None:
    """The final activation the model's structure shows, looking into nested models; None when it cannot tell."""
    layer = model
    for _ in range(100):  # nested models: follow the layer that makes the output
        inner = getattr(layer, "layers", None)
        if not inner:
            break
        layer = _output_layer(layer)
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "__name__", None) or (activation if isinstance(activation, str) else None)
    if type(layer).__name__ == "Softmax":
        return "softmax"
    if name in ("softmax", "sigmoid"):
        return name
    if name == "linear":
        return "linear"
    return None


def _output_layer(model):
    """The layer that produces ``model``'s (single) output."""
    try:
        history = model.outputs[0]._keras_history  # noqa: SLF001  (Keras' own record of the producing layer)
        return history.operation if hasattr(history, "operation") else history[0]
    except (AttributeError, IndexError, TypeError):
        return model.layers[-1]


def features_tensor(model):
    """The symbolic input of ``model``'s final Dense layer (the pooled features), or None when it has none."""
    dense = [layer for layer in model.layers if type(layer).__name__ == "Dense"]
    if not dense or len(model.outputs) != 1:
        return None
    try:
        tensor = dense[-1].input
    except (AttributeError, ValueError):  # a layer called more than once, or never on the model's graph
        return None
    return tensor if len(tensor.shape) == 2 else None


def with_features(model):
    """``model`` with its pooled features as a second output (class scores first), or None when it has none."""
    import keras

    tensor = features_tensor(model)
    if tensor is None:
        return None
    try:
        return keras.Model(model.inputs[0], [model.outputs[0], tensor], name=f"{model.name}_with_features")
    except (ValueError, TypeError):  # features not reachable from the inputs (a nested graph)
        return None
