from __future__ import annotations

from datetime import timedelta

from recsys.rules import CategoryBehaviour, already_bought
from recsys.rules.already_bought import HABIT_REASON, RESTOCK_REASON, back_at
from recsys.rules.history import holdings

from ._data import NOW, SHIPPED, WEEK_WAIT, buy, cands, ctx, ids


def test_bought_items_are_excluded() -> None:
    history = [buy("novel", 400), buy("mount", 3)]
    assert ids(already_bought(cands("novel", "mount", "cookbook"), ctx(history))) == ["cookbook"]


def test_returned_items_stay_excluded() -> None:
    history = [buy("novel", 10), buy("novel", 5, quantity=-1)]
    assert ids(already_bought(cands("novel"), ctx(history))) == []


# Order confirmation has no restock horizon in the shipped rules: "due" means due now.
CONFIRMATION = "order_confirmation"


def test_consumable_comes_back_exactly_after_its_interval() -> None:
    # coffee capsules: consumable, 30 days (shipped override)
    day_before = already_bought(cands("coffee"), ctx([buy("coffee", 29)], placement=CONFIRMATION))
    assert day_before == []
    moment_before = already_bought(
        cands("coffee"),
        ctx([buy("coffee", 30)], now=NOW - timedelta(seconds=1), placement=CONFIRMATION),
    )
    assert moment_before == []
    on_time = already_bought(
        cands("coffee", "coffee-dark"), ctx([buy("coffee", 30)], placement=CONFIRMATION)
    )
    assert ids(on_time) == ["coffee", "coffee-dark"]
    assert on_time[0].reason == RESTOCK_REASON
    assert on_time[1].reason is None


def test_the_last_purchase_dates_the_restock() -> None:
    assert ids(already_bought(cands("coffee"), ctx([buy("coffee", 90)]))) == ["coffee"]
    history = [buy("coffee", 90), buy("coffee", 5)]
    assert already_bought(cands("coffee"), ctx(history, placement=CONFIRMATION)) == []


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
    early = ctx(
        [buy("bag", 13, price=2.0)], behaviours=learned, catalog=catalog, placement=CONFIRMATION
    )
    due = ctx(
        [buy("bag", 14, price=2.0)], behaviours=learned, catalog=catalog, placement=CONFIRMATION
    )
    assert already_bought(cands("bag"), early) == []
    assert ids(already_bought(cands("bag"), due)) == ["bag"]


def test_a_newsletter_offers_what_comes_due_within_its_horizon() -> None:
    # shipped: the newsletter looks 60 days ahead and waits a day, so 30-day capsules are
    # in it from the day after their purchase; order confirmation does not look ahead
    assert SHIPPED.categories.horizon_days("newsletter") == 60
    assert SHIPPED.categories.restock_wait_days == 1
    assert already_bought(cands("coffee"), ctx([buy("coffee", 0.5)])) == []
    assert ids(already_bought(cands("coffee"), ctx([buy("coffee", 1)]))) == ["coffee"]
    assert already_bought(cands("coffee"), ctx([buy("coffee", 16)], placement=CONFIRMATION)) == []
    # a 90-day filter bought 20 days ago is due in 70: past the horizon for now
    assert already_bought(cands("filter"), ctx([buy("filter", 20)])) == []
    assert ids(already_bought(cands("filter"), ctx([buy("filter", 31)]))) == ["filter"]
    # an anniversary never re-offers, whatever the horizon table says
    assert SHIPPED.categories.horizon_days("anniversary") == 0
    assert already_bought(cands("coffee"), ctx([buy("coffee", 400)], placement="anniversary")) == []


def test_a_wait_holds_a_bought_item_back_for_its_days() -> None:
    # with a 30-day horizon, 30-day capsules would be offered the day after they were
    # bought; restock_wait_days = 7 holds them back for a week
    assert WEEK_WAIT.categories.restock_wait_days == 7
    assert already_bought(cands("coffee"), ctx([buy("coffee", 1)], config=WEEK_WAIT)) == []
    assert already_bought(cands("coffee"), ctx([buy("coffee", 6.5)], config=WEEK_WAIT)) == []
    got = already_bought(cands("coffee"), ctx([buy("coffee", 7)], config=WEEK_WAIT))
    assert ids(got) == ["coffee"]
    # and the 30-day horizon does not reach a 90-day filter bought 20 days ago
    assert already_bought(cands("filter"), ctx([buy("filter", 59)], config=WEEK_WAIT)) == []
    assert ids(already_bought(cands("filter"), ctx([buy("filter", 60)], config=WEEK_WAIT)))


def test_the_horizon_never_brings_back_a_durable_or_a_one_off() -> None:
    wide = SHIPPED.model_copy(
        update={
            "categories": SHIPPED.categories.model_copy(
                update={"restock_horizon_days": {"newsletter": 365.0}}
            )
        }
    )
    history = [buy("tv-55", 2), buy("novel", 3)]  # a TV (durable) and a book bought once
    assert already_bought(cands("tv-55", "novel"), ctx(history, config=wide)) == []


def test_the_customers_own_rhythm_brings_a_consumable_back_early() -> None:
    # capsules (30-day override) bought every 7 days: the override keeps its 30 days;
    # a learned consumable (the item's own 60-day cycle) follows the customer's week
    from recsys.records import Item
    from recsys.rules.categories import behaviour_key

    catalog = {"bag": Item("bag", name="Jumbo bag", price=2.0)}
    key = behaviour_key("bag", None)
    learned = {key: CategoryBehaviour(key, "consumable", 80, 0.9, 60.0, 0.2, 60)}
    weekly = [buy("bag", 22, price=2.0), buy("bag", 15, price=2.0), buy("bag", 8, price=2.0)]
    kept = already_bought(
        cands("bag"), ctx(weekly, behaviours=learned, catalog=catalog, placement=CONFIRMATION)
    )
    assert ids(kept) == ["bag"]  # 8 days >= half of the customer's 7-day gap
    capsules = [buy("coffee", 22), buy("coffee", 15), buy("coffee", 8)]
    assert already_bought(cands("coffee"), ctx(capsules, placement=CONFIRMATION)) == []
