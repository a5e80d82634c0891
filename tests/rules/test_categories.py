from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from recsys.rules import (
    CategoryBehaviour,
    RulesConfig,
    behaviours_from_dict,
    behaviours_to_dict,
    learn_category_behaviour,
    parse_rules,
    resolve_behaviour,
)
from recsys.rules.categories import ITEM_SCOPE, resolve_item_behaviour

from ._data import SHIPPED

START = datetime(2025, 1, 1, tzinfo=UTC)
CONFIG = RulesConfig().categories
ITEM_CATEGORY = {
    "tv-a": "electronics/tv",
    "tv-b": "electronics/tv",
    "coffee-a": "grocery/coffee-capsules",
    "coffee-b": "grocery/coffee-capsules",
    "book-a": "books/fiction",
    "book-b": "books/fiction",
    "rare": "garden/sculptures",
}


def synthetic_history(seed: int = 7, customers: int = 200) -> pl.DataFrame:
    """TVs bought once, capsules every ~30 days, books again now and then at random."""
    rng = random.Random(seed)
    rows: list[tuple[str, str, int, datetime]] = []
    for c in range(customers):
        customer = f"c{c}"
        rows.append(
            (customer, rng.choice(["tv-a", "tv-b"]), 1, START + timedelta(days=rng.randint(0, 600)))
        )
        if c % 2 == 0:
            day = START + timedelta(days=rng.randint(0, 30))
            for _ in range(rng.randint(2, 8)):
                rows.append((customer, rng.choice(["coffee-a", "coffee-b"]), 2, day))
                day += timedelta(days=30 + rng.randint(-3, 3))
        for _ in range(1 if rng.random() < 0.85 else rng.randint(2, 4)):
            rows.append(
                (
                    customer,
                    rng.choice(["book-a", "book-b"]),
                    1,
                    START + timedelta(days=rng.randint(0, 600)),
                )
            )
    for c in range(5):  # too few buyers to learn anything
        rows.append((f"c{c}", "rare", 1, START))
    return pl.DataFrame(
        rows, schema=["customer_id", "item_id", "quantity", "purchased_at"], orient="row"
    )


def test_learns_durable_consumable_and_regular() -> None:
    table = learn_category_behaviour(synthetic_history(), ITEM_CATEGORY, CONFIG)
    categories = {key for key in table if not key.startswith(ITEM_SCOPE)}
    assert categories == {"electronics/tv", "grocery/coffee-capsules", "books/fiction"}
    tv, coffee, books = (
        table["electronics/tv"],
        table["grocery/coffee-capsules"],
        table["books/fiction"],
    )
    assert (tv.kind, tv.support, tv.repeat_rate) == ("durable", 200, 0.0)
    assert coffee.kind == "consumable" and coffee.support == 100 and coffee.repeat_rate == 1.0
    assert coffee.interval_days is not None and 28 <= coffee.interval_days <= 32
    assert books.kind == "regular"
    assert books.repeat_rate is not None and 0.05 <= books.repeat_rate < 0.25


def test_irregular_repeats_are_consumable_unless_a_spread_limit_is_set() -> None:
    rng = random.Random(3)
    rows = []
    for c in range(60):
        day = START
        for _ in range(4):
            rows.append((f"c{c}", "coffee-a", 1, day))
            day += timedelta(days=rng.choice([1, 2, 90, 200]))
    frame = pl.DataFrame(
        rows, schema=["customer_id", "item_id", "quantity", "purchased_at"], orient="row"
    )
    strict = CONFIG.model_copy(update={"consumable_max_interval_spread": 1.0})
    behaviour = learn_category_behaviour(frame, ITEM_CATEGORY, strict)["grocery/coffee-capsules"]
    assert behaviour.kind == "regular"
    assert behaviour.interval_spread is not None and behaviour.interval_spread > 1.0
    # shipped: no spread limit, so everyone rebuying makes it a consumable all the same
    assert CONFIG.consumable_max_interval_spread is None
    shipped = learn_category_behaviour(frame, ITEM_CATEGORY, CONFIG)["grocery/coffee-capsules"]
    assert shipped.kind == "consumable" and shipped.interval_days


