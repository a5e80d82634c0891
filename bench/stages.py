"""Where a loaded worker's CPU goes, by request stage, from `py-spy record` samples.

`sample_worker` attaches py-spy (PyPI; needs ptrace rights: root, or
`kernel.yama.ptrace_scope=0`) to one worker of a running server for some seconds and
writes its raw (collapsed) stacks; `stage_shares` sorts every sample into one stage by
the frames on its stack, so the split is of the real request path under load, not of
the pieces timed apart (which run faster warm in a loop than inside a request).

Stages inside the handler, the first that any frame of the stack matches: `log` (the
exposure log: queueing and the writer thread), `model` (recsys.models), `store`
(recsys.store, SQLAlchemy, `load_customer_data`), `render` (the response body), `rules`
(recsys.offers, recsys.rules). Around it, by the innermost frame that matches: `auth`
(the API-key middleware), `metrics` (our middleware, prometheus), `parse` (FastAPI's
parameter and dependency solving, pydantic), `http server` (uvicorn, httptools, the
event loop, the socket writes), `framework` (the rest of FastAPI and Starlette).

The samples are of a runnable thread, on a core or waiting for one: when the workers and
the load generator share too few cores, a worker preempted inside the socket write that
woke the generator is counted there, so `http server` reads high (2-3x on 2 cores with 2
workers and `wrk`, against one worker with a core to spare).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

#: Stages inside the endpoint, decided by any frame of the stack (first match wins).
INNER: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("log", ("log_exposure (", "recsys/feedback/")),
    ("model", ("recsys/models/",)),
    ("store", ("recsys/store/", "sqlalchemy/", "load_customer_data (", "loyalty_for (",
               "_customer_data (")),
    ("render", ("_render (", "JSONResponse.", "OfferItem.to_dict")),
    ("rules", ("recsys/offers.py", "recsys/rules/", "recsys/experiments.py")),
)
#: Stages around it, decided by the innermost frame that matches one.
OUTER: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("auth", ("api/security.py",)),
    ("metrics", ("api/metrics.py", "prometheus_client/")),
    ("parse", ("fastapi/dependencies/", "pydantic", "api/deps.py")),
    ("http server", ("uvicorn/", "httptools", "asyncio/", "uvloop")),
    ("framework", ("fastapi/", "starlette/", "api/")),
)
ORDER = (*(name for name, _ in INNER + OUTER), "other")
#: Innermost frames of a thread that waits (py-spy does not always tell a waiting thread
#: from a running one): the exposure writer's and the model holder's timers, the
#: supervisor's heartbeat pipe. Such samples are left out.
WAITING = ("Condition.wait (", "Event.wait (", "Connection._recv (", "Connection._poll (",
           "select (", "sleep (")


def _py_spy() -> str | None:
    """py-spy on PATH, else beside this interpreter (a venv's bin/ need not be on PATH)."""
    beside = Path(sys.executable).parent / "py-spy"
    return shutil.which("py-spy") or (str(beside) if beside.exists() else None)


def available() -> bool:
    return _py_spy() is not None


def sample_worker(pid: int, seconds: float, out: Path, rate: int = 250) -> Path:
    """Record `pid` for `seconds` (py-spy raw format: `frame;frame;... count` per line)."""
    subprocess.run(
        [_py_spy() or "py-spy", "record", "--pid", str(pid),
         "--duration", str(max(int(seconds), 1)), "--rate", str(rate), "--format", "raw",
         "--output", str(out), "--nonblocking"],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    )
    return out


def classify(frames: Iterable[str]) -> str:
    """The stage of one sample; `frames` from the outermost to the innermost."""
    stack = list(frames)
    for name, markers in INNER:
        if any(marker in frame for frame in stack for marker in markers):
            return name
    for frame in reversed(stack):
        for name, markers in OUTER:
            if any(marker in frame for marker in markers):
                return name
    return "other"


def stage_shares(raw: str) -> dict[str, float]:
    """Share of the samples per stage (sums to 1; empty when there were none)."""
    counts: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if any(frames[-1].startswith(marker) for marker in WAITING):
            continue
        counts[classify(frames)] += int(count)
    total = sum(counts.values())
    return {name: counts[name] / total for name in ORDER if counts[name]} if total else {}
