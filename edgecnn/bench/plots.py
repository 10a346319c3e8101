"""benchmark.png (latency vs accuracy, marker size by file size) and latency_distribution.png.

matplotlib is optional (train extra): without it the plots are skipped with a note.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from edgecnn.bench.result import Row

PLOT_FILE = "benchmark.png"
DISTRIBUTION_FILE = "latency_distribution.png"


def write_plots(out: Path, rows: Sequence[Row]) -> tuple[list[Path], str | None]:
    """(files written, note when skipped)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], "plots skipped: matplotlib is not installed (pip install matplotlib)"
    measured = [r for r in rows if r.measured]
    if not measured:
        return [], "plots skipped: no format was measured"
    return [_scatter(plt, out / PLOT_FILE, measured), _distribution(plt, out / DISTRIBUTION_FILE, measured)], None


def _label(row: Row, many_models: bool) -> str:
    threads = "default" if row.threads is None else row.threads
    return f"{row.model}/{row.format} t={threads}" if many_models else f"{row.format} t={threads}"


def _scatter(plt, path: Path, rows: Sequence[Row]) -> Path:
    many = len({r.model for r in rows}) > 1
    use_acc = any(r.top1 is not None for r in rows)
    metric, name = (("top1", "top-1 accuracy (%)") if use_acc else ("agreement", "agreement with Keras (%)"))
    if not any(getattr(r, metric) is not None for r in rows):
        metric, name = None, "format (no labels: accuracy not measured)"
    biggest = max((r.size_bytes or 0) for r in rows) or 1
    fig, ax = plt.subplots(figsize=(8, 5.5))
    formats = sorted({r.format for r in rows})
    colors = {f: plt.cm.tab10(i % 10) for i, f in enumerate(formats)}
    for row in rows:
        y = getattr(row, metric) * 100 if metric and getattr(row, metric) is not None else None
        if metric is None:
            y = formats.index(row.format)
        if y is None:
            continue
        size = 40 + 800 * (row.size_bytes or 0) / biggest
        ax.scatter(row.p50, y, s=size, alpha=0.6, color=colors[row.format], edgecolors="black")
        ax.annotate(_label(row, many), (row.p50, y), fontsize=7, xytext=(4, 4), textcoords="offset points")
    for fmt in formats:
        ax.scatter([], [], color=colors[fmt], label=fmt)
    p50s = [r.p50 for r in rows if r.p50]
    if p50s and max(p50s) > 10 * min(p50s):  # e.g. Keras next to TFLite: keep the fast ones apart
        ax.set_xscale("log")
    ax.set_xlabel("median latency, backend.run (ms)")
    ax.set_ylabel(name)
    if metric is None:
        ax.set_yticks(range(len(formats)), formats)
    ax.set_title("latency vs accuracy (marker area ~ file size)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _distribution(plt, path: Path, rows: Sequence[Row]) -> Path:
    many = len({r.model for r in rows}) > 1
    with_times = [r for r in rows if r.times_ms] or list(rows)
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(with_times) + 1.5))
    ax.boxplot([r.times_ms or [r.p50] for r in with_times], orientation="horizontal", whis=(1, 99), showfliers=True,
               flierprops={"markersize": 2})
    ax.set_yticks(range(1, len(with_times) + 1), [_label(r, many) for r in with_times], fontsize=7)
    ax.set_xlabel("latency per call, backend.run (ms); whiskers p1-p99")
    ax.set_xscale("log")
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
