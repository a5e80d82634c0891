"""Complement precision: do the complements shown with an item get bought with it?

For every order in the test window and every item in it that has complements to
show (`recsys.rules.complements.complements_for`: the retailer's configured
categories first, then the learned pairs), the shown list is that item's top-K
complements. It is a hit when the customer buys a shown item in the same order
(its other lines) or in their next order inside the test window. Two baselines
show as many items for the same anchors, learned on the same train side:

- `co-occurrence`: the items most often in the same train order as the anchor
  ("customers who bought this also bought"), with no popularity correction;
- `popular`: the best sellers of the train side.

Reported per list: precision (shown items bought / shown) and hit rate (lists
with at least one shown item bought). Anchors with nothing to show are skipped
for all three, so the rows compare the same moments.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from recsys.records import Item
from recsys.rules.complements import complementary_categories, complements_for
from recsys.rules.config import ComplementsConfig
from recsys.rules.learned_complements import LearnedComplements

METHODS = ("complements", "co-occurrence", "popular")
# A held-out order of a wholesaler has dozens of lines; anchors beyond this are sampled.
MAX_ANCHORS = 20_000


@dataclass(frozen=True, slots=True)
class MethodScore:
    precision: float
    hit_rate: float

    def to_json(self) -> dict[str, float]:
        return {"precision": round(self.precision, 6), "hit_rate": round(self.hit_rate, 6)}


@dataclass(frozen=True, slots=True)
class AnchorScores:
    """Each method's scores over `anchors` (order, item) moments."""

    anchors: int
    methods: dict[str, MethodScore]

    def to_json(self) -> dict[str, Any]:
        return {
            "anchors": self.anchors,
            **{name: score.to_json() for name, score in self.methods.items()},
        }


@dataclass(frozen=True, slots=True)
class ComplementPrecision:
    """Complement precision at `k` over the (order, item) moments of `orders` test orders.

    `scores` has the scope `all`, and `configured` (anchors whose category the
    retailer's map covers) and `learned` (the others) where such anchors occur.
    """

    k: int
    orders: int
    scores: dict[str, AnchorScores]
    top_pairs: tuple[tuple[str, str, float, int], ...]  # anchor, complement, lift, support

    def to_json(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "orders": self.orders,
            "scores": {scope: score.to_json() for scope, score in self.scores.items()},
            "top_pairs": [
                {"anchor": a, "complement": b, "lift": lift, "support": support}
                for a, b, lift, support in self.top_pairs
            ],
        }


def _orders(lines: pl.DataFrame) -> pl.DataFrame:
    """One row per order: customer, time and the set of bought item ids, in time order."""
    return (
        lines.filter(pl.col("quantity") > 0)
        .group_by("customer_id", "order_id")
        .agg(pl.col("purchased_at").min(), pl.col("item_id").unique().alias("items"))
        .sort("customer_id", "purchased_at", "order_id")
    )


def co_occurrence(train: pl.DataFrame, limit: int) -> dict[str, list[str]]:
    """item -> the items most often in the same order with it (ties by item id), raw counts."""
    baskets = (
        train.filter(pl.col("quantity") > 0)
        .select(pl.col("order_id").cast(pl.String), "item_id")
        .unique()
    )
    pairs = (
        baskets.join(baskets.rename({"item_id": "other"}), on="order_id")
        .filter(pl.col("item_id") != pl.col("other"))
        .group_by("item_id", "other")
        .len()
        .sort(["item_id", "len", "other"], descending=[False, True, False])
        .group_by("item_id", maintain_order=True)
        .head(limit)
    )
    out: dict[str, list[str]] = {}
    for item_id, other in pairs.select("item_id", "other").iter_rows():
        out.setdefault(item_id, []).append(other)
    return out


def best_sellers(train: pl.DataFrame, limit: int) -> list[str]:
    counts = (
        train.filter(pl.col("quantity") > 0)
        .group_by("item_id")
        .agg(pl.col("customer_id").n_unique().alias("buyers"))
        .sort(["buyers", "item_id"], descending=[True, False])
        .head(limit)
    )
    return counts.get_column("item_id").to_list()


def complement_precision(
    train: pl.DataFrame,
    test: pl.DataFrame,
    catalog: Mapping[str, Item],
    learned: LearnedComplements,
    config: ComplementsConfig,
    *,
    k: int = 5,
    top_pairs: int = 10,
    seed: int = 0,
) -> ComplementPrecision:
    """Complement precision at `k` of `learned` (+ the configured map) and both baselines.

    `train` and `test` are purchase lines (`customer_id`, `order_id`, `item_id`,
    `quantity`, `purchased_at`) before and inside the test window.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    ranked_sellers = best_sellers(train, 1000)
    sellers = ranked_sellers[: k + 1]
    popularity = {item: float(-rank) for rank, item in enumerate(ranked_sellers)}
    together = co_occurrence(train, k + 1)
    orders = _orders(test)
    moments: list[tuple[str, frozenset[str]]] = []  # (anchor, what was bought with / next)
    rows = orders.select("customer_id", "items").rows()
    for i, (customer_id, items) in enumerate(rows):
        later: set[str] = set()
        if i + 1 < len(rows) and rows[i + 1][0] == customer_id:
            later = set(rows[i + 1][1])
        basket = set(items)
        for anchor in sorted(basket):
            moments.append((anchor, frozenset((basket | later) - {anchor})))
    if len(moments) > MAX_ANCHORS:
        moments = random.Random(seed).sample(moments, MAX_ANCHORS)

    sums: dict[str, dict[str, list[float]]] = {}
    shown_cache: dict[str, tuple[str, list[str]]] = {}
    for anchor, truth in moments:
        cached = shown_cache.get(anchor)
        if cached is None:
            item = catalog.get(anchor)
            group = (
                "configured"
                if item is not None and complementary_categories(item.category, config)
                else "learned"
            )
            found = complements_for([anchor], catalog, learned, config, popularity, limit=k)
            cached = shown_cache[anchor] = (group, [c.item_id for c in found])
        group, shown = cached
        if not shown:
            continue
        n = len(shown)
        lists: dict[str, Sequence[str]] = {
            "complements": shown,
            "co-occurrence": [i for i in together.get(anchor, ()) if i != anchor][:n],
            "popular": [i for i in sellers if i != anchor][:n],
        }
        for scope in ("all", group):
            by_method = sums.setdefault(scope, {})
            for name, shown_list in lists.items():
                hits = sum(1 for item in shown_list if item in truth)
                total = by_method.setdefault(name, [0.0, 0.0, 0.0])
                total[0] += hits / n
                total[1] += hits > 0
                total[2] += 1
    scores = {
        scope: AnchorScores(
            int(next(iter(by_method.values()))[2]),
            {
                name: MethodScore(precision / count, hits / count)
                for name, (precision, hits, count) in by_method.items()
            },
        )
        for scope, by_method in sums.items()
    }
    # The pairs with the most evidence, each pair once (lift is symmetric).
    best: dict[frozenset[str], tuple[str, str, float, int]] = {}
    for anchor, pairs_of_anchor in learned.by_item.items():
        for pair in pairs_of_anchor[:1]:
            best.setdefault(
                frozenset((anchor, pair.item_id)), (anchor, pair.item_id, pair.lift, pair.support)
            )
    pairs = sorted(best.values(), key=lambda row: (-row[3], -row[2], row[0]))[:top_pairs]
    return ComplementPrecision(k, orders.height, scores, tuple(pairs))
