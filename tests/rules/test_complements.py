from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from recsys.records import Item
from recsys.rules import (
    LearnedComplements,
    RulesConfig,
    complementary_categories,
    complements_for,
    is_complement,
    learn_complements,
    parse_rules,
)
from recsys.rules.config import LearnedComplementsConfig

from ._data import CATALOG, SHIPPED

START = datetime(2025, 1, 1, tzinfo=UTC)
# The tests below plant pairs bought days apart, so they learn over 30 days (the shipped
# default pairs the same order only).
LEARNED = RulesConfig().complements.learned.model_copy(update={"window_days": 30})
Row = tuple[str, str, int, datetime]


def frame(rows: list[Row]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema=["customer_id", "item_id", "quantity", "purchased_at"], orient="row"
    )


def history() -> pl.DataFrame:
    """40 customers: 20 buy a TV and a mount 5 days later, 5 only a mount; all buy bread."""
    rows: list[Row] = []
    for c in range(40):
        day = START + timedelta(days=c * 3)
        rows.append((f"c{c}", "bread", 1, day))
        if c % 2 == 0:
            rows.append((f"c{c}", "tv", 1, day))
            rows.append((f"c{c}", "mount", 1, day + timedelta(days=5)))
        elif c % 8 == 1:
            rows.append((f"c{c}", "mount", 1, day))
    return frame(rows)


def test_pairs_need_lift_and_chance_pairs_are_dropped() -> None:
    learned = learn_complements(history(), LEARNED)
    tv = learned.for_item("tv")
    assert [c.item_id for c in tv] == ["mount"]
    # 20 co-buyers among 40 customers; 20 bought a TV and 25 a mount: lift 40*20/(20*25).
    assert tv[0].support == 20
    assert abs(tv[0].lift - 40 * 20 / (20 * 25)) < 1e-6
    # Everyone buys bread, so bread goes with everything only by chance (lift 1).
    assert learned.for_item("bread") == ()
    assert [c.item_id for c in learned.for_item("mount")] == ["tv"]


def test_window_limits_what_counts_as_bought_together() -> None:
    same_day_only = LearnedComplementsConfig(window_days=0, min_lift=1.2)
    assert learn_complements(history(), same_day_only).for_item("tv") == ()
    four_days = LearnedComplementsConfig(window_days=4, min_lift=1.2)
    assert learn_complements(history(), four_days).for_item("tv") == ()
    five_days = LearnedComplementsConfig(window_days=5, min_lift=1.2)
    assert [c.item_id for c in learn_complements(history(), five_days).for_item("tv")] == ["mount"]


def test_pairs_straddling_bucket_edges_are_found_both_ways() -> None:
    # window 3 -> buckets of 4 days; day 3 and day 5 sit in different buckets.
    rows: list[Row] = []
    for c in range(10):
        rows.append((f"c{c}", "a", 1, START + timedelta(days=3)))
        rows.append((f"c{c}", "b", 1, START + timedelta(days=5)))
    for c in range(10, 30):
        rows.append((f"c{c}", "z", 1, START))
    config = LearnedComplementsConfig(window_days=3, min_support=10)
    learned = learn_complements(frame(rows), config)
    assert [c.item_id for c in learned.for_item("a")] == ["b"]
    assert [c.item_id for c in learned.for_item("b")] == ["a"]


def test_min_support_and_max_per_item() -> None:
    rows: list[Row] = []
    for c in range(6):
        for item in ("anchor", "x1", "x2", "x3"):
            rows.append((f"c{c}", item, 1, START))
    for c in range(6, 20):
        rows.append((f"c{c}", "other", 1, START))
    learned = learn_complements(frame(rows), LearnedComplementsConfig(max_per_item=2))
    assert [c.item_id for c in learned.for_item("anchor")] == ["x1", "x2"]
    strict = learn_complements(frame(rows), LearnedComplementsConfig(min_support=7))
    assert len(strict) == 0


def test_returns_are_not_co_purchases() -> None:
    rows: list[Row] = [(f"c{c}", "tv", 1, START) for c in range(10)]
    rows += [(f"c{c}", "mount", -1, START) for c in range(10)]
    rows += [(f"d{c}", "bread", 1, START) for c in range(10)]
    assert len(learn_complements(frame(rows), LEARNED)) == 0


def test_json_round_trip() -> None:
    learned = learn_complements(history(), LEARNED)
    assert LearnedComplements.from_dict(json.loads(json.dumps(learned.to_dict()))) == learned


def test_array_round_trip() -> None:
    learned = learn_complements(history(), LEARNED)
    assert len(learned) > 0
    packed = LearnedComplements.from_arrays(learned.to_arrays())
    assert packed == learned
    for anchor in learned.by_item:
        assert packed.for_item(anchor) == learned.for_item(anchor)
        assert packed.item_ids_for(anchor) == learned.item_ids_for(anchor)
        assert packed.item_ids_for(anchor) == tuple(c.item_id for c in learned.for_item(anchor))
    assert packed.for_item("not-an-item") == () == packed.item_ids_for("not-an-item")
    assert len(packed) == len(learned)


