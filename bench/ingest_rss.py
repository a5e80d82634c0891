"""`ingest_rss`: peak RSS of `ingest_file` (SQLite) must stay flat as the file grows.

Each size is ingested in a fresh child process (`python -m bench.ingest_rss --child`)
that reports its own peak RSS (`VmHWM`) before and after the transactions load.
Inputs come from `generate_demo` (about 25 lines per customer, fixed item count and
seed), cached under bench/out/data. Ratio = peak RSS at N lines / peak RSS at the
smallest size; goal <= 1.2 (flat). Default sizes ~1M and ~3M lines (each many batches,
so the comparison is of steady state); `--full` compares ~1M with ~10M.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench._common import Baseline, Row, emit_child_result, peak_rss_mib, run_child

ITEMS = 5000
LINES_PER_CUSTOMER = 25  # generate_demo's rough average
DEFAULT_LINES = (1_000_000, 3_000_000)
FULL_LINES = (1_000_000, 10_000_000)
GOAL = "<= 1.2"


def _child(demo_dir: Path, db: Path) -> None:
    from bench._common import quiet_logging
    from recsys.ingest.loader import ingest_file
    from recsys.ingest.mapping import ColumnMap
    from recsys.store.engine import create_store_engine, migrate

    quiet_logging()
    engine = create_store_engine(f"sqlite:///{db}")
    migrate(engine)
    rejects = db.parent / "rejects"
    ingest_file(engine, "catalog", demo_dir / "catalog.csv", ColumnMap(), rejects_dir=rejects)
    before = peak_rss_mib()
    started = time.perf_counter()
    summary = ingest_file(
        engine, "transactions", demo_dir / "transactions.csv.gz", ColumnMap(), rejects_dir=rejects
    )
    seconds = time.perf_counter() - started
    engine.dispose()
    emit_child_result(
        {
            "peak_rss_mib": peak_rss_mib(),
            "rss_before_mib": before,
            "seconds": seconds,
            "read": summary.read,
            "accepted": summary.accepted,
        }
    )


def _measure(lines: int) -> dict[str, float]:
    from bench._data import DEMO_SEED, demo_retailer

    customers = max(lines // LINES_PER_CUSTOMER, 1)
    demo_dir, _ = demo_retailer(customers, ITEMS, DEMO_SEED)
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-rss-"))
    try:
        result = run_child(
            "bench.ingest_rss", ["--child", "--demo", str(demo_dir), "--db", str(tmp / "s.db")]
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["customers"] = customers
    return result


def run(full: bool) -> list[Row]:
    sizes = FULL_LINES if full else DEFAULT_LINES
    results = [_measure(n) for n in sizes]
    base = results[0]
    rows = []
    for target, res in zip(sizes, results, strict=True):
        rows.append(
            Row(
                bench="ingest_rss",
                case=f"peak RSS, ~{target / 1e6:g}M lines (SQLite)",
                baseline=Baseline(f"peak at {int(base['read']):,} lines", base["peak_rss_mib"]),
                candidate=res["peak_rss_mib"],
                ratio=res["peak_rss_mib"] / base["peak_rss_mib"],
                unit="MiB",
                ratio_is="peak / smallest peak",
                goal=GOAL,
                notes=(
                    f"{int(res['read']):,} lines, {int(res['customers']):,} customers x "
                    f"{ITEMS:,} items, seed 7; RSS before load {res['rss_before_mib']:.0f} MiB; "
                    f"{res['read'] / res['seconds']:,.0f} lines/s"
                ),
                extra=res,
            )
        )
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--demo", type=Path, required=True)
    parser.add_argument("--db", type=Path, required=True)
    args = parser.parse_args(argv)
    _child(args.demo, args.db)


if __name__ == "__main__":
    main()
