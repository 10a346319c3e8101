"""Findings rules on crafted result rows (no models, no subprocesses)."""

from __future__ import annotations

import pytest

from edgecnn.bench.findings import find
from edgecnn.bench.report import csv_text, render_markdown, render_text
from edgecnn.bench.result import Row
from edgecnn.runtime import cpu


@pytest.fixture(autouse=True)
def _cpu_with_exact_int8(monkeypatch):
    """These rules are about speed and accuracy; the int8-kernels rule (x86 without VNNI) is tested on its own."""
    monkeypatch.setattr(cpu, "x86_without_vnni", lambda: False)


def row(fmt, backend="litert", quant="none", p50=10.0, threads=1, top1=None, size=4_000_000, peak=None, before=100.0,
        model="m"):
    return Row(model, fmt, backend, quant, threads, latency_ms={"min": p50, "mean": p50, "std": 0.0, "p50": p50,
                                                                "p90": p50, "p99": p50, "max": p50},
               top1=top1, size_bytes=size, peak_rss_mb=peak, rss_before_load_mb=before if peak else None)


def rules(rows):
    return [(f.rule, f.format, f.threads) for f in find(rows)]


def test_dynamic_slower_than_fp32_is_flagged():
    assert rules([row("tflite-fp32", p50=10), row("tflite-dynamic", quant="dynamic", p50=12)]) == [
        ("dynamic-slower", "tflite-dynamic", 1)]
    assert rules([row("tflite-fp32", p50=10), row("tflite-dynamic", quant="dynamic", p50=8)]) == []


def test_int8_not_faster_than_fp32_is_flagged_per_thread_count():
    rows = [row("tflite-fp32", p50=10), row("tflite-int8", quant="int8", p50=9.5),
            row("tflite-fp32", p50=6, threads=2), row("tflite-int8", quant="int8", p50=3, threads=2)]
    assert rules(rows) == [("int8-not-faster", "tflite-int8", 1)]


def test_int8_is_compared_with_the_float_model_of_its_own_runtime():
    rows = [row("tflite-fp32", p50=10), row("onnx", backend="onnx", p50=2),
            row("onnx-int8", backend="onnx", quant="int8", p50=2.5), row("tflite-int8", quant="int8", p50=4)]
    assert rules(rows) == [("int8-not-faster", "onnx-int8", 1)]


def test_accuracy_drop_over_one_point_against_keras():
    rows = [row("keras", backend="keras", top1=0.90), row("tflite-fp32", top1=0.895),
            row("tflite-int8", quant="int8", p50=4, top1=0.885)]
    found = find(rows)
    assert [(f.rule, f.format) for f in found] == [("accuracy-drop", "tflite-int8")]
    assert "1.5 accuracy points" in found[0].message
    at_two_threads = [row("tflite-int8", quant="int8", p50=4, top1=0.885, threads=2)]
    assert len([f for f in find(rows + at_two_threads) if f.rule == "accuracy-drop"]) == 1  # once per format


def test_memory_far_above_file_size():
    small = row("tflite-fp32", size=1_000_000, peak=250.0, before=100.0)  # 150 MB for a 1 MB file
    more = row("tflite-fp32", size=1_000_000, peak=300.0, before=100.0, threads=2)  # reported once, the worst
    fair = row("onnx", backend="onnx", size=40_000_000, peak=180.0, before=100.0)  # 80 MB for 38 MB
    arena = row("onnx-int8", backend="onnx", quant="int8", p50=1, size=3_000_000, peak=150.0)  # 50 MB: fine
    assert rules([small, more, fair, arena]) == [("memory-high", "tflite-fp32", 2)]


def test_rows_of_other_models_or_failed_rows_are_not_compared():
    rows = [row("tflite-fp32", p50=10, model="a"), row("tflite-int8", quant="int8", p50=20, model="b"),
            Row("a", "tflite-int8", "litert", "int8", 1, status="export failed", reason="boom")]
    assert rules(rows) == []


def test_findings_and_failures_are_written_under_the_tables():
    rows = [row("tflite-fp32", p50=10), row("tflite-dynamic", quant="dynamic", p50=12),
            Row("m", "onnx", "onnx", "none", None, status="export failed", reason="tf2onnx missing")]
    found = find(rows)
    text = render_text(rows, found)
    assert "Findings:" in text and "tflite-dynamic is slower than tflite-fp32" in text
    assert "onnx: export failed: tf2onnx missing" in text
    md = render_markdown(rows, found, {"cpu": "cpu", "cores": {"usable": 2}, "os": "Linux", "python": "3.11"})
    assert md.count("\n| ") >= 4 and "- tflite-dynamic is slower" in md
    assert csv_text(rows).splitlines()[0].startswith("model,format,backend")
