"""The plain CNNs of the Keras/TensorFlow CNN image-classification tutorial the project grew from (its "Building
Your First CNN", overfitting fix, "Pet Classifier" and food classifier examples), each taking raw 0..255 RGB input."""

from __future__ import annotations

from edgecnn.models.registry import register_model


def _conv_bn_pool(layers, filters: int, name: str, padding: str = "valid", dropout: float = 0.0) -> list:
    """Conv(3x3, relu) -> BatchNorm -> MaxPool [-> Dropout], named ``<name>_*``."""
    block = [
        layers.Conv2D(filters, 3, activation="relu", padding=padding, name=f"{name}_conv"),
        layers.BatchNormalization(name=f"{name}_bn"),
        layers.MaxPooling2D(2, name=f"{name}_pool"),
    ]
    if dropout:
        block.append(layers.Dropout(dropout, name=f"{name}_dropout"))
    return block


def _sequential(name: str, input_shape, body: list):
    import keras
    from keras import layers

    return keras.Sequential(
        [keras.Input(shape=input_shape, name="image"), layers.Rescaling(1.0 / 255, name="normalize"), *body],
        name=name,
    )


@register_model("simple_cnn", default_size=32, min_size=24,
                description="Keras CNN tutorial's first CNN: 3 conv blocks + dense head")
def simple_cnn(num_classes: int, input_shape=(32, 32, 3)):
    from keras import layers

    return _sequential("simple_cnn", input_shape, [
        layers.Conv2D(32, 3, activation="relu", name="conv1"),
        layers.MaxPooling2D(2, name="pool1"),
        layers.Conv2D(64, 3, activation="relu", name="conv2"),
        layers.MaxPooling2D(2, name="pool2"),
        layers.Conv2D(64, 3, activation="relu", name="conv3"),
        layers.Flatten(name="flatten"),
        layers.Dense(64, activation="relu", name="fc"),
        layers.Dense(num_classes, activation="softmax", name="predictions"),
    ])


@register_model("regularized_cnn", default_size=32, min_size=16,
                description="Keras CNN tutorial's overfitting fix: BatchNorm + Dropout after each conv block")
def regularized_cnn(num_classes: int, input_shape=(32, 32, 3)):
    from keras import layers

    return _sequential("regularized_cnn", input_shape, [
        *_conv_bn_pool(layers, 32, "block1", dropout=0.25),
        *_conv_bn_pool(layers, 64, "block2", dropout=0.25),
        layers.Flatten(name="flatten"),
        layers.Dense(128, activation="relu", name="fc"),
        layers.Dropout(0.5, name="fc_dropout"),
        layers.Dense(num_classes, activation="softmax", name="predictions"),
    ])


def _three_blocks_gap(name: str, input_shape, padding: str, fc_units: int, outputs: int, activation: str):
    """Three conv/BN/pool blocks (32, 64, 128 filters), global average pooling, a dropout dense head."""
    from keras import layers

    return _sequential(name, input_shape, [
        *_conv_bn_pool(layers, 32, "block1", padding=padding),
        *_conv_bn_pool(layers, 64, "block2", padding=padding),
        *_conv_bn_pool(layers, 128, "block3", padding=padding),
        layers.GlobalAveragePooling2D(name="gap"),
        layers.Dense(fc_units, activation="relu", name="fc"),
        layers.Dropout(0.5, name="fc_dropout"),
        layers.Dense(outputs, activation=activation, name="predictions"),
    ])


@register_model("pet_cnn", default_size=150, min_size=24, binary=True,
                description="Keras CNN tutorial's cat-vs-dog classifier: 3 conv/BN blocks, one sigmoid output")
def pet_cnn(num_classes: int = 2, input_shape=(150, 150, 3)):
    return _three_blocks_gap("pet_cnn", input_shape, "valid", fc_units=128, outputs=1, activation="sigmoid")


@register_model("food_cnn", default_size=150, min_size=16,
                description="Keras CNN tutorial's food classifier: 3 'same' conv/BN blocks, GAP, dense head")
def food_cnn(num_classes: int, input_shape=(150, 150, 3)):
    return _three_blocks_gap("food_cnn", input_shape, "same", fc_units=256, outputs=num_classes,
                             activation="softmax")
