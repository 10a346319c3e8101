"""What a Keras model looks at: Grad-CAM heatmaps and per-layer feature maps."""

from __future__ import annotations

import numpy as np

from edgecnn.data.split import spread

_SPATIAL_TYPES = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D")


def _rank4(layer) -> bool:
    try:
        return len(layer.output.shape) == 4 and type(layer).__name__ != "InputLayer"
    except (AttributeError, ValueError):
        return False


def _probe(model, names: list[str]):
    """A model returning the outputs of the named layers, then the model's output.

    A (reloaded) Sequential model is rebuilt as a functional chain so that
    layer outputs and the final output belong to one graph.
    """
    import keras

    if isinstance(model, keras.Sequential):
        inputs = keras.Input(model.input_shape[1:])
        x, found = inputs, {}
        for layer in model.layers:
            x = layer(x)
            found[layer.name] = x
        return keras.Model(inputs, [found[n] for n in names] + [x])
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, [model.get_layer(n).output for n in names] + [model.outputs[0]])


def last_spatial_layer(model) -> str:
    """Name of the last layer with a (N, H, W, C) output: Grad-CAM's default target."""
    for layer in reversed(model.layers):
        if _rank4(layer) and "pool" not in type(layer).__name__.lower():
            return layer.name
    raise ValueError(f"{model.name} has no convolutional layer for Grad-CAM")


def grad_cam(model, images: np.ndarray, classes: np.ndarray | None = None, layer: str | None = None):
    """Heatmaps (N, H, W) in 0..1 at the images' size, for ``classes`` (default: the predicted ones)."""
    import tensorflow as tf

    layer = layer or last_spatial_layer(model)
    grad_model = _probe(model, [layer])
    x = tf.convert_to_tensor(np.asarray(images, dtype=np.float32))
    with tf.GradientTape() as tape:
        features, outputs = grad_model(x, training=False)
        if outputs.shape[-1] == 1:  # one sigmoid unit: class 1 is p, class 0 is 1 - p
            p = outputs[:, 0]
            picked = p >= 0.5 if classes is None else tf.constant(np.asarray(classes) == 1)
            score = tf.where(picked, p, 1.0 - p)
        else:
            idx = tf.argmax(outputs, axis=-1) if classes is None else tf.constant(np.asarray(classes), tf.int64)
            score = tf.gather(outputs, idx, batch_dims=1)
    grads = tape.gradient(score, features)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(features * weights, axis=-1))[..., None]
    cam = tf.image.resize(cam, images.shape[1:3])[..., 0].numpy()
    peak = cam.reshape(len(cam), -1).max(axis=1).reshape(-1, 1, 1)
    return cam / np.where(peak > 0, peak, 1.0), layer


def feature_maps(model, image: np.ndarray, max_layers: int = 8) -> list[tuple[str, np.ndarray]]:
    """(layer name, activations (H, W, C)) for up to ``max_layers`` conv layers spread over the depth."""
    convs = [layer for layer in model.layers if type(layer).__name__ in _SPATIAL_TYPES and _rank4(layer)]
    if not convs:
        return []
    picked = [convs[i] for i in spread(len(convs), max_layers)]
    outputs = _probe(model, [layer.name for layer in picked])(np.asarray(image, dtype=np.float32)[None], training=False)
    return [(layer.name, np.asarray(o)[0]) for layer, o in zip(picked, outputs)]
