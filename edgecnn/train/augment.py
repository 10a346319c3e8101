"""Training-time augmentation, applied in the tf.data pipeline so it never enters the exported model."""

from __future__ import annotations

from edgecnn.errors import UsageError

AUGMENTATIONS = {
    "flip": lambda layers, seed: layers.RandomFlip("horizontal", seed=seed),
    "rotation": lambda layers, seed: layers.RandomRotation(0.1, seed=seed),
    "zoom": lambda layers, seed: layers.RandomZoom(0.1, seed=seed),
    "contrast": lambda layers, seed: layers.RandomContrast(0.1, seed=seed),
    "translation": lambda layers, seed: layers.RandomTranslation(0.05, 0.05, seed=seed),
    "brightness": lambda layers, seed: layers.RandomBrightness(0.1, value_range=(0, 255), seed=seed),
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

    return keras.Sequential([AUGMENTATIONS[n](layers, seed + i) for i, n in enumerate(names)], name="augmentation")
