"""`recsys campaign ... --engine spark`: drafted on Spark executors, recorded once on PostgreSQL.

The store is PostgreSQL (the contact log decides exactly-once); Spark is the shared
local[2] session of tests/spark/conftest.py, which retries a failed task as a cluster
does.
"""

from __future__ import annotations

import functools
import io
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from recsys.campaign import CampaignSummary, run_campaign
from recsys.campaign.drafting import DraftContext, DraftedBatch, draft_batch
from recsys.store.campaigns import DueCustomer
from recsys.store.tables import contact_log, vouchers
from tests.api.conftest import demo_dir
from tests.campaign.conftest import DAY, Shop, read_lines, setup_shop
from tests.spark.conftest import bad_store_urls
from training.spark.campaign import spark_drafting

__all__ = ["demo_dir"]  # the shared demo retailer fixture
pytestmark = pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)


@pytest.fixture
def shop(engine: Engine, demo_dir: Path, tmp_path: Path) -> Shop:
    return setup_shop(engine, demo_dir, tmp_path, extra_due=24)


def _run(shop: Shop, spark: Any, out: io.StringIO, draft: Any = draft_batch,
         **kwargs: Any) -> CampaignSummary:
    drafting = spark_drafting(
        lambda: spark, models_dir=shop.settings.models_dir,
        store_url=shop.engine.url.render_as_string(hide_password=False), draft=draft,
    )
    return run_campaign(
        shop.engine, shop.model, shop.rules, shop.catalog, occasion="anniversary", day=DAY,
        out=out, journal_dir=shop.settings.home / "campaigns", batch_size=4,
        drafting=drafting, **kwargs,
    )


def _local_dry_run(shop: Shop) -> tuple[list[dict[str, Any]], CampaignSummary]:
    out = io.StringIO()
    summary = run_campaign(shop.engine, shop.model, shop.rules, shop.catalog,
                           occasion="anniversary", day=DAY, out=out, journal_dir=None,
                           dry_run=True, batch_size=4)
    return read_lines(out.getvalue()), summary


