"""evaluate() on a small synthetic frame: split, both targets, report files."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
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
    models = {"popular", "repurchase", "tifu-knn", "item-knn", "bpr", "als", "hybrid"}
    selection = report.selection
    assert selection is not None and report.served == selection.chosen
    assert set(selection.scores) == models
    # chosen on the validation window, which ends where the test window starts
    assert selection.window_end < report.cut
    assert selection.score == max(selection.scores.values())
    served_rows = {f"served@{p}" for p in ("newsletter", "anniversary", "order_confirmation")}
    # a pair when the best newsletter and the best anniversary list come from two models
    paired = selection.chosen == "paired"
    assert paired == (selection.rebuy != selection.discovery)
    assert selection.discovery_scores[selection.discovery] == max(
        selection.discovery_scores.values()
    )
    pair_rows = {"paired+rules"} if paired else set()
    assert {r.model for r in report.results} == (
        models | {f"{m}+rules" for m in models} | served_rows | pair_rows
    )
    assert {r.target for r in report.results} == {"all", "new"}
    for r in report.results:
        assert r.users > 0
        for name in ("precision", "recall", "ndcg", "map", "hit_rate", "coverage"):
            assert 0.0 <= r.metrics[f"{name}@5"] <= 1.0
    # the served newsletter row is the chosen model's `+rules` row: same lists
    assert (
        report.result("served@newsletter", "all").metrics
        == report.result(f"{selection.chosen}+rules", "all").metrics
        == report.result(f"{selection.rebuy}+rules", "all").metrics
    )
    # the newsletter's recall on new items is compared with its own model's raw ranking
    assert report.rules is not None
    assert report.rules.recall_new_raw == pytest.approx(
        report.result(selection.rebuy, "new").metrics["recall@5"]
    )
    # own purchases predict re-orders in this data, so repurchase beats popularity
    assert (
        report.result("repurchase", "all").metrics["ndcg@5"]
        > report.result("popular", "all").metrics["ndcg@5"]
    )
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["k"] == 5
    assert len(saved["results"]) == 2 * (2 * len(models) + 3 + len(pair_rows))
    assert saved["selection"]["chosen"] == selection.chosen
    for row in served_rows | pair_rows | {f"{m}+rules" for m in models}:
        assert saved["care"][row]["total_per_1000"] == 0.0, row
    assert saved["rules"]["served"] == selection.chosen
    assert saved["rules"]["row"] == "served@newsletter"
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2
    assert "Care violations" in page and "served@newsletter" in page
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
    for row in ("als+rules", "served@newsletter", "served@anniversary"):
        ruled = report.care[row]
        assert ruled.total == 0 and ruled.slots == 5 * lists, row
    assert {r.target for r in report.results if r.model == "als+rules"} == {"all", "new"}
    assert report.rules is not None and report.rules.removed["eligibility"] > 0
    share = report.rules.recall_new_share
    raw = report.result("als", "new").metrics["recall@5"]
    assert share is not None and share == pytest.approx(
        report.result("served@newsletter", "new").metrics["recall@5"] / raw
    )


def test_served_must_be_evaluated(purchases: pl.DataFrame, now: datetime) -> None:
    with pytest.raises(TrainingError, match="served model"):
        evaluate(purchases, None, models=("popular",), served="als", now=now)
    # auto needs something to choose from
    with pytest.raises(TrainingError, match="at least two candidate models"):
        evaluate(purchases, None, models=("popular",), now=now)
    report = evaluate(purchases, None, models=("popular",), served=None, now=now)
    assert report.care == {} and report.rules is None


def test_an_empty_test_window_is_a_clear_error(purchases: pl.DataFrame, now: datetime) -> None:
    # every customer of the last day is new: nobody to evaluate
    last = purchases["purchased_at"].max()
    newcomers = purchases.filter(pl.col("purchased_at") < last - timedelta(days=40)).vstack(
        purchases.filter(pl.col("purchased_at") >= last - timedelta(days=1)).with_columns(
            (pl.lit("new-") + pl.col("customer_id")).alias("customer_id")
        )
    )
    with pytest.raises(TrainingError, match="no customers who also bought before it"):
        evaluate(newcomers, None, holdout_days=30, models=("popular", "repurchase"))


def test_a_saved_version_is_scored_like_the_model_fitted_in_the_evaluation(
    purchases: pl.DataFrame, catalog: pl.DataFrame, tmp_path: Path, now: datetime
) -> None:
    """`recsys train --as-of CUT` then `evaluate --artifact VERSION`: the same rows as the
    same model fitted by the evaluation (popularity is deterministic)."""
    from training.evaluate import saved_model
    from training.train import train_model

    cut = now - timedelta(days=30)
    before = purchases.filter(pl.col("purchased_at") < cut)
    version = train_model(before, catalog, model="popular", now=cut,
                          models_dir=tmp_path, candidates=0).version
    saved = saved_model(tmp_path, version)
    assert saved.trained_until < cut and saved.params["version"] == version
    report = evaluate(purchases, catalog, holdout_days=30, k=5, ks=(5,), now=now,
                      models=["popular"], served="popular", artifacts=[saved])
    for target in ("all", "new"):
        for suffix in ("", "+rules"):
            got = report.result(f"{version}{suffix}", target)
            assert got.metrics == report.result(f"popular{suffix}", target).metrics
            assert got.users > 0
    assert report.care[f"{version}+rules"] == report.care["popular+rules"]

    late = train_model(purchases, catalog, model="popular", now=now, models_dir=tmp_path,
                       candidates=0, make_current=False).version
    with pytest.raises(TrainingError, match="not before the test window starts"):
        evaluate(purchases, catalog, holdout_days=30, k=5, ks=(5,), now=now,
                 models=["popular"], served="popular", artifacts=[saved_model(tmp_path, late)])
