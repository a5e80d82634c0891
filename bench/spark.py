"""Spark MLlib ALS (local[2]) vs implicit's ALS on the same CSR: wall time and peak memory.

Each side runs in its own process (`python -m bench.spark SIDE USERS ITEMS NNZ ITERATIONS`)
on the same seeded random matrix, and the parent samples the process tree's resident
memory (the JVM included) every 0.2 s; the child also reports its own VmHWM and, on the
Spark side, the JVM's. Both sides fit 64 factors, regularization 0.1, alpha 2 on the
2 cores (implicit's 2 threads with BLAS pinned to 1, Spark's 2 task threads): 1
iteration, then N (15 at the default size, 3 at `--full`), so the per-iteration time
(fit(N) - fit(1)) / (N - 1) is free of each side's setup
(implicit's transpose, MLlib's blocking of the ratings). The Spark side's fit starts
from a cached DataFrame of the CSR's pairs (written as Parquet and read back); the JVM
start and that load are reported apart. Default size 20k x 5k x 500k; `--full` is the
issue's 1M x 100k x 25M (24.8M distinct pairs), with a 12 GiB driver heap (local mode:
the executors share it); its Spark side alone takes ~12 minutes on this shared box.
`python -m bench.spark measure implicit|spark [--full]` runs one side alone (how the
figures in docs/scale.md were taken, each side in its own locked run).

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

from bench._common import Baseline, Row, peak_rss_mib

SMALL = (20_000, 5_000, 500_000)
FULL = (1_000_000, 100_000, 25_000_000)
FACTORS, REGULARIZATION, ALPHA = 64, 0.1, 2.0
#: iterations of the timed fit per size; each side also fits 1 iteration first, so the
#: per-iteration time is the difference, (fit(N) - fit(1)) / (N - 1), free of the setup.
ITERATIONS = {False: 15, True: 3}
#: the Spark driver's heap (local mode: the executors live in it); 1 GiB, Spark's default,
#: does not hold the full size's blocks and shuffles
DRIVER_MEMORY = {False: "2g", True: "12g"}


def _matrix(users: int, items: int, nnz: int) -> sp.csr_matrix:
    rng = np.random.default_rng(7)
    # popularity-skewed items, as in purchase data
    rows = rng.integers(0, users, nnz)
    cols = np.minimum((rng.pareto(1.2, nnz) * items / 20).astype(np.int64), items - 1)
    matrix = sp.csr_matrix((np.ones(nnz, dtype=np.float32), (rows, cols)), shape=(users, items))
    matrix.data[:] = 1.0
    return matrix


def _vm_hwm_mib(pid: int) -> float:
    """`VmHWM` (peak resident set) of a live process, MiB; 0 when it cannot be read."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def _jvm_peak_mib() -> float:
    """The peak RSS of this process's Java children (the Spark driver JVM)."""
    import psutil

    return sum(_vm_hwm_mib(child.pid) for child in psutil.Process().children(recursive=True)
               if child.name() == "java")


def _implicit(matrix: sp.csr_matrix, iterations: int) -> dict[str, float]:
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    result: dict[str, float] = {"pairs": matrix.nnz}
    with threadpool_limits(1, "blas"):
        for label, n in (("fit_1_s", 1), ("fit_s", iterations)):
            model = AlternatingLeastSquares(factors=FACTORS, iterations=n,
                                            regularization=REGULARIZATION, alpha=ALPHA,
                                            random_state=1)
            started = time.perf_counter()
            model.fit(matrix, show_progress=False)
            result[label] = time.perf_counter() - started
            del model
    result["driver_peak_mib"] = peak_rss_mib()
    return result


def _spark(matrix: sp.csr_matrix, iterations: int, driver_memory: str) -> dict[str, float]:
    import tempfile
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyspark.ml.recommendation import ALS

    from training.spark.session import spark_session

    result: dict[str, float] = {}
    started = time.perf_counter()
    conf = {"spark.driver.memory": driver_memory}
    with (tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp,
          spark_session("local[2]", app_name="bench-spark", conf=conf) as spark):
        scratch = Path(tmp)
        up = time.perf_counter()
        result["start_s"] = up - started
        # the CSR's pairs as a Parquet file Spark reads (createDataFrame from pandas
        # takes minutes for 25M rows), cached in the JVM before the fits
        coo = matrix.tocoo()
        pq.write_table(pa.table({"u": coo.row.astype(np.int32), "i": coo.col.astype(np.int32),
                                 "r": coo.data.astype(np.float32)}), scratch / "pairs.parquet")
        del coo
        frame = spark.read.parquet(str(scratch / "pairs.parquet")).cache()
        result["pairs"] = frame.count()
        result["frame_s"] = time.perf_counter() - up
        for label, n in (("fit_1_s", 1), ("fit_s", iterations)):
            began = time.perf_counter()
            als = ALS(rank=FACTORS, maxIter=n, regParam=REGULARIZATION, alpha=ALPHA,
                      implicitPrefs=True, seed=1, userCol="u", itemCol="i", ratingCol="r")
            model = als.fit(frame)
            model.userFactors.count()
            model.itemFactors.count()
            result[label] = time.perf_counter() - began
            del model
        result["jvm_peak_mib"] = _jvm_peak_mib()
    result["driver_peak_mib"] = peak_rss_mib()
    return result


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


