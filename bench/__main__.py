"""`python -m bench [--only NAME ...] [--full]`: run the benchmarks, print one table.

Every benchmark module exposes `run(full: bool) -> list[Row]`. To add one (the
`api` and `campaign` benchmarks are planned), write `bench/<name>.py` and add a
line to `BENCHMARKS`; the runner imports modules lazily, so a broken or slow
import only affects its own benchmark.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from bench._common import OUT_DIR, Row, quiet_logging

RunFn = Callable[[bool], list[Row]]

#: name -> module with `run(full) -> list[Row]`, in the order they run.
BENCHMARKS: dict[str, str] = {
    "ingest": "bench.ingest",
    "ingest_rss": "bench.ingest_rss",
    "train": "bench.train",
    "train_cli": "bench.train_cli",  # `recsys train --model als` as a process vs the raw fit
    "rules": "bench.rules",
    "api": "bench.api",  # HTTP latency/throughput, in-process vs raw top-k, serving RSS
    "serve": "bench.serve",  # endpoints under load beside a raw top-k app and bare FastAPI
    "campaign": "bench.campaign",  # campaign job vs the raw batch recommend
    "spark": "bench.spark",  # MLlib ALS local[2] vs implicit on one CSR (needs .[spark])
    "exposure": "bench.exposure",  # the recommendation endpoint, exposure log on vs off
    "soak": "bench.soak",  # 3 minutes of 16 closed-loop clients: errors, p99, worker RSS growth
}


def _load(name: str) -> RunFn:
    module = importlib.import_module(BENCHMARKS[name])
    run: RunFn = module.run
    return run


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.01:
        return f"{value:.3f}"
    return f"{value:.2e}"


def _goal_cell(row: Row) -> str:
    met = row.meets_goal
    if met is None:
        return row.goal or "-"
    return f"{row.goal} {'ok' if met else 'MISSED'}"


COLUMNS = ("bench", "case", "baseline", "baseline value", "candidate", "unit", "ratio",
           "ratio is", "goal", "notes")
TERMINAL_COLUMNS = COLUMNS[:-1]  # notes go under the table, they are long


def table_rows(rows: Sequence[Row]) -> list[list[str]]:
    return [
        [
            r.bench, r.case, r.baseline.name, _fmt(r.baseline.value), _fmt(r.candidate), r.unit,
            _fmt(r.ratio), r.ratio_is, _goal_cell(r), r.notes,
        ]
        for r in rows
    ]


def print_table(rows: Sequence[Row], title: str) -> None:
    cells = table_rows(rows)
    notes = [f"[{i}] {r.bench} / {r.case}: {r.notes}" for i, r in enumerate(rows, 1)]
    cells = [[f"[{i}] {line[0]}", *line[1:-1]] for i, line in enumerate(cells, 1)]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # plain fallback
        print(title)
        print(" | ".join(TERMINAL_COLUMNS))
        for line in cells:
            print(" | ".join(line))
        print("\n".join(notes))
        return
    table = Table(title=title, show_lines=False)
    for column in TERMINAL_COLUMNS:
        table.add_column(column, overflow="fold")
    for line in cells:
        table.add_row(*line)
    console = Console(width=max(160, Console().width))
    console.print(table)
    console.print("\n".join(notes), highlight=False, markup=False)


def markdown_table(rows: Sequence[Row]) -> str:
    """The same table as GitHub markdown (for docs/benchmarks.md)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in cells) + " |"
              for cells in table_rows(rows)]
    return "\n".join(lines)


def _machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    try:
        import psutil

        info["memory_gib"] = round(psutil.virtual_memory().total / 2**30, 1)
        info["load_avg"] = [round(x, 2) for x in os.getloadavg()]
    except (ImportError, OSError):
        pass
    return info


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", action="append", default=[], metavar="NAME",
        help=f"run only these (repeatable or comma-separated): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--full", action="store_true", help="also run the large sizes (slow)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--markdown", action="store_true", help="also print a markdown table")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(BENCHMARKS))
        return 0
    names = [n.strip() for item in args.only for n in item.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHMARKS)}")
    names = names or list(BENCHMARKS)

    quiet_logging()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    failures: dict[str, str] = {}
    timings: dict[str, float] = {}
    for name in names:
        print(f"[bench] {name} ({'full' if args.full else 'default'}) ...", file=sys.stderr)
        started = time.perf_counter()
        try:
            rows.extend(_load(name)(args.full))
        except Exception:  # one broken benchmark must not hide the others' results
            failures[name] = traceback.format_exc()
            print(failures[name], file=sys.stderr)
        timings[name] = round(time.perf_counter() - started, 1)
        print(f"[bench] {name} took {timings[name]:.0f}s", file=sys.stderr)

    title = f"recsys benchmarks ({'full' if args.full else 'default'} profile)"
    print_table(rows, title)
    if args.markdown:
        print(markdown_table(rows))
    result = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "profile": "full" if args.full else "default",
        "argv": list(argv if argv is not None else sys.argv[1:]),
        "machine": _machine(),
        "seconds": timings,
        "rows": [r.to_dict() for r in rows],
        "failures": failures,
    }
    path = OUT_DIR / "results.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"results written to {path}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
