"""`exposure`: the recommendation endpoint with the exposure log on against off.

The issue's target: p99 and req/s with the log on within 10% of off. Same data as
`api` (the cached 5,000 x 600 demo home, `bench._data.demo_home`), served from a copy
of its store (the log writes to it), `recsys serve --workers 2` started once with
`RECSYS_EXPOSURE_LOG=false` and once with `true`, and the `api` benchmark's open-loop
load generator (`python -m bench.api loadgen`: requests at fixed times, latency from
the scheduled send) at each rate of RATES for STEP_S seconds: p99, req/s served, and
the workers' CPU time per request (psutil; the writer thread's included). The two modes
alternate for ROUNDS rounds and each keeps its best figure, so a noisy neighbour on the
shared machine costs both alike. With the log on, the exposures written are counted after
the run, to show it did log every list.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import Baseline, Row, run_child, serve_command, start_process

SEED = 7
SIZE = (5_000, 600)
# Below what the shared 2-core machine serves with a 20 ms p99 while others work on it: a
# saturated server's p99 is its queue, which says nothing about the log.
RATES = (25, 50)
STEP_S = 8.0
ROUNDS = 3
WORKERS = 2


def _start(home: Path, db: Path, port: int, log_on: bool, log: Path) -> subprocess.Popen[bytes]:
    return start_process(
        serve_command(port, WORKERS), home, log,
        RECSYS_DATABASE_URL=f"sqlite:///{db}",
        RECSYS_EXPOSURE_LOG="true" if log_on else "false",
    )


def _serve_and_load(home: Path, db: Path, ids: Path, log_on: bool, tmp: Path,
                    seed: int) -> list[dict[str, Any]]:
    from bench.api import _free_port, _server_cpu_s, _stop_server, _wait_ready

    port = _free_port()
    proc = _start(home, db, port, log_on, tmp / f"server-{log_on}-{seed}.log")
    try:
        _wait_ready(proc, port, timeout=300.0)

        def step(rate: float, seconds: float, step_seed: int) -> dict[str, Any]:
            return run_child("bench.api", ["loadgen", "--port", str(port), "--ids", str(ids),
                                           "--rate", str(rate), "--duration", str(seconds),
                                           "--seed", str(step_seed)], timeout=seconds + 60)

        step(50, 3.0, seed)  # warm-up
        results = []
        for number, rate in enumerate(RATES):
            cpu_before = _server_cpu_s(proc)
            result = step(rate, STEP_S, seed + 1 + number)
            # The workers' CPU per request, the writer thread's included: what the log
            # costs, and far steadier than a p99 on a shared machine.
            result["server_cpu_ms"] = (
                (_server_cpu_s(proc) - cpu_before) * 1000.0 / max(result["ok"], 1)
            )
            print(f"[exposure] log {'on' if log_on else 'off'} {rate} req/s: p99 "
                  f"{result['p99_ms']:.1f} ms, {result['achieved_rps']:.0f} req/s, ok "
                  f"{result['ok']}/{result['requests']}, server cpu "
                  f"{result['server_cpu_ms']:.2f} ms/request", file=sys.stderr)
            results.append(result)
        return results
    finally:
        _stop_server(proc)


def _best(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Per figure, the better of two rounds (the noise on a shared machine only adds)."""
    return {
        **a,
        "p99_ms": min(a["p99_ms"], b["p99_ms"]),
        "server_cpu_ms": min(a["server_cpu_ms"], b["server_cpu_ms"]),
        "achieved_rps": max(a["achieved_rps"], b["achieved_rps"]),
    }


def _in_process(home: Path, db: Path, sample: list[str]) -> dict[str, float]:
    """Per request, in process: the handler's work; what logging adds on the request path
    (an `Exposure` built and queued); and the writer's batched insert per row (off the
    request path, in its thread). Best of 3, interleaved."""
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

        best = {"handler": float("inf"), "log": float("inf"), "flush": float("inf")}
        for _ in range(3):
            for name, fn in (("handler", handler), ("log", log), ("flush", writer.flush)):
                started = time.perf_counter()
                fn()
                best[name] = min(best[name], time.perf_counter() - started)
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


def run(full: bool) -> list[Row]:
    from bench._data import demo_home
    from training.artifacts import load_model

    home, info = demo_home(*SIZE, SEED)
    known = list(load_model(home / "models").recommender.data.user_ids.ids)
    rng = np.random.default_rng(SEED)
    sample = [known[i] for i in rng.choice(len(known), size=min(2000, len(known)),
                                           replace=False)]
    tmp = Path(tempfile.mkdtemp(prefix="bench-exposure-"))
    try:
        ids = tmp / "ids.txt"
        ids.write_text("\n".join(sample), encoding="utf-8")
        db = tmp / "recsys.db"
        shutil.copyfile(home / "recsys.db", db)
        best: dict[bool, list[dict[str, Any]]] = {}
        for round_number in range(ROUNDS):
            for log_on in (False, True):
                steps = _serve_and_load(home, db, ids, log_on, tmp, SEED + 100 * round_number)
                if log_on not in best:
                    best[log_on] = steps
                else:
                    best[log_on] = [_best(a, b) for a, b in zip(best[log_on], steps, strict=True)]
        logged = _exposures(db)
        inproc = _in_process(home, db, sample[:300])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load = os.getloadavg()[0]
    notes = (f"demo {SIZE[0]:,} x {SIZE[1]:,}, model {info['model']}, {WORKERS} workers, "
             f"open loop {STEP_S:.0f}s per rate, best of {ROUNDS} alternating rounds per "
             f"mode; {logged:,} exposures written with the log on; load average {load:.1f} "
             f"on {os.cpu_count()} cores")
    rows = []
    for off, on in zip(best[False], best[True], strict=True):
        rate = off["rate"]
        rows.append(Row("exposure", f"p99 at {rate:.0f} req/s, log on vs off",
                        Baseline("log off", off["p99_ms"]), on["p99_ms"],
                        on["p99_ms"] / off["p99_ms"], "ms", "on / off", "<= 1.1",
                        notes=notes, extra={"off": off, "on": on}))
        rows.append(Row("exposure", f"server CPU per request at {rate:.0f} req/s, log on vs off",
                        Baseline("log off", off["server_cpu_ms"]), on["server_cpu_ms"],
                        on["server_cpu_ms"] / off["server_cpu_ms"], "ms", "on / off",
                        "<= 1.1", notes=notes))
        rows.append(Row("exposure", f"req/s served at {rate:.0f} req/s, log on vs off",
                        Baseline("log off", off["achieved_rps"]), on["achieved_rps"],
                        on["achieved_rps"] / off["achieved_rps"], "req/s", "on / off",
                        ">= 0.9", notes=notes))
    rows.append(Row("exposure", "request path: queueing the exposure vs the handler",
                    Baseline("in-process handler", inproc["handler_ms"]), inproc["log_ms"],
                    inproc["log_ms"] / inproc["handler_ms"], "ms/request", "log / handler",
                    "<= 0.1",
                    notes=(f"300 customers, best of 3 interleaved; the writer's batched insert "
                           f"(its thread, off the request path) {inproc['flush_ms']:.3f} "
                           f"ms/row")))
    return rows
