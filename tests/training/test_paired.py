"""The paired model: a rebuy model for the newsletter, a discovery model for anniversaries."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from recsys.models import PairedRecommender, create_model
from recsys.rules.config import load_rules
from training.artifacts import list_versions, load_model, read_meta
from training.errors import TrainingError
from training.evaluate import rules_inputs, served_lists
from training.serving import load_serving_model
from training.train import fit_model, train_model

PAIR = {
    "rebuy": "repurchase",
    "discovery": "als",
    "discovery_params": {"factors": 4, "iterations": 3},
}


def _ids(scored: dict[str, object]) -> dict[str, list[str]]:
    return {c: [s.item_id for s in items] for c, items in scored.items()}  # type: ignore[attr-defined]


def test_each_part_is_its_own_model_on_its_own_matrix(
    purchases: pl.DataFrame, catalog: pl.DataFrame, now: datetime
) -> None:
    pair = fit_model(purchases, catalog, model="paired", params=PAIR, now=now, num_threads=1)
    rec = pair.recommender
    assert isinstance(rec, PairedRecommender)
    alone = {
        name: fit_model(purchases, catalog, model=name, params=own, now=now, num_threads=1)
        for name, own in (("repurchase", {}), ("als", PAIR["discovery_params"]))
    }
    users = sorted(set(purchases["customer_id"].to_list()))[:20]
    # the same lists as each model fitted alone, each with its own matrix recipe
    assert _ids(rec.for_placement(True).recommend_batch(users, 5)) == _ids(
        alone["repurchase"].recommender.recommend_batch(users, 5)
    )
    assert _ids(rec.for_placement(False).recommend_batch(users, 5, exclude_seen=True)) == _ids(
        alone["als"].recommender.recommend_batch(users, 5, exclude_seen=True)
    )
    # placement-blind calls answer with the rebuy model, similar items with discovery's
    assert _ids(rec.recommend_batch(users, 5)) == _ids(
        alone["repurchase"].recommender.recommend_batch(users, 5)
    )
    assert [s.item_id for s in rec.similar_items("I2", 4)] == [
        s.item_id for s in alone["als"].recommender.similar_items("I2", 4)
    ]
    assert rec.params["rebuy_matrix"] != rec.params["discovery_matrix"]


def test_saved_pair_loads_and_serves_each_placement_from_its_model(
    purchases: pl.DataFrame, catalog: pl.DataFrame, tmp_path: Path, now: datetime
) -> None:
    result = train_model(
        purchases, catalog, model="paired", params=PAIR, now=now, models_dir=tmp_path,
        num_threads=1,
    )
    fitted = fit_model(purchases, catalog, model="paired", params=PAIR, now=now, num_threads=1)
    loaded = load_model(tmp_path, result.version).recommender
    assert isinstance(loaded, PairedRecommender)
    assert (loaded.rebuy.name, loaded.discovery.name) == ("repurchase", "als")
    users = sorted(set(purchases["customer_id"].to_list()))
    for rebuys in (True, False):
        want = fitted.recommender.for_placement(rebuys)  # type: ignore[attr-defined]
        got = loaded.for_placement(rebuys)
        assert _ids(got.recommend_batch(users, 6, exclude_seen=True)) == _ids(
            want.recommend_batch(users, 6, exclude_seen=True)
        )
    assert read_meta(tmp_path, result.version).model == "paired"
    assert [v.model for v in list_versions(tmp_path)] == ["paired"]

    # through the API's own code path: the anniversary list is the discovery model's
    rules = load_rules(None)
    inputs = rules_inputs(purchases, catalog, rules)
    served = load_serving_model(tmp_path, result.version)
    assert served.for_placement("anniversary", rules) is served.recommender.discovery  # type: ignore[attr-defined]
    assert served.for_placement("newsletter", rules) is served.recommender.rebuy  # type: ignore[attr-defined]
    for placement, part in (("anniversary", loaded.discovery), ("newsletter", loaded.rebuy)):
        pair_lists = served_lists(loaded, "paired", users, purchases, now, inputs, 6, placement)
        part_lists = served_lists(part, part.name, users, purchases, now, inputs, 6, placement)
        assert pair_lists.lists == part_lists.lists, placement
        assert any(pair_lists.lists.values())


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"rebuy": "paired"}, "rebuy must be one of"),
        ({"discovery": "nope"}, "discovery must be one of"),
        ({"discovery": "als", "discovery_params": {"factorz": 3}}, "factorz"),
    ],
)
def test_bad_pairs_are_clear_errors_and_save_nothing(
    purchases: pl.DataFrame, tmp_path: Path, now: datetime, params: dict[str, object], match: str
) -> None:
    with pytest.raises(TrainingError, match=match):
        train_model(purchases, None, model="paired", params=params, now=now, models_dir=tmp_path)
    assert list_versions(tmp_path) == []


def test_a_pair_needs_the_same_customers_and_items(
    purchases: pl.DataFrame, now: datetime
) -> None:
    some = purchases.filter(pl.col("customer_id") != "C1")
    one = fit_model(purchases, None, model="repurchase", now=now).recommender
    other = fit_model(some, None, model="popular", now=now).recommender
    with pytest.raises(ValueError, match="same customers and items"):
        PairedRecommender.of(one, other)
    assert create_model("paired").params["rebuy"] == "tifu-knn"
