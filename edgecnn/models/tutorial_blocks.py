"""The Keras CNN tutorial's block-based CNNs: residual (medical analyzer) and inception + channel attention."""

from __future__ import annotations

from edgecnn.models.registry import register_model


def _conv_bn_relu(x, filters: int, name: str, kernel: int = 3, relu: bool = True):
    from keras import layers

    x = layers.Conv2D(filters, kernel, padding="same", name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x) if relu else x


def _residual_block(x, filters: int, name: str):
    """Two 3x3 conv/BN with an identity shortcut, as in the tutorial's MedicalImageCNN."""
    from keras import layers

    shortcut = x
    x = _conv_bn_relu(x, filters, f"{name}_a")
    x = _conv_bn_relu(x, filters, f"{name}_b", relu=False)
    x = layers.Add(name=f"{name}_add")([x, shortcut])
    return layers.Activation("relu", name=f"{name}_out")(x)


def _double_conv_pool(x, filters: int, name: str):
    from keras import layers

    x = _conv_bn_relu(x, filters, f"{name}_a")
    x = _conv_bn_relu(x, filters, f"{name}_b")
    return layers.MaxPooling2D(2, name=f"{name}_pool")(x)


def _head(x, num_classes: int, units: int, dropout: float):
    from keras import layers

    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(units, activation="relu", name="fc")(x)
    x = layers.Dropout(dropout, name="fc_dropout")(x)
    return layers.Dense(num_classes, activation="softmax", name="predictions")(x)


def _input(input_shape):
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="image")
    return inputs, layers.Rescaling(1.0 / 255, name="normalize")(inputs)


@register_model("residual_cnn", default_size=128, min_size=16,
                description="Keras CNN tutorial's medical image analyzer: conv stem, residual block, 2 conv pairs")
def residual_cnn(num_classes: int, input_shape=(128, 128, 3), width: int = 64):
    import keras
    from keras import layers

    inputs, x = _input(input_shape)
    x = _conv_bn_relu(x, width, "stem")
    x = _residual_block(x, width, "res1")
    x = layers.MaxPooling2D(2, name="res1_pool")(x)
    x = _double_conv_pool(x, width * 2, "block2")
    x = _double_conv_pool(x, width * 4, "block3")
    return keras.Model(inputs, _head(x, num_classes, 256, 0.5), name="residual_cnn")


def inception_module(x, filters: int, name: str):
    """1x1, 1x1->3x3, 1x1->5x5 and maxpool->1x1 branches, concatenated."""
    from keras import layers

    def conv(t, kernel, suffix):
        return layers.Conv2D(filters, kernel, activation="relu", padding="same", name=f"{name}_{suffix}")(t)

    b1 = conv(x, 1, "1x1")
    b3 = conv(conv(x, 1, "3x3_reduce"), 3, "3x3")
    b5 = conv(conv(x, 1, "5x5_reduce"), 5, "5x5")
    bp = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    bp = conv(bp, 1, "pool_proj")
    return layers.Concatenate(name=f"{name}_concat")([b1, b3, b5, bp])


def channel_attention(x, name: str, ratio: int = 8):
    """CBAM-style channel attention: shared MLP over avg- and max-pooled features, sigmoid gate."""
    from keras import layers

    channels = x.shape[-1]
    fc1 = layers.Dense(max(channels // ratio, 1), activation="relu", name=f"{name}_fc1")
    fc2 = layers.Dense(channels, name=f"{name}_fc2")
    avg = fc2(fc1(layers.GlobalAveragePooling2D(name=f"{name}_avg")(x)))
    mx = fc2(fc1(layers.GlobalMaxPooling2D(name=f"{name}_max")(x)))
    gate = layers.Activation("sigmoid", name=f"{name}_gate")(layers.Add(name=f"{name}_add")([avg, mx]))
    gate = layers.Reshape((1, 1, channels), name=f"{name}_reshape")(gate)
    return layers.Multiply(name=f"{name}_apply")([x, gate])


@register_model("inception_attention_cnn", default_size=64, min_size=16,
                description="Keras CNN tutorial's custom architecture: inception modules + channel attention")
def inception_attention_cnn(num_classes: int, input_shape=(64, 64, 3), filters: int = 16):
    import keras
    from keras import layers

    inputs, x = _input(input_shape)
    x = _conv_bn_relu(x, filters * 2, "stem")
    x = layers.MaxPooling2D(2, name="stem_pool")(x)
    x = inception_module(x, filters, "inception1")
    x = layers.MaxPooling2D(2, name="inception1_down")(x)
    x = inception_module(x, filters * 2, "inception2")
    x = channel_attention(x, "attention")
    return keras.Model(inputs, _head(x, num_classes, 128, 0.3), name="inception_attention_cnn")
