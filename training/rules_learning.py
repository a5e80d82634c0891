"""What the rules layer learns from history at training time, saved in the model artifact."""

from __future__ import annotations

import polars as pl

from recsys.models.base import JSONValue
from recsys.offers import CATEGORY_BEHAVIOUR_KEY, COMPLEMENTS_KEY
from recsys.rules._packed import bought_days
from recsys.rules.categories import ITEM_SCOPE, behaviours_to_dict, learn_category_behaviour
from recsys.rules.config import RulesConfig
from recsys.rules.learned_complements import learn_complements


def learn_rule_extras(
    purchases: pl.DataFrame, catalog: pl.DataFrame, rules: RulesConfig
) -> dict[str, JSONValue]:
    """Category behaviour (durable / consumable / regular) and co-purchase complements."""
    categories = catalog.select(
        "item_id",
        pl.coalesce(pl.col("category"), pl.lit(ITEM_SCOPE) + pl.col("item_id")).alias("category"),
    ).drop_nulls()
    # Both learners start from the same bought (customer, item, day) rows: built once.
    bought = bought_days(purchases, "item")
    behaviours = learn_category_behaviour(purchases, categories, rules.categories, bought=bought)
    complements = learn_complements(
        purchases, rules.complements.learned, categories, bought=bought
    )
    return {
        CATEGORY_BEHAVIOUR_KEY: behaviours_to_dict(behaviours),  # type: ignore[dict-item]
        COMPLEMENTS_KEY: complements.to_dict(),  # type: ignore[dict-item]
    }
