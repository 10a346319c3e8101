"""Report figures (PNG, matplotlib's Agg backend): history, confusion matrix, predictions, Grad-CAM, feature maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecnn._io import atomic_path
from edgecnn.runtime.feedback import FEEDBACK_LEVELS, confidence_feedback

# One colour per level of the runtime's confidence feedback, most confident first.
CONFIDENCE_COLOURS = {phrase: colour for (_, phrase), colour in
                      zip(FEEDBACK_LEVELS, ("tab:green", "yellowgreen", "orange", "tab:red"))}


def confidence_colour(confidence: float) -> str:
    return CONFIDENCE_COLOURS[confidence_feedback(confidence)]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    plt = _pyplot()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight", format="png")
    plt.close(fig)
    return Path(path)


def plot_history(history: dict, path: Path, fine_tune_start: int | None = None) -> Path:
    """Accuracy and loss, train vs validation; a dotted line where fine-tuning starts."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    for ax, metric, title in ((axes[0], "accuracy", "Accuracy"), (axes[1], "loss", "Loss")):
        for key, label in ((metric, "train"), (f"val_{metric}", "validation")):
            if history.get(key):
                ax.plot(epochs, history[key], marker="o", label=label)
        if fine_tune_start:
            ax.axvline(fine_tune_start - 0.5, color="gray", linestyle=":", label="fine-tuning")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        ax.legend()
    return _save(fig, path)


def plot_confusion(matrix: np.ndarray, labels: list[str], path: Path) -> Path:
    plt = _pyplot()
    n = len(labels)
    fig, ax = plt.subplots(figsize=(max(4, 0.6 * n + 2), max(3.5, 0.6 * n + 1.5)))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = matrix.max() / 2 if matrix.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(j, i, int(matrix[i, j]), ha="center", va="center",
                    color="white" if matrix[i, j] > threshold else "black", fontsize=8)
    ax.set_title("Confusion matrix")
    return _save(fig, path)


def _grid(count: int, cols: int = 4):
    plt = _pyplot()
    rows = max(1, int(np.ceil(count / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    return fig, axes.ravel()


def plot_predictions(images: np.ndarray, true: np.ndarray, probs: np.ndarray, labels: list[str], path: Path) -> Path:
    """A grid of images titled with prediction and confidence, coloured by confidence (red frame when wrong)."""
    fig, axes = _grid(len(images))
    for ax, image, t, p in zip(axes, images, true, probs):
        pred = int(np.argmax(p))
        ax.imshow(image)
        ax.set_title(f"{labels[pred]} {p[pred]:.0%}\n(true: {labels[t]})", color=confidence_colour(float(p[pred])),
                     fontsize=9)
        if pred != t:
            ax.axis("on")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_edgecolor("tab:red")
                spine.set_linewidth(3)
    fig.suptitle("Predictions (title colour: confidence >90% green, >70% yellow-green, >50% orange, else red)")
    return _save(fig, path)


def plot_gradcam(images: np.ndarray, heatmaps: np.ndarray, titles: list[str], path: Path, layer: str) -> Path:
    """Grad-CAM heatmaps over their images."""
    fig, axes = _grid(len(images))
    for ax, image, heat, title in zip(axes, images, heatmaps, titles):
        ax.imshow(image)
        ax.imshow(heat, cmap="jet", alpha=0.4, extent=(-0.5, image.shape[1] - 0.5, image.shape[0] - 0.5, -0.5))
        ax.set_title(title, fontsize=9)
    fig.suptitle(f"Grad-CAM (layer {layer})")
    return _save(fig, path)


def plot_feature_maps(maps: list[tuple[str, np.ndarray]], path: Path, channels: int = 8) -> Path:
    """One row per layer: the first ``channels`` feature maps of one image."""
    plt = _pyplot()
    rows = max(1, len(maps))
    fig, axes = plt.subplots(rows, channels, figsize=(1.6 * channels, 1.7 * rows), squeeze=False)
    for row, (name, fmap) in zip(axes, maps):
        for c, ax in enumerate(row):
            ax.axis("off")
            if c < fmap.shape[-1]:
                ax.imshow(fmap[..., c], cmap="viridis")
        row[0].set_title(name, fontsize=8, loc="left")
    fig.suptitle("Feature maps per layer (first channels)")
    return _save(fig, path)
