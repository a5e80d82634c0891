"""Replays: a model trained as of CUT, asked with `as_of=CUT`, serves the evaluation's lists."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl
from sqlalchemy import Engine

from api.app import create_app
from recsys.rules.config import load_rules
from recsys.settings import Settings
from recsys.store.catalog import catalog_frame
from recsys.store.purchases import purchase_frame
from training.artifacts import load_model
from training.evaluate import rules_inputs, served_lists, time_split
from training.rules_learning import learn_rule_extras
from training.train import reference_time, train_model

from .conftest import TestClient, load_demo


def test_api_as_of_reproduces_the_evaluation_lists(
    engine: Engine, demo_dir: Path, tmp_path: Path
) -> None:
    load_demo(engine, demo_dir, tmp_path / "rejects")
    with engine.connect() as conn:
        purchases = purchase_frame(conn)
        catalog = catalog_frame(conn)
    rules = load_rules(None)
    split = time_split(purchases, 30)
    train = purchases.filter(pl.col("purchased_at") < split.cut)
    now = reference_time(train, split.cut, half_life_days=60.0)
    assert now == split.cut
    settings = Settings(home=tmp_path, database_url=engine.url.render_as_string(False))
    result = train_model(
        train,
        catalog,
        model="als",
        params={"iterations": 5},
        now=now,
        models_dir=settings.models_dir,
        extras=learn_rule_extras(train, catalog, rules),
    )
    recommender = load_model(settings.models_dir, result.version).recommender
    customers = sorted(split.truth_all)[:25]
    for placement in ("newsletter", "order_confirmation"):
        expected = served_lists(
            recommender,
            "als",
            customers,
            split.train,
            split.cut,
            rules_inputs(split.train, catalog, rules),
            6,
            placement,
        ).lists
        compared = 0
        with TestClient(create_app(settings, engine=engine)) as client:
            for customer_id in customers:
                answer = client.get(
                    f"/v1/customers/{customer_id}/recommendations",
                    params={"limit": 6, "placement": placement, "as_of": split.cut.isoformat()},
                )
                assert answer.status_code == 200, answer.text
                if answer.json()["suppressed"] is not None:
                    continue  # opted out: the evaluation leaves the contact policy out
                served = [item["item_id"] for item in answer.json()["items"]]
                assert served == expected[customer_id], (placement, customer_id)
                compared += 1
        assert compared >= 20


def test_a_far_future_as_of_is_refused(engine: Engine, demo_dir: Path, tmp_path: Path) -> None:
    load_demo(engine, demo_dir, tmp_path / "rejects")
    with engine.connect() as conn:
        purchases = purchase_frame(conn)
    newest = purchases["purchased_at"].max()
    assert reference_time(purchases, None) == newest
    import pytest

    from training.errors import TrainingError

    with pytest.raises(TrainingError, match="would weigh ~0"):
        reference_time(purchases, newest + timedelta(days=60 * 101), half_life_days=60.0)