def _measure(side: str, args: tuple[object, ...]) -> dict[str, float]:
    """Run one side in a child process (`python -m bench.spark SIDE ...`) and sample the
    resident memory of its process tree (the JVM and any Python workers included) every
    0.2 s; the child reports its own and its JVM's VmHWM."""
    import psutil

    proc = subprocess.Popen([sys.executable, "-m", "bench.spark", side, *map(str, args)],
                            stdout=subprocess.PIPE, text=True)
    parent = psutil.Process(proc.pid)
    peak = 0
    started = time.perf_counter()
    while proc.poll() is None:
        try:
            tree = [parent, *parent.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.2)
    wall = time.perf_counter() - started
    assert proc.stdout is not None
    out = proc.stdout.read().strip().splitlines()
    if proc.returncode != 0 or not out:
        raise RuntimeError(f"{side} side failed (exit {proc.returncode})")
    result: dict[str, float] = json.loads(out[-1])
    result["peak_rss_mb"] = peak / 2**20
    result["process_s"] = wall
    return result


def measure_als(side: str, full: bool) -> dict[str, float]:
    """One side of the ALS comparison at the default or the full size, in its own process."""
    size = FULL if full else SMALL
    extra: tuple[object, ...] = (DRIVER_MEMORY[full],) if side == "spark" else ()
    result = _measure(side, (*size, ITERATIONS[full], *extra))
    result["iterations"] = ITERATIONS[full]
    return result


def per_iteration(result: dict[str, float]) -> float:
    """Seconds per iteration past the first: (fit(N) - fit(1)) / (N - 1)."""
    return (result["fit_s"] - result["fit_1_s"]) / (result["iterations"] - 1)


def als_rows(full: bool, local: dict[str, float], spark: dict[str, float]) -> list[Row]:
    size = FULL if full else SMALL
    n = ITERATIONS[full]
    notes = (f"{size[0]:,} x {size[1]:,}, {size[2]:,} pairs drawn; {FACTORS} factors, "
             f"regularization {REGULARIZATION}, alpha {ALPHA}, {n} iterations; Spark "
             f"start {spark['start_s']:.1f} s and CSR to cached DataFrame "
             f"{spark['frame_s']:.1f} s not counted")
    return [
        Row("spark", f"ALS fit, {n} iterations: Spark local[2] vs implicit",
            Baseline("implicit", local["fit_s"]), spark["fit_s"],
            spark["fit_s"] / local["fit_s"], "s", ratio_is="spark / implicit", notes=notes),
        Row("spark", "ALS per iteration past the first: Spark local[2] vs implicit",
            Baseline("implicit", per_iteration(local)), per_iteration(spark),
            per_iteration(spark) / per_iteration(local), "s", ratio_is="spark / implicit",
            notes=f"(fit({n}) - fit(1)) / {n - 1}, each side's 1-iteration fit run first; "
                  f"1-iteration fit {local['fit_1_s']:.1f} s implicit, "
                  f"{spark['fit_1_s']:.1f} s Spark"),
        Row("spark", "ALS peak RSS: Spark local[2] vs implicit",
            Baseline("implicit", local["peak_rss_mb"]), spark["peak_rss_mb"],
            spark["peak_rss_mb"] / local["peak_rss_mb"], "MB", ratio_is="spark / implicit",
            notes=f"process tree sampled every 0.2 s, JVM included; VmHWM: JVM "
                  f"{spark['jvm_peak_mib']:,.0f} MiB (heap {DRIVER_MEMORY[full]}), Spark's "
                  f"Python driver {spark['driver_peak_mib']:,.0f} MiB, implicit's process "
                  f"{local['driver_peak_mib']:,.0f} MiB (each holds the CSR)"),
    ]


def run(full: bool) -> list[Row]:
    local = measure_als("implicit", full)
    spark = measure_als("spark", full)
    campaign = _measure("campaign", (int(full), 0, 0))
    return [
        *als_rows(full, local, spark),
        Row("spark", "anniversary job: drafted on Spark local[2] vs this machine's workers",
            Baseline("run_campaign, --workers = cores", campaign["local_s"]),
            campaign["spark_s"], campaign["spark_s"] / campaign["local_s"], "s",
            ratio_is="spark / local",
            notes=f"{campaign['selected']:,.0f} due, written {campaign['local_written']:,.0f}"
                  f" / {campaign['spark_written']:,.0f}; Spark start "
                  f"{campaign['start_s']:.1f} s not counted"),
    ]


def _main(argv: list[str]) -> None:
    side = argv[0]
    if side == "measure":
        # one side of the ALS comparison, as `run` measures it: python -m bench.spark
        # measure implicit|spark [--full]; the parent's JSON line on stdout
        print(json.dumps(measure_als(argv[1], "--full" in argv[2:])))
    elif side == "campaign":
        print(json.dumps(_campaign(bool(int(argv[1])))))
    else:
        users, items, nnz, iterations = (int(v) for v in argv[1:5])
        csr = _matrix(users, items, nnz)
        print(json.dumps(_implicit(csr, iterations) if side == "implicit"
                         else _spark(csr, iterations, argv[5])))


if __name__ == "__main__":
    _main(sys.argv[1:])
