"""`exposure`: the recommendation endpoint and the email block, exposure log on against off.

The issue's target: p99 and req/s with the log on within 10% of off. Same data as
`api` (the cached 5,000 x 600 demo home, `bench._data.demo_home`). Two servers run
side by side for the whole bench, `recsys serve --workers 2` with
`RECSYS_EXPOSURE_LOG=false` and with `true`, each on its own copy of the store (the log
writes to it); only one is under load at a time. PAIRS paired rounds: in each, both
get the same open-loop load (`python -m bench.api loadgen`: requests at fixed times,
latency from the scheduled send) at each rate of RATES for STEP_S seconds (the email
block, `/email-block`, at the top rate), the order
alternating (off then on, on then off), so a neighbour's burst on the shared machine
lands on one pair, not on one mode. Per pair: the workers' CPU time per request
(psutil; the writer thread included), p99 and req/s served, and their on/off ratios;
the rows give the medians over the pairs and the notes the range. The CPU ratio is
the primary figure: a p99 on a loaded 2-core machine is mostly its neighbours.
`BENCH_EXPOSURE_AA=1` starts both servers with the log off: the spread it prints is
the measure's own.

In process (no HTTP, no neighbours' scheduling): the handler's CPU per request, what
the request path adds (an `Exposure` built and queued), and the writer's CPU per
exposure at the flush size the load above gives one worker (rate / workers x flush
interval) and at 300, on SQLite and, when it is reachable, PostgreSQL (PG_URL).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import Baseline, Row, run_child, serve_command, start_process

SEED = 7
SIZE = (5_000, 600)
# Below what the shared 2-core machine serves with a 20 ms p99 while others work on it: a
# saturated server's p99 is its queue, which says nothing about the log.
# At 50 req/s a step's p99 is its 4th-worst request: an A/A run (both servers log off,
# BENCH_EXPOSURE_AA=1) spreads 0.84-1.18 per pair there, 0.96-1.03 at 200 req/s. The
# p99 goal is judged at the top rate, where the measure resolves 10%.
RATES: tuple[float, ...] = (50, 200)
STEP_S = 8.0
PAIRS = 6
#: case -> the request path; the email block's list goes to the same queue.
CASES = {
    "recommendations": "/v1/customers/{}/recommendations?placement=newsletter",
    "email block": "/v1/customers/{}/email-block?placement=newsletter",
}
#: Both servers log off: what the paired measure reads when nothing differs.
AA = os.environ.get("BENCH_EXPOSURE_AA") == "1"
WORKERS = 2
FLUSH_S = 0.5  # RECSYS_EXPOSURE_FLUSH_SECONDS' default
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _start(home: Path, db: Path, port: int, log_on: bool, log: Path) -> subprocess.Popen[bytes]:
    return start_process(
        serve_command(port, WORKERS), home, log,
        RECSYS_DATABASE_URL=f"sqlite:///{db}",
        RECSYS_EXPOSURE_LOG="true" if log_on and not AA else "false",
        RECSYS_EXPOSURE_FLUSH_SECONDS=str(FLUSH_S),
    )


class _Server:
    def __init__(self, home: Path, db: Path, log_on: bool, tmp: Path) -> None:
        from bench.api import _free_port

        self.log_on = log_on
        self.port = _free_port()
        self.proc = _start(home, db, self.port, log_on, tmp / f"server-{log_on}.log")

    def step(self, ids: Path, rate: float, seconds: float, seed: int,
             path: str = CASES["recommendations"]) -> dict[str, Any]:
        from bench.api import _server_cpu_s

        cpu_before = _server_cpu_s(self.proc)
        result = run_child("bench.api", ["loadgen", "--port", str(self.port), "--ids", str(ids),
                                         "--rate", str(rate), "--duration", str(seconds),
                                         "--seed", str(seed), "--path", path],
                           timeout=seconds + 60)
        # The workers' CPU per request, the writer thread's included: what the log costs,
        # and far steadier than a p99 on a shared machine.
        result["server_cpu_ms"] = (
            (_server_cpu_s(self.proc) - cpu_before) * 1000.0 / max(result["ok"], 1)
        )
        return result


Steps = dict[tuple[str, float], list[dict[bool, dict[str, Any]]]]


def _steps() -> list[tuple[str, float]]:
    """(case, rate): the recommendations at every rate, the email block at the top one."""
    return [("recommendations", rate) for rate in RATES] + [("email block", RATES[-1])]


def _paired(home: Path, ids: Path, tmp: Path) -> Steps:
    """Per (case, rate), one {log_on: step result} per pair."""
    from bench.api import _stop_server, _wait_ready

    servers: dict[bool, _Server] = {}
    for log_on in (False, True):
        db = tmp / f"recsys-{'on' if log_on else 'off'}.db"
        shutil.copyfile(home / "recsys.db", db)
        servers[log_on] = _Server(home, db, log_on, tmp)
    try:
        for server in servers.values():
            _wait_ready(server.proc, server.port, timeout=300.0)
            server.step(ids, 50, 3.0, SEED)  # warm-up
        pairs: Steps = {step: [] for step in _steps()}
        for number in range(PAIRS):
            order = (False, True) if number % 2 == 0 else (True, False)
            for k, (case, rate) in enumerate(_steps()):
                pair: dict[bool, dict[str, Any]] = {}
                for log_on in order:
                    # The same seed for both modes: the same customers at the same times.
                    result = servers[log_on].step(ids, rate, STEP_S, SEED + 1 + 10 * number + k,
                                                  CASES[case])
                    print(f"[exposure] pair {number + 1} {case} log {'on' if log_on else 'off'} "
                          f"{rate} req/s: p99 {result['p99_ms']:.1f} ms, "
                          f"{result['achieved_rps']:.1f} req/s, ok "
                          f"{result['ok']}/{result['requests']}, server cpu "
                          f"{result['server_cpu_ms']:.3f} ms/request", file=sys.stderr)
                    pair[log_on] = result
                pairs[(case, rate)].append(pair)
        return pairs
    finally:
        for server in servers.values():
            _stop_server(server.proc)


def _writer_cpu_ms(engine: Any, batch: int, batches: int) -> float:
    """The writer's CPU per exposure (this thread's CPU time), flushing `batch` at a time."""
    from datetime import UTC, datetime

    from recsys.feedback.writer import ExposureWriter
    from recsys.store.feedback import Exposure, new_exposure_id

    now = datetime.now(UTC).replace(tzinfo=None)
    writer = ExposureWriter(engine, background=False)
    try:
        spent = 0.0
        for _ in range(batches):
            for _ in range(batch):
                writer.record(Exposure(new_exposure_id(), "C1", "newsletter", "v1",
                                       ("I1", "I2", "I3", "I4"), now))
            started = time.thread_time()
            writer.flush()
            spent += time.thread_time() - started
        return spent / (batch * batches) * 1000.0
    finally:
        writer.close()


def _best_of(fn: Callable[[], float], tries: int = 3) -> float:
    return min(fn() for _ in range(tries))


def _pg_writer(batches: dict[str, int]) -> dict[str, float] | str:
    """The writer's CPU per exposure on PostgreSQL (a scratch schema), or why not."""
    from recsys.store.engine import create_store_engine, migrate

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    try:
        admin = create_store_engine(PG_URL)
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except Exception as exc:  # no server here: say so in the notes instead of failing
        return f"PostgreSQL not reachable ({type(exc).__name__})"
    engine = create_store_engine(PG_URL, schema=schema)
    try:
        migrate(engine)
        return {name: _best_of(lambda size=size: _writer_cpu_ms(engine, size, 40))
                for name, size in batches.items()}
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()


