"""The tutorial's CNNs (../shared/seed/), each taking raw 0..255 RGB input."""

from __future__ import annotations

from edgecnn.models.registry import register_model


@register_model("simple_cnn", default_size=32, min_size=24, description="Tutorial's first CNN: 3 conv blocks + dense head")
def simple_cnn(num_classes: int, input_shape=(32, 32, 3)):
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input(shape=input_shape, name="image"),
            layers.Rescaling(1.0 / 255, name="normalize"),
            layers.Conv2D(32, 3, activation="relu", name="conv1"),
            layers.MaxPooling2D(2, name="pool1"),
            layers.Conv2D(64, 3, activation="relu", name="conv2"),
            layers.MaxPooling2D(2, name="pool2"),
            layers.Conv2D(64, 3, activation="relu", name="conv3"),
            layers.Flatten(name="flatten"),
            layers.Dense(64, activation="relu", name="fc"),
            layers.Dense(num_classes, activation="softmax", name="predictions"),
        ],
        name="simple_cnn",
    )
