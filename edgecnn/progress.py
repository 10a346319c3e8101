"""Live progress bars on a terminal: decoding, feature passes, steps within an epoch, benchmark steps.

A bar shows only when stderr is a terminal and ``edgecnn`` messages at INFO are on (not ``-q``); in logs and
pipes nothing is drawn and the one-line messages (``logging``) tell the story. rich draws the bars; while a bar
is live, rich passes log lines through above it. :func:`live` counts units (images, batches);
:func:`steps` names a few long steps, each one INFO line where no bar is drawn.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Iterator

PROGRESS_ENV = "EDGECNN_PROGRESS"  # "0": never draw bars; "1": draw them even when stderr is not a terminal


def enabled() -> bool:
    forced = os.environ.get(PROGRESS_ENV)
    if forced in ("0", "1"):
        return forced == "1"
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty()) and logging.getLogger("edgecnn").isEnabledFor(logging.INFO)


class Bar:
    """One task of a live display: ``advance(n)``, ``describe(text)``; does nothing when no display is live."""

    def __init__(self, progress=None, task=None):
        self._progress, self._task = progress, task

    @property
    def drawn(self) -> bool:
        return self._progress is not None

    def advance(self, n: float = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def update(self, completed: float) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=completed)

    def describe(self, text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=text)

    def reset(self, total: float, description: str) -> None:
        if self._progress is not None:
            self._progress.reset(self._task, total=total, description=description)


@contextlib.contextmanager
def live(total: float, description: str, unit: str = "images", scale: float = 1.0) -> Iterator[Bar]:
    """A transient bar of ``total`` steps: count, ``unit``/s (steps/s x ``scale``), elapsed time and ETA."""
    progress = _progress(unit, scale, os.environ.get(PROGRESS_ENV) == "1") if enabled() else None
    if progress is None:
        yield Bar()
        return
    with progress:
        yield Bar(progress, progress.add_task(description, total=total))


class Steps:
    """``step(name)`` before each of ``total`` named steps: the bar's description, else one INFO line ``[i/n] name``."""

    def __init__(self, bar: Bar, total: int, log: logging.Logger):
        self._bar, self.total, self.done, self._log = bar, total, 0, log

    def step(self, what: str) -> None:
        if self._bar.drawn:
            self._bar.update(self.done)
            self._bar.describe(what)
        else:
            self._log.info(f"[{self.done + 1}/{self.total}] {what}")
        self.done += 1


@contextlib.contextmanager
def steps(total: int, description: str, log: logging.Logger, plain: bool = False) -> Iterator[Steps]:
    """:class:`Steps` on a live bar (none when ``plain``, or where :func:`enabled` says no)."""
    with (contextlib.nullcontext(Bar()) if plain else live(total, description, unit="steps")) as bar:
        counter = Steps(bar, total, log)
        yield counter
        bar.update(counter.done)


def _progress(unit: str, scale: float, force: bool):
    try:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            ProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.text import Text

        from edgecnn.native_logs import bar_stderr
    except ImportError:  # a device install without rich: no bar
        return None

    class Rate(ProgressColumn):
        def render(self, task):
            speed = task.finished_speed or task.speed
            return Text(f"{speed * scale:,.1f} {unit}/s" if speed else "", style="progress.data.speed")

    return Progress(TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), Rate(),
                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                    console=Console(file=bar_stderr, force_terminal=force or None), transient=True,
                    redirect_stdout=False)