def _in_process(home: Path, db: Path, sample: list[str]) -> dict[str, float]:
    """Per request, in process and in this thread's CPU time: the handler's work and what
    logging adds on the request path (an `Exposure` built and queued). Best of 3,
    interleaved. The queue is emptied between tries (not written)."""
    from datetime import UTC, datetime

    from recsys.customer_view import load_customer_data
    from recsys.feedback.writer import ExposureWriter
    from recsys.offers import recommend_for_customer
    from recsys.rules.config import load_rules
    from recsys.store.catalog import load_items
    from recsys.store.engine import create_store_engine
    from recsys.store.feedback import Exposure, new_exposure_id
    from training.serving import load_serving_model

    model = load_serving_model(home / "models")
    engine = create_store_engine(f"sqlite:///{db.as_posix()}")
    rules = load_rules(None)
    writer = ExposureWriter(engine, background=False)
    try:
        with engine.connect() as conn:
            catalog = load_items(conn)
        now = datetime.now(UTC).replace(tzinfo=None)
        offers = []
        for cid in sample:
            with engine.connect() as conn:
                data = load_customer_data(conn, cid)
            offers.append(recommend_for_customer(model, rules, catalog, data,
                                                 placement="newsletter", limit=4, now=now))

        def handler() -> None:
            for cid in sample:
                with engine.connect() as conn:
                    data = load_customer_data(conn, cid)
                recommend_for_customer(model, rules, catalog, data, placement="newsletter",
                                       limit=4, now=now)

        def log() -> None:
            for offer in offers:
                writer.record(Exposure(new_exposure_id(), offer.customer_id, offer.placement,
                                       offer.model_version,
                                       tuple(i.item_id for i in offer.items), now))

        best = {"handler": float("inf"), "log": float("inf")}
        for _ in range(3):
            for name, fn in (("handler", handler), ("log", log)):
                started = time.thread_time()
                fn()
                best[name] = min(best[name], time.thread_time() - started)
            writer._exposures.clear()  # measured the queueing only; the writer is timed apart
    finally:
        engine.dispose()
    return {f"{name}_ms": value / len(sample) * 1000.0 for name, value in best.items()}


