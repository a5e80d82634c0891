"""Shared pieces of the benchmarks: the result row, timers, child processes, paths.

Timings are wall-clock seconds (`time.perf_counter`); peak RSS is in MiB, read by the
process that did the work (see `peak_rss_mib`).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "DATA_DIR",
    "OUT_DIR",
    "REPO_ROOT",
    "RESULT_MARKER",
    "Baseline",
    "Row",
    "best_of",
    "emit_child_result",
    "peak_rss_mib",
    "quiet_logging",
    "run_child",
    "timed",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = REPO_ROOT / "bench" / "out"
DATA_DIR = OUT_DIR / "data"  # generated inputs, kept between runs (same args -> same bytes)
RESULT_MARKER = "BENCH_RESULT "

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Baseline:
    """What the candidate is compared with: a short name and its measured value."""

    name: str
    value: float


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the results table.

    `ratio` is defined per case (see `ratio_is`), e.g. `raw time / our time`; `goal`
    says which way is good (`>= 0.5`). `notes` carries data size and seed.
    """

    bench: str
    case: str
    baseline: Baseline
    candidate: float
    ratio: float | None
    unit: str
    ratio_is: str = ""
    goal: str = ""
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def meets_goal(self) -> bool | None:
        """True/False when there is a goal (`>= x` or `<= x`) and a ratio; None otherwise."""
        if self.ratio is None or not self.goal:
            return None
        op, _, value = self.goal.partition(" ")
        target = float(value)
        return self.ratio >= target if op == ">=" else self.ratio <= target

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["meets_goal"] = self.meets_goal
        return data


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (MiB).

    Linux: `VmHWM` of /proc/self/status. `ru_maxrss` is not used there because it
    survives `exec`: a child started by a big parent would report the parent's size.
    Elsewhere: `getrusage(RUSAGE_SELF).ru_maxrss` (KiB on Linux, bytes on macOS).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024.0


@contextmanager
def timed() -> Iterator[list[float]]:
    """`with timed() as t: ...` then `t[0]` holds the elapsed seconds."""
    box: list[float] = []
    started = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - started)


def best_of(repeats: int, fn: Callable[[], T]) -> tuple[float, T]:
    """Minimum wall time (s) of `repeats` calls of `fn`, and the last result."""
    best = float("inf")
    result: T | None = None
    for _ in range(max(repeats, 1)):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    assert result is not None
    return best, result


def quiet_logging() -> None:
    """Only warnings from the library (ingest logs a debug event per batch)."""
    from recsys.logs import configure_logging

    configure_logging("console", "warning")


def emit_child_result(result: dict[str, Any]) -> None:
    """Print a child process's result as one marked JSON line on stdout."""
    sys.stdout.write(RESULT_MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()


def run_child(module: str, args: Sequence[str], *, timeout: float | None = None) -> dict[str, Any]:
    """Run `python -m module args...` in a fresh process and return its marked JSON result."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            result: dict[str, Any] = json.loads(line[len(RESULT_MARKER) :])
            return result
    raise RuntimeError(
        f"{module} {' '.join(args)} exited {proc.returncode} without a result:\n"
        f"{proc.stderr[-4000:]}"
    )


def start_process(
    command: Sequence[str], home: Path, log: Path, **env: str
) -> subprocess.Popen[bytes]:
    """Start `command` from the repo root in its own session, output to `log`, with a clean
    RECSYS_ environment: RECSYS_HOME=`home`, warnings only, plus `env`."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RECSYS_")}
    environ.update(
        RECSYS_HOME=str(home), RECSYS_LOG_LEVEL="warning", PYTHONUNBUFFERED="1", **env
    )
    with log.open("wb") as out:
        return subprocess.Popen(
            list(command), cwd=REPO_ROOT, env=environ, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )


def serve_command(port: int, workers: int) -> list[str]:
    """`recsys serve` as a user starts it, on `port` with `workers` workers."""
    return [sys.executable, "-m", "recsys", "serve", "--workers", str(workers),
            "--port", str(port)]

