"""Progress on long work: a rich progress bar on a terminal, nothing otherwise.

A command names its steps up front (``Steps(["read the bundle", "evaluate", ...])``) and
says each as it starts it; on a terminal (standard error is a TTY) a bar shows the step
and how many are done, and disappears at the end. It stays silent when standard error
is not a terminal (a pipe, a log file, CI) or with ``billing --quiet`` (or
``BILLING_QUIET=1``), so scripted output is never mixed with progress lines.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Self

import click

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

QUIET_ENV = "BILLING_QUIET"


def quiet_requested() -> bool:
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx is not None else None
    flagged = bool(root.params.get("quiet")) if root is not None else False
    return flagged or os.environ.get(QUIET_ENV, "") not in ("", "0")


def shown() -> bool:
    """Whether progress is drawn: standard error is a terminal and nobody asked for quiet."""
    return sys.stderr.isatty() and not quiet_requested()


class Steps:
    """A command's steps; ``step(name)`` marks the next one as started."""

    def __init__(self, names: Sequence[str]) -> None:
        self._names = list(names)
        self._done = 0
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        if shown():
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description:<28}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                transient=True,
                console=None,
                redirect_stdout=False,
                redirect_stderr=False,
            )

    def __enter__(self) -> Self:
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task(self._names[0], total=len(self._names))
        return self

    def step(self, name: str) -> None:
        if self._progress is not None and self._task is not None:
            if self._done or name != self._names[0]:
                self._done += 1
            self._progress.update(self._task, description=name, completed=self._done)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=len(self._names))
            self._progress.stop()


@contextmanager
def steps(names: Sequence[str]) -> Iterator[Steps]:
    with Steps(names) as progress:
        yield progress
