"""`ingest`: UCI Online Retail transactions through `ingest_file` vs a raw bulk load.

Candidate: `recsys.ingest.ingest_file` of the gzip CSV (read, map, validate, merge,
upsert customers/orders/order_lines, rejects file) into a fresh store whose catalog
was loaded first (not timed). Baseline, same run, same database: the accepted rows,
pre-parsed into Python tuples (parsing not timed), bulk-loaded into a plain table of
the same columns in one transaction: SQLite `executemany` of an INSERT, PostgreSQL
`COPY ... FROM STDIN` with psycopg 3 `write_row`. Ratio = raw seconds / our seconds
(1.0 = as fast as the raw load); goal >= 0.5. Each side's best of `REPEATS` runs,
interleaved, each into a fresh store (as the `train` benchmark keeps the best of each).
The notes also give each run's CPU seconds of this process over the same span (all its
threads; for PostgreSQL the client's only) and the load average before the runs: on
a shared machine a side that needs more CPU than it gets is bounded by it.
"""

from __future__ import annotations

import gc
import os
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Engine, select

from bench._common import Baseline, Row, timed
from bench._data import UCI_CATALOG_MAP, UCI_MAP, UCI_PATH, uci_catalog_csv, uci_typed_lines

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
GOAL = ">= 0.5"
COLUMNS = ("order_id", "customer_id", "item_id", "quantity", "unit_price", "purchased_at")
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"


def _column_map(pairs: dict[str, str]) -> Any:
    from recsys.ingest.mapping import ColumnMap

    return ColumnMap({canon: (src,) for canon, src in pairs.items()})


def _load_catalog(engine: Engine, rejects: Path) -> set[str]:
    from recsys.ingest.loader import ingest_file
    from recsys.store.tables import items

    ingest_file(engine, "catalog", uci_catalog_csv(), _column_map(UCI_CATALOG_MAP),
                rejects_dir=rejects)
    with engine.connect() as conn:
        return set(conn.execute(select(items.c.item_id)).scalars())


def _ours(engine: Engine, rejects: Path) -> tuple[float, float, int, int]:
    """Seconds, CPU seconds, lines read, lines accepted."""
    from recsys.ingest.loader import ingest_file

    with timed() as t:
        cpu = time.process_time()
        summary = ingest_file(engine, "transactions", UCI_PATH, _column_map(UCI_MAP),
                              rejects_dir=rejects)
        cpu = time.process_time() - cpu
    return t[0], cpu, summary.read, summary.accepted


