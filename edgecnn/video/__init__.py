"""Live classification: frame sources, latest-frame capture, overlay, recorder, preview server, loop.

Imports numpy and OpenCV only (never TensorFlow/Keras), like :mod:`edgecnn.runtime`.
"""
