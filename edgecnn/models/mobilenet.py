"""MobileNetV2/V3 transfer models: raw 0..255 in, backbone (optionally pretrained), small head.

The backbone's layers sit flat in the model (no nested sub-model), under
Keras' own names, so Grad-CAM, feature maps and export see every layer.
Head layers are named ``head_*`` and ``predictions``; see :func:`backbone_layers`.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from edgecnn.errors import UsageError, first_line
from edgecnn.models.naming import stabilize_names
from edgecnn.models.registry import register_model

HEAD_LAYERS = ("head_pool", "head_dropout", "predictions")
INPUT_LAYERS = ("image", "normalize")
MOBILENET_V2_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
NORMALIZATION = "x / 127.5 - 1"


def backbone_layers(model) -> list:
    """The layers of a transfer model's backbone, input to output (everything but input and head)."""
    return [layer for layer in model.layers if layer.name not in HEAD_LAYERS + INPUT_LAYERS
            and type(layer).__name__ != "InputLayer"]


def _head(x, num_classes: int, dropout: float):
    from keras import layers

    x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    return layers.Dense(num_classes, activation="softmax", name="predictions")(x)


def _weights_label(weights) -> str:
    return "none" if weights in (None, "none") else str(weights)


def _load_pretrained(model, reference_factory, weights, arch: str) -> None:
    """Copy pretrained backbone weights into ``model``, layer by layer in order.

    ``reference_factory(weights_arg)`` builds the plain keras.applications model;
    ``weights`` is "imagenet" (Keras download) or a Keras ``.weights.h5`` file.
    """
    if weights == "imagenet":
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Keras warns about non-224 sizes; the no-top weights fit any size
                reference = reference_factory("imagenet")
        except Exception as exc:  # noqa: BLE001  (download errors come in many types)
            raise UsageError(
                f"could not get ImageNet weights for {arch} ({type(exc).__name__}: {str(exc)[:120]}); "
                f"pass --weights PATH to a Keras backbone weights file saved without top at this --alpha "
                f"(e.g. mobilenet_v2_1.0_imagenet_no_top.weights.h5, downloaded where there is internet) "
                f"or --weights none"
            ) from None
    else:
        path = Path(os.fspath(weights)).expanduser()
        if not path.is_file():
            raise UsageError(f"weights file not found: {path}; pass --weights imagenet, none or an existing "
                             f".weights.h5 file")
        reference = reference_factory(None)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                reference.load_weights(str(path))
        except Exception as exc:  # noqa: BLE001
            first = first_line(exc, 160)
            raise UsageError(
                f"weights file {path} does not fit {arch} with these settings ({first}); "
                f"a backbone file fits the --alpha it was saved at, without top (a ..._1.0_..._no_top file: "
                f"--alpha 1.0); use the matching --alpha, or --weights none"
            ) from None
    sources = [layer for layer in reference.layers if layer.weights]
    targets = [layer for layer in backbone_layers(model) if layer.weights]
    if len(sources) != len(targets):
        raise UsageError(f"pretrained {arch} has {len(sources)} weighted layers, the model {len(targets)}; "
                         f"use --weights none")
    for src, dst in zip(sources, targets):
        dst.set_weights(src.get_weights())


@register_model("mobilenet_v2", default_size=224, min_size=32, transfer=True, in_model_normalization=NORMALIZATION,
                description="MobileNetV2 backbone (alpha 0.35-1.4) + GAP/dropout/softmax head; ImageNet transfer")
def mobilenet_v2(num_classes: int, input_shape=(224, 224, 3), alpha: float = 1.0, weights=None, dropout: float = 0.2):
    import keras
    from keras import layers

    if alpha not in MOBILENET_V2_ALPHAS:
        raise UsageError(f"mobilenet_v2 alpha must be one of {', '.join(map(str, MOBILENET_V2_ALPHAS))}; received "
                         f"{alpha}")
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="normalize")(inputs)
    backbone = keras.applications.MobileNetV2(include_top=False, weights=None, alpha=alpha, input_tensor=x)
    model = keras.Model(inputs, _head(backbone.output, num_classes, dropout), name="mobilenet_v2")
    if _weights_label(weights) != "none":
        _load_pretrained(model, lambda w: keras.applications.MobileNetV2(
            include_top=False, weights=w, alpha=alpha,
            input_shape=None if w == "imagenet" else tuple(input_shape)), weights, f"mobilenet_v2 alpha {alpha}")
    return model


_V3_SPEC = {"default_size": 224, "min_size": 32, "transfer": True, "in_model_normalization": NORMALIZATION}


def _mobilenet_v3(variant: str, num_classes: int, input_shape, alpha: float, weights, dropout: float,
                  minimalistic: bool):
    import keras

    app = keras.applications.MobileNetV3Small if variant == "small" else keras.applications.MobileNetV3Large
    name = f"mobilenet_v3_{variant}"
    inputs = keras.Input(shape=input_shape, name="image")
    # include_preprocessing=True puts Keras' own Rescaling(1/127.5, offset=-1) first: raw 0..255 in.
    backbone = app(include_top=False, weights=None, alpha=alpha, input_tensor=inputs,
                   include_preprocessing=True, minimalistic=minimalistic)
    model = stabilize_names(keras.Model(inputs, _head(backbone.output, num_classes, dropout), name=name))
    if _weights_label(weights) != "none":
        _load_pretrained(model, lambda w: app(include_top=False, weights=w, alpha=alpha, include_preprocessing=True,
                                              minimalistic=minimalistic,
                                              input_shape=None if w == "imagenet" else tuple(input_shape)),
                         weights, f"{name} alpha {alpha}")
    return model


@register_model("mobilenet_v3_small", **_V3_SPEC,
                description="MobileNetV3-Small backbone (Keras' built-in preprocessing) + softmax head")
def mobilenet_v3_small(num_classes: int, input_shape=(224, 224, 3), alpha: float = 1.0, weights=None,
                       dropout: float = 0.2, minimalistic: bool = False):
    return _mobilenet_v3("small", num_classes, input_shape, alpha, weights, dropout, minimalistic)


@register_model("mobilenet_v3_large", **_V3_SPEC,
                description="MobileNetV3-Large backbone (Keras' built-in preprocessing) + softmax head")
def mobilenet_v3_large(num_classes: int, input_shape=(224, 224, 3), alpha: float = 1.0, weights=None,
                       dropout: float = 0.2, minimalistic: bool = False):
    return _mobilenet_v3("large", num_classes, input_shape, alpha, weights, dropout, minimalistic)