def test_corrupt_arrays_are_refused() -> None:
    arrays = learn_complements(history(), LEARNED).to_arrays()
    broken = {**arrays, "item_codes": arrays["item_codes"] + 10_000}
    with pytest.raises(ValueError, match="do not fit"):
        LearnedComplements.from_arrays(broken)
    with pytest.raises(ValueError, match="lack array"):
        LearnedComplements.from_arrays({k: v for k, v in arrays.items() if k != "lift"})


def test_complement_sets_warmed_in_bulk_match_one_by_one_lookups() -> None:
    """`warm` (one vectorised search for a campaign batch) fills what `item_id_set` answers."""
    learned = learn_complements(history(), LEARNED)
    anchors = [*learned.by_item, "not-an-item", *learned.by_item]
    expected = {a: frozenset(learned.item_ids_for(a)) for a in anchors}
    dict_backed = LearnedComplements.from_dict(learned.to_dict())
    for fresh in (dict_backed, LearnedComplements.from_arrays(learned.to_arrays())):
        fresh.warm(anchors)
        assert {a: fresh.item_id_set(a) for a in anchors} == expected
    assert {a: learned.item_id_set(a) for a in anchors} == expected  # not warmed: built
    assert not learned._sets
    assert any(expected.values())


def test_category_map_is_hierarchical_on_slash_boundaries() -> None:
    config = SHIPPED.complements
    assert complementary_categories("electronics/tv/oled", config) == (
        "electronics/tv-mounts",
        "electronics/hdmi-cables",
    )
    assert complementary_categories("electronics/tv-mounts", config) == ()
    assert complementary_categories(None, config) == ()
    none = LearnedComplements()
    oled = CATALOG["tv-55"]
    assert is_complement(oled, CATALOG["mount"], none, config)
    assert is_complement(oled, Item("m2", "Mount", "electronics/tv-mounts/ceiling"), none, config)
    assert not is_complement(oled, CATALOG["tv-43"], none, config)
    assert not is_complement(CATALOG["mount"], oled, none, config)


def test_map_entries_at_several_levels_combine() -> None:
    config = parse_rules(
        {
            "complements": {
                "map": {"sports": ["care/first-aid"], "sports/bicycles": ["sports-x/locks"]}
            }
        }
    ).complements
    assert complementary_categories("sports/bicycles/city", config) == (
        "sports-x/locks",
        "care/first-aid",
    )


def test_complements_for_puts_the_map_first_by_popularity_then_learned() -> None:
    learned = LearnedComplements.from_dict(
        {
            "tv-55": [
                {"item_id": "novel", "lift": 3.0, "support": 5},
                {"item_id": "gone", "lift": 9.0, "support": 5},
            ]
        }
    )
    result = complements_for(
        ["tv-55", "tv-55", "unknown"],
        CATALOG,
        learned,
        SHIPPED.complements,
        popularity={"hdmi": 10.0, "mount": 2.0},
    )
    # the retailer's own pairs first: a learned pair never outranks a wall mount
    assert [c.item_id for c in result] == ["hdmi", "mount", "novel"]
    assert all(c.source == "complement" for c in result)
    assert result[0].reason == 'goes with TV 55" Zentro'
    assert [c.score for c in result] == sorted((c.score for c in result), reverse=True)
    assert len(complements_for(["tv-55"], CATALOG, learned, SHIPPED.complements, limit=1)) == 1
    assert complements_for(["unknown"], CATALOG, learned, SHIPPED.complements) == []


def test_within_the_map_the_items_bought_with_this_anchor_lead() -> None:
    # the mount learned as bought with this very TV outranks the best-selling HDMI cable
    learned = LearnedComplements.from_dict(
        {"tv-55": [{"item_id": "mount", "lift": 4.0, "support": 9}]}
    )
    result = complements_for(
        ["tv-55"], CATALOG, learned, SHIPPED.complements, popularity={"hdmi": 10.0, "mount": 2.0}
    )
    assert [c.item_id for c in result] == ["mount", "hdmi"]


def test_the_pair_most_customers_bought_together_ranks_first() -> None:
    # a: 40 buyers of 100. b: 25 buyers, 20 with a (lift 2.0, lower bound 1.33); c: 10
    # buyers, all with a (lift 2.5, lower bound 1.36). Both beat chance; b has the
    # evidence of 20 customers and ranks first.
    rows: list[Row] = []
    for n in range(100):
        customer, day = f"c{n}", START + timedelta(days=n)
        if n < 40:
            rows.append((customer, "a", 1, day))
        if n < 20 or 40 <= n < 45:
            rows.append((customer, "b", 1, day))
        if 20 <= n < 30:
            rows.append((customer, "c", 1, day))
        rows.append((customer, "filler", 1, day))
    config = LearnedComplementsConfig(window_days=0)
    found = learn_complements(frame(rows), config).for_item("a")
    assert [(c.item_id, c.support) for c in found] == [("b", 20), ("c", 10)]
    assert found[1].lift > found[0].lift
