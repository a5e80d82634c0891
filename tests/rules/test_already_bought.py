from __future__ import annotations

from datetime import timedelta

from recsys.rules import CategoryBehaviour, already_bought
from recsys.rules.already_bought import HABIT_REASON, RESTOCK_REASON, back_at
from recsys.rules.history import holdings

from ._data import NOW, buy, cands, ctx, ids


def test_bought_items_are_excluded() -> None:
    history = [buy("novel", 400), buy("mount", 3)]
    assert ids(already_bought(cands("novel", "mount", "cookbook"), ctx(history))) == ["cookbook"]


def test_returned_items_stay_excluded() -> None:
    history = [buy("novel", 10), buy("novel", 5, quantity=-1)]
    assert ids(already_bought(cands("novel"), ctx(history))) == []


def test_consumable_comes_back_exactly_after_its_interval() -> None:
    # coffee capsules: consumable, 30 days (shipped override)
    day_before = already_bought(cands("coffee"), ctx([buy("coffee", 29)]))
    assert day_before == []
    moment_before = already_bought(
        cands("coffee"), ctx([buy("coffee", 30)], now=NOW - timedelta(seconds=1))
    )
    assert moment_before == []
    on_time = already_bought(cands("coffee", "coffee-dark"), ctx([buy("coffee", 30)]))
    assert ids(on_time) == ["coffee", "coffee-dark"]
    assert on_time[0].reason == RESTOCK_REASON
    assert on_time[1].reason is None


def test_the_last_purchase_dates_the_restock() -> None:
    history = [buy("coffee", 90), buy("coffee", 10)]
    assert already_bought(cands("coffee"), ctx(history)) == []


def test_learned_consumables_come_back_too() -> None:
    learned = {
        "books/cooking": CategoryBehaviour("books/cooking", "consumable", 50, 0.6, 20.0, 0.1, 20)
    }
    history = [buy("cookbook", 21)]
    assert ids(already_bought(cands("cookbook"), ctx(history, behaviours=learned))) == ["cookbook"]


def test_future_purchases_are_ignored() -> None:
    assert ids(already_bought(cands("novel"), ctx([buy("novel", -1)]))) == ["novel"]


def test_back_at_dates_each_way_back_and_none_for_the_rest() -> None:
    config = ctx([]).config.categories
    coffee = holdings([buy("coffee", 10)], NOW)["coffee"]
    consumable = CategoryBehaviour("coffee", "consumable", interval_days=30, source="override")
    assert back_at(coffee, consumable, config) == (
        coffee.last_bought_at + timedelta(days=30 * config.restock_due_share), RESTOCK_REASON
    )
    habit = holdings([buy("novel", 40), buy("novel", 20)], NOW)["novel"]
    assert back_at(habit, None, config) == (
        habit.last_bought_at + timedelta(days=20 * config.personal_due_share), HABIT_REASON
    )
    once = holdings([buy("novel", 20)], NOW)["novel"]
    assert back_at(once, None, config) is None
    durable = CategoryBehaviour("electronics/tv", "durable", cooldown_days=730)
    assert back_at(habit, durable, config) is None
    regular = CategoryBehaviour("books", "regular", source="override")
    assert back_at(habit, regular, config) is None


def test_an_uncategorised_item_learns_its_own_cycle() -> None:
    from recsys.records import Item
    from recsys.rules.categories import behaviour_key

    catalog = {"bag": Item("bag", name="Jumbo bag", price=2.0)}  # no category, as in UCI
    key = behaviour_key("bag", None)
    learned = {key: CategoryBehaviour(key, "consumable", 80, 0.9, 14.0, 0.2, 14)}
    early = ctx([buy("bag", 13, price=2.0)], behaviours=learned, catalog=catalog)
    due = ctx([buy("bag", 14, price=2.0)], behaviours=learned, catalog=catalog)
    assert already_bought(cands("bag"), early) == []
    assert ids(already_bought(cands("bag"), due)) == ["bag"]
