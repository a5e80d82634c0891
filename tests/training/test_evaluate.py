"""evaluate() on a small synthetic frame: split, both targets, report files."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from recsys.rules.config import parse_rules
from training.errors import TrainingError
from training.evaluate import evaluate, time_split

FAST = {
    "als": {"factors": 4, "iterations": 3},
    "hybrid": {"factors": 4, "iterations": 3},
    "bpr": {"factors": 4, "iterations": 5},
}


def test_time_split(purchases: pl.DataFrame, now: datetime) -> None:
    split = time_split(purchases, 30, now)
    assert split.train["purchased_at"].max() < split.cut  # type: ignore[operator]
    known = set(split.train["customer_id"].to_list())
    assert set(split.truth_all) <= known
    for customer, items in split.truth_new.items():
        bought = set(split.train.filter(pl.col("customer_id") == customer)["item_id"].to_list())
        assert items and not items & bought
        assert items <= split.truth_all[customer]


def test_split_needs_both_sides(purchases: pl.DataFrame, now: datetime) -> None:
    with pytest.raises(TrainingError):
        time_split(purchases, 1000, now)
    with pytest.raises(TrainingError):
        time_split(purchases.clear(), 30, now)


def test_evaluate_writes_reports(
    purchases: pl.DataFrame, catalog: pl.DataFrame, tmp_path: Path, now: datetime
) -> None:
    steps: list[str] = []
    report = evaluate(
        purchases,
        catalog,
        holdout_days=30,
        k=5,
        ks=(1, 5),
        now=now,
        params=FAST,
        out_dir=tmp_path,
        progress=lambda stage, _done, _total: steps.append(stage),
        num_threads=1,
    )
    models = {"popular", "repurchase", "item-knn", "bpr", "als", "hybrid"}
    assert {r.model for r in report.results} == models | {"hybrid+rules"}
    assert {r.target for r in report.results} == {"all", "new"}
    for r in report.results:
        assert r.users > 0
        for name in ("precision", "recall", "ndcg", "map", "hit_rate", "coverage"):
            assert 0.0 <= r.metrics[f"{name}@5"] <= 1.0
    # own purchases predict re-orders in this data, so repurchase beats popularity
    assert (
        report.result("repurchase", "all").metrics["ndcg@5"]
        > report.result("popular", "all").metrics["ndcg@5"]
    )
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["k"] == 5 and len(saved["results"]) == 14
    assert set(saved["care"]) == models | {"hybrid+rules"}
    assert saved["care"]["hybrid+rules"]["total_per_1000"] == 0.0
    assert saved["rules"]["served"] == "hybrid" and saved["rules"]["row"] == "hybrid+rules"
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2
    assert "Care violations" in page and "hybrid+rules" in page
    assert "<script" not in page and "http" not in page.split("base64")[0]
    assert steps[-1] == "done"


def test_unknown_model_fails_before_fitting(purchases: pl.DataFrame, now: datetime) -> None:
    with pytest.raises(TrainingError, match="unknown model"):
        evaluate(purchases, None, models=("popular", "nope"), now=now)


def test_care_counts_and_rules_on_row(
    purchases: pl.DataFrame, catalog: pl.DataFrame, now: datetime
) -> None:
    # the most bought item goes out of stock; odd items are durable (an override)
    top = purchases.group_by("item_id").agg(pl.len()).sort("len", descending=True)[0, "item_id"]
    odd = pl.col("item_id").str.slice(1).cast(pl.Int64) % 2 == 1
    catalog = catalog.with_columns(
        pl.when(odd).then(pl.lit("home/durables")).otherwise(pl.col("category")).alias("category"),
        (pl.col("item_id") != top).alias("in_stock"),
    )
    rules = parse_rules(
        {"categories": {"overrides": {"home/durables": {"class": "durable", "cooldown_days": 90}}}}
    )
    report = evaluate(
        purchases,
        catalog,
        holdout_days=30,
        k=5,
        ks=(5,),
        now=now,
        models=("popular", "repurchase", "als"),
        params=FAST,
        served="als",
        rules=rules,
        num_threads=1,
    )
    lists = len(time_split(purchases, 30, now).truth_all)
    popular = report.care["popular"]
    assert popular.lists == lists and popular.out_of_stock == lists  # the top item, every list
    repurchase = report.care["repurchase"]
    assert repurchase.durable_in_cooldown > 0 and repurchase.reoffered > 0
    ruled = report.care["als+rules"]
    assert ruled.total == 0 and ruled.slots == 5 * lists
    assert {r.target for r in report.results if r.model == "als+rules"} == {"all", "new"}
    assert report.rules is not None and report.rules.removed["eligibility"] > 0
    share = report.rules.recall_new_share
    raw = report.result("als", "new").metrics["recall@5"]
    assert share is not None and share == pytest.approx(
        report.result("als+rules", "new").metrics["recall@5"] / raw
    )


def test_served_must_be_evaluated(purchases: pl.DataFrame, now: datetime) -> None:
    with pytest.raises(TrainingError, match="served model"):
        evaluate(purchases, None, models=("popular",), now=now)
    report = evaluate(purchases, None, models=("popular",), served=None, now=now)
    assert report.care == {} and report.rules is None