def _exposures(db: Path) -> int:
    from sqlalchemy import create_engine, func, select

    from recsys.store.tables import exposures

    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(exposures)).scalar_one())
    finally:
        engine.dispose()


def _median_range(values: list[float], fmt: str) -> str:
    return (f"median {statistics.median(values):{fmt}}, range {min(values):{fmt}}-"
            f"{max(values):{fmt}}")


def run(full: bool) -> list[Row]:
    from bench._data import demo_home
    from recsys.store.engine import create_store_engine
    from training.artifacts import load_model

    home, info = demo_home(*SIZE, SEED)
    known = list(load_model(home / "models").recommender.data.user_ids.ids)
    rng = np.random.default_rng(SEED)
    sample = [known[i] for i in rng.choice(len(known), size=min(2000, len(known)),
                                           replace=False)]
    # What one worker queues in one flush interval at the lower rate: the flush size served.
    served_batch = max(1, round(RATES[0] / WORKERS * FLUSH_S))
    batches = {"served": served_batch, "large": 300}
    tmp = Path(tempfile.mkdtemp(prefix="bench-exposure-"))
    try:
        ids = tmp / "ids.txt"
        ids.write_text("\n".join(sample), encoding="utf-8")
        pairs = _paired(home, ids, tmp)
        logged = _exposures(tmp / "recsys-on.db")
        db = tmp / "recsys-inproc.db"
        shutil.copyfile(home / "recsys.db", db)
        inproc = _in_process(home, db, sample[:300])
        engine = create_store_engine(f"sqlite:///{db.as_posix()}")
        try:
            sqlite_writer = {name: _best_of(lambda size=size: _writer_cpu_ms(engine, size, 40))
                             for name, size in batches.items()}
        finally:
            engine.dispose()
        pg_writer = _pg_writer(batches)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load = os.getloadavg()[0]
    notes = (("A/A (BENCH_EXPOSURE_AA=1): both servers log off; " if AA else "")
             + f"demo {SIZE[0]:,} x {SIZE[1]:,}, model {info['model']}, {WORKERS} workers per "
             f"server, both servers up, {PAIRS} paired rounds (order alternating), "
             f"{STEP_S:.0f}s open loop per rate and mode; {logged:,} exposures written with "
             f"the log on; load average {load:.1f} on {os.cpu_count()} cores")
    rows = []
    figures = (("server_cpu_ms", "server CPU per request", "ms", "<= 1.1", ".3f"),
               ("p99_ms", "p99", "ms", "<= 1.1", ".1f"),
               ("achieved_rps", "req/s served", "req/s", ">= 0.9", ".1f"))
    for case, rate in _steps():
        for key, label, unit, goal, fmt in figures:
            if key == "p99_ms" and rate < RATES[-1]:
                goal = ""  # the measure's own spread is wider than 10% here (A/A)
            off = [p[False][key] for p in pairs[(case, rate)]]
            on = [p[True][key] for p in pairs[(case, rate)]]
            ratios = [b / a if a else float("nan") for a, b in zip(off, on, strict=True)]
            rows.append(Row(
                "exposure", f"{case}: {label} at {rate:.0f} req/s, log on vs off (median of pairs)",
                Baseline("log off", statistics.median(off)), statistics.median(on),
                statistics.median(ratios), unit, "on / off per pair, median", goal,
                notes=(f"on/off {_median_range(ratios, '.3f')}; off {_median_range(off, fmt)}"
                       f"; on {_median_range(on, fmt)}; {notes}"),
                extra={"pairs": [{"off": p[False], "on": p[True]} for p in pairs[(case, rate)]]},
            ))
    handler = inproc["handler_ms"]
    rows.append(Row("exposure", "request path: queueing the exposure vs the handler (CPU)",
                    Baseline("in-process handler", handler), inproc["log_ms"],
                    inproc["log_ms"] / handler, "ms/request", "log / handler", "<= 0.1",
                    notes="300 customers, CPU time, best of 3 interleaved"))
    stores: list[tuple[str, dict[str, float] | str]] = [("SQLite", sqlite_writer),
                                                       ("PostgreSQL", pg_writer)]
    for store, writer in stores:
        if isinstance(writer, str):
            rows.append(Row("exposure", f"writer CPU per exposure, {store}",
                            Baseline("in-process handler", handler), float("nan"), None,
                            "ms/exposure", "writer / handler", "<= 0.1", notes=writer))
            continue
        for name, size in batches.items():
            rows.append(Row(
                "exposure", f"writer CPU per exposure, {store}, flushes of {size}",
                Baseline("in-process handler", handler), writer[name],
                writer[name] / handler, "ms/exposure", "writer / handler",
                "<= 0.1" if name == "served" else "",
                notes=(f"the writer's thread CPU (its own connection, one transaction per "
                       f"flush), 40 flushes, best of 3; {size} is "
                       + ("what one worker queues per flush at "
                          f"{RATES[0]} req/s" if name == "served" else "a burst")
                       + ("" if store == "SQLite" else "; the server's own CPU not counted")),
            ))
    return rows