def _same_offers(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """The same lines but for the random voucher codes, and item scores to float noise: a
    batch is scored in one BLAS call, and Spark's batches hold other customers."""

    def plain(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(
            ({**line, "exposure_id": None,
              "voucher": line["voucher"] and {**line["voucher"], "code": None},
              "items": [{**item, "score": None} for item in line["items"]]} for line in lines),
            key=lambda line: line["customer_id"],
        )

    def scores(lines: list[dict[str, Any]]) -> dict[str, list[float]]:
        return {line["customer_id"]: [item["score"] for item in line["items"]] for line in lines}

    assert plain(got) == plain(expected)
    want = scores(expected)
    for customer, values in scores(got).items():
        assert values == pytest.approx(want[customer], abs=1e-4)


def _assert_once(shop: Shop, lines: list[dict[str, Any]], wanted: set[str]) -> None:
    ids = [line["customer_id"] for line in lines]
    assert len(ids) == len(set(ids)), "a customer got two offers"
    assert set(ids) == wanted
    with shop.engine.connect() as conn:
        rows = list(conn.execute(
            select(contact_log).where(contact_log.c.occasion == "anniversary")))
        issued = {r.code: r.customer_id for r in conn.execute(select(vouchers))}
    codes = {line["voucher"]["code"]: line["customer_id"] for line in lines if line["voucher"]}
    assert issued == codes  # every voucher issued once, and each one delivered
    logged = {r.customer_id: (r.voucher_code, r.exposure_id) for r in rows if not r.held_out}
    assert logged == {
        line["customer_id"]: (line["voucher"] and line["voucher"]["code"], line["exposure_id"])
        for line in lines
    }
    # the control group is logged held out, once each, and sent nothing
    held = [r.customer_id for r in rows if r.held_out]
    assert len(held) == len(set(held)) and not set(held) & set(ids)


def test_spark_writes_what_the_local_job_writes_and_a_rerun_nothing(
    spark: Any, shop: Shop
) -> None:
    expected, local = _local_dry_run(shop)
    assert len(expected) > 20
    out = io.StringIO()
    summary = _run(shop, spark, out)
    lines = read_lines(out.getvalue())
    # the same lines (format, items, voucher percent) as one machine
    _same_offers(lines, expected)
    assert summary.skipped == local.skipped and summary.written == local.written
    assert summary.selected == local.selected
    _assert_once(shop, lines, {line["customer_id"] for line in expected})

    again = io.StringIO()
    rerun = _run(shop, spark, again)
    assert again.getvalue() == "" and rerun.written == 0
    # the held-out customers are in the contact log too
    assert rerun.skipped["already_sent"] == summary.written + summary.skipped["held_out"]
    _assert_once(shop, lines, {line["customer_id"] for line in expected})
    assert not list((shop.settings.home / "campaigns").glob("*.journal"))


def _dies_once(
    marker: str, ctx: DraftContext, engine: Engine, batch: Sequence[DueCustomer]
) -> DraftedBatch:
    """The drafting of one batch, except that the first executor to get here dies after
    drafting (its Python worker exits, as an executor killed mid-partition would)."""
    drafted = draft_batch(ctx, engine, batch)
    try:
        with open(marker, "x"):
            pass
    except FileExistsError:
        return drafted
    os._exit(1)


def test_a_killed_executor_is_retried_and_each_customer_gets_one_offer(
    spark: Any, shop: Shop, tmp_path: Path
) -> None:
    from pyspark import cloudpickle

    expected, _ = _local_dry_run(shop)
    marker = tmp_path / "died"
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the executors import it
    try:
        out = io.StringIO()
        summary = _run(shop, spark, out, draft=functools.partial(_dies_once, str(marker)))
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert marker.exists(), "no executor died: the test did not test anything"
    lines = read_lines(out.getvalue())
    assert summary.written == len(expected)
    _assert_once(shop, lines, {line["customer_id"] for line in expected})


def test_two_spark_jobs_at_once_give_each_customer_one_offer(spark: Any, shop: Shop) -> None:
    expected, _ = _local_dry_run(shop)
    outputs = [io.StringIO(), io.StringIO()]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def job(out: io.StringIO) -> None:
        try:
            start.wait()
            _run(shop, spark, out)
        except BaseException as exc:  # reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=job, args=(out,)) for out in outputs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    lines = [line for out in outputs for line in read_lines(out.getvalue())]
    _assert_once(shop, lines, {line["customer_id"] for line in expected})


# ---- the command as a user runs it ----------------------------------------------------


def _cli(shop: Shop, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recsys", "campaign", *args],
        env={**os.environ, **shop.env, "RECSYS_LOG_LEVEL": "warning", **env},
        capture_output=True, text=True, timeout=300, check=False,
    )


def _rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(contact_log)).scalar_one())


@pytest.mark.slow
def test_cli_campaign_on_spark(shop: Shop, tmp_path: Path) -> None:
    expected, _ = _local_dry_run(shop)
    out = tmp_path / "offers.jsonl"
    done = _cli(shop, "anniversary", "--date", DAY.isoformat(), "--out", str(out),
                "--engine", "spark", "--spark-master", "local[2]")
    assert done.returncode == 0, done.stderr
    assert f"written {len(expected)}" in done.stderr
    lines = read_lines(out.read_text(encoding="utf-8"))
    _same_offers(lines, expected)
    _assert_once(shop, lines, {line["customer_id"] for line in expected})


def test_cli_spark_errors_record_nothing(shop: Shop, tmp_path: Path) -> None:
    before = _rows(shop.engine)
    day = DAY.isoformat()
    hidden = tmp_path / "hide" / "pyspark"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('hidden by the test')\n")
    missing = _cli(shop, "anniversary", "--date", day, "--engine", "spark",
                   PYTHONPATH=str(hidden.parent))
    assert missing.returncode == 1
    assert "pip install -e '.[spark]'" in missing.stderr

    unreachable = _cli(shop, "anniversary", "--date", day, "--engine", "spark",
                       "--spark-master", "spark://127.0.0.1:1")
    assert unreachable.returncode == 1 and "does not answer" in unreachable.stderr

    wrong = _cli(shop, "anniversary", "--date", day, "--engine", "hadoop")
    assert wrong.returncode != 0 and "local or spark" in wrong.stderr

    for case, url in bad_store_urls().items():
        bad = _cli(shop, "anniversary", "--date", day, "--engine", "spark",
                   "--spark-master", "local[2]", RECSYS_DATABASE_URL=url)
        assert bad.returncode == 1, case
        assert "cannot open the store postgresql" in bad.stderr and "s3cret" not in bad.stderr
    assert _rows(shop.engine) == before
