"""`serve`: the recommendation endpoints as a user runs them, beside a raw top-k service.

In one run, on the demo store `bench.api` uses (`bench._data.demo_home`, `hybrid` model,
100 candidates precomputed; `--full`: the 1M x 100k retailer):

1. Three servers, 2 workers each, started side by side: `recsys serve --workers 2`
   (exposure log on, the default), the raw top-k app and the bare FastAPI `{}` endpoint
   of `bench.baseline_apps` (`uvicorn --factory --workers 2`, same artifact's factors).
2. Closed loop: `wrk -t1 -c16` (Debian's `wrk`, C, a separate process; `wrk_load.lua`
   draws known customers with a seed) for `DURATION_S` per case, the cases interleaved
   for `ROUNDS` rounds: recommendations, cross-sell (POST, a 2-item basket), loyalty,
   raw top-k, bare. The median round of each is kept; ratios are to the raw app.
   Server CPU per request: user + system seconds of the server's workers (psutil)
   over the run, divided by the requests answered.
3. Open loop at `OPEN_RATE` req/s for `OPEN_S` (the Python generator of `bench.api`,
   latency from the scheduled send, so queueing counts): the product and the raw app.
4. Stage split: py-spy samples one worker during a further recommendations run
   (`bench.stages`: log, model, store, render, rules, auth, metrics, parse, framework,
   HTTP server); each stage's share times the loaded CPU per request.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from bench._common import REPO_ROOT, Baseline, Row, run_child, serve_command, start_process

SEED = 7
WORKERS = 2
CONCURRENCY = 16
DURATION_S = 5.0
ROUNDS = 3
OPEN_RATE = 1000
OPEN_S = 10.0
P99_TARGET_MS = 20.0
SAMPLE = 2_000
CPU_TARGET_MS = 1.5
LUA = Path(__file__).with_name("wrk_load.lua")

#: case -> (server, wrk request kind)
CASES: dict[str, tuple[str, str]] = {
    "recommendations": ("product", "recommendations"),
    "cross-sell": ("product", "cross_sell"),
    "loyalty": ("product", "loyalty"),
    "raw top-k": ("raw", "recommendations"),
    "bare {}": ("bare", "recommendations"),
}


def _start(name: str, home: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    if name == "product":
        command = serve_command(port, WORKERS)
    else:
        factory = {"raw": "raw_topk_app", "bare": "bare_app"}[name]
        command = [sys.executable, "-m", "uvicorn", "--factory",
                   f"bench.baseline_apps:{factory}", "--workers", str(WORKERS),
                   "--port", str(port), "--log-level", "warning", "--no-access-log"]
    return start_process(command, home, log, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _wrk(port: int, kind: str, ids: Path, items: Path, seed: int) -> dict[str, Any]:
    env = {**os.environ, "WRK_IDS": str(ids), "WRK_ITEMS": str(items), "WRK_KIND": kind,
           "WRK_SEED": str(seed)}
    out = subprocess.run(
        ["wrk", "-t1", f"-c{CONCURRENCY}", f"-d{DURATION_S:g}s", "--timeout", "10s",
         "-s", str(LUA), f"http://127.0.0.1:{port}"],
        env=env, capture_output=True, text=True, timeout=DURATION_S + 60, check=True,
    )
    for line in out.stdout.splitlines():
        if line.startswith("WRK_RESULT "):
            result: dict[str, Any] = json.loads(line[len("WRK_RESULT "):])
            result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
            return result
    raise RuntimeError(f"wrk printed no result:\n{out.stdout}\n{out.stderr}")


def _busiest_worker(proc: subprocess.Popen[bytes]) -> int:
    """The pid of the server's child that has used the most CPU (a worker, not a helper)."""
    import psutil

    best, pid = -1.0, proc.pid
    for child in psutil.Process(proc.pid).children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.Error:
            continue
        if times.user + times.system > best:
            best, pid = times.user + times.system, child.pid
    return pid


