"""Spark MLlib ALS (local[2]) vs implicit's ALS on the same CSR: wall time and peak memory.

Each side runs in its own process (`python -m bench.spark SIDE USERS ITEMS NNZ`) on the
same seeded random matrix, and the parent samples the process tree's resident memory
(the JVM included) every 0.2 s. Both fit 15 iterations of 64 factors with implicit
feedback; the Spark side's time includes turning the CSR into a DataFrame, not the
JVM start (reported apart). Default size 20k x 5k x 500k; `--full` is the issue's
1M x 100k x 25M, which needs far more than this shared 2-core box's time.

The campaign case (`python -m bench.spark campaign`, one child) runs the anniversary job
on the campaign benchmark's demo store (bench/campaign.py: 5,000 x 600, ~1,000 due;
`--full`: its 1M store, ~100,000 due) twice, each on a fresh copy of the store: drafted
by this machine's `--workers` processes (the CLI's default), then on Spark local[2]
executors (`training.spark.campaign`), the session started beforehand and not counted.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import scipy.sparse as sp

from bench._common import Baseline, Row

SMALL = (20_000, 5_000, 500_000)
FULL = (1_000_000, 100_000, 25_000_000)
FACTORS, ITERATIONS = 64, 15


def _matrix(users: int, items: int, nnz: int) -> sp.csr_matrix:
    rng = np.random.default_rng(7)
    # popularity-skewed items, as in purchase data
    rows = rng.integers(0, users, nnz)
    cols = np.minimum((rng.pareto(1.2, nnz) * items / 20).astype(np.int64), items - 1)
    matrix = sp.csr_matrix((np.ones(nnz, dtype=np.float32), (rows, cols)), shape=(users, items))
    matrix.data[:] = 1.0
    return matrix


def _implicit(matrix: sp.csr_matrix) -> dict[str, float]:
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(factors=FACTORS, iterations=ITERATIONS,
                                        regularization=0.1, alpha=2.0, random_state=1)
        started = time.perf_counter()
        model.fit(matrix, show_progress=False)
    return {"fit_s": time.perf_counter() - started}


def _spark(matrix: sp.csr_matrix) -> dict[str, float]:
    import pandas as pd
    from pyspark.ml.recommendation import ALS

    from training.spark.session import spark_session

    started = time.perf_counter()
    with spark_session("local[2]", app_name="bench-spark") as spark:
        up = time.perf_counter()
        coo = matrix.tocoo()
        frame = spark.createDataFrame(pd.DataFrame(
            {"u": coo.row.astype(np.int32), "i": coo.col.astype(np.int32),
             "r": coo.data.astype(np.float32)})).cache()
        frame.count()
        als = ALS(rank=FACTORS, maxIter=ITERATIONS, regParam=0.1, alpha=2.0,
                  implicitPrefs=True, seed=1, userCol="u", itemCol="i", ratingCol="r")
        model = als.fit(frame)
        model.userFactors.count()
        model.itemFactors.count()
        done = time.perf_counter()
    return {"fit_s": done - up, "start_s": up - started}


def _campaign(full: bool) -> dict[str, float]:
    import os
    import shutil
    import tempfile
    from pathlib import Path

    from bench._data import demo_home
    from bench.campaign import DEFAULT, DUE_DATE, FULL, SEED
    from recsys.campaign.job import run_campaign
    from recsys.rules.config import load_rules
    from recsys.store.catalog import load_items
    from recsys.store.engine import create_store_engine
    from training.serving import load_serving_model
    from training.spark.campaign import spark_drafting
    from training.spark.session import spark_session

    customers, items, share, _ = FULL if full else DEFAULT
    home, _info = demo_home(customers, items, SEED, due_date=DUE_DATE, due_share=share)
    model = load_serving_model(home / "models")
    rules = load_rules(None)
    tmp = Path(tempfile.mkdtemp(prefix="bench-spark-campaign-"))
    result: dict[str, float] = {}
    started = time.perf_counter()
    with spark_session("local[2]", app_name="bench-spark-campaign") as spark:
        result["start_s"] = time.perf_counter() - started
        for side in ("local", "spark"):
            work = tmp / side
            work.mkdir()
            shutil.copyfile(home / "recsys.db", work / "recsys.db")
            url = f"sqlite:///{(work / 'recsys.db').as_posix()}"
            engine = create_store_engine(url)
            with engine.connect() as conn:
                catalog = load_items(conn)
            drafting = (spark_drafting(lambda: spark, models_dir=home / "models", store_url=url)
                        if side == "spark" else None)
            try:
                with (work / "offers.jsonl").open("a", encoding="utf-8") as out:
                    began = time.perf_counter()
                    summary = run_campaign(
                        engine, model, rules, catalog, occasion="anniversary", day=DUE_DATE,
                        out=out, journal_dir=work / "campaigns", out_path=work / "offers.jsonl",
                        workers=os.cpu_count() or 1, drafting=drafting,
                    )
                    result[f"{side}_s"] = time.perf_counter() - began
            finally:
                engine.dispose()
            result["selected"] = summary.selected
            result[f"{side}_written"] = summary.written
    shutil.rmtree(tmp, ignore_errors=True)
    return result


def _measure(side: str, size: tuple[int, int, int]) -> dict[str, float]:
    import psutil

    proc = subprocess.Popen([sys.executable, "-m", "bench.spark", side, *map(str, size)],
                            stdout=subprocess.PIPE, text=True)
    parent = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            tree = [parent, *parent.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.2)
    assert proc.stdout is not None
    out = proc.stdout.read().strip().splitlines()
    if proc.returncode != 0 or not out:
        raise RuntimeError(f"{side} side failed (exit {proc.returncode})")
    result: dict[str, float] = json.loads(out[-1])
    result["peak_rss_mb"] = peak / 2**20
    return result


def run(full: bool) -> list[Row]:
    size = FULL if full else SMALL
    local = _measure("implicit", size)
    spark = _measure("spark", size)
    campaign = _measure("campaign", (int(full), 0, 0))
    notes = f"{size[0]:,} x {size[1]:,}, {size[2]:,} pairs drawn; {FACTORS} factors, " \
            f"{ITERATIONS} iterations; Spark start {spark['start_s']:.1f} s not counted"
    return [
        Row("spark", "ALS fit: Spark local[2] vs implicit", Baseline("implicit", local["fit_s"]),
            spark["fit_s"], spark["fit_s"] / local["fit_s"], "s",
            ratio_is="spark / implicit", notes=notes),
        Row("spark", "ALS peak RSS: Spark local[2] vs implicit",
            Baseline("implicit", local["peak_rss_mb"]), spark["peak_rss_mb"],
            spark["peak_rss_mb"] / local["peak_rss_mb"], "MB", ratio_is="spark / implicit",
            notes="process tree, JVM included"),
        Row("spark", "anniversary job: drafted on Spark local[2] vs this machine's workers",
            Baseline("run_campaign, --workers = cores", campaign["local_s"]),
            campaign["spark_s"], campaign["spark_s"] / campaign["local_s"], "s",
            ratio_is="spark / local",
            notes=f"{campaign['selected']:,.0f} due, written {campaign['local_written']:,.0f}"
                  f" / {campaign['spark_written']:,.0f}; Spark start "
                  f"{campaign['start_s']:.1f} s not counted"),
    ]


if __name__ == "__main__":
    side, dims = sys.argv[1], tuple(int(v) for v in sys.argv[2:5])
    if side == "campaign":
        print(json.dumps(_campaign(bool(dims[0]))))
    else:
        csr = _matrix(*dims)
        print(json.dumps(_implicit(csr) if side == "implicit" else _spark(csr)))
