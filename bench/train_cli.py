"""`train_cli`: `recsys train --model als` as a whole CLI process vs implicit's raw fit.

Data: a generated demo retailer ingested into SQLite (`bench._data.demo_home`,
store only): 100,000 customers x 20,000 items (~2.4M lines) by default, the 1M x 100k
store of `api`/`campaign` with `--full` (BENCH_TRAIN_CLI_SIZE=CxI picks another).

Candidate, per try: `python -m recsys train --model als` in a fresh process (RECSYS_HOME
the store, a fresh artifacts directory), wall time from spawn to exit; its printed stage
split (read, rule learning, matrix, fit, save, verify) is kept. Baseline, same run,
interleaved: a fresh process reads the same purchases and builds the same matrix
(`training.train.build_matrix`, not timed), then times
`implicit.cpu.als.AlternatingLeastSquares(same params, all cores).fit` alone. The best
of `TRIES` of each side is compared; goal <= 1.5.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import REPO_ROOT, Baseline, Row, emit_child_result, run_child

SEED = 7
DEFAULT_SIZE = (100_000, 20_000)
TRIES = 3
GOAL = "<= 1.5"
_STAGE = re.compile(r"([a-z][a-z ]*?) (\d+\.\d+)s")


def _size(full: bool) -> tuple[int, int]:
    override = os.environ.get("BENCH_TRAIN_CLI_SIZE")
    if override:
        customers, _, items = override.partition("x")
        return int(customers), int(items)
    from bench.api import FULL_SIZE

    return FULL_SIZE if full else DEFAULT_SIZE


def _home(full: bool) -> Path:
    from bench._data import demo_home

    customers, items = _size(full)
    if full and not os.environ.get("BENCH_TRAIN_CLI_SIZE"):
        from bench.api import FULL_DUE

        home, _ = demo_home(customers, items, SEED, due_date=FULL_DUE[0],
                            due_share=FULL_DUE[1], store_only=True)
    else:
        home, _ = demo_home(customers, items, SEED, store_only=True)
    return home


def _cli(home: Path) -> tuple[float, dict[str, float], str]:
    artifacts = Path(tempfile.mkdtemp(prefix="bench-train-cli-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSYS_")}
    env.update(RECSYS_HOME=str(home), RECSYS_ARTIFACTS_DIR=str(artifacts),
               RECSYS_LOG_LEVEL="warning", COLUMNS="200")
    try:
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "recsys", "train", "--model", "als"],
                             cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                             check=False, timeout=7200)
        seconds = time.perf_counter() - started
    finally:
        shutil.rmtree(artifacts, ignore_errors=True)
    if out.returncode != 0:
        raise RuntimeError(f"recsys train exited {out.returncode}:\n{out.stdout}\n{out.stderr}")
    split_line = next((line for line in out.stdout.splitlines() if " fit " in line), "")
    stages = {name.strip(): float(value) for name, value in _STAGE.findall(split_line)}
    summary = next((line.strip() for line in out.stdout.splitlines() if " x " in line), "")
    return seconds, stages, summary


def _raw_child(argv: list[str]) -> None:
    """`python -m bench.train_cli rawfit --home H`: the raw fit on the CLI's matrix."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, required=True)
    args = parser.parse_args(argv)
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    from recsys.store.catalog import catalog_frame
    from recsys.store.engine import create_store_engine
    from recsys.store.purchases import purchase_frame
    from training.train import _catalog_items, build_matrix, reference_time, resolve_params

    engine = create_store_engine(f"sqlite:///{(args.home / 'recsys.db').as_posix()}")
    with engine.connect() as conn:
        purchases = purchase_frame(conn)
        catalog = catalog_frame(conn)
    engine.dispose()
    resolved = resolve_params("als", None)
    now = reference_time(purchases, None, half_life_days=resolved.matrix.half_life_days)
    matrix = build_matrix(purchases, resolved.matrix, now=now,
                          catalog_items=_catalog_items(catalog)).matrix
    from recsys.models import model_type

    # the parameters the CLI's model is built with (its defaults filled in)
    params = model_type("als").from_params(resolved.model, num_threads=0).params
    with threadpool_limits(limits=1, user_api="blas"):
        model = AlternatingLeastSquares(
            factors=int(params["factors"]), regularization=float(params["regularization"]),
            alpha=float(params["alpha"]), iterations=int(params["iterations"]),
            random_state=int(params["random_state"]), num_threads=0,
        )
        started = time.perf_counter()
        model.fit(matrix, show_progress=False)
        fit_s = time.perf_counter() - started
    emit_child_result({"fit_s": fit_s, "shape": list(matrix.shape), "nnz": int(matrix.nnz)})


def run(full: bool) -> list[Row]:
    home = _home(full)
    customers, items = _size(full)
    cli_best, raw_best = float("inf"), float("inf")
    best_stages: dict[str, float] = {}
    tries: list[tuple[float, float]] = []
    summary, raw_info = "", {}
    for _ in range(TRIES):
        seconds, stages, summary = _cli(home)
        if seconds < cli_best:
            cli_best, best_stages = seconds, stages
        raw_info = run_child("bench.train_cli", ["rawfit", "--home", str(home)], timeout=7200)
        raw_best = min(raw_best, raw_info["fit_s"])
        tries.append((seconds, raw_info["fit_s"]))
        print(f"[train_cli] recsys train {seconds:.1f}s ({stages}); raw fit "
              f"{raw_info['fit_s']:.1f}s", file=sys.stderr)
    counted = sum(best_stages.values())
    split = ", ".join(f"{k} {v:.1f}s" for k, v in best_stages.items())
    rest = max(cli_best - counted, 0.0)
    paired = sorted(a / b for a, b in tries)
    notes = (f"demo {customers:,} x {items:,}, seed {SEED}, SQLite; {summary}; best of "
             f"{TRIES} interleaved tries (cli s, raw s): "
             f"{[(round(a, 1), round(b, 1)) for a, b in tries]}, ratio per try "
             f"{[round(r, 2) for r in paired]}; the fastest CLI's stages: {split}; "
             f"process start, imports and the rest {rest:.1f}s")
    return [Row("train_cli", "recsys train --model als, whole process",
                Baseline("implicit ALS .fit", raw_best), cli_best, cli_best / raw_best, "s",
                "cli s / raw fit s", GOAL, notes=notes,
                extra={"stages": best_stages, "tries": tries, "raw": raw_info})]


def _main(argv: list[str]) -> Any:
    if argv and argv[0] == "rawfit":
        return _raw_child(argv[1:])
    print("usage: python -m bench.train_cli rawfit --home HOME")
    return None


if __name__ == "__main__":
    _main(sys.argv[1:])
