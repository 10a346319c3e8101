"""benchmark.png (each format's accuracy with its 95% interval beside its median latency) and
latency_distribution.png.

benchmark.png is a table of panels: one row per format, labelled on the axis (labels never overlap), accuracy
with its 95% Wilson interval on the left, median latency per thread count on the right. The accuracy axis spans
at least :data:`MIN_ACCURACY_SPAN` points, so that differences inside the intervals do not read as gains.
matplotlib is optional (train extra): without it the plots are skipped with a note.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from edgecnn.bench.result import Row

PLOT_FILE = "benchmark.png"
DISTRIBUTION_FILE = "latency_distribution.png"
MIN_ACCURACY_SPAN = 10.0  # percentage points shown at least on the accuracy axis
DPI = 110


@dataclass
class FormatPoint:
    """One row of benchmark.png: a model's format, its accuracy (percent) with a 95% interval, and its median
    latency (ms) per thread count."""

    label: str
    accuracy: Optional[float] = None  # percent; None: not measured
    low: Optional[float] = None  # 95% Wilson interval, percent; None: no image count to base it on
    high: Optional[float] = None
    images: Optional[int] = None
    latency: dict[str, float] = field(default_factory=dict)  # "threads=N" -> median latency (ms)


def accuracy_metric(rows: Sequence[Row]) -> tuple[Optional[str], str]:
    """(Row attribute, axis name): top-1 on the labels, else agreement with Keras, else (None, ...)."""
    if any(r.top1 is not None for r in rows):
        return "top1", "top-1 accuracy (%)"
    if any(r.agreement is not None for r in rows):
        return "agreement", "agreement with Keras (%)"
    return None, "accuracy not measured (no labels)"


def plot_points(rows: Sequence[Row]) -> list[FormatPoint]:
    """The values benchmark.png draws, one per (model, format) in the rows' order."""
    from edgecnn.export.stats import wilson
    from edgecnn.table import human_size

    metric, _ = accuracy_metric(rows)
    many = len({r.model for r in rows}) > 1
    points: dict[tuple[str, str], FormatPoint] = {}
    for row in rows:
        key = (row.model, row.format)
        if key not in points:
            name = f"{row.model}/{row.format}" if many else row.format
            size = f" ({human_size(row.size_bytes)})" if row.size_bytes else ""
            points[key] = FormatPoint(f"{name}{size}")
        point = points[key]
        value = getattr(row, metric) if metric else None
        if value is not None and point.accuracy is None:
            point.accuracy = value * 100
            n = _images(row, metric)
            if n:
                low, high = wilson(round(value * n), n)
                point.low, point.high, point.images = low * 100, high * 100, n
        if row.p50 is not None:
            point.latency[f"threads={'default' if row.threads is None else row.threads}"] = row.p50
    return list(points.values())


def _images(row: Row, metric: str) -> Optional[int]:
    """Images behind ``row``'s accuracy figure (agreement from the export's validation: not this run's count)."""
    if metric == "agreement" and row.agreement_source != "keras row":
        return None
    return row.images


def accuracy_range(points: Sequence[FormatPoint]) -> tuple[float, float]:
    """The accuracy axis: every interval, at least :data:`MIN_ACCURACY_SPAN` points wide, within 0..100."""
    ends = [v for p in points for v in (p.low, p.high, p.accuracy) if v is not None]
    if not ends:
        return 0.0, 100.0
    low, high = min(ends), max(ends)
    pad = max(MIN_ACCURACY_SPAN - (high - low), 0.0) / 2 + 0.5
    low, high = low - pad, high + pad
    if low < 0:
        low, high = 0.0, min(100.0, high - low)
    if high > 100:
        low, high = max(0.0, low - (high - 100)), 100.0
    return low, high


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
    return [_panels(plt, out / PLOT_FILE, measured), _distribution(plt, out / DISTRIBUTION_FILE, measured)], None


def _label(row: Row, many_models: bool) -> str:
    threads = "default" if row.threads is None else row.threads
    return f"{row.model}/{row.format} t={threads}" if many_models else f"{row.format} t={threads}"


def _panels(plt, path: Path, rows: Sequence[Row]) -> Path:
    points = plot_points(rows)
    fig, (acc_ax, lat_ax) = plt.subplots(1, 2, sharey=True, figsize=(9, 0.45 * len(points) + 1.8),
                                         gridspec_kw={"width_ratios": [1, 1]})
    ys = list(range(len(points)))[::-1]  # first format on top
    _accuracy_panel(acc_ax, points, ys, accuracy_metric(rows)[1])
    _latency_panel(plt, lat_ax, points, ys)
    acc_ax.set_yticks(ys, [p.label for p in points], fontsize=8)
    acc_ax.set_ylim(-0.6, len(points) - 0.4)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _accuracy_panel(ax, points: Sequence[FormatPoint], ys: list[int], name: str) -> None:
    images = {p.images for p in points if p.images}
    for y, p in zip(ys, points):
        if p.accuracy is None:
            continue
        if p.low is not None:
            ax.errorbar(p.accuracy, y, xerr=[[p.accuracy - p.low], [p.high - p.accuracy]], fmt="o", color="C0",
                        ecolor="C0", capsize=3, markersize=5)
            ax.annotate(f"{p.accuracy:.1f}%", (p.high, y), xytext=(4, 0), textcoords="offset points", va="center",
                        fontsize=7)
        else:
            ax.plot(p.accuracy, y, "o", color="C0", markersize=5)
    ax.set_xlim(*accuracy_range(points))
    count = f" on {images.pop()} images" if len(images) == 1 else ""
    ax.set_xlabel(f"{name}{count}; bars: 95% interval", fontsize=8)
    ax.grid(alpha=0.3, axis="x")


def _latency_panel(plt, ax, points: Sequence[FormatPoint], ys: list[int]) -> None:
    threads = sorted({t for p in points for t in p.latency}, key=lambda t: (len(t), t))
    markers = "osD^v<>"
    for i, t in enumerate(threads):
        xs = [(p.latency[t], y) for y, p in zip(ys, points) if t in p.latency]
        ax.plot([x for x, _ in xs], [y for _, y in xs], markers[i % len(markers)], color=plt.cm.tab10(i + 1),
                label=t, markersize=5, linestyle="none")
    values = [v for p in points for v in p.latency.values()]
    if values and max(values) > 10 * min(values):  # e.g. Keras next to TFLite: keep the fast ones apart
        ax.set_xscale("log")
    else:
        ax.set_xlim(0, max(values, default=1.0) * 1.1)  # from zero: lengths compare
    only = f", {threads[0]}" if len(threads) == 1 else ""
    ax.set_xlabel(f"median latency per image, backend.run (ms){only}", fontsize=8)
    ax.grid(alpha=0.3, axis="x")
    if len(threads) > 1:
        ax.legend(fontsize=7, loc="best")


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
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path
