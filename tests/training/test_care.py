"""Care-violation counting on small histories with known violations."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.records import Item, Purchase
from recsys.rules.candidates import Candidate, RuleContext
from recsys.rules.categories import CategoryBehaviour
from recsys.rules.config import CategoriesConfig, RulesConfig, parse_rules
from recsys.rules.pipeline import run_pipeline
from training.care import CareCounts, count_care_violations, item_violations, owned_items

NOW = datetime(2024, 6, 1, 12, 0)

CATALOG = {
    "tv-55": Item("tv-55", "TV 55", "electronics/tv/oled"),
    "tv-43": Item("tv-43", "TV 43", "electronics/tv"),
    "mount": Item("mount", "Wall mount", "electronics/tv-mounts"),
    "sofa": Item("sofa", "Sofa", "home/sofas"),
    "coffee": Item("coffee", "Coffee", "grocery/coffee"),
    "mug": Item("mug", "Mug", "home/mugs"),
    "gone": Item("gone", "Sold out", "home/mugs", in_stock=False),
}
RULES = parse_rules(
    {"categories": {"overrides": {"electronics/tv": {"class": "durable", "cooldown_days": 730}}}}
)
CONFIG = RULES.categories
LEARNED = {
    "home/sofas": CategoryBehaviour("home/sofas", "durable", 50, 0.01),
    "grocery/coffee": CategoryBehaviour("grocery/coffee", "consumable", 90, 0.8, interval_days=14),
}
SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.String(),
    "item_id": pl.String(),
    "order_id": pl.String(),
    "quantity": pl.Float64(),
    "unit_price": pl.Float64(),
    "purchased_at": pl.Datetime("us"),
}


def history(*lines: tuple[str, str, float, float]) -> pl.DataFrame:
    """(customer, item, days before NOW, quantity) -> a purchases frame."""
    rows = [
        (c, i, f"O{n}", q, 10.0, NOW - timedelta(days=d)) for n, (c, i, d, q) in enumerate(lines)
    ]
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")


def count(
    lists: dict[str, list[str]],
    frame: pl.DataFrame,
    config: CategoriesConfig = CONFIG,
    k: int | None = None,
    placement: str | None = None,
) -> CareCounts:
    return count_care_violations(
        lists, frame, CATALOG, LEARNED, config, NOW, k=k, placement=placement
    )


def test_another_tv_ten_days_after_a_tv_is_one_durable_violation() -> None:
    counts = count({"c": ["tv-43", "mount"]}, history(("c", "tv-55", 10, 1)))
    assert (counts.durable_in_cooldown, counts.out_of_stock, counts.reoffered) == (1, 0, 0)
    assert counts.total == 1 and counts.lists == 1 and counts.slots == 2
    assert counts.per_1000()["durable_in_cooldown_per_1000"] == 1000.0


def test_the_same_tv_again_breaks_two_kinds_but_counts_once_in_total() -> None:
    counts = count({"c": ["tv-55"]}, history(("c", "tv-55", 10, 1)))
    assert (counts.durable_in_cooldown, counts.reoffered, counts.total) == (1, 1, 1)


def test_cooldown_ends_and_a_full_return_lifts_it() -> None:
    assert count({"c": ["tv-43"]}, history(("c", "tv-55", 731, 1))).total == 0
    returned = history(("c", "tv-55", 10, 1), ("c", "tv-55", 5, -1))
    counts = count({"c": ["tv-43", "tv-55"]}, returned)
    assert counts.total == 0  # nothing owned: no block, and the returned TV is not "owned"


def test_learned_durable_blocks_its_own_category_with_the_default_cooldown() -> None:
    assert count({"c": ["sofa"]}, history(("d", "sofa", 1, 1))).total == 0  # someone else
    counts = count({"c": ["sofa"]}, history(("c", "sofa", 364, 1)))
    assert counts.durable_in_cooldown == 1  # default durable_cooldown_days = 365
    assert count({"c": ["sofa"]}, history(("c", "sofa", 366, 1))).durable_in_cooldown == 0


def test_out_of_stock_and_unknown_items() -> None:
    counts = count({"c": ["gone", "nowhere", "mug"], "d": ["mug"]}, history(("x", "mug", 3, 1)))
    assert counts.out_of_stock == 2 and counts.total == 2
    assert counts.per_1000()["out_of_stock_per_1000"] == 1000.0  # 2 violations / 2 lists


def test_reoffered_regular_and_consumables_before_their_interval() -> None:
    frame = history(("c", "mug", 100, 1), ("c", "coffee", 20, 1), ("d", "coffee", 7, 1))
    counts = count({"c": ["mug", "coffee"], "d": ["coffee"]}, frame)
    # mug: regular, re-offered; coffee for c: 20 days >= 14, due; for d: 7 days, not yet
    assert counts.reoffered == 2 and counts.total == 2
    assert item_violations("coffee", {}, CATALOG, LEARNED, CONFIG, NOW) == ()


def test_lists_are_cut_to_k_and_repeats_count_once() -> None:
    frame = history(("c", "mug", 100, 1))
    assert count({"c": ["sofa", "mug"]}, frame, k=1).total == 0
    counts = count({"c": ["mug", "mug"]}, frame)
    assert counts.reoffered == 1 and counts.slots == 1
    with pytest.raises(ValueError):
        count({"c": ["mug"]}, frame, k=0)


def test_future_lines_are_ignored() -> None:
    frame = history(("c", "tv-55", -3, 1))  # bought after now
    assert count({"c": ["tv-43", "tv-55"]}, frame).total == 0
    assert owned_items(frame, NOW) == {}


def test_no_lists_scores_zero() -> None:
    counts = count({}, history(("c", "mug", 1, 1)))
    assert counts.lists == 0 and set(counts.per_1000().values()) == {0.0}


def _purchases(frame: pl.DataFrame, customer: str) -> list[Purchase]:
    rows = frame.filter(pl.col("customer_id") == customer).iter_rows(named=True)
    return [
        Purchase(r["order_id"], r["item_id"], r["quantity"], r["unit_price"], r["purchased_at"])
        for r in rows
    ]


def _ruled(frame: pl.DataFrame, customer: str, items: list[str], rules: RulesConfig) -> list[str]:
    ctx = RuleContext(
        now=NOW,
        config=rules,
        catalog=CATALOG,
        purchases=_purchases(frame, customer),
        behaviours=LEARNED,
    )
    candidates = [Candidate(item, 1.0 / (n + 1)) for n, item in enumerate(items)]
    return run_pipeline(candidates, ctx, limit=len(items)).item_ids


def test_the_rules_pipeline_leaves_no_violation() -> None:
    frame = history(("c", "tv-55", 10, 1), ("c", "mug", 100, 1), ("c", "coffee", 20, 1))
    raw = ["tv-43", "tv-55", "gone", "nowhere", "mug", "coffee", "sofa", "mount"]
    assert count({"c": raw}, frame).total == 5
    ruled = _ruled(frame, "c", raw, RULES)
    assert ruled == ["coffee", "sofa", "mount"]
    assert count({"c": ruled}, frame).total == 0


ITEMS = [*sorted(CATALOG), "nowhere"]


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(
        st.tuples(
            st.sampled_from(ITEMS),
            st.floats(min_value=-5, max_value=800),
            st.sampled_from([1.0, 2.0, -1.0]),
        ),
        max_size=8,
    ),
    offered=st.lists(st.sampled_from(ITEMS), max_size=10),
)
def test_rules_output_never_violates(
    lines: list[tuple[str, float, float]], offered: list[str]
) -> None:
    frame = history(*(("c", item, days, quantity) for item, days, quantity in lines))
    ruled = _ruled(frame, "c", offered, RULES)
    assert count({"c": ruled}, frame, placement="newsletter").total == 0
