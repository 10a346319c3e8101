"""edgecnn: train a CNN image classifier, export it for the edge, run and benchmark it on a device."""

from typing import TYPE_CHECKING

from edgecnn._version import __version__

if TYPE_CHECKING:
    from edgecnn.card import ModelCard
    from edgecnn.runtime.classifier import Classifier

__all__ = ["Classifier", "ModelCard", "__version__"]


def __getattr__(name):
    # Lazy so that `import edgecnn` stays light (no OpenCV, no TensorFlow).
    if name == "Classifier":
        from edgecnn.runtime.classifier import Classifier

        return Classifier
    if name == "ModelCard":
        from edgecnn.card import ModelCard

        return ModelCard
    raise AttributeError(f"module 'edgecnn' has no attribute {name!r}")
