"""The rule learners as they were before issue 20, kept as the oracle of the fast ones.

`recsys.rules.categories.learn_category_behaviour` and
`recsys.rules.learned_complements.learn_complements` now work on packed integer keys
(several times faster); these are the string-keyed versions they replaced, verbatim but
for their names, docstrings and the key `_classify` reads the scope from.
`tests/training/test_rules_learning.py` checks that both give the same tables on
generated stores: a change of what is learned changes both.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from recsys.rules.categories import (
    ITEM_SCOPE,
    CategoryBehaviour,
    _classify,
    _item_categories,
)
from recsys.rules.config import CategoriesConfig, LearnedComplementsConfig
from recsys.rules.learned_complements import (
    Complement,
    LearnedComplements,
    _significant,
    _without_substitutes,
)


def reference_category_behaviour(
    purchases: pl.DataFrame,
    item_category: Mapping[str, str] | pl.DataFrame,
    config: CategoriesConfig,
) -> dict[str, CategoryBehaviour]:
    item_categories = _item_categories(item_category)
    if purchases.is_empty():
        return {}
    quantity = pl.col("quantity") if "quantity" in purchases.columns else pl.lit(1)
    bought = (
        purchases.lazy()
        .filter(quantity.fill_null(1) > 0)
        .select(
            pl.col("customer_id").cast(pl.String),
            pl.col("item_id").cast(pl.String),
            pl.col("purchased_at").cast(pl.Date).alias("day"),
        )
    )
    in_categories = bought.join(item_categories.lazy(), on="item_id", how="inner").filter(
        ~pl.col("category").str.starts_with(ITEM_SCOPE)
    )
    by_category = in_categories.select(
        pl.col("category").alias("scope"), "customer_id", "day"
    ).unique()
    # A consumable comes back as the same item, so a category is one only if its buyers
    # rebuy the same items: readers buy another novel, rarely the same one again.
    same_item = (
        in_categories.group_by("category", "customer_id", "item_id")
        .agg(pl.col("day").n_unique().alias("n_days"))
        .filter(pl.col("n_days") >= 2)
        .group_by("category")
        .agg(pl.col("customer_id").n_unique().alias("same_item_buyers"))
        .rename({"category": "scope"})
    )
    by_item = bought.select(
        (pl.lit(ITEM_SCOPE) + pl.col("item_id")).alias("scope"), "customer_id", "day"
    ).unique()
    last_days = bought.group_by("customer_id").agg(pl.col("day").max().alias("last_day"))
    needed = (
        pl.when(pl.col("scope").str.starts_with(ITEM_SCOPE))
        .then(pl.lit(config.item_min_buyers))
        .otherwise(pl.lit(config.min_buyers))
    )
    stats = (
        pl.concat([
            _reference_scope_stats(by_category, last_days),
            _reference_scope_stats(by_item, last_days),
        ])
        .filter((pl.col("support") >= needed) & (pl.col("returning") >= needed))
        .join(same_item, on="scope", how="left")
        .with_columns(
            pl.when(pl.col("scope").str.starts_with(ITEM_SCOPE))
            .then(pl.col("repeat_buyers"))
            .otherwise(pl.col("same_item_buyers").fill_null(0))
            .alias("same_item_buyers")
        )
        .collect()
    )
    table: dict[str, CategoryBehaviour] = {}
    for row in stats.iter_rows(named=True):
        table[row["scope"]] = _classify({**row, "name": row["scope"]}, config)
    return dict(sorted(table.items()))


def _reference_scope_stats(days: pl.LazyFrame, last_days: pl.LazyFrame) -> pl.LazyFrame:
    # The gaps in one vectorised pass over the sorted rows (null at a buyer's first day),
    # then plain column aggregates: a per-group `diff().median()` expression took polars'
    # slow per-group path, over a minute for 1.8M (scope, buyer) groups.
    first_of_buyer = (pl.col("scope") != pl.col("scope").shift(1)) | (
        pl.col("customer_id") != pl.col("customer_id").shift(1)
    )
    per_buyer = (
        days.sort("scope", "customer_id", "day")
        .with_columns(
            pl.when(first_of_buyer.fill_null(True))
            .then(None)
            .otherwise((pl.col("day") - pl.col("day").shift(1)).dt.total_days())
            .alias("gap")
        )
        .group_by("scope", "customer_id")
        .agg(pl.len().alias("n_days"), pl.col("day").min().alias("first"), pl.col("gap").median())
        .join(last_days, on="customer_id", how="left")
    )
    return per_buyer.group_by("scope").agg(
        pl.len().alias("support"),
        (pl.col("last_day") > pl.col("first")).sum().alias("returning"),
        (pl.col("n_days") >= 2).sum().alias("repeat_buyers"),
        pl.col("gap").median().alias("interval"),
        pl.col("gap").quantile(0.25, interpolation="linear").alias("q25"),
        pl.col("gap").quantile(0.75, interpolation="linear").alias("q75"),
    )


def reference_complements(
    purchases: pl.DataFrame,
    config: LearnedComplementsConfig,
    item_category: pl.DataFrame | None = None,
) -> LearnedComplements:
    quantity = pl.col("quantity") if "quantity" in purchases.columns else pl.lit(1)
    events = (
        purchases.lazy()
        .filter(quantity.fill_null(1) > 0)
        .select(
            pl.col("customer_id").cast(pl.String),
            pl.col("item_id").cast(pl.String),
            (pl.col("purchased_at").cast(pl.Date).cast(pl.Int32)).alias("day"),
        )
        .unique()
        .collect()
    )
    if events.is_empty():
        return LearnedComplements()
    n_customers = events.get_column("customer_id").n_unique()

    # Dense integer codes: the self-join below is the expensive step, and it is
    # several times faster and smaller on integers than on string ids.
    item_ids = events.get_column("item_id").unique().sort()
    n_items = item_ids.len()
    item_codes = pl.DataFrame(
        {"item_id": item_ids, "item": pl.arange(0, n_items, eager=True, dtype=pl.UInt32)}
    )
    customers = events.get_column("customer_id").unique()
    customer_codes = pl.DataFrame(
        {
            "customer_id": customers,
            "customer": pl.arange(0, customers.len(), eager=True, dtype=pl.UInt32),
        }
    )
    coded = events.join(item_codes, on="item_id").join(customer_codes, on="customer_id")
    buyers = coded.group_by("item").agg(pl.col("customer").n_unique().alias("buyers"))
    # An item with fewer buyers than min_support cannot reach it in any pair.
    frequent = buyers.filter(pl.col("buyers") >= config.min_support).get_column("item")
    coded = coded.filter(pl.col("item").is_in(frequent.implode())).select("customer", "item", "day")

    # Bucketing days by window width puts every pair within the window in the
    # same or the next bucket, so the self-join only pairs purchases that can
    # qualify instead of every pair of a heavy buyer's whole history. Same-bucket
    # matches come in both orientations (kept once: item < other); next-bucket
    # matches in one, so their pair key is made orientation-free with min/max.
    width = config.window_days + 1
    left = coded.with_columns((pl.col("day") // width).alias("bucket"))
    right = pl.concat(
        [
            left.with_columns(pl.lit(False).alias("shifted")),
            left.with_columns(pl.col("bucket") - 1, pl.lit(True).alias("shifted")),
        ]
    ).rename({"item": "other", "day": "other_day"})
    pair = (
        pl.min_horizontal("item", "other").cast(pl.UInt64) * n_items
        + pl.max_horizontal("item", "other")
    ).alias("pair")
    supported = (
        left.lazy()
        .join(right.lazy(), on=["customer", "bucket"], how="inner")
        .filter(
            (pl.col("item") != pl.col("other"))
            & (pl.col("shifted") | (pl.col("item") < pl.col("other")))
            & ((pl.col("day") - pl.col("other_day")).abs() <= config.window_days)
        )
        .select("customer", pair)
        .unique()
        .group_by("pair")
        .agg(pl.len().alias("support"))
        .filter(pl.col("support") >= config.min_support)
        .select(
            (pl.col("pair") // n_items).cast(pl.UInt32).alias("a"),
            (pl.col("pair") % n_items).cast(pl.UInt32).alias("b"),
            "support",
        )
    )
    # Lift is symmetric, but each item keeps its own top list: count both directions.
    directed = pl.concat(
        [
            supported.select(pl.col("a").alias("item"), pl.col("b").alias("other"), "support"),
            supported.select(pl.col("b").alias("item"), pl.col("a").alias("other"), "support"),
        ]
    )
    other_buyers = buyers.lazy().rename({"item": "other", "buyers": "other_buyers"})
    scored = (
        directed.join(buyers.lazy(), on="item")
        .join(other_buyers, on="other")
        .with_columns(
            (
                pl.col("support").cast(pl.Float64)
                * n_customers
                / (pl.col("buyers").cast(pl.Float64) * pl.col("other_buyers"))
            ).alias("lift")
        )
        .filter(pl.col("lift") >= config.min_lift)
        .join(item_codes.lazy(), on="item")
        .join(item_codes.lazy().rename({"item": "other", "item_id": "other_id"}), on="other")
        .collect()
    )
    if item_category is not None and config.exclude_same_category:
        scored = _without_substitutes(scored, item_category)
    scored = _significant(scored, n_customers, config.max_p_value)
    ranked = (
        scored.sort(
            ["item_id", "support", "lift_low", "other_id"],
            descending=[False, True, True, False],
        )
        .group_by("item_id", maintain_order=True)
        .head(config.max_per_item)
    )
    by_item: dict[str, list[Complement]] = {}
    for anchor, other, lift, support in ranked.select(
        "item_id", "other_id", "lift", "support"
    ).iter_rows():
        by_item.setdefault(anchor, []).append(Complement(other, round(lift, 6), int(support)))
    return LearnedComplements({anchor: tuple(found) for anchor, found in by_item.items()})