def _raw_sqlite(path: Path, rows: list[tuple[Any, ...]]) -> tuple[float, float]:
    """Seconds, CPU seconds."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(
            "CREATE TABLE raw_lines (order_id TEXT NOT NULL, customer_id TEXT NOT NULL, "
            "item_id TEXT NOT NULL, quantity REAL NOT NULL, unit_price REAL, "
            "purchased_at TEXT NOT NULL)"
        )
        sql = f"INSERT INTO raw_lines ({', '.join(COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?)"
        with timed() as t:
            cpu = time.process_time()
            conn.execute("BEGIN")
            conn.executemany(sql, rows)
            conn.execute("COMMIT")
            cpu = time.process_time() - cpu
        return t[0], cpu
    finally:
        conn.close()


def _raw_postgres(schema: str, rows: list[tuple[Any, ...]]) -> tuple[float, float]:
    """Seconds, CPU seconds of this process (the client)."""
    import psycopg

    with psycopg.connect(PG_URL, options=f"-csearch_path={schema}") as conn:
        conn.execute(
            "CREATE TABLE raw_lines (order_id text NOT NULL, customer_id text NOT NULL, "
            "item_id text NOT NULL, quantity double precision NOT NULL, "
            "unit_price double precision, purchased_at timestamp NOT NULL)"
        )
        conn.commit()
        with timed() as t:
            cpu = time.process_time()
            with conn.cursor() as cur, cur.copy(
                f"COPY raw_lines ({', '.join(COLUMNS)}) FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row(row)
            conn.commit()
            cpu = time.process_time() - cpu
        return t[0], cpu


def _rows(lines: pl.DataFrame, sqlite: bool) -> list[tuple[Any, ...]]:
    if sqlite:  # the text layout the store writes to SQLite
        lines = lines.with_columns(pl.col("purchased_at").dt.strftime(_SQLITE_TIME))
    return lines.rows()


@dataclass(frozen=True, slots=True)
class _Pair:
    """One raw load and one of ours: wall and CPU seconds of each, lines read, accepted."""

    raw: float
    raw_cpu: float
    ours: float
    our_cpu: float
    read: int
    accepted: int


def _row(backend: str, raw_name: str, pairs: list[_Pair], load_avg: float) -> Row:
    def listed(values: list[float]) -> str:
        return ", ".join(f"{v:.2f}" for v in values)

    raws, our_runs = [p.raw for p in pairs], [p.ours for p in pairs]
    raw_cpus, our_cpus = [p.raw_cpu for p in pairs], [p.our_cpu for p in pairs]
    raw, ours = min(raws), min(our_runs)
    read, accepted = pairs[0].read, pairs[0].accepted
    cpu_of = "this process" if backend == "SQLite" else "this process, the client"
    return Row(
        bench="ingest",
        case=f"UCI transactions -> {backend}",
        baseline=Baseline(raw_name, accepted / raw),
        candidate=accepted / ours,
        ratio=raw / ours,
        unit="rows/s",
        ratio_is="raw s / our s",
        goal=GOAL,
        notes=(
            f"UCI Online Retail (no seed): {read:,} lines read ({read / ours:,.0f}/s), "
            f"{accepted:,} accepted = rows of both; best of {len(raws)} interleaved, each "
            f"into a fresh store: ours {listed(our_runs)} s, raw {listed(raws)} s; "
            f"CPU s ({cpu_of}): ours {listed(our_cpus)}, raw {listed(raw_cpus)}; "
            f"load average before: {load_avg:.2f}"
        ),
        extra={"our_seconds": ours, "raw_seconds": raw, "read": read, "accepted": accepted,
               "our_runs": our_runs, "raw_runs": raws, "our_cpu_runs": our_cpus,
               "raw_cpu_runs": raw_cpus, "load_avg_1min": load_avg},
    )


#: Each side's best of this many runs, interleaved (raw, ours, raw, ours, ...), each
#: into a fresh store: one pair alone moved by +-30% with the machine's other load.
REPEATS = 3


def _sqlite_pair(tmp: Path) -> _Pair:
    """One raw load and one of ours into fresh SQLite files."""
    from recsys.store.engine import create_store_engine, migrate

    tmp.mkdir(parents=True)
    engine = create_store_engine(f"sqlite:///{tmp / 'ours.db'}")
    try:
        migrate(engine)
        item_ids = _load_catalog(engine, tmp / "rejects")
        rows = _rows(uci_typed_lines(item_ids), sqlite=True)
        raw, raw_cpu = _raw_sqlite(tmp / "raw.db", rows)
        n_raw = len(rows)
        # 400k live tuples would slow every garbage-collector pass of the measured load.
        del rows
        gc.collect()
        ours, our_cpu, read, accepted = _ours(engine, tmp / "rejects")
    finally:
        engine.dispose()
    _check_same_count(accepted, n_raw)
    return _Pair(raw, raw_cpu, ours, our_cpu, read, accepted)


def _postgres_pair(tmp: Path) -> _Pair:
    """The same into a fresh PostgreSQL schema (dropped after)."""
    import psycopg

    from recsys.store.engine import create_store_engine, migrate

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    engine = create_store_engine(f"{PG_URL}?options=-csearch_path%3D{schema}")
    try:
        migrate(engine)
        item_ids = _load_catalog(engine, tmp / "rejects")
        rows = _rows(uci_typed_lines(item_ids), sqlite=False)
        raw, raw_cpu = _raw_postgres(schema, rows)
        n_raw = len(rows)
        del rows
        gc.collect()
        ours, our_cpu, read, accepted = _ours(engine, tmp / "rejects")
    finally:
        engine.dispose()
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    _check_same_count(accepted, n_raw)
    return _Pair(raw, raw_cpu, ours, our_cpu, read, accepted)


def _runs(pair: Callable[[Path], _Pair], tmp: Path) -> tuple[list[_Pair], float]:
    """The runs, and the 1-minute load average before them."""
    load_avg = os.getloadavg()[0]
    return [pair(tmp / f"run{number}") for number in range(REPEATS)], load_avg


def bench_sqlite(tmp: Path) -> Row:
    return _row("SQLite", "executemany INSERT", *_runs(_sqlite_pair, tmp))


def bench_postgres(tmp: Path) -> Row:
    return _row("PostgreSQL", "COPY write_row", *_runs(_postgres_pair, tmp))


def _check_same_count(accepted: int, raw_rows: int) -> None:
    if accepted != raw_rows:  # the baseline would load other rows than we do
        raise RuntimeError(f"ingest accepted {accepted:,} lines but the raw load has {raw_rows:,}")


def run(full: bool) -> list[Row]:
    """Both backends; `full` changes nothing (the UCI file is the size)."""
    del full
    rows: list[Row] = []
    cases: list[Callable[[Path], Row]] = [bench_sqlite, bench_postgres]
    for case in cases:
        tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
        try:
            rows.append(case(tmp))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return rows