def test_same_day_lines_and_returns_are_not_repeats() -> None:
    rows = []
    for c in range(30):
        rows.append((f"c{c}", "tv-a", 1, START))
        rows.append((f"c{c}", "tv-b", 1, START + timedelta(hours=2)))  # same day: one occasion
        rows.append((f"c{c}", "tv-a", -1, START + timedelta(days=10)))  # a return
        rows.append((f"c{c}", "book-a", 1, START + timedelta(days=40)))  # back for something else
    frame = pl.DataFrame(
        rows, schema=["customer_id", "item_id", "quantity", "purchased_at"], orient="row"
    )
    assert (
        learn_category_behaviour(frame, ITEM_CATEGORY, CONFIG)["electronics/tv"].kind == "durable"
    )


def test_buyers_who_never_came_back_say_nothing() -> None:
    """A sample where most TV buyers are seen once must not call TVs durable (nor milk)."""
    rows = []
    for c in range(40):
        rows.append((f"c{c}", "tv-a", 1, START))
        if c < 10:  # only these ten shop again, for a book; none rebuys a TV
            rows.append((f"c{c}", "book-a", 1, START + timedelta(days=60)))
    frame = pl.DataFrame(
        rows, schema=["customer_id", "item_id", "quantity", "purchased_at"], orient="row"
    )
    assert "electronics/tv" not in learn_category_behaviour(frame, ITEM_CATEGORY, CONFIG)
    more = pl.concat(
        [
            frame,
            pl.DataFrame(
                [(f"c{c}", "book-b", 1, START + timedelta(days=90)) for c in range(10, 30)],
                schema=frame.schema,
                orient="row",
            ),
        ]
    )
    tv = learn_category_behaviour(more, ITEM_CATEGORY, CONFIG)["electronics/tv"]
    assert (tv.kind, tv.support, tv.returning, tv.repeat_rate) == ("durable", 40, 30, 0.0)


def test_repeat_rate_is_over_the_buyers_who_came_back() -> None:
    rows = []
    for c in range(40):
        rows.append((f"c{c}", "coffee-a", 1, START))
        if c < 20:  # half come back, all of them for the same capsules a month later
            rows.append((f"c{c}", "coffee-a", 1, START + timedelta(days=30)))
    frame = pl.DataFrame(
        rows, schema=["customer_id", "item_id", "quantity", "purchased_at"], orient="row"
    )
    coffee = learn_category_behaviour(frame, ITEM_CATEGORY, CONFIG)["grocery/coffee-capsules"]
    assert (coffee.support, coffee.returning, coffee.repeat_rate) == (40, 20, 1.0)
    assert coffee.kind == "consumable" and coffee.interval_days == 30


def test_a_category_rebought_as_other_items_is_not_consumable() -> None:
    """Readers buy another novel, not the same one: the novel must not come back."""
    rows = []
    for c in range(40):
        rows.append((f"c{c}", "book-a", 1, START))
        rows.append((f"c{c}", "book-b", 1, START + timedelta(days=30)))
    frame = pl.DataFrame(
        rows, schema=["customer_id", "item_id", "quantity", "purchased_at"], orient="row"
    )
    books = learn_category_behaviour(frame, ITEM_CATEGORY, CONFIG)["books/fiction"]
    assert (books.repeat_rate, books.same_item_rate, books.kind) == (1.0, 0.0, "regular")


def test_accepts_a_catalog_frame_and_missing_quantity() -> None:
    history = synthetic_history().drop("quantity")
    catalog = pl.DataFrame(
        {"item_id": list(ITEM_CATEGORY), "category": list(ITEM_CATEGORY.values())}
    )
    from_frame = learn_category_behaviour(history, catalog, CONFIG)
    assert from_frame == learn_category_behaviour(synthetic_history(), ITEM_CATEGORY, CONFIG)


def test_empty_history_learns_nothing() -> None:
    empty = pl.DataFrame(
        schema={
            "customer_id": pl.String,
            "item_id": pl.String,
            "quantity": pl.Int64,
            "purchased_at": pl.Datetime,
        }
    )
    assert learn_category_behaviour(empty, ITEM_CATEGORY, CONFIG) == {}


def test_parents_are_not_learned_from_their_children() -> None:
    table = learn_category_behaviour(synthetic_history(), {"tv-a": "electronics/tv/oled"}, CONFIG)
    assert {key for key in table if not key.startswith(ITEM_SCOPE)} == {"electronics/tv/oled"}
    assert resolve_behaviour("electronics/tv/lcd", table, CONFIG) is None


