"""Benchmark outputs: the terminal/Markdown table, results.json, results.csv, results.md."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Callable, Optional, Sequence

from edgecnn._io import portable_path, write_json, write_text
from edgecnn.bench.findings import Finding
from edgecnn.bench.result import Row
from edgecnn.bench.stats import LATENCY_KEYS
from edgecnn.table import human_size, markdown_table, text_table

TIMED = ("latency = backend.run() on a preprocessed batch (the raw interpreter call); "
         "e2e = Classifier.predict() (resize/normalize + inference + softmax/top-k); "
         "load = Classifier() construction; "
         "RSS = peak resident memory of a process that loads and runs only that model")


def _ms(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.2f}"


def _pct(value: Optional[float]) -> str:
    return "" if value is None else f"{value * 100:.1f}%"


def _num(value: Optional[float], fmt: str = "{:.1f}") -> str:
    return "" if value is None else fmt.format(value)


# (header, cell) for the table: one place for what the table shows.
COLUMNS: list[tuple[str, Callable[[Row], str]]] = [
    ("format", lambda r: r.format),
    ("threads", lambda r: "default" if r.threads is None else str(r.threads)),
    ("status", lambda r: r.status),
    ("size", lambda r: "" if r.size_bytes is None else human_size(r.size_bytes)),
    ("load ms", lambda r: _num(r.load_ms)),
    ("1st ms", lambda r: _num(r.first_inference_ms)),
    ("min", lambda r: _ms(r.latency_ms.get("min"))),
    ("mean", lambda r: _ms(r.latency_ms.get("mean"))),
    ("std", lambda r: _ms(r.latency_ms.get("std"))),
    ("p50", lambda r: _ms(r.latency_ms.get("p50"))),
    ("p90", lambda r: _ms(r.latency_ms.get("p90"))),
    ("p99", lambda r: _ms(r.latency_ms.get("p99"))),
    ("max", lambda r: _ms(r.latency_ms.get("max"))),
    ("e2e p50", lambda r: _ms(r.classifier_latency_ms.get("p50"))),
    ("img/s", lambda r: _num(r.throughput)),
    ("batch img/s", lambda r: "" if r.batch_throughput is None else f"{r.batch_throughput:.1f} @{r.batch}"),
    ("RSS MB", lambda r: _num(r.peak_rss_mb, "{:.0f}")),
    ("top-1", lambda r: _pct(r.top1)),
    ("top-5", lambda r: _pct(r.top5)),
    ("agree", lambda r: _pct(r.agreement)),
]


def table_rows(rows: Sequence[Row]) -> tuple[list[str], list[list[str]]]:
    """Headers and cells; a ``model`` column first when rows come from several models."""
    columns = list(COLUMNS)
    if len({r.model for r in rows}) > 1:
        columns.insert(0, ("model", lambda r: r.model))
    return [h for h, _ in columns], [[cell(r) for _, cell in columns] for r in rows]


def render_text(rows: Sequence[Row], findings: Sequence[Finding]) -> str:
    headers, cells = table_rows(rows)
    parts = [text_table(headers, cells), "latencies in ms; " + TIMED]
    parts += _notes(rows, findings, bullet="  - ")
    return "\n".join(parts)


def render_markdown(rows: Sequence[Row], findings: Sequence[Finding], machine: dict) -> str:
    headers, cells = table_rows(rows)
    where = (f"{machine.get('cpu')}, {machine.get('cores', {}).get('usable')} cores, "
             f"{machine.get('os_pretty') or machine.get('os')}, Python {machine.get('python')}")
    parts = [f"Measured on {where}.", "", markdown_table(headers, cells), "", f"Latencies in ms. {TIMED}."]
    notes = _notes(rows, findings, bullet="- ")
    return "\n".join(parts + ([""] + notes if notes else [])) + "\n"


def _notes(rows: Sequence[Row], findings: Sequence[Finding], bullet: str) -> list[str]:
    out = []
    problems = [r for r in rows if r.reason]
    seen = set()
    for r in problems:
        if (r.model, r.format, r.reason) not in seen:
            seen.add((r.model, r.format, r.reason))
            out.append(f"{bullet}{r.format}: {r.status}: {r.reason}")
    notes = sorted({r.batch_note for r in rows if r.batch_note})
    out += [f"{bullet}{n}" for n in notes]
    if findings:
        out += ["", "Findings:"] + [f"{bullet}{f.message}" for f in findings]
    return ([""] + out) if out and out[0] else out


def csv_text(rows: Sequence[Row], out: Path | None = None) -> str:
    """One line per row; latency dicts flattened to ``latency_p50_ms`` etc.; raw timings left out;
    paths relative to the results folder ``out`` (or the model's file name)."""
    flat = []
    for row in rows:
        data = row.to_dict()
        if out is not None:
            data["path"] = portable_path(data["path"], out)
        data.pop("times_ms")
        sources = data.pop("sources") or {}
        data.update({f"{what}_source": sources.get(what) for what in ("normalization", "color", "labels")})
        for key in ("latency_ms", "classifier_latency_ms"):
            stats = data.pop(key) or {}
            prefix = key[: -len("_ms")]
            data.update({f"{prefix}_{k}_ms": stats.get(k) for k in LATENCY_KEYS})
        flat.append(data)
    buf = io.StringIO()
    if flat:
        writer = csv.DictWriter(buf, fieldnames=list(flat[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(flat)
    return buf.getvalue()


def write_all(out: Path, rows: Sequence[Row], findings: Sequence[Finding], machine: dict, config: dict) -> list[Path]:
    """results.json, results.csv and results.md in ``out``."""
    results = [r.to_dict() for r in rows]
    for r in results:
        r["path"] = portable_path(r["path"], out)
    data = config.get("data")  # kept as typed when relative (e.g. ../data/flowers/val): it names the data set
    config = {**config, "out": ".", "data": data if data is None or not Path(data).is_absolute() else
              portable_path(data, out),
              "models": [portable_path(m, out) for m in config.get("models") or []]}
    if data:  # "866 images from DIR" names the folder as --data did
        config["images"] = {m: s.replace(str(data), config["data"]) for m, s in (config.get("images") or {}).items()}
    document = {
        "machine": machine,
        "config": config,
        "timed": TIMED,
        "results": results,
        "findings": [f.to_dict() for f in findings],
    }
    return [
        write_json(out / "results.json", document),
        write_text(out / "results.csv", csv_text(rows, out)),
        write_text(out / "results.md", render_markdown(rows, findings, machine)),
    ]
