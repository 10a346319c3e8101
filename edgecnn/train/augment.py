"""Training-time augmentation, applied in the tf.data pipeline so it never enters the exported model."""

from __future__ import annotations

from edgecnn.errors import UsageError

AUGMENTATIONS = {
    "flip": lambda layers: layers.RandomFlip("horizontal"),
    "rotation": lambda layers: layers.RandomRotation(0.1),
    "zoom": lambda layers: layers.RandomZoom(0.1),
    "contrast": lambda layers: layers.RandomContrast(0.1),
    "translation": lambda layers: layers.RandomTranslation(0.05, 0.05),
    "brightness": lambda layers: layers.RandomBrightness(0.1, value_range=(0, 255)),
}


def build_augmentation(names: list[str], seed: int = 0):
    """A keras.Sequential of the named augmentations (None when ``names`` is empty)."""
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:
        raise UsageError(f"unknown augmentation {unknown[0]!r}; expected some of: {', '.join(AUGMENTATIONS)}")
    if not names:
        return None
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    return keras.Sequential([AUGMENTATIONS[n](layers) for n in names], name="augmentation")
