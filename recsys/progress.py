"""Progress for long commands: rich's bar on a terminal, plain periodic lines elsewhere.

A bar only draws on a terminal; under `make run | tee`, in CI or in a scheduler's log
the commands were silent for minutes and looked hung. Off a terminal each task prints
`description: done[/total] unit (elapsed)` at most every `every_s` seconds, and once
more when the command finishes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

#: Seconds between two plain progress lines of one task.
PLAIN_EVERY_S = 10.0


class Tracker(Protocol):
    """What the commands use of a progress display (`rich.progress.Progress` has it)."""

    def add_task(self, description: str, *, total: float | None = ...) -> TaskID: ...

    def advance(self, task_id: TaskID, advance: float = ...) -> None: ...

    def update(
        self,
        task_id: TaskID,
        *,
        total: float | None = ...,
        completed: float | None = ...,
        description: str | None = ...,
    ) -> None: ...

    def __enter__(self) -> Tracker: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


@dataclass(slots=True)
class _Task:
    description: str
    total: float | None
    completed: float = 0.0
    started: float = field(default_factory=time.monotonic)
    printed_at: float = field(default_factory=time.monotonic)


class PlainProgress:
    """A `Tracker` that prints a line per task every `every_s` seconds (and at the end)."""

    def __init__(self, console: Console, unit: str, every_s: float = PLAIN_EVERY_S) -> None:
        self._console = console
        self._unit = unit
        self._every = every_s
        self._tasks: dict[TaskID, _Task] = {}

    def add_task(self, description: str, *, total: float | None = None) -> TaskID:
        task_id = TaskID(len(self._tasks))
        self._tasks[task_id] = _Task(description, total)
        self._console.print(f"{description}: started", highlight=False, soft_wrap=True)
        return task_id

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        task = self._tasks[task_id]
        task.completed += advance
        self._maybe_print(task)

    def update(
        self,
        task_id: TaskID,
        *,
        total: float | None = None,
        completed: float | None = None,
        description: str | None = None,
    ) -> None:
        task = self._tasks[task_id]
        if description is not None and description != task.description:
            task.description = description
            task.printed_at = float("-inf")  # a new stage says so at once
        if total is not None:
            task.total = total
        if completed is not None:
            task.completed = completed
        self._maybe_print(task)

    def _maybe_print(self, task: _Task) -> None:
        now = time.monotonic()
        if now - task.printed_at >= self._every:
            task.printed_at = now
            self._print(task, now)

    def _print(self, task: _Task, now: float) -> None:
        done = f"{task.completed:,.0f}"
        if task.total:
            done += f"/{task.total:,.0f}"
        self._console.print(
            f"{task.description}: {done} {self._unit} ({now - task.started:,.0f} s)",
            highlight=False,
            soft_wrap=True,
        )

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            now = time.monotonic()
            for task in self._tasks.values():
                self._print(task, now)


def progress_for(console: Console, unit: str, *, transient: bool = False) -> Tracker:
    """A bar on a terminal, plain periodic lines otherwise."""
    if not console.is_terminal:
        return PlainProgress(console, unit)
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn(f"{{task.completed:,.0f}} {unit}"),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
    )
