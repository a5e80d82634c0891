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

Where the time goes: after the timed repeats, one more run per store with `workers=1`
(drafting inline, so one process holds every stage) under timers wrapped around the
job's steps (`StageTimer`): due selection, the batch reads (sent marks, contact
histories, purchase lines), scoring (`recommend_batch`), the rules
(`recommend_for_customer`), the writes (contact log + vouchers, held-out rows,
exposures), the journal and the output. On PostgreSQL the notes also give the CPU
seconds of the server processes serving the job's connections (read from /proc while it
runs, by application_name), beside the job's own (its process and workers).

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


#: (module, function, stage) wrapped by StageTimer; module paths under recsys.campaign.
_STAGES = (
    ("job", "due_customers", "selection"),
    ("drafting", "sent_codes", "reads: sent marks"),
    ("drafting", "contact_histories", "reads: contacts"),
    ("drafting", "purchases_for", "reads: purchases"),
    ("drafting", "_score", "scoring"),
    ("drafting", "recommend_for_customer", "rules"),
    ("job", "record_offers", "writes: contact log + vouchers"),
    ("job", "record_held_out", "writes: held out"),
    ("job", "insert_exposures", "writes: exposures"),
    ("job", "write_lines", "output"),
)


class StageTimer:
    """Seconds per stage of the campaign job while active (wraps the functions the job
    and the drafting call by their module-level names; the journal's stage/clear too).
    Use with `workers=1`: forked workers would keep their own counts."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._undo: list[tuple[Any, str, Any]] = []

    def _timed(self, stage: str, fn: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - started
        return timed

    def __enter__(self) -> StageTimer:
        import importlib

        from recsys.campaign.journal import Journal

        for module_name, name, stage in _STAGES:
            module = importlib.import_module(f"recsys.campaign.{module_name}")
            self._undo.append((module, name, getattr(module, name)))
            setattr(module, name, self._timed(stage, getattr(module, name)))
        for name in ("stage", "clear"):
            self._undo.append((Journal, name, getattr(Journal, name)))
            setattr(Journal, name, self._timed("journal", getattr(Journal, name)))
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, fn in reversed(self._undo):
            setattr(owner, name, fn)

    def describe(self, total: float) -> str:
        parts = sorted(self.seconds.items(), key=lambda kv: -kv[1])
        other = total - sum(self.seconds.values())
        return ", ".join(f"{stage} {s:.2f}" for stage, s in parts) + f", other {other:.2f}"


class BackendCpu:
    """CPU seconds of the PostgreSQL server processes whose connections carry
    `application_name`, polled from pg_stat_activity and /proc while active (this
    machine's server only; 0 when /proc cannot be read)."""

    def __init__(self, url: str, application_name: str) -> None:
        import threading

        self._url = url
        self._name = application_name
        self._seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        import psycopg

        tick = os.sysconf("SC_CLK_TCK")
        with psycopg.connect(self._url, autocommit=True) as conn:
            while True:
                query = "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
                for (pid,) in conn.execute(query, (self._name,)).fetchall():
                    try:
                        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    except OSError:
                        continue
                    self._seen[pid] = (int(fields[11]) + int(fields[12])) / tick
                if self._stop.wait(0.2):
                    return

    def __enter__(self) -> BackendCpu:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def seconds(self) -> float:
        return sum(self._seen.values())


def _own_cpu() -> float:
    """CPU seconds of this process and its reaped children (the job's workers)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _postgres_job(
    demo_dir: Path, repeats: int, job: Any
) -> tuple[list[float], dict[str, Any], str] | str:
    """The job's seconds per repeat on PostgreSQL (`job(engine, work_dir, workers)` runs it
    once), its last summary and notes (CPU, stages); or why it could not run."""
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
    # The application name tags the job's connections, its workers' too (they reopen
    # the URL), so BackendCpu finds their server processes.
    engine = create_store_engine(
        f"{PG_URL}?application_name={schema}&options=-csearch_path%3D{schema}"
    )
    seconds: list[float] = []
    summary: dict[str, Any] = {}
    notes = ""
    try:
        migrate(engine)
        tmp = Path(tempfile.mkdtemp(prefix="bench-campaign-pg-"))
        for kind, name in (("catalog", "catalog.csv"), ("customers", "customers.csv"),
                           ("transactions", "transactions.csv.gz")):
            ingest_file(engine, kind, demo_dir / name, ColumnMap(),  # type: ignore[arg-type]
                        rejects_dir=tmp / "rejects")
        engine.dispose()  # the ingest's connection: its server CPU is not the job's
        cpu: list[tuple[float, float]] = []
        for number in range(repeats + 1):
            with engine.begin() as conn:
                for table in (vouchers, contact_log, exposures):
                    conn.execute(delete(table))
            work = tmp / f"run{number}"
            work.mkdir()
            if number == repeats:  # the untimed run, inline, for the stage split
                with StageTimer() as stages:
                    started = time.perf_counter()
                    job(engine, work, 1)
                notes = (f"stages (workers 1, {time.perf_counter() - started:.2f} s): "
                         f"{stages.describe(time.perf_counter() - started)}")
                break
            own = _own_cpu()
            with BackendCpu(PG_URL, schema) as server:
                started = time.perf_counter()
                summary = job(engine, work, None)
                seconds.append(time.perf_counter() - started)
                engine.dispose()  # the job's own connections' server CPU, counted too
            cpu.append((_own_cpu() - own, server.seconds))
        notes = (
            "CPU s per run, job + workers / server: "
            + ", ".join(f"{job_cpu:.1f} / {server_cpu:.1f}" for job_cpu, server_cpu in cpu)
            + f"; {notes}"
        )
        shutil.rmtree(tmp, ignore_errors=True)
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()
    return seconds, summary, notes


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
    sqlite_cpu: list[float] = []
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
                    own = _own_cpu()
                    started = time.perf_counter()
                    summary = run_campaign(
                        engine, model, rules, catalog, occasion="anniversary", day=DUE_DATE,
                        out=out, journal_dir=work / "campaigns", out_path=out_path,
                        dry_run=False, workers=workers,
                    )
                    job_s.append(time.perf_counter() - started)
                    sqlite_cpu.append(_own_cpu() - own)
            finally:
                engine.dispose()
            summaries.append(summary.to_dict())
            shutil.rmtree(work, ignore_errors=True)
            raw()
        # Untimed: the same job inline under the stage timers.
        work = tmp / "stages"
        work.mkdir()
        shutil.copyfile(home / "recsys.db", work / "recsys.db")
        engine = create_store_engine(f"sqlite:///{(work / 'recsys.db').as_posix()}")
        try:
            with (work / "offers.jsonl").open("a", encoding="utf-8") as out, \
                    StageTimer() as stages:
                started = time.perf_counter()
                run_campaign(
                    engine, model, rules, catalog, occasion="anniversary", day=DUE_DATE,
                    out=out, journal_dir=work / "campaigns", out_path=work / "offers.jsonl",
                    dry_run=False, workers=1,
                )
                inline_s = time.perf_counter() - started
        finally:
            engine.dispose()
        sqlite_stages = f"stages (workers 1, {inline_s:.2f} s): {stages.describe(inline_s)}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def pg_job(engine: Any, work: Path, inline: int | None) -> dict[str, Any]:
        out_path = work / "offers.jsonl"
        with out_path.open("a", encoding="utf-8") as out:
            return run_campaign(
                engine, model, rules, catalog, occasion="anniversary", day=DUE_DATE,
                out=out, journal_dir=work / "campaigns", out_path=out_path,
                dry_run=False, workers=inline or workers,
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
        pg_s, pg_summary, pg_notes = postgres
        pg_row = Row(
            "campaign", "anniversary job on PostgreSQL vs SQLite",
            Baseline("the job on SQLite", job), min(pg_s), min(pg_s) / job, "s",
            "PostgreSQL s / SQLite s", "<= 2",
            notes=(f"same due set on {PG_URL.rsplit('/', 1)[0]} (local server, fresh schema); "
                   f"selected {pg_summary['selected']:,}, written {pg_summary['written']:,}; "
                   f"PostgreSQL runs {', '.join(f'{s:.2f}' for s in pg_s)} s; {pg_notes}; "
                   f"SQLite: CPU s per run {', '.join(f'{c:.1f}' for c in sqlite_cpu)}, "
                   f"{sqlite_stages}; {notes}"),
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
