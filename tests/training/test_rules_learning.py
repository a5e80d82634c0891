"""`recsys train`'s inputs after issue 20's speed-ups: the same purchases, the same rules.

On a generated demo store in SQLite and (when configured) PostgreSQL: `purchase_frame`
(Arrow on SQLite, COPY on PostgreSQL) equals the plain SQLAlchemy query it replaced, and
`learn_rule_extras` (packed integer keys) equals the string-keyed learners it replaced
(`_reference_learning`), to the last digit of every figure.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sqlalchemy import Engine, insert

from recsys.data.demo import generate_demo
from recsys.ingest import ingest_file
from recsys.ingest.mapping import ColumnMap
from recsys.offers import CATEGORY_BEHAVIOUR_KEY, COMPLEMENTS_KEY
from recsys.rules.categories import ITEM_SCOPE, behaviours_to_dict, learn_category_behaviour
from recsys.rules.config import LearnedComplementsConfig, RulesConfig, load_rules
from recsys.rules.learned_complements import learn_complements
from recsys.store.catalog import catalog_frame
from recsys.store.purchases import purchase_frame
from recsys.store.tables import order_lines, orders
from tests.store._queried import queried_purchases
from tests.training._reference_learning import (
    reference_category_behaviour,
    reference_complements,
)
from training.rules_learning import learn_rule_extras


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate_demo(out, customers=2500, items=120, seed=5)
    return out


def _load(engine: Engine, demo_dir: Path, rejects: Path) -> None:
    for kind, name in (
        ("catalog", "catalog.csv"),
        ("customers", "customers.csv"),
        ("transactions", "transactions.csv.gz"),
    ):
        ingest_file(engine, kind, demo_dir / name, ColumnMap(), rejects_dir=rejects)  # type: ignore[arg-type]


def _reference_extras(
    purchases: pl.DataFrame, catalog: pl.DataFrame, rules: RulesConfig
) -> dict[str, object]:
    categories = catalog.select(
        "item_id",
        pl.coalesce(pl.col("category"), pl.lit(ITEM_SCOPE) + pl.col("item_id")).alias("category"),
    ).drop_nulls()
    behaviours = reference_category_behaviour(purchases, categories, rules.categories)
    complements = reference_complements(purchases, rules.complements.learned, categories)
    return {
        CATEGORY_BEHAVIOUR_KEY: behaviours_to_dict(behaviours),
        COMPLEMENTS_KEY: complements.to_dict(),
    }


def _with_learned(rules: RulesConfig, learned: LearnedComplementsConfig) -> RulesConfig:
    complements = rules.complements.model_copy(update={"learned": learned})
    return rules.model_copy(update={"complements": complements})


def test_purchases_and_learned_rules_are_what_the_old_code_gave(
    engine: Engine, demo_dir: Path, tmp_path: Path
) -> None:
    _load(engine, demo_dir, tmp_path / "rejects")
    with engine.connect() as conn:
        purchases = purchase_frame(conn)
        expected = queried_purchases(conn)
        catalog = catalog_frame(conn)
    assert purchases.height > 10_000
    assert_frame_equal(purchases, expected)

    defaults = load_rules(None)
    no_categories = catalog.with_columns(pl.lit(None, dtype=pl.String).alias("category"))
    cases = [
        (defaults, catalog),
        # a week's window, looser thresholds: many more pairs, and the next-day buckets
        (_with_learned(defaults, LearnedComplementsConfig(
            window_days=7, min_support=2, min_lift=1.1, max_p_value=0.2,
        )), catalog),
        # a catalog without categories (as UCI's): every item is its own scope
        (_with_learned(defaults, LearnedComplementsConfig(exclude_same_category=False)),
         no_categories),
    ]
    for rules, items in cases:
        learned = learn_rule_extras(purchases, items, rules)
        reference = _reference_extras(purchases, items, rules)
        assert learned[CATEGORY_BEHAVIOUR_KEY] and learned[COMPLEMENTS_KEY]  # not vacuous
        assert json.dumps(learned, sort_keys=True) == json.dumps(reference, sort_keys=True)
        # learn_rule_extras hands both learners one bought-days frame; called alone, each
        # builds its own, with the same results
        categories = items.select(
            "item_id",
            pl.coalesce(pl.col("category"), pl.lit(ITEM_SCOPE) + pl.col("item_id"))
            .alias("category"),
        ).drop_nulls()
        alone = {
            CATEGORY_BEHAVIOUR_KEY: behaviours_to_dict(
                learn_category_behaviour(purchases, categories, rules.categories)
            ),
            COMPLEMENTS_KEY: learn_complements(
                purchases, rules.complements.learned, categories
            ).to_dict(),
        }
        assert json.dumps(alone, sort_keys=True) == json.dumps(reference, sort_keys=True)


def test_purchases_include_the_open_transactions_own_lines(
    engine: Engine, demo_dir: Path, tmp_path: Path
) -> None:
    """A connection that wrote and has not committed reads its own lines (on SQLite through
    its own driver: a separate reader could not see them)."""
    _load(engine, demo_dir, tmp_path / "rejects")
    with engine.begin() as conn:
        conn.execute(insert(orders).values(
            order_id="W-open", customer_id="C000001", purchased_at=datetime(2026, 11, 20, 9)
        ))
        conn.execute(insert(order_lines).values(
            order_id="W-open", item_id="I00001", quantity=2.0, unit_price=None, load_id="t"
        ))
        purchases = purchase_frame(conn)
        assert_frame_equal(purchases, queried_purchases(conn))
        assert "W-open" in purchases.get_column("order_id").to_list()
        conn.rollback()
