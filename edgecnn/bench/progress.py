"""A progress bar: rich when importable, else one plain log line per step (device-only installs)."""

from __future__ import annotations

import logging

log = logging.getLogger("edgecnn.bench")


class Progress:
    """``with Progress(total) as bar: bar.step("tflite-int8 t=2")``."""

    def __init__(self, total: int, plain: bool = False):
        self.total, self.done = total, 0
        self._rich = None if plain else _rich_progress()
        self._task = None

    def __enter__(self) -> "Progress":
        if self._rich is not None:
            self._rich.start()
            self._task = self._rich.add_task("benchmark", total=self.total)
        return self

    def step(self, what: str) -> None:
        """Announce the step about to run."""
        if self._rich is not None:
            self._rich.update(self._task, description=what, completed=self.done)
        else:
            log.info(f"[{self.done + 1}/{self.total}] {what}")
        self.done += 1

    def __exit__(self, *exc) -> None:
        if self._rich is not None:
            self._rich.update(self._task, completed=self.done, description="done")
            self._rich.stop()


def _rich_progress():
    try:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress
    except ImportError:
        return None
    return RichProgress(TextColumn("{task.description:<32}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        transient=False)
