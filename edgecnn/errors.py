"""Typed errors. Every message says what was wrong and what to do about it.

The CLI prints ``error: <message>`` for any :class:`EdgeCNNError` and exits 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations


class EdgeCNNError(Exception):
    """Base class for errors caused by the user's input or environment."""

    exit_code = 2


class UsageError(EdgeCNNError):
    """A bad command-line value or API argument."""


class DataError(EdgeCNNError):
    """A dataset folder or image that cannot be used."""


class ModelError(EdgeCNNError):
    """A model file that is missing, corrupt or not understood."""


class CardError(ModelError):
    """A model card that is missing fields or cannot be parsed."""


class LabelsError(EdgeCNNError):
    """Labels that are missing or do not match the model's outputs."""


class BackendUnavailableError(EdgeCNNError):
    """No installed runtime can run this model format."""


class ExportError(EdgeCNNError):
    """A conversion to an edge format failed."""


class ValidationError(ExportError):
    """An exported model disagrees with the Keras model beyond its tolerance."""


class ClusterError(EdgeCNNError):
    """A worker of a multi-worker training cluster stopped or cannot be reached."""


class PrivateAPIError(EdgeCNNError):
    """A private TensorFlow/Keras API edgecnn relies on is missing or changed in the installed version."""


class OutputError(EdgeCNNError):
    """An output file that could not be written whole (a full disk, an I/O error)."""


class SourceError(EdgeCNNError):
    """A camera, stream, video file or image folder that cannot be opened or read."""


class SourceLostError(SourceError):
    """A live source failed and every reconnect attempt failed too."""

    exit_code = 3


def did_you_mean(name: str, choices) -> str:
    """``" (did you mean 'x'?)"`` naming the closest of ``choices`` to ``name``, else ``""``."""
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """The first line of ``exc``'s message (its type name when the message is empty), cut to ``limit`` characters."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    return text[:limit] if limit else text
