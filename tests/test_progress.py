"""edgecnn.progress.steps: the benchmark's named steps go through the one progress wrapper, so EDGECNN_PROGRESS,
-q (INFO off) and --plain decide between a bar and one log line per step."""

from __future__ import annotations

import logging

import pytest

from edgecnn import progress

log = logging.getLogger("edgecnn.bench")


def _run(plain: bool = False) -> list[bool]:
    drawn = []
    with progress.steps(2, "benchmark", log, plain=plain) as counter:
        for what in ("tflite-fp32 threads=1", "onnx-fp32 threads=1"):
            counter.step(what)
            drawn.append(counter._bar.drawn)
    assert counter.done == 2
    return drawn


@pytest.fixture
def info(caplog):
    caplog.set_level(logging.INFO, logger="edgecnn")
    return caplog


def test_without_a_terminal_each_step_is_one_log_line(info, monkeypatch):
    monkeypatch.setenv(progress.PROGRESS_ENV, "0")
    assert _run() == [False, False]
    assert [r.getMessage() for r in info.records] == ["[1/2] tflite-fp32 threads=1", "[2/2] onnx-fp32 threads=1"]


def test_edgecnn_progress_1_draws_a_bar_instead_of_lines(info, monkeypatch, capsys):
    pytest.importorskip("rich")
    monkeypatch.setenv(progress.PROGRESS_ENV, "1")
    assert _run() == [True, True]
    assert not info.records
    assert "onnx-fp32 threads=1" in capsys.readouterr().err


def test_plain_wins_over_edgecnn_progress(info, monkeypatch):
    monkeypatch.setenv(progress.PROGRESS_ENV, "1")
    assert _run(plain=True) == [False, False]
    assert len(info.records) == 2


def test_quiet_draws_nothing_and_logs_nothing(caplog, monkeypatch):
    """-q sets the edgecnn logger to WARNING: no bar (even on a terminal) and the step lines are filtered out."""
    monkeypatch.delenv(progress.PROGRESS_ENV, raising=False)
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    caplog.set_level(logging.WARNING, logger="edgecnn")
    assert _run() == [False, False]
    assert not caplog.records