def _profiled(proc: subprocess.Popen[bytes], port: int, ids: Path, items: Path,
              tmp: Path) -> dict[str, float]:
    """Stage shares of one worker's samples during a closed-loop recommendations run."""
    from bench import stages

    if not stages.available():
        return {}
    pid = _busiest_worker(proc)
    with ThreadPoolExecutor(1) as pool:
        load = pool.submit(_wrk, port, "recommendations", ids, items, SEED)
        time.sleep(0.5)
        out = stages.sample_worker(pid, DURATION_S - 1.5, tmp / "profile.txt")
        load.result()
    return stages.stage_shares(out.read_text(encoding="utf-8"))


def run(full: bool) -> list[Row]:
    from bench._data import demo_home
    from bench.api import (
        DEFAULT_SIZE,
        _free_port,
        _full_size,
        _server_cpu_s,
        _wait_ready,
    )

    if shutil.which("wrk") is None:
        raise RuntimeError("the serve benchmark needs wrk: apt-get install wrk")
    customers, items, due_date, due_share = (
        _full_size() if full else (*DEFAULT_SIZE, None, 0.0)
    )
    home, info = demo_home(customers, items, SEED, due_date=due_date, due_share=due_share)
    from training.artifacts import load_model

    loaded = load_model(home / "models")
    known = list(loaded.recommender.data.user_ids.ids)
    item_ids = list(loaded.recommender.data.item_ids.ids)
    del loaded
    rng = np.random.default_rng(SEED)
    sample = [known[i] for i in rng.choice(len(known), size=min(SAMPLE, len(known)),
                                           replace=False)]
    tmp = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    ids_file, items_file = tmp / "ids.txt", tmp / "items.txt"
    ids_file.write_text("\n".join(sample) + "\n", encoding="utf-8")
    items_file.write_text("\n".join(item_ids) + "\n", encoding="utf-8")

    servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    runs: dict[str, list[dict[str, Any]]] = {case: [] for case in CASES}
    open_loop: dict[str, dict[str, Any]] = {}
    try:
        for name in ("product", "raw", "bare"):
            port = _free_port()
            servers[name] = (_start(name, home, port, tmp / f"{name}.log"), port)
        for proc, port in servers.values():
            _wait_ready(proc, port, timeout=600.0)
        for server, kind in CASES.values():  # warm-up: caches, first queries
            proc, port = servers[server]
            _wrk(port, kind, ids_file, items_file, SEED)
        for number in range(ROUNDS):
            for case, (server, kind) in CASES.items():
                proc, port = servers[server]
                cpu = _server_cpu_s(proc)
                result = _wrk(port, kind, ids_file, items_file, SEED + 1 + number)
                result["server_cpu_ms"] = ((_server_cpu_s(proc) - cpu) * 1000.0
                                           / max(result["requests"], 1))
                runs[case].append(result)
                print(f"[serve] {case}: {result['rps']:.0f} req/s, p99 "
                      f"{result['p99_us'] / 1000:.1f} ms, server cpu "
                      f"{result['server_cpu_ms']:.2f} ms/request, errors {result['errors']}",
                      file=sys.stderr)
        for server in ("product", "raw"):
            proc, port = servers[server]
            cpu = _server_cpu_s(proc)
            step = run_child("bench.api", ["loadgen", "--port", str(port), "--ids",
                                           str(ids_file), "--rate", str(OPEN_RATE),
                                           "--duration", str(OPEN_S), "--seed", str(SEED)],
                             timeout=OPEN_S + 60)
            step["server_cpu_ms"] = (_server_cpu_s(proc) - cpu) * 1000.0 / max(step["ok"], 1)
            open_loop[server] = step
            print(f"[serve] open loop {OPEN_RATE}/s {server}: p50 {step['p50_ms']:.1f} ms, "
                  f"p99 {step['p99_ms']:.1f} ms, {step['ok']}/{step['requests']} ok, "
                  f"client cpu {step['client_cpu_s']:.1f}s", file=sys.stderr)
        proc, port = servers["product"]
        shares = _profiled(proc, port, ids_file, items_file, tmp)
    finally:
        for proc, _ in servers.values():
            _stop(proc)
    logs = {name: (tmp / f"{name}.log").read_text(encoding="utf-8", errors="replace")
            for name in servers}
    shutil.rmtree(tmp, ignore_errors=True)

    def median(case: str, key: str) -> float:
        return float(statistics.median(r[key] for r in runs[case]))

    raw_rps = median("raw top-k", "rps")
    size = (f"demo {customers:,} x {items:,} ({info['lines']:,} lines), seed {SEED}, "
            f"{info['model']} model, {WORKERS} workers each, exposure log on")
    closed = (f"{size}; wrk -t1 -c{CONCURRENCY}, {DURATION_S:g}s x {ROUNDS} interleaved "
              f"rounds, median; bare FastAPI {{}}: {median('bare {}', 'rps'):,.0f} req/s")
    rows = []
    for case in ("recommendations", "cross-sell", "loyalty"):
        rps = median(case, "rps")
        rows.append(Row(
            "serve", f"{case}, closed loop c={CONCURRENCY}",
            Baseline("raw top-k app", raw_rps), rps, rps / raw_rps, "req/s", "ours / raw",
            ">= 0.5",
            notes=(f"{closed}; p99 {median(case, 'p99_us') / 1000:.1f} ms (raw "
                   f"{median('raw top-k', 'p99_us') / 1000:.1f}); server cpu "
                   f"{median(case, 'server_cpu_ms'):.2f} ms/request (raw "
                   f"{median('raw top-k', 'server_cpu_ms'):.2f}, bare "
                   f"{median('bare {}', 'server_cpu_ms'):.2f}); rounds "
                   f"{[round(r['rps']) for r in runs[case]]}"),
        ))
    ours_open, raw_open = open_loop["product"], open_loop["raw"]
    rows.append(Row(
        "serve", f"recommendations p99 at {OPEN_RATE} req/s open loop",
        Baseline("p99 target", P99_TARGET_MS), ours_open["p99_ms"],
        ours_open["p99_ms"] / P99_TARGET_MS, "ms", "p99 / 20 ms", "<= 1",
        notes=(f"{size}; {OPEN_S:g}s, latency from the scheduled send; ours p50 "
               f"{ours_open['p50_ms']:.1f} ms, {ours_open['ok']}/{ours_open['requests']} ok, "
               f"server cpu {ours_open['server_cpu_ms']:.2f} ms/request; raw top-k p50 "
               f"{raw_open['p50_ms']:.1f} p99 {raw_open['p99_ms']:.1f} ms, "
               f"{raw_open['ok']}/{raw_open['requests']} ok; generator cpu "
               f"{ours_open['client_cpu_s']:.1f}s"),
    ))
    loaded_cpu = median("recommendations", "server_cpu_ms")
    split = (", ".join(f"{stage} {share * loaded_cpu:.2f}" for stage, share in shares.items())
             if shares else "not measured (pip install py-spy; needs ptrace rights)")
    rows.append(Row(
        "serve", "server CPU per recommendation request",
        Baseline("target", CPU_TARGET_MS), loaded_cpu, loaded_cpu / CPU_TARGET_MS,
        "ms", "cpu / 1.5 ms", "<= 1",
        notes=(f"{size}; under the closed loop (psutil, workers' user + system); by stage "
               f"(ms, py-spy samples of one worker under the same load): {split}"),
        extra={"stage_shares": shares},
    ))
    for name, text in logs.items():
        errors = [line for line in text.splitlines() if "Traceback" in line or "ERROR" in line]
        if errors:
            print(f"[serve] {name} log errors:\n" + "\n".join(errors[-10:]), file=sys.stderr)
    (REPO_ROOT / "bench" / "out" / "serve-runs.json").write_text(
        json.dumps({"closed": runs, "open": open_loop, "stage_shares": shares}, indent=2),
        encoding="utf-8")
    return rows
