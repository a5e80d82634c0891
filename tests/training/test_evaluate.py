"""evaluate() on a small synthetic frame: split, both targets, report files."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

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
    assert {r.model for r in report.results} == models
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
    assert saved["k"] == 5 and len(saved["results"]) == 12
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2
    assert "<script" not in page and "http" not in page.split("base64")[0]
    assert steps[-1] == "done"


def test_unknown_model_fails_before_fitting(purchases: pl.DataFrame, now: datetime) -> None:
    with pytest.raises(TrainingError, match="unknown model"):
        evaluate(purchases, None, models=("popular", "nope"), now=now)