def test_items_with_enough_buyers_learn_their_own_cycle() -> None:
    table = learn_category_behaviour(synthetic_history(), ITEM_CATEGORY, CONFIG)
    # every item of the synthetic shop has >= 20 buyers except "rare" (5)
    items = {key for key in table if key.startswith(ITEM_SCOPE)}
    assert items == {f"{ITEM_SCOPE}{i}" for i in ("tv-a", "tv-b", "coffee-a", "coffee-b",
                                                   "book-a", "book-b")}
    assert table[f"{ITEM_SCOPE}coffee-a"].kind == "consumable"
    assert table[f"{ITEM_SCOPE}tv-a"].kind == "durable"
    fewer = CONFIG.model_copy(update={"item_min_buyers": 10_000})
    assert not any(
        k.startswith(ITEM_SCOPE) for k in learn_category_behaviour(synthetic_history(),
                                                                   ITEM_CATEGORY, fewer)
    )


def test_item_resolution_prefers_the_item_except_for_durable_categories() -> None:
    learned = {
        "home/mugs": CategoryBehaviour("home/mugs", "regular", 50, 0.1),
        f"{ITEM_SCOPE}mug-1": CategoryBehaviour(f"{ITEM_SCOPE}mug-1", "consumable", 30, 0.6,
                                                interval_days=40),
        "electronics/tv": CategoryBehaviour("electronics/tv", "durable", 50, 0.0),
        f"{ITEM_SCOPE}tv-1": CategoryBehaviour(f"{ITEM_SCOPE}tv-1", "regular", 30, 0.1),
    }
    mug = resolve_item_behaviour("mug-1", "home/mugs", learned, CONFIG)
    assert mug is not None and (mug.kind, mug.interval_days) == ("consumable", 40)
    other = resolve_item_behaviour("mug-2", "home/mugs", learned, CONFIG)
    assert other is not None and other.kind == "regular"
    tv = resolve_item_behaviour("tv-1", "electronics/tv", learned, CONFIG)
    assert tv is not None and tv.kind == "durable" and tv.category == "electronics/tv"
    assert tv.cooldown_days == CONFIG.durable_cooldown_days
    bare = resolve_item_behaviour("mug-1", None, learned, CONFIG)
    assert bare is not None and bare.kind == "consumable"
    assert resolve_item_behaviour("nothing", None, learned, CONFIG) is None


def test_json_round_trip() -> None:
    table = learn_category_behaviour(synthetic_history(), ITEM_CATEGORY, CONFIG)
    assert behaviours_from_dict(json.loads(json.dumps(behaviours_to_dict(table)))) == table
    with pytest.raises(ValueError, match="bad category behaviour"):
        CategoryBehaviour.from_dict({"category": "x", "class": "fragile"})


def test_overrides_win_hierarchically() -> None:
    learned = {
        "electronics/tv/oled": CategoryBehaviour("electronics/tv/oled", "regular", 50, 0.1),
        "books/fiction": CategoryBehaviour("books/fiction", "durable", 50, 0.0),
    }
    config = SHIPPED.categories
    oled = resolve_behaviour("electronics/tv/oled", learned, config)
    assert oled is not None
    assert (oled.kind, oled.category, oled.cooldown_days, oled.source) == (
        "durable",
        "electronics/tv",
        730,
        "override",
    )
    books = resolve_behaviour("books/fiction", learned, config)
    assert books is not None
    # Learned durables get the configured default cooldown when resolved.
    assert (books.kind, books.cooldown_days) == ("durable", 365)
    assert resolve_behaviour("electronics/tv-mounts", learned, config) is None
    assert resolve_behaviour(None, learned, config) is None


def test_most_specific_override_wins() -> None:
    config = parse_rules(
        {
            "categories": {
                "overrides": {
                    "grocery": {"class": "consumable", "interval_days": 14},
                    "grocery/wine": {"class": "regular"},
                }
            }
        }
    ).categories
    wine = resolve_behaviour("grocery/wine/red", {}, config)
    milk = resolve_behaviour("grocery/milk", {}, config)
    assert wine is not None and wine.kind == "regular"
    assert milk is not None and (milk.kind, milk.interval_days) == ("consumable", 14)
