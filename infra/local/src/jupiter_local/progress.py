"""Progress bars for the local tools' long steps (producing, bounded job runs), with count, rate
and ETA: rich.progress on a terminal, nothing at all when stdout is not one (CI logs, pipes,
files), where each tool's one-line summaries stay the record.

Contract: :func:`progress_bar` yields a :class:`Bar` whether or not it draws; calling it with a
count (or :meth:`Bar.update`) is cheap either way, so callers never branch on the terminal.
``Bar.active`` says whether a bar is drawn. Rich decides what a terminal is (``isatty``, and
its ``FORCE_COLOR``/``TTY_COMPATIBLE`` variables)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    """Items per second (rich's own speed column counts bytes)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        shown = f"{speed:,.0f}" if speed is not None else "-"
        return Text(f"{shown} {self.unit}/s", style="progress.data.speed")


class Bar:
    """One task of a progress display; a no-op when the display is disabled."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task

    @property
    def active(self) -> bool:
        """A bar is drawn (stdout is a terminal)."""
        return not self._progress.disable

    def update(self, completed: float | None = None, note: str | None = None) -> None:
        """Set the count done so far and/or the note shown after the bar."""
        if self._progress.disable:
            return
        fields: dict[str, Any] = {} if note is None else {"note": note}
        self._progress.update(self._task, completed=completed, **fields)

    def __call__(self, completed: int) -> None:
        """A progress callback: ``produce(..., progress=bar)``."""
        self.update(completed)


@contextmanager
def progress_bar(
    description: str,
    total: float | None,
    *,
    unit: str = "msg",
    console: Console | None = None,
) -> Iterator[Bar]:
    """A bar for ``total`` items (``None``: unknown, the bar pulses and shows elapsed time and
    the note); drawn on ``console`` (default: stdout) only when it is a terminal, and left on
    screen when done."""
    console = console if console is not None else Console()
    counted: tuple[ProgressColumn, ...] = (
        MofNCompleteColumn(),
        RateColumn(unit),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(bar_width=20),
        *(counted if total is not None else (TimeElapsedColumn(),)),
        TextColumn("{task.fields[note]}"),
        console=console,
        disable=not console.is_terminal,
    )
    with progress:
        yield Bar(progress, progress.add_task(description, total=total, note=""))
