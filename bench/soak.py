"""`soak`: a bounded closed-loop soak of the recommendation endpoint over loopback.

Data: the `api` benchmark's demo store (5,000 x 600, seed 7, cached under bench/out).
`recsys serve --workers 2` in a subprocess; a load generator in another process
(`python -m bench.soak loadgen`) runs CLIENTS keep-alive clients, each sending its next
request when the previous answer is in (closed loop), for DURATION seconds. Worker RSS
(the server's children, psutil) is sampled every SAMPLE_S seconds; its growth is the
last sample against the first one after WARMUP_S (the catalog and model pages are in
by then). Reported: errors (any status but 200, any connection error), p50 / p99 of
the answer time, throughput, worker RSS growth. Goals: 0 errors, RSS growth <= 10%.

`BENCH_SOAK_SECONDS` shortens the run (default 180 s).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import Baseline, Row, emit_child_result, run_child

CLIENTS = 16
DURATION = float(os.environ.get("BENCH_SOAK_SECONDS", "180"))
WARMUP_S = 20.0
SAMPLE_S = 5.0
SEED = 7
PATH = "/v1/customers/{}/recommendations?placement=newsletter"


async def _soak(port: int, ids: Sequence[str], clients: int, duration: float) -> dict[str, Any]:
    from bench.api import _Pool, _request

    pool = _Pool("127.0.0.1", port, clients)
    rng = np.random.default_rng(SEED)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    clock = time.perf_counter
    end = clock() + duration

    async def client(number: int) -> None:
        picks = rng.integers(0, len(ids), size=100_000)
        i = number
        while clock() < end:
            sent = clock()
            try:
                status = await _request(pool, PATH.format(ids[picks[i % len(picks)]]))
            except (OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
                statuses[type(exc).__name__] = statuses.get(type(exc).__name__, 0) + 1
                await asyncio.sleep(0.01)
                continue
            finally:
                i += clients
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            if status == 200:
                latencies.append(clock() - sent)

    started = clock()
    await asyncio.gather(*(client(n) for n in range(clients)))
    wall = clock() - started
    ms = np.array(latencies) * 1000.0
    total = sum(statuses.values())
    return {
        "requests": total,
        "ok": len(latencies),
        "errors": total - len(latencies),
        "statuses": statuses,
        "p50_ms": float(np.percentile(ms, 50)) if ms.size else None,
        "p99_ms": float(np.percentile(ms, 99)) if ms.size else None,
        "max_ms": float(ms.max()) if ms.size else None,
        "rps": len(latencies) / wall,
        "wall_s": wall,
    }


def _loadgen(argv: Sequence[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.soak loadgen")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ids", type=Path, required=True)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--duration", type=float, required=True)
    args = parser.parse_args(argv)
    ids = args.ids.read_text(encoding="utf-8").split()
    emit_child_result(asyncio.run(_soak(args.port, ids, args.clients, args.duration)))


def run(full: bool) -> list[Row]:
    from bench._data import demo_home
    from bench.api import (
        DEFAULT_SIZE,
        _free_port,
        _server_rss_mib,
        _start_server,
        _stop_server,
        _wait_ready,
    )
    from training.artifacts import load_model

    customers, items = DEFAULT_SIZE
    home, info = demo_home(customers, items, SEED)
    known = list(load_model(home / "models").recommender.data.user_ids.ids)
    tmp = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    ids_file = tmp / "ids.txt"
    ids_file.write_text("\n".join(known), encoding="utf-8")
    port = _free_port()
    proc = _start_server(home, port, tmp / "server.log")
    samples: list[tuple[float, float]] = []  # (seconds since the load started, worker MiB)
    stop = threading.Event()
    try:
        _wait_ready(proc, port, timeout=300.0)
        started = time.perf_counter()

        def sample() -> None:
            while not stop.wait(SAMPLE_S):
                samples.append((time.perf_counter() - started,
                                _server_rss_mib(proc)["children_mib"]))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        result = run_child(
            "bench.soak",
            ["loadgen", "--port", str(port), "--ids", str(ids_file),
             "--clients", str(CLIENTS), "--duration", str(DURATION)],
            timeout=DURATION + 120,
        )
        stop.set()
        sampler.join(timeout=10)
    finally:
        stop.set()
        _stop_server(proc)
    after_warmup = [mib for at, mib in samples if at >= min(WARMUP_S, DURATION / 3)]
    first, last = (after_warmup[0], after_warmup[-1]) if after_warmup else (0.0, 0.0)
    growth = (last - first) / first if first else float("nan")
    print(f"[soak] {result['requests']:,} requests, {result['errors']} errors, p99 "
          f"{result['p99_ms']:.1f} ms, worker RSS {first:.0f} -> {last:.0f} MiB", file=sys.stderr)
    notes = (
        f"demo {customers:,} x {items:,} ({info['lines']:,} lines), seed {SEED}, model "
        f"{info['model']}; recsys serve --workers 2; {CLIENTS} closed-loop keep-alive clients "
        f"for {result['wall_s']:.0f} s over loopback; {result['requests']:,} requests, "
        f"{result['rps']:.0f}/s, statuses {result['statuses']}; p50 {result['p50_ms']:.1f} "
        f"ms, max {result['max_ms']:.1f} ms; worker RSS sampled every {SAMPLE_S:.0f} s: "
        f"{first:.0f} MiB after {WARMUP_S:.0f} s, {last:.0f} MiB at the end"
    )
    return [
        Row("soak", "errors in the soak", Baseline("requests", result["requests"]),
            result["errors"], result["errors"] / max(result["requests"], 1), "requests",
            "errors / requests", "<= 0", notes=notes),
        Row("soak", f"p99 answer time, {CLIENTS} clients", Baseline("p50", result["p50_ms"]),
            result["p99_ms"], result["p99_ms"] / result["p50_ms"], "ms", "p99 / p50",
            notes=notes),
        Row("soak", "worker RSS growth", Baseline("RSS after warm-up (MiB)", first), last,
            growth, "MiB", "(end - start) / start", "<= 0.1", notes=notes),
    ]


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "loadgen":
        _loadgen(sys.argv[2:])
    else:
        print("usage: python -m bench.soak loadgen --port P --ids FILE --duration S")
