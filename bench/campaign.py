"""`campaign`: wall time of the anniversary campaign job vs the raw batch recommend.

Data: a demo retailer whose `due_share` of customers joined on DUE_DATE's month and day
(`generate_demo(due_date=..., due_share=...)`), ingested into SQLite with the default
`hybrid` model trained (`bench._data.demo_home`, cached). Default profile: 5,000 x 600
with a 0.2 share (~1,000 due); `BENCH_CAMPAIGN_SIZE=large`: 50,000 x 1,000 with a 0.9
share (44,874 due, the size of issue 19's campaign; store and model built in about a
minute, once); `--full`: 1,000,000 x 100,000 with a 0.1 share (~100,000 due; building
that store and model takes about half an hour here, once).

Per repeat, on a fresh copy of the store (empty contact log and vouchers):

- candidate: `run_campaign(occasion="anniversary", day=DUE_DATE, dry_run=False, workers=
  os.cpu_count())` (the CLI's default) with a
  journal directory and a fresh output file; the model, rules and catalog are loaded
  beforehand (as the CLI does, not timed);
- baseline: the raw library batch recommend for the customers the job selected
  (selected in SQL beforehand, not timed): implicit's `AlternatingLeastSquares.recommend`
  (the hybrid's ALS part) over their training rows, `N` = the pool the job asks for,
  BLAS pinned to one thread, implicit's own threads as trained. The job itself reads the
  candidate lists precomputed at training time (`recsys.models.base.CandidateLists`).

Repeats are interleaved (raw, job, raw, ...); best of each. Ratio = job s / raw s.

PostgreSQL beside it: the same demo files ingested into a fresh schema of the local
server (`PG_URL`; skipped with a note when it cannot be reached), the same job on the
same due set, the contact log, vouchers and exposures emptied before each repeat; best
of the repeats against SQLite's best (goal: within 2x).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import Baseline, Row

SEED = 7
DUE_DATE = date(2026, 11, 21)
DEFAULT = (5_000, 600, 0.2, 2)  # customers, items, due share, repeats
#: `BENCH_CAMPAIGN_SIZE=large`: tens of thousands due on one day, on both stores.
LARGE = (50_000, 1_000, 0.9, 2)
FULL = (1_000_000, 100_000, 0.1, 1)
SIZES = {"default": DEFAULT, "large": LARGE, "full": FULL}


def _size(full: bool) -> tuple[int, int, float, int]:
    """The profile: `--full`, else BENCH_CAMPAIGN_SIZE (default, large or full)."""
    if full:
        return FULL
    name = os.environ.get("BENCH_CAMPAIGN_SIZE", "default") or "default"
    if name not in SIZES:
        raise SystemExit(f"BENCH_CAMPAIGN_SIZE must be one of {', '.join(SIZES)}, not {name!r}")
    return SIZES[name]
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _postgres_job(
    demo_dir: Path, repeats: int, job: Any
) -> tuple[list[float], dict[str, Any]] | str:
    """The job's seconds per repeat on PostgreSQL (`job(engine, work_dir)` runs it once), and
    its last summary; or why it could not run."""
    import uuid

    from sqlalchemy import delete

    from recsys.ingest.loader import ingest_file
    from recsys.ingest.mapping import ColumnMap
    from recsys.store.engine import create_store_engine, migrate
    from recsys.store.tables import contact_log, exposures, vouchers

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    try:
        admin = create_store_engine(PG_URL)
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except Exception as exc:  # no server here: say so in the table instead of failing
        return f"PostgreSQL not reachable ({type(exc).__name__})"
    engine = create_store_engine(f"{PG_URL}?options=-csearch_path%3D{schema}")
    seconds: list[float] = []
    summary: dict[str, Any] = {}
    try:
        migrate(engine)
        tmp = Path(tempfile.mkdtemp(prefix="bench-campaign-pg-"))
        for kind, name in (("catalog", "catalog.csv"), ("customers", "customers.csv"),
                           ("transactions", "transactions.csv.gz")):
            ingest_file(engine, kind, demo_dir / name, ColumnMap(),  # type: ignore[arg-type]
                        rejects_dir=tmp / "rejects")
        for number in range(repeats):
            with engine.begin() as conn:
                for table in (vouchers, contact_log, exposures):
                    conn.execute(delete(table))
            work = tmp / f"run{number}"
            work.mkdir()
            started = time.perf_counter()
            summary = job(engine, work)
            seconds.append(time.perf_counter() - started)
        shutil.rmtree(tmp, ignore_errors=True)
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()
    return seconds, summary


def run(full: bool) -> list[Row]:
    from bench._data import demo_home, demo_retailer
    from recsys.campaign.job import run_campaign
    from recsys.models.base import single_threaded_blas
    from recsys.offers import ServingModel
    from recsys.rules.config import load_rules
    from recsys.store.campaigns import due_customers
    from recsys.store.catalog import load_items
    from recsys.store.engine import create_store_engine
    from training.artifacts import load_model

    customers, items, share, repeats = _size(full)
    home, info = demo_home(customers, items, SEED, due_date=DUE_DATE, due_share=share)
    loaded = load_model(home / "models")
    model = ServingModel.from_parts(loaded.version, loaded.meta.model, loaded.recommender,
                                    loaded.extras, extra_arrays=loaded.extra_arrays)
    rules = load_rules(None)
    pool = model.pool(rules.candidates.pool_size)
    # the CLI's default (--workers 0), as the raw call uses every core
    workers = os.cpu_count() or 1
    recommender: Any = model.recommender
    als = getattr(recommender, "als", None) or recommender.model
    tmp = Path(tempfile.mkdtemp(prefix="bench-campaign-"))
    raw_s: list[float] = []
    job_s: list[float] = []
    summaries: list[dict[str, Any]] = []
    try:
        source = create_store_engine(f"sqlite:///{(home / 'recsys.db').as_posix()}")
        try:
            started = time.perf_counter()
            with source.connect() as conn:
                catalog = load_items(conn)
            catalog_s = time.perf_counter() - started
            started = time.perf_counter()
            with source.connect() as conn:
                due_ids = [d.customer.customer_id
                           for d in due_customers(conn, "anniversary", DUE_DATE)]
            select_s = time.perf_counter() - started
        finally:
            source.dispose()

        known = [c for c in due_ids if recommender.knows(c)]
        rows = np.asarray([recommender.data.user_ids.index(c) for c in known], dtype=np.int32)
        user_items = recommender.data.user_items[rows]

        def raw() -> None:
            with single_threaded_blas():
                started = time.perf_counter()
                als.recommend(rows, user_items, N=pool, filter_already_liked_items=False)
                raw_s.append(time.perf_counter() - started)

        raw()
        for number in range(repeats):
            work = tmp / f"run{number}"
            work.mkdir()
            shutil.copyfile(home / "recsys.db", work / "recsys.db")
            engine = create_store_engine(f"sqlite:///{(work / 'recsys.db').as_posix()}")
            out_path = work / "offers.jsonl"
            try:
                with out_path.open("a", encoding="utf-8") as out:
                    started = time.perf_counter()
                    summary = run_campaign(
                        engine, model, rules, catalog, occasion="anniversary", day=DUE_DATE,
                        out=out, journal_dir=work / "campaigns", out_path=out_path,
                        dry_run=False, workers=workers,
                    )
                    job_s.append(time.perf_counter() - started)
            finally:
                engine.dispose()
            summaries.append(summary.to_dict())
            shutil.rmtree(work, ignore_errors=True)
            raw()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def pg_job(engine: Any, work: Path) -> dict[str, Any]:
        out_path = work / "offers.jsonl"
        with out_path.open("a", encoding="utf-8") as out:
            return run_campaign(
                engine, model, rules, catalog, occasion="anniversary", day=DUE_DATE,
                out=out, journal_dir=work / "campaigns", out_path=out_path,
                dry_run=False, workers=workers,
            ).to_dict()

    demo_dir, _ = demo_retailer(customers, items, SEED, due_date=DUE_DATE, due_share=share)
    postgres = _postgres_job(demo_dir, repeats, pg_job)

    job, base = min(job_s), min(raw_s)
    summary = summaries[-1]
    skipped = ", ".join(f"{k} {v:,}" for k, v in summary["skipped"].items())
    notes = (
        f"demo {customers:,} x {items:,} ({info['lines']:,} lines), seed {SEED}, model "
        f"{info['model']}, due share {share:g} on {DUE_DATE}; selected "
        f"{summary['selected']:,}, written {summary['written']:,}, skipped: {skipped}; "
        f"{len(known):,} known to the model; pool {pool}, batch 500, {workers} workers; "
        f"job best of "
        f"{len(job_s)} ({', '.join(f'{s:.2f}' for s in job_s)}"
        f" s), raw best of {len(raw_s)}; not timed: catalog load {catalog_s:.2f}s, "
        f"due selection {select_s:.2f}s"
    )
    n = max(summary["selected"], 1)
    if isinstance(postgres, str):
        pg_row = Row("campaign", "anniversary job on PostgreSQL vs SQLite",
                     Baseline("the job on SQLite", job), float("nan"), None, "s",
                     "PostgreSQL s / SQLite s", "<= 2", notes=f"{postgres}; {notes}")
    else:
        pg_s, pg_summary = postgres
        pg_row = Row(
            "campaign", "anniversary job on PostgreSQL vs SQLite",
            Baseline("the job on SQLite", job), min(pg_s), min(pg_s) / job, "s",
            "PostgreSQL s / SQLite s", "<= 2",
            notes=(f"same due set on {PG_URL.rsplit('/', 1)[0]} (local server, fresh schema); "
                   f"selected {pg_summary['selected']:,}, written {pg_summary['written']:,}; "
                   f"PostgreSQL runs {', '.join(f'{s:.2f}' for s in pg_s)} s; {notes}"),
        )
    return [
        Row("campaign", "anniversary job (dry_run off) vs raw batch recommend",
            Baseline(f"implicit ALS recommend(due, N={pool})", base), job, job / base, "s",
            "job s / raw s", "<= 2", notes=notes,
            extra={"customers_per_s": n / job, "raw_customers_per_s": n / base}),
        Row("campaign", "anniversary job throughput",
            Baseline("raw batch recommend customers/s", n / base), n / job, base / job,
            "customers/s", "job / raw", notes=notes),
        pg_row,
    ]
